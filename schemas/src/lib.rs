//! The canonical model of jxg (v1, and v2 beside it): the one shape every message takes inside
//! the gateway.
//!
//! - [`message`]: the envelope and the ten message bodies as Rust types;
//! - [`values`]: validated newtypes (`Cpr`, `JournalNumber`, `LawRef`, …) that cannot hold an
//!   invalid value, so everything after decoding trusts them;
//! - [`master_data`]: the sector reference data (police districts, courts, institutions, laws);
//! - [`schema`]: the JSON Schema files under `canonical/v1/` and a validator over them;
//! - [`validate`]: the rules a schema cannot state (master data, contradictions, derivations).
#![forbid(unsafe_code)]

pub mod master_data;
pub mod message;
pub mod schema;
pub mod validate;
pub mod values;
mod violation;

pub use master_data::MasterData;
pub use message::{Body, Document, Message, MessageType, Withdrawal};
pub use violation::{Violation, Violations};

/// The `schema` value of every canonical v1 message.
pub const SCHEMA_V1: &str = "jxg.canonical/v1";
/// The `schema` value of every canonical v2 message (docs/formats/canonical-v2.md).
pub const SCHEMA_V2: &str = "jxg.canonical/v2";

/// A version of the canonical model. v2 is v1 with corrections and withdrawals beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// The `schema` value of the version.
    pub fn schema(self) -> &'static str {
        match self {
            Version::V1 => SCHEMA_V1,
            Version::V2 => SCHEMA_V2,
        }
    }
}
