//! Integration tests: one test binary that runs the real `sio-emu` binary and servers on port 0.

mod admin;
mod builtin;
mod config;
mod exec;
mod faults;
mod hardening;
mod inject;
mod lint;
mod replay;
mod rest;
mod seed;
mod serve;
mod token;
mod util;
