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

use super::group_commit::{CommitTuning, Flush, GroupCommit};
use super::*;
use crate::audit::{Entry, Event, Head, Record};

/// Audit entries staged for a transaction: (key, value) and subject index keys.
struct Staged {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// `audit_subjects` rows: subject `\0` first seq → every seq of this write naming it.
    index: Vec<(Vec<u8>, Vec<u8>)>,
    head: Head,
}

/// Chains `records` after `head` and indexes them by subject: one index row per subject per
/// write (not per entry), keyed by the first entry naming it, listing them all.
fn stage(head: &Head, records: Vec<Record>) -> Staged {
    let (entries, head) = head.chain(records, &crate::audit::now());
    let mut by_subject: Vec<(&str, Vec<u8>)> = Vec::new();
    for e in &entries {
        for s in &e.record.subjects {
            let seq = e.seq.to_be_bytes();
            match by_subject.iter_mut().find(|(k, _)| *k == s.as_str()) {
                Some((_, seqs)) => seqs.extend_from_slice(&seq),
                None => by_subject.push((s.as_str(), seq.to_vec())),
            }
        }
    }
    let index = by_subject
        .into_iter()
        .map(|(s, seqs)| {
            let mut k = s.as_bytes().to_vec();
            k.push(0);
            k.extend_from_slice(&seqs[..8]);
            (k, seqs)
        })
        .collect();
    Staged {
        entries: entries
            .iter()
            .map(|e| (e.seq.to_be_bytes().to_vec(), encode(e)))
            .collect(),
        index,
        head,
    }
}

fn write_audit(
    audit: &sled::transaction::TransactionalTree,
    subjects: &sled::transaction::TransactionalTree,
    staged: &Staged,
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    for (k, v) in &staged.entries {
        audit.insert(k.as_slice(), v.as_slice())?;
    }
    for (k, seqs) in &staged.index {
        subjects.insert(k.as_slice(), seqs.as_slice())?;
    }
    Ok(())
}

/// The audit record a delivery state change makes.
fn delivery_record(e: &OutboxEntry) -> Record {
    let event = match e.state {
        DeliveryState::Delivered => Event::Delivered,
        DeliveryState::Dead => Event::DeadLettered,
        _ => Event::DeliveryFailed,
    };
    let mut r = Record::new(event, "gateway")
        .message(e.message_id, &e.message_type, None)
        .recipient(&e.recipient)
        .subjects(&e.subjects)
        .detail(format!("attempt {}", e.attempts));
    if let (Some(err), false) = (&e.last_error, event == Event::Delivered) {
        r = r.detail(format!("attempt {}: {err}", e.attempts));
    }
    r
}

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

/// `cases` key: correlation id `\0` seq (u64 BE), so a case's messages scan in acceptance order.
fn case_key(correlation_id: &str, seq: u64) -> Vec<u8> {
    let mut k = correlation_id.as_bytes().to_vec();
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

/// A flush that is durable. sled's own flush ends its log writes with `sync_file_range` on
/// Linux, which neither records the file's new length and blocks nor empties the device's write
/// cache, and writes large values to files under `blobs/` with no sync at all (sled issue
/// #1452): an acknowledged write could vanish with the power or an aborted file-system journal
/// (shown by `tests/e2e/faults.rs`). So each flush also syncs the blob files written since the
/// last one and their folder, and `fdatasync`s the log.
struct SledFlush {
    db: sled::Db,
    log: std::fs::File,
    blobs: std::path::PathBuf,
    /// Blob files already synced.
    synced: Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl SledFlush {
    fn new(db: sled::Db, path: &Path) -> Result<Self, StoreError> {
        let log = std::fs::File::open(path.join("db"))
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.join("db").display())))?;
        Ok(Self {
            db,
            log,
            blobs: path.join("blobs"),
            synced: Mutex::new(Default::default()),
        })
    }

    fn sync_blobs(&self) -> std::io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = std::collections::HashSet::new();
        let mut new = false;
        for e in std::fs::read_dir(&self.blobs)? {
            let name = e?.file_name();
            if !synced.contains(&name) {
                std::fs::File::open(self.blobs.join(&name))?.sync_data()?;
                new = true;
            }
            present.insert(name);
        }
        if new {
            std::fs::File::open(&self.blobs)?.sync_all()?;
        }
        // blobs sled has collected are forgotten
        *synced = present;
        Ok(())
    }
}

impl Flush for SledFlush {
    fn flush(&self) -> Result<(), StoreError> {
        let failed = |e: std::io::Error| StoreError::Unavailable(format!("flush: {e}"));
        self.sync_blobs().map_err(failed)?;
        self.db.flush().map_err(io)?;
        self.log.sync_data().map_err(failed)
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
    cases: sled::Tree,
    audit: sled::Tree,
    audit_subjects: sled::Tree,
    checkpoints: sled::Tree,
    keys: sled::Tree,
    /// The audit chain's head; held while a transaction that writes audit entries runs.
    chain: Mutex<Head>,
    commit: GroupCommit,
    leases: Mutex<HashMap<Vec<u8>, Instant>>,
    signal: Arc<Notify>,
}

impl SledStore {
    /// The same store notifying `signal` of new and released entries.
    pub fn with_signal(mut self, signal: Arc<Notify>) -> Self {
        self.signal = signal;
        self
    }

    /// A small durable write: whether the store can write to its disk now.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.db
            .insert(
                "probe",
                &chrono::Utc::now().timestamp_micros().to_be_bytes(),
            )
            .map_err(io)?;
        self.db.flush().map(|_| ()).map_err(io)
    }

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
        Self::open_tuned(path, cache_mb, CommitTuning::default(), wrap)
    }

    /// Opens the store with its group commit batched as `tuning` says.
    pub fn open_tuned(
        path: &Path,
        cache_mb: u64,
        tuning: CommitTuning,
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
        // sled fsyncs its files but not the folders that name them: without this, a store
        // created moments before a crash (or a file system turning read-only) can lose its
        // folder entries, and with them everything acknowledged
        for dir in [Some(path), path.parent()].into_iter().flatten() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let tree = |n: &str| db.open_tree(n).map_err(io);
        let base: Arc<dyn Flush> = Arc::new(SledFlush::new(db.clone(), path)?);
        let flush = match wrap {
            Some(w) => w(base),
            None => base,
        };
        let audit = tree("audit")?;
        let head = match audit.last().map_err(io)? {
            Some((_, v)) => {
                let e: Entry = decode(&v)?;
                Head {
                    next_seq: e.seq + 1,
                    last_hash: e.hash,
                }
            }
            None => Head::default(),
        };
        Ok(Self {
            audit,
            audit_subjects: tree("audit_subjects")?,
            checkpoints: tree("checkpoints")?,
            keys: tree("keys")?,
            chain: Mutex::new(head),
            messages: tree("messages")?,
            idempotency: tree("idempotency")?,
            outbox: tree("outbox")?,
            pending: tree("pending")?,
            by_message: tree("by_message")?,
            cases: tree("cases")?,
            commit: GroupCommit::start(flush, tuning),
            leases: Mutex::new(HashMap::new()),
            signal: Arc::new(Notify::new()),
            db,
        })
    }
}

impl SledStore {
    /// Up to `limit` case heads waiting for `recipient`, with their keys, oldest first: the
    /// oldest waiting entry of each case, where `offer(key)` accepts it. A case whose head is
    /// refused (offered and not yet acknowledged) is held back whole. The walk stops at `limit`
    /// and reads an entry's body only when it is taken, so a long backlog costs a take no more
    /// than the entries in front of what it returns.
    fn case_heads(
        &self,
        recipient: &str,
        limit: usize,
        mut offer: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<(Vec<u8>, OutboxEntry)>, StoreError> {
        let mut prefix = recipient.as_bytes().to_vec();
        prefix.push(0);
        let mut seen_cases = HashSet::new();
        let mut out = Vec::new();
        for kv in self.pending.scan_prefix(&prefix) {
            if out.len() >= limit {
                break;
            }
            let (key, case) = kv.map_err(io)?;
            let mut entry = None;
            let case = if case.is_empty() {
                // written before the waiting entry carried its case: read it from the entry
                let Some(raw) = self.outbox.get(&key).map_err(io)? else {
                    continue;
                };
                let e: OutboxEntry = decode(&raw)?;
                let c = e.correlation_id.clone().into_bytes();
                entry = Some(e);
                c
            } else {
                case.to_vec()
            };
            if !seen_cases.insert(case) || !offer(&key) {
                continue;
            }
            let entry = match entry {
                Some(e) => e,
                None => {
                    let Some(raw) = self.outbox.get(&key).map_err(io)? else {
                        continue;
                    };
                    decode(&raw)?
                }
            };
            out.push((key.to_vec(), entry));
        }
        Ok(out)
    }
}

/// An outbox entry's rows: its key, its value, its `by_message` key and its case.
type EntryRows = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

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
        let entries: Vec<EntryRows> = a
            .entries
            .iter()
            .map(|e| {
                (
                    outbox_key(&e.recipient, e.seq),
                    encode(e),
                    by_message_key(&e.message_id, &e.recipient),
                    e.correlation_id.as_bytes().to_vec(),
                )
            })
            .collect();
        let ckey = case_key(&m.correlation_id, m.seq);
        let mut chain = self.chain.lock().map_err(|_| io("audit chain poisoned"))?;
        let staged = stage(&chain, a.audit.clone());
        let r = (
            &self.messages,
            &self.idempotency,
            &self.outbox,
            &self.pending,
            &self.by_message,
            &self.cases,
            &self.audit,
            &self.audit_subjects,
        )
            .transaction(
                |(msgs, idem, outbox, pending, by_msg, cases, audit, subjects)| {
                    if let Some(existing) = idem.get(&ikey)? {
                        let rec: IdempotencyRecord =
                            serde_json::from_slice(&existing).map_err(|e| {
                                ConflictableTransactionError::Abort(StoreError::Corrupt(
                                    e.to_string(),
                                ))
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
                    cases.insert(ckey.as_slice(), m.id.as_bytes())?;
                    for (key, value, index, case) in &entries {
                        outbox.insert(key.as_slice(), value.as_slice())?;
                        pending.insert(key.as_slice(), case.as_slice())?;
                        by_msg.insert(index.as_slice(), key.as_slice())?;
                    }
                    write_audit(audit, subjects, &staged)?;
                    Ok(AcceptOutcome::Accepted)
                },
            );
        match r {
            Ok(outcome) => {
                if matches!(outcome, AcceptOutcome::Accepted) {
                    *chain = staged.head;
                }
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
        // an offered, unacknowledged entry stays hidden and holds its case back
        let taken = self.case_heads(recipient, limit, |key| {
            leases.get(key).is_none_or(|until| *until <= now)
        })?;
        Ok(taken
            .into_iter()
            .map(|(key, entry)| {
                leases.insert(key, now + visibility);
                entry
            })
            .collect())
    }

    fn heads(&self, recipient: &str, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self
            .case_heads(recipient, limit, |_| true)?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    fn record_delivery(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let key = outbox_key(&entry.recipient, entry.seq);
        let value = encode(entry);
        let done = entry.state.is_final();
        let mut chain = self.chain.lock().map_err(|_| io("audit chain poisoned"))?;
        let staged = stage(&chain, vec![delivery_record(entry)]);
        (
            &self.outbox,
            &self.pending,
            &self.audit,
            &self.audit_subjects,
        )
            .transaction(|(outbox, pending, audit, subjects)| {
                outbox.insert(key.as_slice(), value.as_slice())?;
                if done {
                    pending.remove(key.as_slice())?;
                }
                write_audit(audit, subjects, &staged)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => io(e),
            })?;
        *chain = staged.head;
        drop(chain);
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
        let mut chain = self.chain.lock().map_err(|_| io("audit chain poisoned"))?;
        let record = Record::new(Event::Acked, recipient)
            .message(entry.message_id, &entry.message_type, None)
            .recipient(recipient)
            .subjects(&entry.subjects);
        let staged = stage(&chain, vec![record]);
        (
            &self.outbox,
            &self.pending,
            &self.audit,
            &self.audit_subjects,
        )
            .transaction(|(outbox, pending, audit, subjects)| {
                outbox.insert(okey.as_ref(), value.as_slice())?;
                pending.remove(okey.as_ref())?;
                write_audit(audit, subjects, &staged)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => io(e),
            })?;
        *chain = staged.head;
        drop(chain);
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

    fn commit_queue(&self) -> usize {
        self.commit.queued()
    }

    fn pending_count(&self) -> Result<usize, StoreError> {
        Ok(self.pending.len())
    }

    fn outbox_depth(&self, recipient: &str) -> Result<(usize, Option<String>), StoreError> {
        let mut prefix = recipient.as_bytes().to_vec();
        prefix.push(0);
        let mut depth = 0;
        let mut oldest = None;
        for kv in self.pending.scan_prefix(&prefix).keys() {
            let key = kv.map_err(io)?;
            if oldest.is_none() {
                if let Some(raw) = self.outbox.get(&key).map_err(io)? {
                    oldest = Some(decode::<OutboxEntry>(&raw)?.received_at);
                }
            }
            depth += 1;
        }
        Ok((depth, oldest))
    }

    fn case_messages(&self, correlation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let mut prefix = correlation_id.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.cases.scan_prefix(&prefix) {
            let (_, id) = kv.map_err(io)?;
            if let Some(raw) = self.messages.get(&id).map_err(io)? {
                out.push(decode(&raw)?);
            }
        }
        Ok(out)
    }

    fn audit(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let mut chain = self.chain.lock().map_err(|_| io("audit chain poisoned"))?;
        let staged = stage(&chain, records);
        (&self.audit, &self.audit_subjects)
            .transaction(|(audit, subjects)| {
                write_audit(audit, subjects, &staged)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => io(e),
            })?;
        *chain = staged.head;
        Ok(())
    }

    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.audit
            .range(from_seq.to_be_bytes()..)
            .take(limit)
            .map(|kv| decode(&kv.map_err(io)?.1))
            .collect()
    }

    fn audit_by_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError> {
        let mut prefix = subject.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.audit_subjects.scan_prefix(&prefix) {
            let (k, seqs) = kv.map_err(io)?;
            // a row lists the seqs of one write; a row without a list (written before rows
            // listed them) names the one seq in its key
            let seqs: &[u8] = if seqs.is_empty() {
                &k[prefix.len()..]
            } else {
                &seqs
            };
            for seq in seqs.chunks_exact(8) {
                // entries cut by the audit retention are gone; their index rows are skipped
                if let Some(v) = self.audit.get(seq).map_err(io)? {
                    out.push(decode(&v)?);
                }
            }
        }
        Ok(out)
    }

    fn audit_head(&self) -> Head {
        self.chain.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.checkpoints
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(io)?;
                let seq = u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("checkpoint key".into()))?,
                );
                Ok((seq, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    fn put_checkpoint(&self, seq: u64, jws: &str) -> Result<(), StoreError> {
        self.checkpoints
            .insert(seq.to_be_bytes(), jws.as_bytes())
            .map_err(io)?;
        Ok(())
    }

    fn verify_audit(
        &self,
        keys: &[josekit::jwk::Jwk],
    ) -> Result<Result<crate::audit::verify::Report, crate::audit::verify::Bad>, StoreError> {
        let checkpoints = self.checkpoints()?;
        let mut entries = Vec::new();
        for kv in self.audit.iter() {
            let (k, v) = kv.map_err(io)?;
            let seq = match <[u8; 8]>::try_from(k.as_ref()) {
                Ok(b) => u64::from_be_bytes(b),
                Err(_) => 0,
            };
            entries.push((seq, v.to_vec()));
        }
        Ok(crate::audit::verify::verify(entries, &checkpoints, keys))
    }

    fn signing_keys(&self) -> Result<Vec<Value>, StoreError> {
        self.keys
            .iter()
            .map(|kv| decode(&kv.map_err(io)?.1))
            .collect()
    }

    fn put_signing_key(&self, kid: &str, record: &Value) -> Result<(), StoreError> {
        self.keys
            .insert(kid.as_bytes(), encode(record))
            .map_err(io)?;
        Ok(())
    }

    fn messages_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let iter = match after {
            Some(a) => self.messages.range((
                std::ops::Bound::Excluded(a.as_bytes().to_vec()),
                std::ops::Bound::Unbounded,
            )),
            None => self.messages.iter(),
        };
        iter.take(limit)
            .map(|kv| decode(&kv.map_err(io)?.1))
            .collect()
    }

    fn entries_in_state(
        &self,
        state: DeliveryState,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, OutboxEntry)>, StoreError> {
        let iter = match after {
            Some(a) => self
                .outbox
                .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => self.outbox.iter(),
        };
        let mut out = Vec::new();
        for kv in iter {
            let (k, v) = kv.map_err(io)?;
            let e: OutboxEntry = decode(&v)?;
            if e.state == state {
                out.push((k.to_vec(), e));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn purge(&self, now: i64, body_days: u32, audit_days: u32) -> Result<Purged, StoreError> {
        let mut done = Purged::default();
        let body_cut = now - i64::from(body_days) * 86_400;
        let meta_cut = now - i64::from(audit_days) * 86_400;
        let ids: Vec<sled::IVec> = self
            .messages
            .iter()
            .keys()
            .collect::<Result<_, _>>()
            .map_err(io)?;
        for key in ids {
            let Some(raw) = self.messages.get(&key).map_err(io)? else {
                continue;
            };
            let mut m: StoredMessage = decode(&raw)?;
            let received = chrono::DateTime::parse_from_rfc3339(&m.received_at)
                .map(|t| t.timestamp())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let deliveries = self.deliveries(&m.id)?;
            // a body is kept while any copy still waits
            if deliveries.iter().any(|d| !d.state.is_final()) {
                continue;
            }
            let last = deliveries
                .iter()
                .filter_map(|d| d.delivered_at.or(d.acked_at))
                .max()
                .unwrap_or(received)
                .max(received);
            let about = |detail: &str| {
                Record::new(Event::Purged, "gateway")
                    .message(m.id, &m.message_type, None)
                    .subjects(&m.subjects)
                    .detail(detail.to_string())
            };
            let mut chain = self.chain.lock().map_err(|_| io("audit chain poisoned"))?;
            if received < meta_cut {
                let staged = stage(&chain, vec![about("metadata and deliveries")]);
                let outbox_keys: Vec<(Vec<u8>, Vec<u8>)> = deliveries
                    .iter()
                    .map(|d| {
                        (
                            outbox_key(&d.recipient, d.seq),
                            by_message_key(&d.message_id, &d.recipient),
                        )
                    })
                    .collect();
                let ikey = idem_key(&m.sender, &m.source_document_id);
                let ckey = case_key(&m.correlation_id, m.seq);
                (
                    &self.messages,
                    &self.idempotency,
                    &self.outbox,
                    &self.by_message,
                    &self.cases,
                    &self.audit,
                    &self.audit_subjects,
                )
                    .transaction(|(msgs, idem, outbox, by_msg, cases, audit, subjects)| {
                        msgs.remove(&key)?;
                        cases.remove(ckey.as_slice())?;
                        idem.remove(ikey.as_slice())?;
                        for (o, b) in &outbox_keys {
                            outbox.remove(o.as_slice())?;
                            by_msg.remove(b.as_slice())?;
                        }
                        write_audit(audit, subjects, &staged)?;
                        Ok::<_, ConflictableTransactionError<StoreError>>(())
                    })
                    .map_err(|e| match e {
                        TransactionError::Abort(e) => e,
                        TransactionError::Storage(e) => io(e),
                    })?;
                *chain = staged.head;
                done.messages += 1;
            } else if last < body_cut && !m.canonical.is_empty() {
                let staged = stage(&chain, vec![about("body")]);
                m.canonical = String::new();
                let value = encode(&m);
                let emptied: Vec<(Vec<u8>, Vec<u8>)> = deliveries
                    .iter()
                    .map(|d| {
                        let mut d = d.clone();
                        d.content_b64 = String::new();
                        (outbox_key(&d.recipient, d.seq), encode(&d))
                    })
                    .collect();
                (
                    &self.messages,
                    &self.outbox,
                    &self.audit,
                    &self.audit_subjects,
                )
                    .transaction(|(msgs, outbox, audit, subjects)| {
                        msgs.insert(&key, value.as_slice())?;
                        for (k, v) in &emptied {
                            outbox.insert(k.as_slice(), v.as_slice())?;
                        }
                        write_audit(audit, subjects, &staged)?;
                        Ok::<_, ConflictableTransactionError<StoreError>>(())
                    })
                    .map_err(|e| match e {
                        TransactionError::Abort(e) => e,
                        TransactionError::Storage(e) => io(e),
                    })?;
                *chain = staged.head;
                done.bodies += 1;
            }
        }
        // audit entries past the audit retention go up to the newest checkpoint before the cut,
        // which stays as the anchor the remaining log starts from
        let mut anchor = None;
        for (seq, _) in self.checkpoints()? {
            match self.audit.get(seq.to_be_bytes()).map_err(io)? {
                Some(v) => {
                    let e: Entry = decode(&v)?;
                    let at = chrono::DateTime::parse_from_rfc3339(&e.at)
                        .map(|t| t.timestamp())
                        .unwrap_or(i64::MAX);
                    if at < meta_cut {
                        anchor = Some(seq);
                    }
                }
                None => continue,
            }
        }
        if let Some(anchor) = anchor {
            let keys: Vec<sled::IVec> = self
                .audit
                .range(..=anchor.to_be_bytes())
                .keys()
                .collect::<Result<_, _>>()
                .map_err(io)?;
            for k in &keys {
                self.audit.remove(k).map_err(io)?;
            }
            done.audit_entries = keys.len() as u64;
            self.audit(vec![Record::new(Event::Purged, "gateway").detail(format!(
                "audit entries up to seq {anchor} ({})",
                keys.len()
            ))])?;
        }
        Ok(done)
    }

    fn requeue(&self, entry: &OutboxEntry, audit: Vec<Record>) -> Result<(), StoreError> {
        let key = outbox_key(&entry.recipient, entry.seq);
        let value = encode(entry);
        let mut chain = self.chain.lock().map_err(|_| io("audit chain poisoned"))?;
        let staged = stage(&chain, audit);
        (
            &self.outbox,
            &self.pending,
            &self.audit,
            &self.audit_subjects,
        )
            .transaction(|(outbox, pending, audit, subjects)| {
                outbox.insert(key.as_slice(), value.as_slice())?;
                pending.insert(key.as_slice(), entry.correlation_id.as_bytes())?;
                write_audit(audit, subjects, &staged)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => io(e),
            })?;
        *chain = staged.head;
        drop(chain);
        if let Ok(mut l) = self.leases.lock() {
            l.remove(&key);
        }
        self.signal.notify_waiters();
        Ok(())
    }
}
