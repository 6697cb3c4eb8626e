//! Cheap refusals: a request refused before any document is read (429 over its rate or its
//! connections, 401 without a certificate the gateway knows, 403, 408 a body too slow, 413 a body
//! too large, 415 a media type not taken, 503 while the store is behind or the gateway stops)
//! costs no store write of its own. Each is counted here by who, what and
//! answer, and every `limits.refusal_summary_seconds` the counts are written to the audit log
//! as one summary entry each (who, what, how many, from when to when): a flood of refused
//! requests costs the store a bounded number of entries, however large it is.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::audit::{Event, Record};

/// The answers summarised instead of audited one by one.
pub fn is_cheap(status: u16) -> bool {
    matches!(status, 401 | 403 | 408 | 413 | 415 | 429 | 503)
}

#[derive(Debug, Clone)]
struct Tally {
    count: u64,
    first: String,
    last: String,
}

/// Refusals counted since the last summary, by (who, status, route).
#[derive(Debug, Default)]
pub struct Refusals(Mutex<BTreeMap<(String, u16, String), Tally>>);

impl Refusals {
    /// Counts one refusal of `route` (`POST /police/v1/dokumenter`) to `actor` with `status`.
    pub fn note(&self, actor: &str, status: u16, route: &str) {
        let now = crate::audit::now();
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((actor.to_string(), status, route.to_string()))
            .and_modify(|t| {
                t.count += 1;
                t.last.clone_from(&now);
            })
            .or_insert_with(|| Tally {
                count: 1,
                first: now.clone(),
                last: now,
            });
    }

    /// Writes a summary of everything counted since the last time to the audit log, one entry
    /// per (who, status, route), in one store write. Counts that could not be written are kept
    /// for the next time, so that nothing goes unaccounted.
    pub async fn write(&self, store: &crate::store::Store) {
        let taken = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return;
        }
        let summaries = taken
            .iter()
            .map(|((actor, status, route), t)| {
                Record::new(Event::Rejected, actor.clone()).detail(format!(
                    "{} × {status} {route}, from {} to {}",
                    t.count, t.first, t.last
                ))
            })
            .collect();
        if let Err(e) = store.audit(summaries).await {
            tracing::error!(error = %e, "cannot write the summary of refused requests");
            let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for (k, t) in taken {
                m.entry(k)
                    .and_modify(|n| {
                        n.count += t.count;
                        n.first.clone_from(&t.first);
                    })
                    .or_insert(t);
            }
        }
    }
}
