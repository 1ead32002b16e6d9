//! CloudEvents request building. STUB.
