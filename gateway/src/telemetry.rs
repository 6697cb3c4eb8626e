//! Logs, traces and metrics.
//!
//! - Logs: JSON lines through `tracing`, level from `RUST_LOG` (default `info`), each with the
//!   fields of the spans it happened in (the request's `trace_id`, `message_id`, `authority`).
//! - Traces: one span per pipeline stage and per delivery attempt, exported over OTLP/HTTP when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Without it no
//!   exporter, no OpenTelemetry layer, and the stage spans (level `debug`, target `jxg::stage`) are
//!   disabled at their call sites. W3C `traceparent` is taken from callers and passed on either way.
//! - Metrics: OpenTelemetry instruments, read by `/metrics` (Prometheus text) and exported over
//!   OTLP when an endpoint is set.
//!
//! No span name, attribute, metric label or log field ever holds personal data: only authority
//! ids, message types, formats, statuses, message ids and a keyed hash of the case reference.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of the per-stage spans, so that they cost nothing when no exporter is configured.
pub const STAGE: &str = "jxg::stage";

/// Whether an OTLP endpoint for traces is configured in the environment.
fn traces_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
        && std::env::var("OTEL_TRACES_EXPORTER").map_or(true, |v| v != "none")
}

fn metrics_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
        && std::env::var("OTEL_METRICS_EXPORTER").map_or(true, |v| v != "none")
}

/// What [`init`] started; [`Telemetry::shutdown`] exports what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: SdkMeterProvider,
}

static REGISTRY: OnceLock<prometheus::Registry> = OnceLock::new();
static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Starts logging, the metrics pipeline and, when configured, trace export. Call once, before
/// any instrument is used and outside an async runtime (the OTLP client is blocking and runs on
/// the exporters' own threads).
pub fn init() -> Telemetry {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("jxg")
        .build();
    let tracer = if traces_configured() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.clone())
                    .build(),
            ),
            Err(e) => {
                eprintln!("jxg: OTLP trace export is off: {e}");
                None
            }
        }
    } else {
        None
    };
    let registry = prometheus::Registry::new();
    let mut meter = SdkMeterProvider::builder().with_resource(resource);
    match opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_target_info()
        .scope_info_enabled(false)
        .build()
    {
        Ok(reader) => meter = meter.with_reader(reader),
        Err(e) => eprintln!("jxg: /metrics is off: {e}"),
    }
    if metrics_configured() {
        match opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => {
                meter = meter.with_reader(
                    opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).build(),
                )
            }
            Err(e) => eprintln!("jxg: OTLP metric export is off: {e}"),
        }
    }
    let meter = meter.build();
    opentelemetry::global::set_meter_provider(meter.clone());
    let _ = REGISTRY.set(registry);
    let _ = INSTRUMENTS.set(Instruments::new(&meter.meter("jxg")));

    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stdout)
        .with_filter(filter);
    let otel = tracer.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("jxg"))
            .with_filter(tracing_subscriber::filter::Targets::new().with_targets([
                ("jxg", tracing::Level::DEBUG),
                ("jxg_gateway", tracing::Level::DEBUG),
            ]))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry { tracer, meter }
}

impl Telemetry {
    /// Exports what is buffered and stops the exporters.
    pub fn shutdown(self) {
        if let Some(t) = self.tracer {
            let _ = t.force_flush();
            let _ = t.shutdown();
        }
        let _ = self.meter.force_flush();
        let _ = self.meter.shutdown();
    }
}

/// Starts JSON logging only (the CLI's commands other than `serve`).
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

/// The metrics in Prometheus text format.
pub fn render_prometheus() -> String {
    use prometheus::Encoder;
    let Some(registry) = REGISTRY.get() else {
        return String::new();
    };
    let mut out = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
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
    /// Policy decisions, by `policy` (the Cedar policy id or disclosure rule) and `effect`.
    pub policy_decisions: Counter<u64>,
    /// Seconds between two message types of one case, by `from` and `to`.
    pub case_stage_seconds: Histogram<f64>,
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
            policy_decisions: m
                .u64_counter("jxg_policy_decisions")
                .with_description("Policy decisions, by policy id and effect")
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
    metrics().delivered.add(
        1,
        &[
            KeyValue::new("recipient", recipient.to_string()),
            KeyValue::new("via", via),
        ],
    );
}
