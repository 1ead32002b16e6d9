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
//!                                                      │            │
//!                                                      ▼            ▼
//!                                                   upstream     (groups, connections, users)
//! auth  : used by server (client handshake), rest (Bearer), cli token
//! traffic: every layer emits TrafficEvent values; renderers consume them
//! builtin: `--webhook builtin:echo|chat` handlers on loopback HTTP, resolved by cli before serving
//! lint: checks webhook answers and REST calls against the contract; fed by socketio and rest
//! admin: loopback-only `/_emu/` views and controls, routed by server, working through service
//! ```

pub mod admin;
pub mod auth;
pub mod builtin;
pub mod cli;
pub mod config;
pub mod duration;
pub mod engineio;
pub mod fault;
pub mod glob;
pub mod lint;
pub mod replay;
pub mod rest;
pub mod server;
pub mod service;
pub mod socketio;
pub mod traffic;
pub mod upstream;
