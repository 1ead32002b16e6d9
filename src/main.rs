//! The thin `sio-emu` binary: parse the command line, run one command, map the outcome to an
//! exit code (0 success, 1 a check failed, 2 usage or infrastructure failure).

use std::process::ExitCode;

fn main() -> ExitCode {
    sio_emu::cli::main()
}
