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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::config::DeliveryConfig;
use crate::store::{DeliveryState, OutboxEntry, Store};

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

/// One way of handing a document to a recipient (push over HTTPS, AMQP publish: the server's
/// transports implement it).
pub trait Transport: Send + Sync {
    /// Hands `entry` over, returning within `bound` (the worker gives up on an attempt that
    /// has not returned shortly after it, as a retryable failure): a transport that knows why
    /// it is slow (a broker that blocks publishers) says so in its answer.
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry, bound: Duration) -> BoxFuture<'a, Outcome>;
    /// The way it delivers, for metrics (`push`, `amqp`).
    fn via(&self) -> &'static str;
}

/// How long past its bound the worker waits for a transport before it gives up on the attempt.
const GRACE: Duration = Duration::from_millis(500);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Exponential backoff with full jitter: a random delay in [0, min(cap, base·2^(attempt-1))].
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Backoff {
    pub fn ceiling(&self, attempt: u32) -> u64 {
        let exp = self
            .base_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
        exp.min(self.cap_ms)
    }
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let mut b = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        u64::from_le_bytes(b) % (self.ceiling(attempt) + 1)
    }
}

/// The delivery worker of one recipient.
pub struct Worker {
    pub recipient: String,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<Store>,
    pub cfg: DeliveryConfig,
    /// Whether the gateway is stopping: the worker then finishes what is in flight and ends.
    pub draining: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// The circuit breaker of one recipient.
#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until_ms: Option<i64>,
}

impl Worker {
    /// Delivers until draining, then returns once nothing is in flight.
    pub async fn run(self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, bool)>();
        let mut in_flight: HashSet<u64> = HashSet::new();
        let mut breaker = Breaker::default();
        let backoff = Backoff {
            base_ms: self.cfg.retry_base_ms,
            cap_ms: self.cfg.retry_cap_ms,
        };
        let bound = Duration::from_secs(self.cfg.request_timeout_seconds);
        // woken only by changes to this recipient's entries
        let signal = self.store.signal(&self.recipient);
        loop {
            let draining = (self.draining)();
            if draining && in_flight.is_empty() {
                return;
            }
            let notified = signal.notified();
            let now = now_ms();
            let mut next_due: Option<i64> = None;
            let open = breaker.open_until_ms.is_some_and(|t| t > now);
            if !draining && !open {
                // half-open after the cool-down: one probe at a time
                let probing = breaker.failures >= self.cfg.breaker_failures;
                let slots = if probing {
                    1usize.saturating_sub(in_flight.len())
                } else {
                    self.cfg.concurrency.saturating_sub(in_flight.len())
                };
                // only the entries that can start now are read, and only their bodies
                let heads = if slots == 0 {
                    Ok((Vec::new(), None))
                } else {
                    self.store
                        .lease_due(&self.recipient, now, slots, &in_flight)
                        .await
                };
                let heads = match heads {
                    Ok((heads, due)) => {
                        next_due = due;
                        heads
                    }
                    Err(e) => {
                        tracing::error!(recipient = %self.recipient, error = %e, "cannot read the outbox");
                        next_due = Some(now + 1000);
                        Vec::new()
                    }
                };
                for (seq, row) in heads {
                    let e = match self
                        .store
                        .entry_or_dead_letter(&self.recipient, seq, &row, "delivery")
                        .await
                    {
                        Ok(Some(e)) => e,
                        // gone, or unreadable and dead-lettered: the next one may start now
                        Ok(None) => {
                            next_due = Some(now);
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(recipient = %self.recipient, error = %e, "cannot read an outbox entry");
                            next_due = Some(now + 1000);
                            break;
                        }
                    };
                    in_flight.insert(seq);
                    let (transport, store, tx, max) = (
                        self.transport.clone(),
                        self.store.clone(),
                        tx.clone(),
                        self.cfg.max_attempts,
                    );
                    tokio::spawn(async move {
                        // an entry goes out only once its acceptance is on disk: a copy sent
                        // before the flush, then lost in a crash, would come back from the
                        // sender's retry under another id
                        let recipient = e.recipient.clone();
                        let ok = store.durable().await.is_ok()
                            && attempt(transport.as_ref(), store.as_ref(), e, max, backoff, bound)
                                .await;
                        // recorded (or not attempted): any node may take it when it is due
                        if let Err(err) = store.release(&recipient, seq).await {
                            tracing::warn!(error = %err, "a delivery's lease is left to expire");
                        }
                        let _ = tx.send((seq, ok));
                    });
                }
            }
            if let Some(t) = breaker.open_until_ms.filter(|t| *t > now) {
                next_due = Some(next_due.map_or(t, |n| n.min(t)));
            }
            let wait = next_due
                .map(|t| (t - now).clamp(0, 1000) as u64)
                .unwrap_or(1000);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                Some((seq, ok)) = rx.recv() => {
                    in_flight.remove(&seq);
                    breaker.record(ok, &self.cfg, &self.recipient);
                    while let Ok((seq, ok)) = rx.try_recv() {
                        in_flight.remove(&seq);
                        breaker.record(ok, &self.cfg, &self.recipient);
                    }
                }
            }
        }
    }
}

impl Breaker {
    /// Counts an attempt's result: a success closes the breaker; a run of failures opens it for
    /// the cool-down.
    fn record(&mut self, ok: bool, cfg: &DeliveryConfig, recipient: &str) {
        if ok {
            *self = Breaker::default();
        } else {
            self.failures += 1;
            if self.failures >= cfg.breaker_failures {
                self.open_until_ms = Some(now_ms() + cfg.breaker_cooldown_ms as i64);
                tracing::warn!(recipient, failures = self.failures, "circuit breaker open");
            }
        }
        crate::activity::activity().breaker(recipient, self.failures, self.open_until_ms);
    }
}

/// One attempt and its durable record. Returns whether the recipient took it.
async fn attempt(
    transport: &dyn Transport,
    store: &Store,
    mut e: OutboxEntry,
    max: u32,
    backoff: Backoff,
    bound: Duration,
) -> bool {
    let span = tracing::info_span!(
        "deliver",
        otel.name = "deliver",
        otel.kind = "client",
        recipient = %e.recipient,
        message_id = %e.message_id,
        attempt = e.attempts + 1,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::adopt(&span, e.traceparent.as_deref());
    // the recipient sees this attempt's span as its parent; the entry keeps the message's context
    let stored = e.traceparent.clone();
    e.traceparent = crate::telemetry::traceparent(&span, stored.clone());
    if let Some(t) = crate::telemetry::trace_id(e.traceparent.as_deref()) {
        span.record("trace_id", t);
    }
    let outcome = match tokio::time::timeout(
        bound + GRACE,
        transport.deliver(&e, bound).instrument(span.clone()),
    )
    .await
    {
        Ok(o) => o,
        Err(_) => Outcome::Retry(format!("no answer within {} s", bound.as_secs())),
    };
    e.traceparent = stored;
    e.attempts += 1;
    let now = now_ms();
    let ok = outcome == Outcome::Delivered;
    match outcome {
        Outcome::Delivered => {
            e.state = DeliveryState::Delivered;
            e.delivered_at = Some(now / 1000);
            e.next_attempt_at_ms = None;
        }
        Outcome::Permanent(why) => {
            e.state = DeliveryState::Dead;
            e.last_error = Some(why);
            e.next_attempt_at_ms = None;
        }
        Outcome::Retry(why) if e.attempts >= max => {
            e.state = DeliveryState::Dead;
            e.last_error = Some(why);
            e.next_attempt_at_ms = None;
        }
        Outcome::Retry(why) => {
            e.state = DeliveryState::Retrying;
            e.last_error = Some(why);
            e.next_attempt_at_ms = Some(now + backoff.delay_ms(e.attempts) as i64);
        }
    }
    let label = match e.state {
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead => "dead",
        _ => "retry",
    };
    let m = crate::telemetry::metrics();
    let recipient = opentelemetry::KeyValue::new("recipient", e.recipient.clone());
    m.delivery_attempts.add(
        1,
        &[
            recipient.clone(),
            opentelemetry::KeyValue::new("outcome", label),
        ],
    );
    if e.state == DeliveryState::Delivered {
        crate::telemetry::delivered(&e.recipient, transport.via());
    }
    if e.state == DeliveryState::Dead {
        m.dead_letters.add(1, &[recipient]);
    }
    if let Some(why) = e.last_error.as_deref().filter(|_| !ok) {
        crate::activity::activity().failed(&e.recipient, why);
    }
    span.in_scope(|| {
        tracing::info!(message_id = %e.message_id, recipient = %e.recipient, attempt = e.attempts, state = e.state.as_str(), "delivery attempt");
    });
    if let Err(err) = store.record_delivery(&e).await {
        tracing::error!(error = %err, "cannot record a delivery attempt");
        return false;
    }
    if let Err(err) = store.durable().await {
        tracing::error!(error = %err, "cannot flush a delivery attempt");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_below_it() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1000,
        };
        assert_eq!(
            [1, 2, 3, 4, 5, 60].map(|a| b.ceiling(a)),
            [100, 200, 400, 800, 1000, 1000]
        );
        for a in 1..10 {
            for _ in 0..50 {
                assert!(b.delay_ms(a) <= b.ceiling(a));
            }
        }
        let spread: HashSet<u64> = (0..50).map(|_| b.delay_ms(5)).collect();
        assert!(spread.len() > 10, "full jitter spreads the delays");
    }
}
