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
//! The instruments and spans themselves are the domain's (`jxg_core::telemetry`, re-exported
//! here); this module starts their exporters.
//!
//! No span name, attribute, metric label or log field ever holds personal data: only authority
//! ids, message types, formats, statuses, message ids and a keyed hash of the case reference.

use std::sync::OnceLock;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    jxg_core::telemetry::install(&meter.meter("jxg"));

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
                ("jxg_core", tracing::Level::DEBUG),
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

pub use jxg_core::telemetry::*;
