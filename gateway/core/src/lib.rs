//! The domain of jxg, the justice exchange gateway: what happens to a message between the
//! listener that took it and the transport that delivers it, with no transport (HTTP, AMQP)
//! and no storage engine in it.
//!
//! - [`pipeline`]: decode → validate → authorize → route → minimise → encode → sign → commit,
//!   with its own errors ([`pipeline::Refused`]).
//! - [`routing`], [`policy`] (Cedar authorization and disclosure rules), [`signing`] (JWS).
//! - [`audit`]: the hash-chained log, its checkpoints and verification.
//! - [`store`]: the gateway's store over the [`store::Engine`] seam, with its one writer.
//! - [`delivery`]: the delivery state machine over the [`delivery::Transport`] seam.
//! - [`config`]: the configuration, validated, and [`registry`]: its authorities compiled for
//!   the request path; [`telemetry`]: instruments and spans; [`activity`]: this node's last
//!   hour per authority, for the console.
#![forbid(unsafe_code)]

pub mod activity;
pub mod audit;
pub mod config;
pub mod delivery;
pub mod pipeline;
pub mod policy;
pub mod registry;
pub mod revision;
pub mod routing;
pub mod signing;
pub mod store;
pub mod telemetry;
