//! Logs (JSON lines through `tracing`) and the counters `/metrics` shows. No label ever holds
//! personal data: only authority ids and HTTP statuses.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::FlushStats;

/// Starts JSON logging; the level comes from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

#[derive(Debug, Default)]
pub struct Metrics {
    accepted: Mutex<BTreeMap<String, u64>>,
    rejected: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    pub fn accepted(&self, authority: &str) {
        if let Ok(mut m) = self.accepted.lock() {
            *m.entry(authority.to_string()).or_default() += 1;
        }
    }
    pub fn rejected(&self, authority: &str, status: u16) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry((authority.to_string(), status)).or_default() += 1;
        }
    }

    /// Prometheus text format.
    pub fn render(&self, flush: FlushStats, pending: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP jxg_messages_accepted_total Messages accepted (202).\n# TYPE jxg_messages_accepted_total counter\n");
        if let Ok(m) = self.accepted.lock() {
            for (a, n) in m.iter() {
                out.push_str(&format!(
                    "jxg_messages_accepted_total{{authority=\"{a}\"}} {n}\n"
                ));
            }
        }
        out.push_str("# HELP jxg_messages_rejected_total Requests refused, by status.\n# TYPE jxg_messages_rejected_total counter\n");
        if let Ok(m) = self.rejected.lock() {
            for ((a, s), n) in m.iter() {
                out.push_str(&format!(
                    "jxg_messages_rejected_total{{authority=\"{a}\",status=\"{s}\"}} {n}\n"
                ));
            }
        }
        out.push_str(&format!(
            "# HELP jxg_store_flushes_total fsyncs of the store.\n# TYPE jxg_store_flushes_total counter\njxg_store_flushes_total {}\n",
            flush.flushes
        ));
        out.push_str(&format!(
            "# HELP jxg_store_flush_waiters_total Commits covered by those fsyncs.\n# TYPE jxg_store_flush_waiters_total counter\njxg_store_flush_waiters_total {}\n",
            flush.waiters
        ));
        out.push_str(&format!(
            "# HELP jxg_outbox_pending Entries waiting for a recipient.\n# TYPE jxg_outbox_pending gauge\njxg_outbox_pending {pending}\n"
        ));
        out
    }
}
