//! Per-authority rate limits: a token bucket each, refilled at `rate_per_second` up to `burst`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

/// The buckets of every registered authority.
#[derive(Debug)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        let now = Instant::now();
        let buckets = config
            .authorities
            .iter()
            .map(|a| {
                let burst = f64::from(a.burst);
                (
                    a.id.clone(),
                    Bucket {
                        tokens: burst,
                        at: now,
                        rate: a.rate_per_second,
                        burst,
                    },
                )
            })
            .collect();
        Self {
            buckets: Mutex::new(buckets),
        }
    }

    /// Takes one token for `who`; `Err(seconds)` until the next one when there is none.
    pub fn take(&self, who: &str) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let Some(b) = buckets.get_mut(who) else {
            return Ok(());
        };
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * b.rate).min(b.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / b.rate).ceil().max(1.0) as u64)
        }
    }
}
