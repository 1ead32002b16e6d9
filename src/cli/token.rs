//! `sio-emu token`. STUB.
use super::CliError;
#[derive(clap::Args, Debug)]
pub struct TokenArgs {}
pub fn run(_a: TokenArgs) -> Result<u8, CliError> { unimplemented!() }
