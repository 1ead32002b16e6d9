//! "Copy as curl" is safe to paste: the `curl` text of `/_emu/entries/<seq>` for a webhook call
//! whose namespace and event name hold ESC, Ctrl-U, CR, newlines, quotes, `$(…)`, backticks and
//! a bidi override is pasted through a pseudo-terminal into an interactive bash (and zsh and
//! fish when they are installed), and each time the capture server receives exactly the
//! request the emulator sent: same method, path, headers and body, byte for byte, and nothing
//! else runs.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::util::{
    Emu, RawAnswer, RawHook, Recorded, WAIT, WsClient, eventually, http, poll_until,
};

/// Every marker file a command hidden in the namespace or event name would create.
const MARKERS: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

/// The `curl` text of the entry of the first user-event call.
async fn curl_text(emu: &Emu) -> String {
    for seq in 1.. {
        let entry = http(
            "GET",
            &format!("{}/_emu/entries/{seq}", emu.base()),
            &[],
            "",
        )
        .await;
        assert_eq!(
            entry.status, 200,
            "no user event among the entries: {}",
            entry.body
        );
        if let Some(curl) = entry.json()["curl"].as_str()
            && curl.contains("azure.webpubsub.user.message")
        {
            return curl.to_owned();
        }
    }
    unreachable!()
}

/// The interactive shells the text is pasted into: bash always, zsh and fish when installed.
/// Each gets the prompt `READY> ` from a start-up file of its own in the test's directory.
fn shells(dir: &std::path::Path) -> Vec<(&'static str, Command)> {
    std::fs::write(dir.join("bashrc"), "PS1='READY> '\n").unwrap();
    std::fs::write(dir.join(".zshrc"), "PS1='READY> '\n").unwrap();
    let mut found = vec![("bash", "bash --noprofile --rcfile bashrc -i")];
    let installed = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if installed("zsh") {
        found.push(("zsh", "zsh -i"));
    }
    if installed("fish") {
        found.push((
            "fish",
            "fish --no-config -i -C 'function fish_prompt; echo -n \"READY> \"; end'",
        ));
    }
    found
        .into_iter()
        .map(|(name, line)| {
            let mut script = Command::new("script");
            script
                .args(["-qfec", line, "/dev/null"])
                .current_dir(dir)
                .env("HOME", dir)
                .env("ZDOTDIR", dir)
                .env("HISTFILE", "/dev/null")
                .env("TERM", "xterm");
            (name, script)
        })
        .collect()
}

/// Types `text` into an interactive shell under a pseudo-terminal (`script`), waits for
/// `done`, then exits the shell; returns what the terminal showed.
async fn paste(mut shell: Command, text: &str, done: impl Fn() -> bool) -> String {
    let mut child = shell
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1) from util-linux runs the shell under a pty");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let sink = screen.clone();
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = out.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    let prompt = poll_until(WAIT, || shown().contains("READY> ").then_some(())).await;
    assert!(prompt.is_some(), "no prompt: {:?}", shown());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
    if poll_until(WAIT, || done().then_some(())).await.is_none() {
        panic!(
            "the pasted command sent nothing; the terminal shows:\n{}",
            shown()
        );
    }
    stdin.write_all(b"exit\n").unwrap();
    stdin.flush().unwrap();
    let exited = poll_until(WAIT, || child.try_wait().unwrap()).await;
    assert!(exited.is_some(), "the shell did not exit: {:?}", shown());
    shown()
}

/// Sends one event on `namespace` named `event`, takes the `curl` text of its webhook call
/// and pastes it into each shell: each sends the same request again and nothing else runs.
async fn paste_checks(namespace: &str, event: &str, arg: &str) {
    let hook = RawHook::with(|_: &Recorded| RawAnswer::Ok).await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let mut ws = WsClient::connect(&emu, "chat", "").await.unwrap();
    let joined = ws.join(namespace).await;
    assert!(joined.starts_with(&format!("40{namespace},")), "{joined:?}");
    let args = serde_json::json!([event, arg]).to_string();
    ws.send(&format!("42{namespace},{args}")).await;
    let original = eventually("the event reaching the webhook", WAIT, || {
        user_events(&hook).into_iter().next()
    })
    .await;
    // Positive control: the hostile bytes are in what the emulator sent.
    assert_eq!(original.body, format!("42{namespace},{args}"));
    assert_eq!(original.header("ce-eventName"), event);

    let curl = curl_text(&emu).await;
    let raw: Vec<char> = curl.chars().filter(|c| !(' '..='~').contains(c)).collect();
    assert!(raw.is_empty(), "the curl text holds {raw:?}: {curl}");

    let dir =
        std::env::temp_dir().join(format!("sio-emu-curl-{}-{}", std::process::id(), emu.port));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let posts = || user_events(&hook).len();
    for (n, (name, shell)) in shells(&dir).into_iter().enumerate() {
        let screen = paste(shell, &curl, || posts() > n + 1).await;
        let ran: Vec<&str> = MARKERS
            .into_iter()
            .filter(|m| dir.join(m).exists())
            .collect();
        assert!(
            ran.is_empty(),
            "pasted into {name}, it ran {ran:?}:\n{screen}"
        );
        assert_eq!(posts(), n + 2, "{name} ran exactly one curl:\n{screen}");
        let again = user_events(&hook).pop().unwrap();
        assert_same(&original, &again, name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Control characters in the body (a namespace can hold anything but a comma, and the packet
/// carries it raw), UTF-8 and a C1 control in a header (`ce-eventName`).
#[tokio::test]
async fn copy_as_curl_with_control_characters_pasted_into_a_shell_sends_the_same_bytes() {
    paste_checks(
        "/ns'\"$(touch m1)`touch m2`\x1b[2J\x15\rtouch m3\n;touch m4 ! % \\ \t\u{202e}é",
        "ev'$(touch m5)\\' \"x\u{202e}\u{9b}",
        "it's \"q\" \\ $HOME %s",
    )
    .await;
}

/// Printable text only, so every value is single-quoted: quotes, backslashes (which fish reads
/// even inside single quotes), `$(…)`, backticks and `!` survive as they are.
#[tokio::test]
async fn copy_as_curl_of_printable_text_pasted_into_a_shell_sends_the_same_bytes() {
    paste_checks(
        "/p'$(touch m1)`touch m2`\\!x\\'y\\\\",
        "ev'\\'$(touch m3)",
        "a\\'b\\\\ `touch m4` !! %d",
    )
    .await;
}

/// The user-event calls the hook received, in order.
fn user_events(hook: &RawHook) -> Vec<Recorded> {
    hook.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.header("ce-type") == "azure.webpubsub.user.message")
        .cloned()
        .collect()
}

/// The same method, path, body and headers (and no others).
fn assert_same(original: &Recorded, again: &Recorded, shell: &str) {
    assert_eq!(again.method, original.method, "{shell}");
    assert_eq!(again.path, original.path, "{shell}");
    assert_eq!(
        again.body, original.body,
        "{shell}: the body, byte for byte"
    );
    let mut want: Vec<_> = original.headers.iter().collect();
    let mut got: Vec<_> = again.headers.iter().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{shell}: the same headers, and no others");
}
