//! `sio-emu completions <SHELL>` and `sio-emu man`, run as the real binary: every shell's script
//! names the subcommands (and bash's parses), the man page is roff naming every subcommand and
//! its flags, and an unknown shell is a one-line usage error.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::bin;

const SUBCOMMANDS: [&str; 7] = [
    "serve",
    "token",
    "exec",
    "init",
    "replay",
    "completions",
    "man",
];

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_shell_script_names_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("sio-emu"), "{shell}: no program name");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no `{sub}`");
        }
        // Flags of a subcommand, and of the nested `token verify`.
        let flag = if shell == "fish" {
            "-l webhook"
        } else {
            "--webhook"
        };
        assert!(script.contains(flag), "{shell}: no {flag}");
        assert!(script.contains("verify"), "{shell}: no `token verify`");
    }
}

#[test]
fn bash_script_parses() {
    let Ok(probe) = Command::new("bash").arg("--version").output() else {
        eprintln!("bash is not installed: skipping `bash -n`");
        return;
    };
    assert!(probe.status.success());
    let script = stdout_of(&["completions", "bash"]);
    let mut child = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bash -n: {stderr}");
    // Positive control: `bash -n` does reject a broken script.
    let broken = Command::new("bash")
        .args(["-n", "-c", "_f() { if true; then"])
        .output()
        .unwrap();
    assert!(!broken.status.success());
}

#[test]
fn man_page_is_roff_naming_every_subcommand() {
    let roff = stdout_of(&["man"]);
    assert!(
        roff.starts_with(".ie") || roff.starts_with(".TH"),
        "{}",
        &roff[..80]
    );
    let titles: Vec<&str> = roff
        .lines()
        .filter_map(|l| l.strip_prefix(".TH "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(titles.first(), Some(&"sio-emu"), "{titles:?}");
    for sub in SUBCOMMANDS {
        let page = format!("sio-emu-{sub}");
        assert!(
            titles.contains(&page.as_str()),
            "no page {page}: {titles:?}"
        );
        // The top page lists it under SUBCOMMANDS as `sio-emu-<sub>(1)`.
        assert!(roff.contains(&format!("sio\\-emu\\-{sub}(1)")), "{sub}");
    }
    assert!(titles.contains(&"sio-emu-token-verify"), "{titles:?}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(roff.contains(section), "{section}");
    }
    // Flags, with roff's escaped hyphens, and their help text.
    assert!(roff.contains("\\fB\\-\\-webhook\\fR"), "no --webhook");
    assert!(
        roff.contains("\\fB\\-\\-access\\-key\\fR"),
        "no --access-key"
    );
    assert!(roff.contains("Event handler URL template"));
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("sio-emu: invalid value 'tcsh'"),
        "{stderr}"
    );
    // One error line; anything else is the hint line.
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[1].starts_with("hint: "), "{stderr}");
    // No shell at all is a usage error too.
    let out = run(&["completions"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 2);
}
