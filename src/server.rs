//! Server. STUB.
