//! Delivery to recipients that do not pull: one worker per recipient drives a [`Transport`]
//! without knowing which kind it is.
//!
//! Per recipient, messages of one case go out in acceptance order: only the oldest waiting entry
//! of a case is ever attempted, so a failing message holds back later messages of its own case
//! and no other. Failures are retried with exponential backoff and full jitter until
//! `max_attempts`, then dead-lettered with the last error; a 4xx other than 408/429 is
//! permanent at once. Every attempt's result is written to the store before the next, so a
//! restart resumes with the same attempt counts and the same order. A circuit breaker stops
//! attempts to a recipient after consecutive failures and probes it once per cool-down, and a
//! concurrency limit bounds what is in flight, so one dead recipient costs the others nothing.

pub mod amqp;
pub mod push;
mod worker;

use futures_util::future::BoxFuture;

use crate::store::OutboxEntry;

pub use push::PushTransport;
pub use worker::{Backoff, start};

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The recipient has it.
    Delivered,
    /// Try again later; the reason (status code or transport error, never a body).
    Retry(String),
    /// Never try again (the recipient refused it for good); the reason.
    Permanent(String),
}

/// One way of handing a document to a recipient.
pub trait Transport: Send + Sync {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Outcome>;
    /// The way it delivers, for metrics (`push`, `amqp`).
    fn via(&self) -> &'static str;
}
