//! Leases held in this process's memory, for an engine one process writes (sled): what
//! [`super::Engine::lease`] and its siblings keep there. A restart frees every lease, which is
//! right when no other process can hold one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// (recipient, seq) → (holder, until).
#[derive(Debug, Default)]
pub struct LocalLeases(Mutex<HashMap<(String, u64), (String, Instant)>>);

impl LocalLeases {
    pub fn lease(&self, recipient: &str, seqs: &[u64], holder: &str, period: Duration) -> Vec<u64> {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, until)| *until > now);
        let mut granted = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let key = (recipient.to_string(), seq);
            match map.get(&key) {
                Some((h, _)) if h != holder => {}
                _ => {
                    map.insert(key, (holder.to_string(), now + period));
                    granted.push(seq);
                }
            }
        }
        granted
    }

    pub fn leased(&self, recipient: &str) -> Vec<(u64, String)> {
        let now = Instant::now();
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(u64, String)> = map
            .iter()
            .filter(|((r, _), (_, until))| r == recipient && *until > now)
            .map(|((_, s), (h, _))| (*s, h.clone()))
            .collect();
        out.sort();
        out
    }

    pub fn release(&self, recipient: &str, seq: u64, holder: Option<&str>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (recipient.to_string(), seq);
        if map
            .get(&key)
            .is_some_and(|(h, _)| holder.is_none_or(|want| want == h))
        {
            map.remove(&key);
        }
    }
}
