//! Engine.IO v4. STUB.
pub mod packet;
pub mod payload;
