//! Integration tests: one test binary that runs the real `sio-emu` binary and servers on port 0.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

mod admin;
mod bounds;
mod builtin;
mod cli_docs;
mod client;
mod config;
mod copy_as_curl;
mod delivery;
mod engineio_edges;
mod exec;
mod faults;
mod framing;
mod hardening;
mod inject;
mod inspector;
mod lint;
mod output;
mod polling_http;
mod redaction;
mod replay;
mod rest;
mod rust_client;
mod seed;
mod serve;
mod storm;
mod terminal;
mod token;
mod util;
mod virtual_clients;
