//! Traffic. STUB.
