//! Socket.IO v5 on top of Engine.IO, the way the serverless service runs it: the pure codec
//! ([`packet`]), the handshake admission with access tokens ([`handshake`], docs/protocol.md §3 and
//! docs/protocol.md §14 decisions 5 and 17), each connection's namespace sockets and their lifecycle
//! ([`connection`], docs/protocol.md §4), and the webhook calls they make ([`webhook`], docs/protocol.md §5), with the fault rules
//! applied to them (`faults`) and each exchange logged ([`exchange`]).
//!
//! This layer implements [`crate::engineio::Acceptor`] and [`crate::engineio::Handler`]; it
//! reaches the developer's webhook only through [`crate::upstream`] and the hub state only
//! through [`crate::service`].

pub mod connection;
mod event_head;
pub mod exchange;
mod faults;
pub mod handshake;
pub mod lane;
pub mod packet;
pub mod queue;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use handshake::SioAcceptor;
