//! The engine seam: what a storage engine keeps and how it is written. Everything here is
//! engine-neutral: records are plain data (an engine encodes them as it likes), cursors are
//! opaque, and every write is one [`Batch`] that the engine applies atomically and makes durable
//! before it returns. What the records mean — the audit chain, sequence numbers, leases, per-case
//! order, retention — is decided above the seam ([`super::Store`] and its writer); an engine
//! only has to keep what it is given and find it again. `tests/src/conformance.rs` is the suite
//! every engine passes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{DeliveryState, FlushStats, StoreError};
use crate::audit::{Entry, Head};

/// A position in a listing, as the engine that gave it understands it; callers pass it back
/// unchanged to read on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(pub Vec<u8>);

/// One accepted message: its metadata, its canonical body once, and each recipient's copy.
/// Its bodies are sealed under [`MessageRec::key`] (`super::seal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRec {
    pub id: Uuid,
    pub seq: u64,
    pub sender: String,
    pub message_type: String,
    pub source_document_id: String,
    pub received_at: String,
    pub correlation_id: String,
    /// base64url SHA-256 of the exact request body.
    pub body_sha256: String,
    /// The 202 answer (JSON text), returned again for a duplicate.
    pub response: String,
    /// The canonical message (stored form, JSON), sealed; empty once retention purged the body.
    #[serde(with = "serde_bytes")]
    pub canonical: Vec<u8>,
    pub subjects: Vec<String>,
    pub skipped: Vec<SkippedRec>,
    pub traceparent: Option<String>,
    /// The sender's own compact JWS (it holds the body), sealed.
    #[serde(with = "serde_bytes")]
    pub sender_signature: Option<Vec<u8>>,
    pub policy_digest: String,
    pub copies: Vec<CopyRec>,
    /// The key the bodies are sealed under. Never part of the record as an engine encodes it:
    /// an engine keeps it apart, where removing it leaves nothing of it in the engine's files
    /// that the engine can read again, and gives it back with the record. A record written
    /// with none (its bodies purged or erased, or a record from before bodies were sealed)
    /// removes the key the message had; so does removing the message.
    #[serde(skip)]
    pub key: Option<super::seal::BodyKey>,
}

/// A recipient routing proposed that gets nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRec {
    pub recipient: String,
    pub reason: String,
    pub policy: Option<String>,
}

/// One recipient's copy: the exact bytes it gets and their signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRec {
    pub recipient: String,
    pub format: String,
    pub media_type: String,
    /// Sealed; empty once retention purged the body.
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
    pub signature: String,
    pub alterations: Vec<String>,
    /// What the disclosure rules removed: (path, rule, action).
    pub removed: Vec<(String, String, String)>,
    pub subjects: Vec<String>,
}

/// Where one recipient's delivery of one message stands: the small row an attempt or an ack
/// rewrites (never the body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub message_id: Uuid,
    /// The message's case (`correlation_id`), for per-case order.
    pub case: String,
    pub received_at: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub acked_at: Option<i64>,
}

/// Which delivery rows a listing reads: the waiting ones (queued or retrying), the delivered
/// or the dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Waiting,
    Delivered,
    Dead,
}

impl Class {
    pub fn of(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Queued | DeliveryState::Retrying => Class::Waiting,
            // done with, as a delivered one is: it waits for nothing
            DeliveryState::Delivered | DeliveryState::Superseded => Class::Delivered,
            DeliveryState::Dead => Class::Dead,
        }
    }
}

/// What an idempotency key names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemRow {
    pub message_id: Uuid,
    pub body_sha256: String,
}

/// Counts per recipient, kept with every write so that no reader counts by scanning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Deliveries queued or retrying.
    pub waiting: u64,
    /// Deliveries dead-lettered.
    pub dead: u64,
}

/// What an engine holds, read once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineState {
    /// The sequence number the next accepted message takes.
    pub next_seq: u64,
    /// The audit chain's head.
    pub head: Head,
    pub counts: BTreeMap<String, Counts>,
}

/// What [`Engine::turn`] reads in the turn it takes.
#[derive(Debug, Clone)]
pub struct Turn {
    pub state: EngineState,
    /// The stored row of each idempotency key asked for, in their order.
    pub idempotency: Vec<Option<IdemRow>>,
}

/// One change.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Writes a message record (new, or replacing the one with its id).
    PutMessage(Box<MessageRec>),
    /// Removes a message with its idempotency key, its case row and its copies' delivery rows.
    RemoveMessage {
        id: Uuid,
        seq: u64,
        sender: String,
        source_document_id: String,
        case: String,
        recipients: Vec<String>,
    },
    PutIdempotency {
        sender: String,
        key: String,
        row: IdemRow,
    },
    PutCase {
        case: String,
        seq: u64,
        message_id: Uuid,
    },
    /// Writes the delivery row of (`recipient`, message `seq`) in its state's class, and removes
    /// it from `was`, the class it is in until this write (`None`: it is in none, a new row).
    PutDelivery {
        recipient: String,
        seq: u64,
        row: DeliveryRow,
        was: Option<Class>,
    },
    /// Appends chained audit entries (an engine indexes them by subject).
    Audit(Vec<Entry>),
    /// Removes every audit entry up to and including this seq.
    RemoveAuditThrough(u64),
    PutCheckpoint {
        seq: u64,
        jws: String,
    },
    PutSigningKey {
        kid: String,
        record: Value,
    },
}

/// One atomic, durable write: the changes, the sequence counter after them and the counts of
/// every recipient they changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub ops: Vec<Op>,
    pub next_seq: u64,
    pub counts: BTreeMap<String, Counts>,
}

/// A message record a listing found but could not read: its id and why (never its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub id: Uuid,
    pub error: String,
}

/// A message record as a listing finds it: read, or not readable. One record that cannot be
/// read does not keep a listing from the records after it.
pub type Listed = Result<MessageRec, Unreadable>;

/// A delivery row with where it is: (cursor, recipient, message seq, row).
pub type Located = (Cursor, String, u64, DeliveryRow);

/// A storage engine.
#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    /// The sequence counter, the audit head and the counts, as last written.
    async fn state(&self) -> Result<EngineState, StoreError>;
    /// Applies `batch` atomically; returns once it is durable (a crash after the return loses
    /// none of it, a crash before loses all or none of it).
    async fn write(&self, batch: Batch) -> Result<(), StoreError>;
    /// Applies `batch` as [`Engine::write`] does, then reads the oldest waiting delivery of
    /// each of `recipients` (in their order) as it stands after it — the writer keeps these
    /// for the outbox gauges — so that an engine with round trips answers both in one. A read
    /// that fails reads as none; only the write's failure is an error.
    async fn write_then_oldest(
        &self,
        batch: Batch,
        recipients: &[String],
    ) -> Result<Vec<Option<DeliveryRow>>, StoreError> {
        self.write(batch).await?;
        let reads = recipients.iter().map(|r| async move {
            self.deliveries(Class::Waiting, Some(r), None, 1)
                .await
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|(_, _, _, row)| row)
        });
        Ok(futures_util::future::join_all(reads).await)
    }
    async fn message(&self, id: &Uuid) -> Result<Option<MessageRec>, StoreError>;
    /// Several message records at once, in their order (the writer reads those its batch's
    /// acknowledgements act on before deciding it: an engine with round trips answers in one).
    async fn messages_of(&self, ids: &[Uuid]) -> Result<Vec<Option<MessageRec>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.message(id).await?);
        }
        Ok(out)
    }
    /// Up to `limit` messages after `after` by id (ids are time-ordered); a record that cannot
    /// be read is listed as [`Unreadable`] in its place.
    async fn messages(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Listed>, StoreError>;
    async fn idempotency(&self, sender: &str, key: &str) -> Result<Option<IdemRow>, StoreError>;
    /// The rows of several idempotency keys at once, in their order (the writer asks for every
    /// key of a batch before deciding it: an engine with round trips answers in one).
    async fn idempotency_of(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<Option<IdemRow>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (sender, key) in keys {
            out.push(self.idempotency(sender, key).await?);
        }
        Ok(out)
    }
    /// The messages of a case, in sequence order.
    async fn case(&self, case: &str) -> Result<Vec<Uuid>, StoreError>;
    /// The delivery row of (`recipient`, message `seq`), in whichever class it is.
    async fn delivery(&self, recipient: &str, seq: u64) -> Result<Option<DeliveryRow>, StoreError>;
    /// Several delivery rows at once, by (recipient, message seq), in their order.
    async fn deliveries_of(
        &self,
        keys: &[(String, u64)],
    ) -> Result<Vec<Option<DeliveryRow>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (recipient, seq) in keys {
            out.push(self.delivery(recipient, *seq).await?);
        }
        Ok(out)
    }
    /// Up to `limit` delivery rows of `class` (of one recipient, or of all), after `after`;
    /// a recipient's rows come in message sequence order.
    async fn deliveries(
        &self,
        class: Class,
        recipient: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Located>, StoreError>;
    /// Up to `limit` audit entries from `from_seq` on, in order.
    async fn audit(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// Every audit entry naming `subject`, in order.
    async fn audit_of_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError>;
    async fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;
    async fn signing_keys(&self) -> Result<Vec<Value>, StoreError>;
    /// For an engine several processes write at once (gateway nodes sharing one database):
    /// takes the store-wide write turn for the next [`Engine::write`] or [`Engine::abandon`]
    /// and returns the state as it stands in the turn, which the writer decides its batch on.
    /// Other processes' turns wait until this one is written or abandoned, so every batch of
    /// every process is decided on what the one before it wrote: one sequence, one audit
    /// chain. With the state come the stored rows of the idempotency keys `keys` (in their
    /// order), read in the turn, so that an engine with round trips answers both in one.
    /// `None`: the engine has one writer, whose state the writer keeps itself.
    async fn turn(&self, keys: &[(String, String)]) -> Result<Option<Turn>, StoreError> {
        let _ = keys;
        Ok(None)
    }
    /// Gives up a turn taken by [`Engine::turn`] without writing.
    async fn abandon(&self) {}
    /// Leases entries of `recipient` (by message seq) to `holder` for `period`, where every
    /// process sharing the store sees them: returns the seqs granted, those no other holder
    /// has an unexpired lease of (a holder's own lease is renewed). An expired lease is free.
    async fn lease(
        &self,
        recipient: &str,
        seqs: &[u64],
        holder: &str,
        period: std::time::Duration,
    ) -> Result<Vec<u64>, StoreError>;
    /// The unexpired leases of `recipient`'s entries: (seq, holder).
    async fn leased(&self, recipient: &str) -> Result<Vec<(u64, String)>, StoreError>;
    /// Ends the lease of (`recipient`, `seq`): `holder`'s, or whoever's when `None` (an ack).
    async fn release(
        &self,
        recipient: &str,
        seq: u64,
        holder: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Hints that another process changed a recipient's waiting entries (the recipient's
    /// name), for an engine several processes share; only a hint: a reader still looks again
    /// within a bounded interval.
    fn hints(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
    /// How many durable writes (fsyncs) the engine made, and the batches they covered.
    fn flush_stats(&self) -> FlushStats;
    /// Changes when the engine was opened again from disk (after a disk failure): what it holds
    /// may then differ from what its user last knew, which reads [`Engine::state`] again.
    fn generation(&self) -> u64 {
        0
    }
    /// Whether the engine can take work now (cheap: no read of the store).
    fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
