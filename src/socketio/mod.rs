//! Socket.IO v5. STUB.
pub mod packet;
