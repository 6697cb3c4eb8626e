//! The one-node [`Store`] on sled 0.34.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::Value;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::Notify;
use uuid::Uuid;

use super::group_commit::{Flush, GroupCommit};
use super::*;

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn outbox_key(recipient: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(recipient.len() + 9);
    k.extend_from_slice(recipient.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn by_message_key(id: &Uuid, recipient: &str) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(recipient.as_bytes());
    k
}

fn idem_key(sender: &str, key: &str) -> Vec<u8> {
    let mut k = sender.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store records serialise")
}

struct SledFlush(sled::Db);

impl Flush for SledFlush {
    fn flush(&self) -> Result<(), StoreError> {
        self.0.flush().map(|_| ()).map_err(io)
    }
}

/// Wraps the store's flush (tests observe or hold flushes with it).
pub type WrapFlush = dyn Fn(Arc<dyn Flush>) -> Arc<dyn Flush>;

/// sled behind the [`Store`] seam.
pub struct SledStore {
    db: sled::Db,
    messages: sled::Tree,
    idempotency: sled::Tree,
    outbox: sled::Tree,
    pending: sled::Tree,
    by_message: sled::Tree,
    commit: GroupCommit,
    leases: Mutex<HashMap<Vec<u8>, Instant>>,
    signal: Arc<Notify>,
}

impl SledStore {
    /// Opens (or creates) the store in `path` with a page cache of `cache_mb` MiB.
    pub fn open(path: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        Self::open_with(path, cache_mb, None)
    }

    /// Opens the store with a different flush (tests observe or hold flushes with it).
    pub fn open_with(
        path: &Path,
        cache_mb: u64,
        wrap: Option<&WrapFlush>,
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb * 1024 * 1024)
            // durability comes from explicit group-commit flushes, not a timer
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(io)?;
        let tree = |n: &str| db.open_tree(n).map_err(io);
        let base: Arc<dyn Flush> = Arc::new(SledFlush(db.clone()));
        let flush = match wrap {
            Some(w) => w(base),
            None => base,
        };
        Ok(Self {
            messages: tree("messages")?,
            idempotency: tree("idempotency")?,
            outbox: tree("outbox")?,
            pending: tree("pending")?,
            by_message: tree("by_message")?,
            commit: GroupCommit::start(flush),
            leases: Mutex::new(HashMap::new()),
            signal: Arc::new(Notify::new()),
            db,
        })
    }
}

impl SledStore {
    /// The oldest waiting entry of each case for `recipient`, with its key, oldest first.
    fn case_heads(&self, recipient: &str) -> Result<Vec<(Vec<u8>, OutboxEntry)>, StoreError> {
        let mut prefix = recipient.as_bytes().to_vec();
        prefix.push(0);
        let mut seen_cases = HashSet::new();
        let mut out = Vec::new();
        for kv in self.pending.scan_prefix(&prefix) {
            let (key, _) = kv.map_err(io)?;
            let Some(raw) = self.outbox.get(&key).map_err(io)? else {
                continue;
            };
            let entry: OutboxEntry = decode(&raw)?;
            if seen_cases.insert(entry.correlation_id.clone()) {
                out.push((key.to_vec(), entry));
            }
        }
        Ok(out)
    }
}

impl Store for SledStore {
    fn next_seq(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(io)
    }

    fn idempotency(
        &self,
        sender: &str,
        key: &str,
    ) -> Result<Option<(IdempotencyRecord, Value)>, StoreError> {
        let Some(raw) = self.idempotency.get(idem_key(sender, key)).map_err(io)? else {
            return Ok(None);
        };
        let rec: IdempotencyRecord = decode(&raw)?;
        let msg = self
            .messages
            .get(rec.message_id.as_bytes())
            .map_err(io)?
            .ok_or_else(|| StoreError::Corrupt("idempotency key without its message".into()))?;
        let m: StoredMessage = decode(&msg)?;
        Ok(Some((rec, m.response)))
    }

    fn accept(&self, a: Acceptance) -> Result<AcceptOutcome, StoreError> {
        let m = &a.message;
        let ikey = idem_key(&m.sender, &m.source_document_id);
        let record = encode(&IdempotencyRecord {
            message_id: m.id,
            body_sha256: m.body_sha256.clone(),
        });
        let message = encode(m);
        let entries: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = a
            .entries
            .iter()
            .map(|e| {
                (
                    outbox_key(&e.recipient, e.seq),
                    encode(e),
                    by_message_key(&e.message_id, &e.recipient),
                )
            })
            .collect();
        let r = (
            &self.messages,
            &self.idempotency,
            &self.outbox,
            &self.pending,
            &self.by_message,
        )
            .transaction(|(msgs, idem, outbox, pending, by_msg)| {
                if let Some(existing) = idem.get(&ikey)? {
                    let rec: IdempotencyRecord =
                        serde_json::from_slice(&existing).map_err(|e| {
                            ConflictableTransactionError::Abort(StoreError::Corrupt(e.to_string()))
                        })?;
                    if rec.body_sha256 != m.body_sha256 {
                        return Ok(AcceptOutcome::Conflict);
                    }
                    let first = msgs.get(rec.message_id.as_bytes())?.ok_or_else(|| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt(
                            "idempotency key without message".into(),
                        ))
                    })?;
                    let first: StoredMessage = serde_json::from_slice(&first).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt(e.to_string()))
                    })?;
                    return Ok(AcceptOutcome::Duplicate(first.response));
                }
                idem.insert(ikey.as_slice(), record.as_slice())?;
                msgs.insert(m.id.as_bytes(), message.as_slice())?;
                for (key, value, index) in &entries {
                    outbox.insert(key.as_slice(), value.as_slice())?;
                    pending.insert(key.as_slice(), &[] as &[u8])?;
                    by_msg.insert(index.as_slice(), key.as_slice())?;
                }
                Ok(AcceptOutcome::Accepted)
            });
        match r {
            Ok(outcome) => {
                if matches!(outcome, AcceptOutcome::Accepted) && !a.entries.is_empty() {
                    self.signal.notify_waiters();
                }
                Ok(outcome)
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }

    fn durable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let rx = self.commit.wait();
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("flush thread ended".into())))
        })
    }

    fn message(&self, id: &Uuid) -> Result<Option<StoredMessage>, StoreError> {
        self.messages
            .get(id.as_bytes())
            .map_err(io)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn deliveries(&self, id: &Uuid) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.by_message.scan_prefix(id.as_bytes()) {
            let (_, okey) = kv.map_err(io)?;
            if let Some(v) = self.outbox.get(&okey).map_err(io)? {
                out.push(decode(&v)?);
            }
        }
        Ok(out)
    }

    fn take_inbox(
        &self,
        recipient: &str,
        limit: usize,
        visibility: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = Instant::now();
        let mut leases = self.leases.lock().map_err(|_| io("lease table poisoned"))?;
        let mut out = Vec::new();
        for (key, entry) in self.case_heads(recipient)? {
            if out.len() >= limit {
                break;
            }
            // an offered, unacknowledged entry stays hidden and holds its case back
            if leases.get(&key).is_some_and(|until| *until > now) {
                continue;
            }
            leases.insert(key, now + visibility);
            out.push(entry);
        }
        Ok(out)
    }

    fn heads(&self, recipient: &str, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self
            .case_heads(recipient)?
            .into_iter()
            .take(limit)
            .map(|(_, e)| e)
            .collect())
    }

    fn record_delivery(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let key = outbox_key(&entry.recipient, entry.seq);
        let value = encode(entry);
        let done = entry.state.is_final();
        (&self.outbox, &self.pending)
            .transaction(|(outbox, pending)| {
                outbox.insert(key.as_slice(), value.as_slice())?;
                if done {
                    pending.remove(key.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => io(e),
            })?;
        if done {
            self.signal.notify_waiters();
        }
        Ok(())
    }

    fn ack(&self, recipient: &str, id: &Uuid, at: i64) -> Result<Option<AckOutcome>, StoreError> {
        let Some(okey) = self
            .by_message
            .get(by_message_key(id, recipient))
            .map_err(io)?
        else {
            return Ok(None);
        };
        let Some(raw) = self.outbox.get(&okey).map_err(io)? else {
            return Ok(None);
        };
        let mut entry: OutboxEntry = decode(&raw)?;
        if entry.acked_at.is_some() {
            return Ok(Some(AckOutcome::AlreadyAcked));
        }
        entry.acked_at = Some(at);
        entry.delivered_at = Some(at);
        entry.state = DeliveryState::Delivered;
        let value = encode(&entry);
        (&self.outbox, &self.pending)
            .transaction(|(outbox, pending)| {
                outbox.insert(okey.as_ref(), value.as_slice())?;
                pending.remove(okey.as_ref())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => io(e),
            })?;
        if let Ok(mut l) = self.leases.lock() {
            l.remove(okey.as_ref());
        }
        self.signal.notify_waiters();
        Ok(Some(AckOutcome::Acked))
    }

    fn inbox_signal(&self) -> Arc<Notify> {
        self.signal.clone()
    }

    fn flush_stats(&self) -> FlushStats {
        self.commit.stats()
    }

    fn pending_count(&self) -> Result<usize, StoreError> {
        Ok(self.pending.len())
    }
}
