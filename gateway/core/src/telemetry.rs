//! The domain's instruments and spans: the OpenTelemetry instruments the pipeline, the store and
//! delivery record into, one span per pipeline stage, and W3C trace context passed on. Where
//! they are exported to (Prometheus text, OTLP) is the server's concern (`jxg_gateway::telemetry`),
//! which installs the meter before any instrument is used; until then they record into nothing.
//!
//! No span name, attribute, metric label or log field ever holds personal data: only authority
//! ids, message types, formats, statuses, message ids and a keyed hash of the case reference.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of the per-stage spans, so that they cost nothing when no exporter is configured.
pub const STAGE: &str = "jxg::stage";

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Creates the instruments from `meter` (once; later calls change nothing).
pub fn install(meter: &Meter) {
    let _ = INSTRUMENTS.set(Instruments::new(meter));
}

/// The meter every instrument of the gateway comes from (a no-op one before [`init`]).
pub fn meter() -> Meter {
    opentelemetry::global::meter_provider().meter("jxg")
}

/// Every instrument the gateway records into, created once.
#[derive(Debug)]
pub struct Instruments {
    /// Messages accepted, by `authority`, `format` and `type`.
    pub accepted: Counter<u64>,
    /// Submissions refused, by `authority`, `format`, `status` and `reason`.
    pub rejected: Counter<u64>,
    /// Seconds per pipeline stage, by `stage`.
    pub stage_seconds: Histogram<f64>,
    /// Delivery attempts, by `recipient` and `outcome` (`delivered`, `retry`, `dead`).
    pub delivery_attempts: Counter<u64>,
    /// Messages a recipient has (a push or publish it took, or a first inbox ack), by
    /// `recipient` and `via` (`push`, `amqp`, `pull`).
    pub delivered: Counter<u64>,
    /// Deliveries dead-lettered, by `recipient`.
    pub dead_letters: Counter<u64>,
    /// Seconds one store fsync took.
    pub flush_seconds: Histogram<f64>,
    /// Commits covered by one fsync.
    pub flush_batch: Histogram<u64>,
    /// Stored records found unreadable, by `found_by` (`delivery`, `inbox`, `listing`,
    /// `retention`).
    pub unreadable_records: Counter<u64>,
    /// Policy decisions, by `policy` (the Cedar policy id or disclosure rule) and `effect`.
    pub policy_decisions: Counter<u64>,
    /// Seconds between two message types of one case, by `from` and `to`.
    pub case_stage_seconds: Histogram<f64>,
    /// What each recipient of an accepted correction or withdrawal is told, by `kind`
    /// (`correction`, `withdrawal`) and `told` (`correction`, `withdrawal`, `new`, `flagged`).
    pub rectifications: Counter<u64>,
}

impl Instruments {
    fn new(m: &Meter) -> Self {
        let seconds = |name: &'static str, help: &'static str, bounds: Vec<f64>| {
            m.f64_histogram(name)
                .with_description(help)
                .with_unit("s")
                .with_boundaries(bounds)
                .build()
        };
        let fine = vec![
            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
            0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ];
        let day = 86_400.0;
        Self {
            accepted: m
                .u64_counter("jxg_messages_accepted")
                .with_description("Messages accepted (202 or AMQP ack)")
                .build(),
            rejected: m
                .u64_counter("jxg_messages_rejected")
                .with_description("Submissions refused, by status and reason")
                .build(),
            stage_seconds: seconds(
                "jxg_stage_duration",
                "Time per pipeline stage",
                fine.clone(),
            ),
            delivery_attempts: m
                .u64_counter("jxg_delivery_attempts")
                .with_description("Push and AMQP delivery attempts, by outcome")
                .build(),
            delivered: m
                .u64_counter("jxg_messages_delivered")
                .with_description("Messages a recipient has taken, by way of delivery")
                .build(),
            dead_letters: m
                .u64_counter("jxg_dead_letters")
                .with_description("Deliveries dead-lettered")
                .build(),
            flush_seconds: seconds("jxg_store_flush_duration", "Time of one store fsync", fine),
            flush_batch: m
                .u64_histogram("jxg_store_flush_batch")
                .with_description("Commits covered by one store fsync")
                .with_boundaries(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                ])
                .build(),
            unreadable_records: m
                .u64_counter("jxg_store_unreadable_records")
                .with_description("Stored records that could not be read, by where they were found")
                .build(),
            policy_decisions: m
                .u64_counter("jxg_policy_decisions")
                .with_description("Policy decisions, by policy id and effect")
                .build(),
            rectifications: m
                .u64_counter("jxg_rectifications")
                .with_description(
                    "Recipients of accepted corrections and withdrawals, by what each is told",
                )
                .build(),
            case_stage_seconds: seconds(
                "jxg_case_stage_duration",
                "Time between two message types of one case",
                vec![
                    3600.0,
                    6.0 * 3600.0,
                    day,
                    3.0 * day,
                    7.0 * day,
                    14.0 * day,
                    30.0 * day,
                    60.0 * day,
                    90.0 * day,
                    180.0 * day,
                    365.0 * day,
                    730.0 * day,
                ],
            ),
        }
    }
}

/// The instruments (recording into nothing until [`init`] ran).
pub fn metrics() -> &'static Instruments {
    INSTRUMENTS.get_or_init(|| Instruments::new(&meter()))
}

/// One pipeline stage: a `debug` span under [`STAGE`] (exported when tracing is on) and its time
/// in `jxg_stage_duration` when dropped.
#[derive(Debug)]
pub struct Stage {
    name: &'static str,
    started: Instant,
    _span: tracing::span::EnteredSpan,
}

/// Starts stage `name` (`decode`, `validate`, `authorize`, `route`, `minimise`, `encode`, `sign`,
/// `store`); it ends when the value is dropped.
pub fn stage(name: &'static str) -> Stage {
    Stage {
        name,
        started: Instant::now(),
        _span: tracing::debug_span!(target: STAGE, "stage", otel.name = name).entered(),
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        metrics().stage_seconds.record(
            self.started.elapsed().as_secs_f64(),
            &[KeyValue::new("stage", self.name)],
        );
    }
}

/// Records a stage that spans an await (no entered span): the caller instruments the future
/// with [`stage_span`] and calls this with its start.
pub fn stage_done(name: &'static str, started: Instant) {
    metrics().stage_seconds.record(
        started.elapsed().as_secs_f64(),
        &[KeyValue::new("stage", name)],
    );
}

/// The span of a stage that spans an await.
pub fn stage_span(name: &'static str) -> tracing::Span {
    tracing::debug_span!(target: STAGE, "stage", otel.name = name)
}

/// Makes `span` a child of the caller's W3C trace context, when there is one.
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier = HashMap::from([("traceparent".to_string(), tp.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` to pass on from inside `span`: the span's own context when traces are on,
/// else the caller's (`fallback`) unchanged.
pub fn traceparent(span: &tracing::Span, fallback: Option<String>) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return fallback;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent").or(fallback)
}

/// The trace id of a `traceparent`, for log lines.
pub fn trace_id(traceparent: Option<&str>) -> Option<&str> {
    traceparent.and_then(|t| t.split('-').nth(1))
}

/// A keyed hash of a case reference for span attributes: the same case gives the same value,
/// and the journal number cannot be read back from it.
pub fn case_hash(pseudonyms: &crate::audit::Pseudonyms, correlation_id: &str) -> String {
    let mut h = pseudonyms.keyed("case", correlation_id);
    h.truncate(16);
    h
}

/// Counts one accepted message.
pub fn accepted(authority: &str, format: &str, message_type: &str) {
    crate::activity::activity().accepted(authority);
    metrics().accepted.add(
        1,
        &[
            KeyValue::new("authority", authority.to_string()),
            KeyValue::new("format", format.to_string()),
            KeyValue::new("type", message_type.to_string()),
        ],
    );
}

/// Counts one refused submission (its type is not known before it decodes: the route's format
/// and the problem's slug say what was refused and why).
pub fn rejected(authority: &str, format: &str, status: u16, reason: &str) {
    metrics().rejected.add(
        1,
        &[
            KeyValue::new("authority", authority.to_string()),
            KeyValue::new("format", format.to_string()),
            KeyValue::new("status", i64::from(status)),
            KeyValue::new("reason", reason.to_string()),
        ],
    );
}

/// Counts one message a recipient has taken.
pub fn delivered(recipient: &str, via: &'static str) {
    crate::activity::activity().delivered(recipient);
    metrics().delivered.add(
        1,
        &[
            KeyValue::new("recipient", recipient.to_string()),
            KeyValue::new("via", via),
        ],
    );
}
