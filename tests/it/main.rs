//! Integration tests: one test binary that runs the real `sio-emu` binary and servers on port 0.

mod builtin;
mod config;
mod exec;
mod rest;
mod serve;
mod token;
mod util;
