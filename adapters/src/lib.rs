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

/// How a document names an earlier message: by its canonical id when the gateway resolved it
/// (every document it delivers), else by the sender's own document id (a document converted
/// before it reached the gateway), as a document's own id falls back to its source id.
pub(crate) fn reference(message_id: Option<uuid::Uuid>, source: Option<&str>) -> Option<String> {
    message_id
        .map(|u| u.to_string())
        .or_else(|| source.map(String::from))
}

/// The code of `value` in one of a format's code tables (every value has one).
pub(crate) fn code_of<T: PartialEq>(table: &[(&'static str, T)], value: &T) -> &'static str {
    table
        .iter()
        .find(|(_, t)| t == value)
        .map(|(c, _)| *c)
        .expect("every value has a code")
}
