//! `sio-emu init [FILE]`: writes the commented starter configuration for `serve --config`,
//! refusing to overwrite an existing file unless `--force`.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::config::file::STARTER;

/// Flags of `sio-emu init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to write the configuration.
    #[arg(default_value = "sio-emu.toml")]
    pub file: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Writes the starter file.
pub fn run(args: InitArgs) -> Result<u8, CliError> {
    if args.file.exists() && !args.force {
        return Err(CliError::usage(format!(
            "{} already exists; nothing was written",
            args.file.display()
        ))
        .hint("pass --force to overwrite it, or name another file"));
    }
    std::fs::write(&args.file, STARTER)
        .map_err(|e| CliError::usage(format!("cannot write {}: {e}", args.file.display())))?;
    println!(
        "wrote {}; start with: sio-emu serve --config {}",
        args.file.display(),
        args.file.display()
    );
    Ok(0)
}
