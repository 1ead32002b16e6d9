//! REST. STUB.
