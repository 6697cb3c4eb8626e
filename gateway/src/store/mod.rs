//! The message store: messages, per-recipient outbox (the inbox of a pull recipient),
//! idempotency keys.
//!
//! # Durability
//! [`Store::accept`] writes a message, its idempotency key and every outbox entry in one
//! transaction; [`Store::durable`] resolves only after an fsync that started after those writes.
//! The gateway answers 202 only after both. Many writers share one fsync (group commit): a flush
//! thread takes every waiter queued while the previous flush ran and covers them all with the next.
//!
//! # Ordering
//! Every accepted message takes the next value of one monotonic sequence (it survives restarts).
//! A recipient's inbox offers its pending entries in sequence order, at most one per case
//! (`correlation_id`) at a time: an entry offered and not yet acknowledged holds back later entries
//! of the same case until it is acknowledged or its visibility timeout passes.
//!
//! # On-disk layout (sled, one tree each)
//! | tree | key | value |
//! | --- | --- | --- |
//! | `messages` | message id (16 bytes) | [`StoredMessage`] (JSON) |
//! | `idempotency` | sender `\0` source document id | [`IdempotencyRecord`] (JSON) |
//! | `outbox` | recipient `\0` seq (u64 BE) | [`OutboxEntry`] (JSON) |
//! | `pending` | recipient `\0` seq (u64 BE) | the entry's `correlation_id`: present while the entry awaits its ack |
//! | `by_message` | message id `\0` recipient | outbox key |
//! | `cases` | correlation id `\0` seq (u64 BE) | message id |
//! | `audit` | seq (u64 BE) | [`crate::audit::Entry`] (JSON) |
//! | `audit_subjects` | subject pseudonym `\0` first seq (u64 BE) | the seqs (u64 BE each) of one write's entries naming the subject |
//! | `checkpoints` | seq (u64 BE) | compact JWS of [`crate::audit::Checkpoint`] |
//! | `keys` | kid | public JWK (JSON) of every signing key used |
//!
//! Audit entries are written in the same transaction as the state they record, under one lock
//! that keeps the hash chain in order.
//!
//! The seam is free of sled: a second implementation (NATS JetStream) only has to keep the same
//! promises.

mod group_commit;
mod reopen;
mod sled_store;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

pub use group_commit::{CommitTuning, Flush, FlushStats};
pub use reopen::Reopening;
pub use sled_store::SledStore;

/// A failure of the store; the request answers 503 and nothing is accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Disk or database failure.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read back.
    #[error("store record unreadable: {0}")]
    Corrupt(String),
}

/// A recipient that routing proposed but that gets nothing, and why (audited later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub recipient: String,
    pub reason: String,
    /// The policy that refused it, when a policy did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl Skipped {
    pub fn new(recipient: &str, reason: impl Into<String>) -> Self {
        Self {
            recipient: recipient.into(),
            reason: reason.into(),
            policy: None,
        }
    }
    pub fn refused(recipient: &str, r: crate::policy::Refusal) -> Self {
        Self {
            recipient: recipient.into(),
            reason: r.reason,
            policy: Some(r.rule),
        }
    }
}

/// An accepted message's metadata and canonical form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMessage {
    pub id: Uuid,
    pub seq: u64,
    pub sender: String,
    pub message_type: String,
    pub source_document_id: String,
    pub received_at: String,
    pub correlation_id: String,
    /// base64url SHA-256 of the exact request body.
    pub body_sha256: String,
    /// The 202 answer, returned again for a duplicate.
    pub response: Value,
    /// The canonical message (stored form), JSON text; empty once retention purged the body.
    pub canonical: String,
    /// Audit pseudonyms of the persons in the message.
    #[serde(default)]
    pub subjects: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// W3C trace context the message came with.
    #[serde(default)]
    pub traceparent: Option<String>,
    /// The sender's own compact JWS, when it submitted a signed message.
    #[serde(default)]
    pub sender_signature: Option<String>,
    /// Digest of the policy set the message was decided under.
    #[serde(default)]
    pub policy_digest: String,
}

/// One message for one recipient, encoded and signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub message_id: Uuid,
    pub seq: u64,
    pub recipient: String,
    pub format: String,
    pub media_type: String,
    pub message_type: String,
    pub correlation_id: String,
    pub received_at: String,
    /// The exact bytes delivered, base64.
    pub content_b64: String,
    /// Detached JWS of those bytes.
    pub signature: String,
    pub traceparent: Option<String>,
    /// Unix seconds of the acknowledgement, once acked (pull).
    pub acked_at: Option<i64>,
    /// Where delivery stands.
    #[serde(default)]
    pub state: DeliveryState,
    /// Delivery attempts made (push).
    #[serde(default)]
    pub attempts: u32,
    /// Unix milliseconds before which no further attempt is made.
    #[serde(default)]
    pub next_attempt_at_ms: Option<i64>,
    /// The last attempt's error (never a body: status codes and transport errors only).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Unix seconds of delivery (push: the recipient's 2xx; pull: the ack).
    #[serde(default)]
    pub delivered_at: Option<i64>,
    /// Where the recipient's format altered the message (`record 2 (PE) field family name: cut
    /// to the field's width`): places only, never values.
    #[serde(default)]
    pub alterations: Vec<String>,
    /// What the disclosure rules removed for this recipient, with the rule (paths only).
    #[serde(default)]
    pub removed: Vec<crate::policy::Removal>,
    /// Audit pseudonyms of the persons in this recipient's copy.
    #[serde(default)]
    pub subjects: Vec<String>,
}

/// Where one recipient's delivery of one message stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its first attempt, or for a pull recipient to take it.
    #[default]
    Queued,
    /// An attempt failed; another is due at `next_attempt_at_ms`.
    Retrying,
    /// The recipient has it.
    Delivered,
    /// Given up after a permanent failure or the last attempt; waits for an operator.
    Dead,
}

impl DeliveryState {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
    /// Delivered and dead entries no longer wait, nor hold their case back.
    pub fn is_final(&self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Dead)
    }
}

impl OutboxEntry {
    pub fn content(&self) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.content_b64)
            .unwrap_or_default()
    }
}

/// What an idempotency key remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub message_id: Uuid,
    pub body_sha256: String,
}

/// Everything one accepted message writes.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub message: StoredMessage,
    pub entries: Vec<OutboxEntry>,
    /// The audit entries of the acceptance (received, decided, minimised, signed, queued),
    /// written in the same transaction.
    pub audit: Vec<crate::audit::Record>,
}

/// What [`Store::accept`] did.
#[derive(Debug, Clone)]
pub enum AcceptOutcome {
    /// Written (not yet durable: await [`Store::durable`]).
    Accepted,
    /// The sender's key was taken by a message with the same body: its first answer.
    Duplicate(Value),
    /// The sender's key was taken by a message with a different body.
    Conflict,
}

/// What [`Store::ack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Acked,
    AlreadyAcked,
}

/// What a retention run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub bodies: usize,
    pub messages: usize,
    pub audit_entries: u64,
}

/// The storage seam.
pub trait Store: Send + Sync + 'static {
    /// The sequence number the next accepted message takes.
    fn next_seq(&self) -> Result<u64, StoreError>;
    /// The record behind a sender's idempotency key.
    fn idempotency(
        &self,
        sender: &str,
        key: &str,
    ) -> Result<Option<(IdempotencyRecord, Value)>, StoreError>;
    /// Writes a message and its outbox entries atomically, unless the key is taken.
    fn accept(&self, a: Acceptance) -> Result<AcceptOutcome, StoreError>;
    /// Resolves once every write made before the call is on disk.
    fn durable(&self) -> BoxFuture<'static, Result<(), StoreError>>;
    fn message(&self, id: &Uuid) -> Result<Option<StoredMessage>, StoreError>;
    /// The message's outbox entries, one per recipient.
    fn deliveries(&self, id: &Uuid) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Up to `limit` entries waiting for `recipient`, oldest first, one per case; each is hidden
    /// for `visibility` unless acknowledged.
    fn take_inbox(
        &self,
        recipient: &str,
        limit: usize,
        visibility: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The oldest waiting entry of each case for `recipient`, oldest first: the entries a push
    /// worker may attempt now (later entries of a case wait for the one before them).
    fn heads(&self, recipient: &str, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Writes an entry's delivery state; a final state removes it from the waiting entries.
    fn record_delivery(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// Marks `recipient`'s entry of message `id` acknowledged; `None` when there is none.
    fn ack(&self, recipient: &str, id: &Uuid, at: i64) -> Result<Option<AckOutcome>, StoreError>;
    /// Notified whenever entries are added or released.
    fn inbox_signal(&self) -> Arc<Notify>;
    /// Flush counts, for `/metrics` and the durability tests.
    fn flush_stats(&self) -> FlushStats;
    /// Writers waiting for a flush now: past `store.commit_queue_max` the store is behind and
    /// new submissions are refused with 503 until it catches up.
    fn commit_queue(&self) -> usize;
    /// Every pending entry, for start-up checks and tests.
    fn pending_count(&self) -> Result<usize, StoreError>;
    /// Entries waiting for `recipient` and the `received_at` of the oldest (for `/metrics`).
    fn outbox_depth(&self, recipient: &str) -> Result<(usize, Option<String>), StoreError>;
    /// The messages of one case (`correlation_id`), in acceptance order.
    fn case_messages(&self, correlation_id: &str) -> Result<Vec<StoredMessage>, StoreError>;

    /// Appends audit entries on their own (operations that change no other state).
    fn audit(&self, records: Vec<crate::audit::Record>) -> Result<(), StoreError>;
    /// Up to `limit` audit entries from `from_seq` on, in order.
    fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<crate::audit::Entry>, StoreError>;
    /// Every audit entry naming this subject pseudonym, in order.
    fn audit_by_subject(&self, subject: &str) -> Result<Vec<crate::audit::Entry>, StoreError>;
    /// The head of the audit chain.
    fn audit_head(&self) -> crate::audit::Head;
    /// Signed checkpoints, `(seq, compact JWS)`, in order.
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;
    fn put_checkpoint(&self, seq: u64, jws: &str) -> Result<(), StoreError>;
    /// Verifies the audit log against its checkpoints and these public keys.
    fn verify_audit(
        &self,
        keys: &[josekit::jwk::Jwk],
    ) -> Result<Result<crate::audit::verify::Report, crate::audit::verify::Bad>, StoreError>;
    /// Every signing key the gateway has used: `{"jwk": {…}, "retired_at": unix seconds|null}`.
    fn signing_keys(&self) -> Result<Vec<Value>, StoreError>;
    /// Records a key (and when it was retired, if it was).
    fn put_signing_key(&self, kid: &str, record: &Value) -> Result<(), StoreError>;

    /// Up to `limit` messages after `after` (by id, which is time order).
    fn messages_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Up to `limit` outbox entries in `state` after the outbox key `after`, with their keys.
    fn entries_in_state(
        &self,
        state: DeliveryState,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, OutboxEntry)>, StoreError>;
    /// Retention at `now` (Unix seconds): bodies of messages whose deliveries have all ended
    /// more than `body_days` ago, metadata of messages older than `audit_days`, and audit
    /// entries older than `audit_days` up to a checkpoint. Each purge is audited.
    fn purge(&self, now: i64, body_days: u32, audit_days: u32) -> Result<Purged, StoreError>;
    /// Puts an entry back in line for delivery, with its audit entries, in one transaction.
    fn requeue(
        &self,
        entry: &OutboxEntry,
        audit: Vec<crate::audit::Record>,
    ) -> Result<(), StoreError>;
}
