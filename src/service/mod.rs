//! Service core. STUB.
pub mod group;
pub mod odata;
