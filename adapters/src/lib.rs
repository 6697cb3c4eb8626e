//! Legacy format adapters. Each format is a folder with `decode.rs`, `encode.rs` and `tests.rs`;
//! each is pure: bytes in, canonical out (or every violation found), and canonical in, bytes out.
//! No I/O, no clock, no keys: master data comes from the caller.
//!
//! The gateway knows a format only by its name, through [`registry`].
#![forbid(unsafe_code)]

pub mod canonical;
pub mod court_xml;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod police_json;
pub mod prosecution_flat;
pub mod registry;
#[cfg(test)]
mod testgen;

pub use error::{DecodeError, EncodeError, Rejection};
pub use registry::{Adapter, Context};
