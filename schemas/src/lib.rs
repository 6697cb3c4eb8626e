//! Canonical model v1 of jxg: the one shape every message takes inside the gateway.
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
pub use message::{Body, Message, MessageType};
pub use violation::{Violation, Violations};

/// The `schema` value of every canonical v1 message.
pub const SCHEMA_V1: &str = "jxg.canonical/v1";
