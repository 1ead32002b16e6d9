//! `sio-emu completions <SHELL>` and `sio-emu man`: a shell completion script (clap_complete)
//! and the manual pages in roff (clap_mangen), both generated from the same clap definitions as
//! the parser, so they cannot drift from the flags the binary accepts.
//!
//! `man` prints one roff stream holding `sio-emu(1)` followed by one page per subcommand
//! (`sio-emu-serve(1)`, `sio-emu-token(1)`, `sio-emu-token-verify(1)`, …), which
//! `sio-emu man | man -l -` reads as a whole.

use clap::{Args, Command, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError, emit};

/// `sio-emu completions <SHELL>`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `sio-emu man`.
#[derive(Args, Debug)]
pub struct ManArgs {}

/// Prints the completion script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs) -> Result<u8, CliError> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    emit(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

/// Prints the manual pages (roff) to stdout.
pub fn man(_args: ManArgs) -> Result<u8, CliError> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut roff = Vec::new();
    render_pages(&cmd, &mut roff)
        .map_err(|e| CliError::usage(format!("rendering the man page: {e}")))?;
    emit(&String::from_utf8_lossy(&roff))?;
    Ok(0)
}

/// Renders the page of `cmd`, then those of its subcommands (depth first), skipping `help`.
fn render_pages(cmd: &Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let source = format!("sio-emu {}", env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(cmd.clone())
        .source(source)
        .render(out)?;
    let page = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let titled = sub
            .clone()
            .display_name(format!("{page}-{}", sub.get_name()));
        render_pages(&titled, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_command() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut roff = Vec::new();
        render_pages(&cmd, &mut roff).unwrap();
        let roff = String::from_utf8(roff).unwrap();
        let titles: Vec<&str> = roff
            .lines()
            .filter_map(|l| l.strip_prefix(".TH "))
            .map(|l| l.split(' ').next().unwrap_or_default())
            .collect();
        for page in ["sio-emu", "sio-emu-serve", "sio-emu-token", "sio-emu-man"] {
            assert!(titles.contains(&page), "{page} in {titles:?}");
        }
        assert!(!titles.iter().any(|t| t.ends_with("-help")), "{titles:?}");
    }
}
