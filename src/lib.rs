//! sio-emu: a local emulator of Azure Web PubSub for Socket.IO in Serverless mode.
//!
//! Real Socket.IO clients connect to [`server`]; their Engine.IO sessions ([`engineio`]) carry
//! Socket.IO packets ([`socketio`]) whose lifecycle and user events reach the developer's
//! webhook through [`upstream`] as CloudEvents calls. The emulated service state (hubs,
//! connections, groups, users) lives in [`service`], which the data-plane [`rest`] API drives.
//! Every layer reports what happened as [`traffic::TrafficEvent`] values; renderers turn them into
//! the live log.
//!
//! ```text
//! cli ──► server ──► engineio ──(Handler trait)──► socketio ──► service ◄── rest
//!  │  └─► replay (beside cli; never imports it)         │            │
//!  └───► builtin (own error type)                       ▼            ▼
//!                                                    upstream     (groups, connections, users)
//! auth  : used by server (client handshake), rest (Bearer), cli token; imports nothing
//! traffic: every layer emits TrafficEvent values; renderers consume them
//! config: plain data (a fault rule and the lint-slow default are values here), below its users
//! http  : the bottom every HTTP surface shares (HttpResponse, json_response, serve_http)
//! codecs: engineio::packet/payload and socketio::packet are pure and usable from any layer
//! builtin: `--webhook builtin:echo|chat` handlers on loopback HTTP, resolved by cli before serving
//! hooks: small traits (webhook and REST observers, fault injector) socketio and rest call
//!        through service; cli serve plugs lint and fault in when it assembles the service
//! lint: checks webhook answers and REST calls against the contract; a hook, naming no caller
//! fault: decides injected faults and keeps their rules; a hook; admin edits its rules
//! admin: loopback-only `/_emu/` views and controls, routed by server, working through service
//! client: a Socket.IO client over the codecs (cli's `client`, admin's virtual clients)
//! ```
//!
//! `tests/layers.rs` checks these directions on every `cargo test`: lint and fault name none of
//! service, socketio and rest, and none of those names them.

pub mod admin;
pub mod auth;
pub mod builtin;
pub mod cli;
pub mod client;
pub mod config;
pub mod duration;
pub mod engineio;
pub mod fault;
pub mod glob;
pub mod hooks;
pub mod http;
pub mod lint;
pub mod replay;
pub mod rest;
pub mod server;
pub mod service;
pub mod socketio;
pub mod traffic;
pub mod upstream;
