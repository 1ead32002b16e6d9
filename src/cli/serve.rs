//! `sio-emu serve`. STUB.
use super::CliError;
#[derive(clap::Args, Debug)]
pub struct ServeArgs {}
pub fn run(_a: ServeArgs) -> Result<u8, CliError> { unimplemented!() }
