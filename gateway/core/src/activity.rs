//! What this node did in the last hour, per authority, for the console's overview: messages
//! accepted from it and delivered to it in one-minute buckets, its backlog sampled over time,
//! and the health of delivery to it (the circuit breaker and the last failed attempt).
//!
//! Counts only, in memory, this node's alone: authority ids, numbers, times and the last
//! attempt's error (a status or a transport error, never content). The Prometheus counters
//! (`jxg_messages_accepted`, `jxg_messages_delivered`) are the long-lived record.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

/// Minutes a count is kept for.
const MINUTES: usize = 60;
/// Backlog samples kept (one an interval of [`SAMPLE_SECONDS`]: an hour).
const SAMPLES: usize = 120;
/// Seconds between two backlog samples.
pub const SAMPLE_SECONDS: u64 = 30;

/// Counts in one-minute buckets over the last hour.
#[derive(Debug, Default)]
struct Minutes {
    /// (unix minute, count), oldest first.
    buckets: VecDeque<(i64, u64)>,
}

impl Minutes {
    fn add(&mut self, minute: i64) {
        match self.buckets.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => self.buckets.push_back((minute, 1)),
        }
        self.trim(minute);
    }

    fn trim(&mut self, minute: i64) {
        while self
            .buckets
            .front()
            .is_some_and(|(m, _)| *m <= minute - MINUTES as i64)
        {
            self.buckets.pop_front();
        }
    }

    fn last_hour(&self, minute: i64) -> u64 {
        self.buckets
            .iter()
            .filter(|(m, _)| *m > minute - MINUTES as i64)
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Debug, Default)]
struct Authority {
    accepted: Minutes,
    delivered: Minutes,
    /// (unix seconds, messages waiting), oldest first.
    backlog: VecDeque<(i64, u64)>,
    failures: u32,
    open_until_ms: Option<i64>,
    last_error: Option<(i64, String)>,
}

/// Where delivery to one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Breaker {
    /// Delivering.
    Closed,
    /// A run of failures stopped attempts until the cool-down ends.
    Open,
    /// The cool-down ended after a run of failures: one probe at a time.
    HalfOpen,
}

/// One authority's last hour on this node.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub accepted_last_hour: u64,
    pub delivered_last_hour: u64,
    /// `[unix seconds, waiting]`, oldest first.
    pub backlog_trend: Vec<(i64, u64)>,
    pub breaker: Breaker,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// Unix seconds of the last failed attempt.
    pub last_error_at: Option<i64>,
}

/// The last hour of every authority seen.
#[derive(Debug, Default)]
pub struct Activity {
    by_authority: Mutex<BTreeMap<String, Authority>>,
}

/// The node's activity record (one a process, as the instruments are).
pub fn activity() -> &'static Activity {
    static ACTIVITY: OnceLock<Activity> = OnceLock::new();
    ACTIVITY.get_or_init(Activity::default)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Activity {
    fn with(&self, authority: &str, f: impl FnOnce(&mut Authority)) {
        if let Ok(mut all) = self.by_authority.lock() {
            match all.get_mut(authority) {
                Some(a) => f(a),
                None => f(all.entry(authority.to_string()).or_default()),
            }
        }
    }

    /// A message accepted from `sender`.
    pub fn accepted(&self, sender: &str) {
        let minute = now_ms() / 60_000;
        self.with(sender, |a| a.accepted.add(minute));
    }

    /// A message `recipient` has taken.
    pub fn delivered(&self, recipient: &str) {
        let minute = now_ms() / 60_000;
        self.with(recipient, |a| a.delivered.add(minute));
    }

    /// An attempt to deliver to `recipient` failed with `why` (a status or transport error).
    pub fn failed(&self, recipient: &str, why: &str) {
        let at = now_ms() / 1000;
        self.with(recipient, |a| a.last_error = Some((at, why.to_string())));
    }

    /// The circuit breaker of `recipient` now: failures in a row, and when an open one may probe.
    pub fn breaker(&self, recipient: &str, failures: u32, open_until_ms: Option<i64>) {
        self.with(recipient, |a| {
            a.failures = failures;
            a.open_until_ms = open_until_ms;
        });
    }

    /// `waiting` messages for `recipient` now.
    pub fn backlog(&self, recipient: &str, waiting: u64) {
        let at = now_ms() / 1000;
        self.with(recipient, |a| {
            a.backlog.push_back((at, waiting));
            while a.backlog.len() > SAMPLES {
                a.backlog.pop_front();
            }
        });
    }

    /// `authority`'s last hour; `breaker_failures` is the configured run that opens a breaker.
    pub fn summary(&self, authority: &str, breaker_failures: u32) -> Summary {
        let now = now_ms();
        let minute = now / 60_000;
        let all = self.by_authority.lock().ok();
        let a = all.as_ref().and_then(|all| all.get(authority));
        let Some(a) = a else {
            return Summary {
                accepted_last_hour: 0,
                delivered_last_hour: 0,
                backlog_trend: Vec::new(),
                breaker: Breaker::Closed,
                consecutive_failures: 0,
                last_error: None,
                last_error_at: None,
            };
        };
        let breaker = match a.open_until_ms {
            Some(t) if t > now => Breaker::Open,
            _ if a.failures >= breaker_failures => Breaker::HalfOpen,
            _ => Breaker::Closed,
        };
        Summary {
            accepted_last_hour: a.accepted.last_hour(minute),
            delivered_last_hour: a.delivered.last_hour(minute),
            backlog_trend: a.backlog.iter().copied().collect(),
            breaker,
            consecutive_failures: a.failures,
            last_error: a.last_error.as_ref().map(|(_, e)| e.clone()),
            last_error_at: a.last_error.as_ref().map(|(t, _)| *t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_out_of_the_hour() {
        let mut m = Minutes::default();
        m.add(1000);
        m.add(1000);
        m.add(1030);
        assert_eq!(m.last_hour(1030), 3);
        assert_eq!(m.last_hour(1060), 1, "minute 1000 is an hour old at 1060");
        m.add(1090);
        assert_eq!(m.buckets.len(), 1, "older buckets are dropped");
        assert_eq!(m.last_hour(1090), 1);
    }

    #[test]
    fn the_breaker_opens_then_probes_then_closes() {
        let a = Activity::default();
        assert_eq!(a.summary("x", 3).breaker, Breaker::Closed);
        a.failed("x", "HTTP 500");
        a.breaker("x", 3, Some(now_ms() + 60_000));
        let s = a.summary("x", 3);
        assert_eq!(s.breaker, Breaker::Open);
        assert_eq!(s.last_error.as_deref(), Some("HTTP 500"));
        a.breaker("x", 3, Some(now_ms() - 1));
        assert_eq!(a.summary("x", 3).breaker, Breaker::HalfOpen);
        a.breaker("x", 0, None);
        let s = a.summary("x", 3);
        assert_eq!(s.breaker, Breaker::Closed);
        assert_eq!(
            s.last_error.as_deref(),
            Some("HTTP 500"),
            "the last error stays for the operator to see"
        );
    }

    #[test]
    fn the_backlog_keeps_an_hour_of_samples() {
        let a = Activity::default();
        for n in 0..(SAMPLES as u64 + 5) {
            a.backlog("x", n);
        }
        let t = a.summary("x", 5).backlog_trend;
        assert_eq!(t.len(), SAMPLES);
        assert_eq!(t.last().unwrap().1, SAMPLES as u64 + 4);
        assert_eq!(t.first().unwrap().1, 5);
    }
}
