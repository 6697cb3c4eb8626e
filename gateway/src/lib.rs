//! jxg, the justice exchange gateway: one hardened exchange point between police, prosecution,
//! courts and the Prison and Probation Service. See `docs/ARCHITECTURE.md` for the path of one
//! message; each module here is one stage of it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_ops;
pub mod audit;
pub mod bench;
pub mod broker;
pub mod certs;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod ingress;
pub mod openapi;
pub mod peer;
pub mod pipeline;
pub mod policy;
pub mod routing;
pub mod server;
pub mod signing;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod tls;
