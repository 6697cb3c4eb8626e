//! jxg, the justice exchange gateway: one hardened exchange point between police, prosecution,
//! courts and the Prison and Probation Service. See `docs/ARCHITECTURE.md` for the path of one
//! message. This crate is the server around the domain (`jxg-core`): the listeners, identity,
//! the one map from the domain's errors to problem+json, the admin API, the transports, TLS,
//! the development PKI and the CLI; the embedded store engine is `jxg-store-sled`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_ops;
pub mod admin_overview;
pub mod broker;
pub mod certs;
pub mod cli;
pub mod console;
pub mod csrf;
pub mod delivery;
pub mod ingress;
pub mod openapi;
pub mod peer;
pub mod server;
pub mod telemetry;
pub mod tls;

pub use jxg_core::{audit, config, pipeline, policy, routing, signing};

/// The store: the domain's [`jxg_core::store`] and the embedded engine.
pub mod store {
    pub use jxg_core::store::*;
    pub use jxg_store_sled::*;
}
