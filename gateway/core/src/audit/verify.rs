//! Verification of the audit log: every entry in place, linked to the one before, hashing to
//! what it says; every checkpoint signed by a gateway key (current or rotated) and matching the
//! entry it names. The first fault is reported with its `seq`.

use josekit::jwk::Jwk;

use super::{Checkpoint, Entry, GENESIS};

/// A log that verifies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub entries: u64,
    pub checkpoints: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub last_hash: String,
}

/// The first fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bad {
    pub seq: u64,
    pub reason: String,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

/// Verifies entries (by their storage key's seq, in key order) against signed checkpoints
/// (`(seq, compact JWS)`) and the gateway's public keys.
pub fn verify(
    entries: impl IntoIterator<Item = (u64, Vec<u8>)>,
    checkpoints: &[(u64, String)],
    keys: &[Jwk],
) -> Result<Report, Bad> {
    let mut v = Verifier::new(checkpoints, keys)?;
    for (seq, bytes) in entries {
        v.feed(seq, &bytes)?;
    }
    v.finish()
}

/// A verification fed one entry at a time, in key order, so that a log of any length is
/// verified in bounded memory, page by page.
#[derive(Debug)]
pub struct Verifier {
    signed: std::collections::BTreeMap<u64, String>,
    expected: Option<u64>,
    prev: String,
    count: u64,
    first: Option<u64>,
}

impl Verifier {
    /// Checks the checkpoints first: each must be a gateway signature over the seq it is stored
    /// under.
    pub fn new(checkpoints: &[(u64, String)], keys: &[Jwk]) -> Result<Self, Bad> {
        let mut signed = std::collections::BTreeMap::new();
        for (seq, jws) in checkpoints {
            let payload = crate::signing::verify_sender(jws, keys).map_err(|e| Bad {
                seq: *seq,
                reason: format!("the checkpoint's signature: {e}"),
            })?;
            let c: Checkpoint = serde_json::from_slice(&payload).map_err(|_| Bad {
                seq: *seq,
                reason: "the checkpoint's payload is unreadable".into(),
            })?;
            if c.seq != *seq {
                return Err(Bad {
                    seq: *seq,
                    reason: format!("a checkpoint for seq {} is stored at {seq}", c.seq),
                });
            }
            signed.insert(c.seq, c.hash);
        }
        Ok(Self {
            signed,
            expected: None,
            prev: GENESIS.to_string(),
            count: 0,
            first: None,
        })
    }

    /// The next entry, stored under `key_seq`, in its stored (JSON) form.
    pub fn feed(&mut self, key_seq: u64, bytes: &[u8]) -> Result<(), Bad> {
        let want = self.expected.unwrap_or(key_seq);
        if key_seq != want {
            return Err(Bad {
                seq: want.min(key_seq),
                reason: format!("entry {want} is missing (the next one stored is {key_seq})"),
            });
        }
        let e: Entry = serde_json::from_slice(bytes).map_err(|_| Bad {
            seq: key_seq,
            reason: "the entry is unreadable".into(),
        })?;
        if e.seq != key_seq {
            return Err(Bad {
                seq: key_seq,
                reason: format!("the entry stored at {key_seq} says it is {}", e.seq),
            });
        }
        if self.expected.is_none() {
            self.first = Some(key_seq);
            // a log that does not start at 1 starts where retention cut it: at a checkpoint
            if key_seq != 1 && self.signed.get(&(key_seq - 1)) != Some(&e.prev) {
                return Err(Bad {
                    seq: key_seq,
                    reason: "the log starts after entries that no checkpoint accounts for".into(),
                });
            }
            if key_seq == 1 && e.prev != GENESIS {
                return Err(Bad {
                    seq: 1,
                    reason: "the first entry does not start the chain".into(),
                });
            }
        } else if e.prev != self.prev {
            return Err(Bad {
                seq: key_seq,
                reason: "the entry does not follow the one before (prev differs)".into(),
            });
        }
        if e.compute_hash() != e.hash {
            return Err(Bad {
                seq: key_seq,
                reason: "the entry was changed (its hash differs)".into(),
            });
        }
        if let Some(h) = self.signed.get(&key_seq) {
            if *h != e.hash {
                return Err(Bad {
                    seq: key_seq,
                    reason: "the entry differs from what its checkpoint signed".into(),
                });
            }
        }
        self.prev = e.hash;
        self.expected = Some(key_seq + 1);
        self.count += 1;
        Ok(())
    }

    /// Once every entry is fed: a checkpoint past the last entry means the tail was cut.
    pub fn finish(self) -> Result<Report, Bad> {
        let last = self.expected.map(|n| n - 1);
        if let Some((&seq, _)) = self.signed.range(last.map_or(0, |l| l + 1)..).next() {
            let from = last.map_or(1, |l| l + 1);
            if self.first.is_none_or(|f| seq >= f) {
                return Err(Bad {
                    seq: from,
                    reason: format!(
                        "entries from {from} are missing: a checkpoint signed entry {seq}"
                    ),
                });
            }
        }
        Ok(Report {
            entries: self.count,
            checkpoints: self.signed.len(),
            first_seq: self.first,
            last_seq: last,
            last_hash: self.prev,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Event, Head, Record};
    use super::*;
    use crate::signing::Signer;

    fn log(n: usize) -> Vec<Entry> {
        let records = (0..n)
            .map(|i| Record::new(Event::Received, format!("a{i}")))
            .collect();
        Head::default().chain(records, "2026-11-28T10:00:00.000Z").0
    }

    fn stored(entries: &[Entry]) -> Vec<(u64, Vec<u8>)> {
        entries
            .iter()
            .map(|e| (e.seq, serde_json::to_vec(e).unwrap()))
            .collect()
    }

    fn checkpoint(s: &Signer, e: &Entry) -> (u64, String) {
        (
            e.seq,
            s.checkpoint(e.seq, &e.hash, "2026-11-28T10:00:00.000Z")
                .unwrap(),
        )
    }

    fn signer() -> Signer {
        Signer::from_pem(crate::signing::test_key().as_bytes()).unwrap()
    }

    fn keys(s: &Signer) -> Vec<Jwk> {
        let v = s.jwks();
        vec![Jwk::from_map(v["keys"][0].as_object().unwrap().clone()).unwrap()]
    }

    #[test]
    fn an_intact_log_verifies() {
        let s = signer();
        let l = log(5);
        let r = verify(stored(&l), &[checkpoint(&s, &l[3])], &keys(&s)).unwrap();
        assert_eq!((r.entries, r.checkpoints, r.last_seq), (5, 1, Some(5)));
    }

    #[test]
    fn a_checkpoint_of_another_key_fails() {
        let s = signer();
        let l = log(3);
        let e = verify(stored(&l), &[checkpoint(&signer(), &l[1])], &keys(&s)).unwrap_err();
        assert_eq!(e.seq, 2);
    }

    #[test]
    fn a_removed_entry_is_named() {
        let l = log(5);
        let mut s = stored(&l);
        s.remove(2);
        assert_eq!(verify(s, &[], &[]).unwrap_err().seq, 3);
    }
}
