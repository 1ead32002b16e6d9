//! Integration tests: one test binary that runs the real `sio-emu` binary and servers on port 0.

mod admin;
mod builtin;
mod cli_docs;
mod client;
mod config;
mod delivery;
mod engineio_edges;
mod exec;
mod faults;
mod hardening;
mod inject;
mod inspector;
mod lint;
mod output;
mod replay;
mod rest;
mod rust_client;
mod seed;
mod serve;
mod token;
mod util;
mod virtual_clients;
