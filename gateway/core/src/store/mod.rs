//! The message store: what the gateway keeps, above any engine.
//!
//! [`Store`] is what the rest of the gateway uses. It decides what the records mean — sequence
//! numbers, the audit chain, idempotency, per-case order, inbox leases, counts, retention — and
//! keeps them in an [`Engine`] (the seam, `engine.rs`), which only stores records and finds them
//! again. sled is the embedded engine (the crate `jxg-store-sled`, layout v2, with the on-disk
//! layout in its docs); another engine is a crate that implements [`Engine`] and passes the
//! conformance suite (`tests/src/conformance.rs`).
//!
//! # Durability
//! Every change goes through one writer (`writer.rs`), which takes every change waiting, writes
//! them as one engine batch and answers them only once the engine says the batch is durable (for
//! sled: an fsync of its log). So [`Store::accept`] resolves after the fsync that covers it: the
//! gateway answers 202 only then, and N concurrent requests share about one fsync.
//! [`Store::durable`] resolves once every batch handed to the engine before the call is durable:
//! a delivery worker or an inbox waits for it before it hands out an entry it has read.
//!
//! # Ordering
//! Every accepted message takes the next value of one monotonic sequence, assigned by the writer
//! (it survives restarts). A recipient's inbox offers its waiting entries in sequence order, at
//! most one per case (`correlation_id`) at a time: an entry offered and not yet acknowledged
//! holds back later entries of the same case until it is acknowledged or its visibility timeout
//! passes. A push delivery in flight is leased the same way, for an attempt's lease period.
//! Leases are the engine's ([`Engine::lease`]): sled keeps them in memory (one process; after a
//! restart every waiting entry is offered again), PostgreSQL where every node sees them, so an
//! entry is offered or attempted by one node at a time, and a dead node's leases expire.
//!
//! # Several nodes
//! An engine several processes write (PostgreSQL) gives the writer a turn per batch
//! ([`Engine::turn`]): the state as it stands under a store-wide lock, which the batch is
//! decided on and written in. Every node's batches thus form one sequence and one audit chain,
//! and an idempotency key is checked against what every node wrote.

pub mod copy;
mod engine;
mod lease;
pub mod seal;
mod writer;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

pub use engine::{
    Batch, Class, CopyRec, Counts, Cursor, DeliveryRow, Engine, EngineState, IdemRow, Listed,
    Located, MessageRec, Op, SkippedRec, Turn, Unreadable,
};
pub use lease::LocalLeases;
pub use seal::BodyKey;
pub use writer::CommitTuning;

use crate::audit::{Entry, Event, Head, Record};

/// Counts of durable writes and of the batches they covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub flushes: u64,
    pub waiters: u64,
}

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

impl StoreError {
    /// Whether trying again later may succeed (a disk or database that may come back), or not
    /// (a record that cannot be read will not become readable).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
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
    /// The exact bytes delivered (base64 in the entry's JSON form, as layout v1 kept it).
    #[serde(rename = "content_b64", with = "b64")]
    pub content: Vec<u8>,
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
    /// Never offered when a correction or withdrawal of its message was accepted: it is not
    /// sent, and the recipient gets what replaced or withdrew it instead.
    Superseded,
}

impl DeliveryState {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Superseded => "superseded",
        }
    }
    /// Delivered, dead and superseded entries no longer wait, nor hold their case back.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered | DeliveryState::Dead | DeliveryState::Superseded
        )
    }
}

/// Bytes as base64 text in JSON; text that is not base64 is an error, never an empty body.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format!("the body is not base64: {e}")))
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
    /// A correction or withdrawal: the message it acts on. At most one acceptance acts on a
    /// message; the writer refuses any other ([`AcceptOutcome::Acted`]).
    pub acts_on: Option<Uuid>,
    /// A withdrawal for erasure: the message acted on is erased in the same write (its bodies
    /// and its key).
    pub erase: bool,
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
    /// Another message acted on the same message first (replaced or withdrew it): this one.
    Acted(Uuid),
}

/// The idempotency rows kept under this sender name say which message acted on a message: the
/// key is the id of the message acted on, the row names the one that acted. Authority ids are
/// slugs of lowercase letters, so no authority's keys are among them. Removing a message's
/// metadata removes the row of its id too.
pub const REVISION_KEYS: &str = "~revision";

/// An amendment that does not apply to the record it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoesNotApply;

/// What [`Store::amend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amended {
    NoSuchMessage,
    Changed,
    /// There was nothing to change.
    Unchanged,
    /// The change does not apply to the record.
    Refused,
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
    /// Messages skipped because their record cannot be read (reported, left in place).
    pub unreadable: usize,
}

/// A message's record as stored, its bodies sealed under `key` (none: stored as they are,
/// which only a test of records from before bodies were sealed does).
pub fn message_rec(m: &StoredMessage, copies: Vec<CopyRec>, key: Option<BodyKey>) -> MessageRec {
    let seal = |place: &str, body: &[u8]| match &key {
        Some(k) => seal::seal(k, &m.id, place, body),
        None => body.to_vec(),
    };
    MessageRec {
        id: m.id,
        seq: m.seq,
        sender: m.sender.clone(),
        message_type: m.message_type.clone(),
        source_document_id: m.source_document_id.clone(),
        received_at: m.received_at.clone(),
        correlation_id: m.correlation_id.clone(),
        body_sha256: m.body_sha256.clone(),
        response: m.response.to_string(),
        canonical: seal(CANONICAL, m.canonical.as_bytes()),
        subjects: m.subjects.clone(),
        skipped: m
            .skipped
            .iter()
            .map(|s| SkippedRec {
                recipient: s.recipient.clone(),
                reason: s.reason.clone(),
                policy: s.policy.clone(),
            })
            .collect(),
        traceparent: m.traceparent.clone(),
        sender_signature: m
            .sender_signature
            .as_ref()
            .map(|s| seal(SENDER_SIGNATURE, s.as_bytes())),
        policy_digest: m.policy_digest.clone(),
        copies,
        key,
    }
}

/// Where in a record each body is, as its seal binds it.
const CANONICAL: &str = "canonical";
const SENDER_SIGNATURE: &str = "sender-signature";
fn copy_place(recipient: &str) -> String {
    format!("copy:{recipient}")
}

/// A recipient's copy as stored, `content` sealed under its message's `key`.
pub fn copy_rec(e: &OutboxEntry, content: &[u8], key: Option<&BodyKey>) -> CopyRec {
    CopyRec {
        recipient: e.recipient.clone(),
        format: e.format.clone(),
        media_type: e.media_type.clone(),
        content: match key {
            Some(k) => seal::seal(k, &e.message_id, &copy_place(&e.recipient), content),
            None => content.to_vec(),
        },
        signature: e.signature.clone(),
        alterations: e.alterations.clone(),
        removed: e
            .removed
            .iter()
            .map(|r| (r.path.clone(), r.rule.clone(), r.action.clone()))
            .collect(),
        subjects: e.subjects.clone(),
    }
}

/// `m` with every body it holds removed and its key with them: what retention and an erasure
/// write.
pub fn without_bodies(m: &MessageRec) -> MessageRec {
    let mut emptied = m.clone();
    emptied.canonical.clear();
    emptied.sender_signature = None;
    for c in &mut emptied.copies {
        c.content.clear();
    }
    emptied.key = None;
    emptied
}

/// An entry's delivery state as stored.
pub fn delivery_row(e: &OutboxEntry) -> DeliveryRow {
    DeliveryRow {
        message_id: e.message_id,
        case: e.correlation_id.clone(),
        received_at: e.received_at.clone(),
        state: e.state,
        attempts: e.attempts,
        next_attempt_at_ms: e.next_attempt_at_ms,
        last_error: e.last_error.clone(),
        delivered_at: e.delivered_at,
        acked_at: e.acked_at,
    }
}

fn stored_message(m: &MessageRec) -> Result<StoredMessage, StoreError> {
    let key = m.key.as_ref();
    let canonical = seal::open(key, &m.id, CANONICAL, &m.canonical)?;
    let sender_signature = match &m.sender_signature {
        Some(s) => Some(seal::open(key, &m.id, SENDER_SIGNATURE, s)?).filter(|s| !s.is_empty()),
        None => None,
    };
    Ok(StoredMessage {
        id: m.id,
        seq: m.seq,
        sender: m.sender.clone(),
        message_type: m.message_type.clone(),
        source_document_id: m.source_document_id.clone(),
        received_at: m.received_at.clone(),
        correlation_id: m.correlation_id.clone(),
        body_sha256: m.body_sha256.clone(),
        response: serde_json::from_str(&m.response).unwrap_or_default(),
        canonical: String::from_utf8_lossy(&canonical).into_owned(),
        subjects: m.subjects.clone(),
        skipped: m
            .skipped
            .iter()
            .map(|s| Skipped {
                recipient: s.recipient.clone(),
                reason: s.reason.clone(),
                policy: s.policy.clone(),
            })
            .collect(),
        traceparent: m.traceparent.clone(),
        sender_signature: sender_signature.map(|s| String::from_utf8_lossy(&s).into_owned()),
        policy_digest: m.policy_digest.clone(),
    })
}

/// One recipient's entry: its message's metadata, its copy and its delivery state.
fn outbox_entry(m: &MessageRec, c: &CopyRec, row: &DeliveryRow) -> Result<OutboxEntry, StoreError> {
    let content = seal::open(m.key.as_ref(), &m.id, &copy_place(&c.recipient), &c.content)?;
    Ok(OutboxEntry {
        message_id: m.id,
        seq: m.seq,
        recipient: c.recipient.clone(),
        format: c.format.clone(),
        media_type: c.media_type.clone(),
        // a correction's copy for a recipient that may no longer hold the message is a
        // withdrawal, as its signature says
        message_type: crate::signing::signed_type(&c.signature)
            .filter(|t| t == jxg_schema::message::WITHDRAWN)
            .unwrap_or_else(|| m.message_type.clone()),
        correlation_id: m.correlation_id.clone(),
        received_at: m.received_at.clone(),
        content,
        signature: c.signature.clone(),
        traceparent: m.traceparent.clone(),
        acked_at: row.acked_at,
        state: row.state,
        attempts: row.attempts,
        next_attempt_at_ms: row.next_attempt_at_ms,
        last_error: row.last_error.clone(),
        delivered_at: row.delivered_at,
        alterations: c.alterations.clone(),
        removed: c
            .removed
            .iter()
            .map(|(path, rule, action)| crate::policy::Removal {
                path: path.clone(),
                rule: rule.clone(),
                action: action.clone(),
            })
            .collect(),
        subjects: c.subjects.clone(),
    })
}

/// A stored record found unreadable: what it is, where it was found, when, and why (never
/// its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableRecord {
    /// The message whose record it is.
    pub message_id: Uuid,
    /// The recipient whose delivery it stopped, when a delivery found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// `delivery`, `inbox`, `listing` or `retention`.
    pub found_by: &'static str,
    /// Unix seconds when it was first found.
    pub first_seen: i64,
    pub error: String,
}

/// How many unreadable records are remembered for the admin listing (the metric counts all).
const UNREADABLE_KEPT: usize = 1000;

/// The gateway's store: the meaning of the records, over an [`Engine`].
pub struct Store {
    engine: Arc<dyn Engine>,
    writer: writer::Writer,
    /// Records found unreadable since the store was opened, by message id.
    unreadable: std::sync::Mutex<BTreeMap<Uuid, UnreadableRecord>>,
    /// This node's name: the holder of its leases.
    node: String,
    /// How long a delivery attempt's lease lasts (past the attempt's own bound).
    lease_period: Duration,
    /// Held across one of this node's inbox takes (the engine's leases keep other nodes'
    /// takes apart).
    taking: tokio::sync::Mutex<()>,
    /// Where retention's next pass over bodies starts: every message before it has no body
    /// left (in memory: the first pass after a start reads from the oldest message).
    bodies_gone_through: std::sync::Mutex<Option<Uuid>>,
}

/// What a pass of retention removes.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// Messages past the audit retention whose deliveries have all ended.
    Metadata,
    /// Bodies of messages whose deliveries all ended before the body retention.
    Bodies,
}

/// How many delivery rows a listing reads from the engine at a time.
const PAGE: usize = 256;

/// The leases of store-wide jobs are held under this name (see [`Store::hold_job`]).
const JOBS: &str = "~jobs";

/// The job number of retention.
pub const RETENTION_JOB: u64 = 1;

/// A delivery attempt's lease when none is configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The most delivery rows one look for startable entries walks.
pub const WALK: usize = 10_240;

impl Store {
    /// The store over `engine`, its writer batching as `tuning` says, as the one node
    /// `gateway`.
    pub async fn open(engine: Arc<dyn Engine>, tuning: CommitTuning) -> Result<Self, StoreError> {
        Self::open_as(engine, tuning, "gateway", DEFAULT_LEASE).await
    }

    /// The store over `engine` as node `node` (the holder of its leases), a delivery
    /// attempt's lease lasting `lease_period`. Another node's hints (an engine several
    /// processes share gives them) wake this node's workers and long polls.
    pub async fn open_as(
        engine: Arc<dyn Engine>,
        tuning: CommitTuning,
        node: &str,
        lease_period: Duration,
    ) -> Result<Self, StoreError> {
        let writer = writer::Writer::start(engine.clone(), tuning).await?;
        if let Some(mut hints) = engine.hints() {
            let shared = writer.shared.clone();
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match hints.recv().await {
                        Ok(r) => shared.signals.notify(&[r]),
                        Err(RecvError::Lagged(_)) => shared.signals.notify_all(),
                        Err(RecvError::Closed) => return,
                    }
                }
            });
        }
        Ok(Self {
            engine,
            writer,
            node: node.to_string(),
            lease_period,
            taking: tokio::sync::Mutex::new(()),
            bodies_gone_through: Default::default(),
            unreadable: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Answers every change sent, stops the writer and lets go of the engine (which closes when
    /// its last user does).
    pub async fn close(self) {
        let writer = self.writer;
        // the writer's last batch may still be writing: wait for it off the async threads
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
    }

    /// Reports a record that cannot be read: logged (ids only), counted, and kept for the admin
    /// listing.
    pub fn report_unreadable(
        &self,
        message_id: Uuid,
        recipient: Option<&str>,
        found_by: &'static str,
        error: &str,
    ) {
        let mut kept = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
        if kept.contains_key(&message_id) {
            return;
        }
        tracing::error!(%message_id, recipient, found_by, error, "a stored record cannot be read");
        crate::telemetry::metrics()
            .unreadable_records
            .add(1, &[opentelemetry::KeyValue::new("found_by", found_by)]);
        if kept.len() < UNREADABLE_KEPT {
            kept.insert(
                message_id,
                UnreadableRecord {
                    message_id,
                    recipient: recipient.map(String::from),
                    found_by,
                    first_seen: chrono::Utc::now().timestamp(),
                    error: error.to_string(),
                },
            );
        }
    }

    /// The records found unreadable since the store was opened (at most the first 1000).
    pub fn unreadable(&self) -> Vec<UnreadableRecord> {
        self.unreadable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Reads the entry of a delivery row to hand it out: a record that cannot be read is
    /// reported and its delivery dead-lettered (it can never go out, and must not hold back the
    /// recipient), and `None` is returned for it.
    pub async fn entry_or_dead_letter(
        &self,
        recipient: &str,
        seq: u64,
        row: &DeliveryRow,
        found_by: &'static str,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        match self.entry(recipient, row).await {
            Ok(e) => Ok(e),
            Err(e) if !e.is_transient() => {
                let error = e.to_string();
                self.report_unreadable(row.message_id, Some(recipient), found_by, &error);
                let why = "the stored message record cannot be read".to_string();
                self.ask(|reply| writer::Cmd::Unreadable {
                    recipient: recipient.to_string(),
                    seq,
                    why,
                    reply,
                })
                .await?;
                crate::telemetry::metrics().dead_letters.add(
                    1,
                    &[opentelemetry::KeyValue::new(
                        "recipient",
                        recipient.to_string(),
                    )],
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The readable messages of a listing page; the others are reported.
    fn readable(&self, page: Vec<Listed>, found_by: &'static str) -> Vec<MessageRec> {
        page.into_iter()
            .filter_map(|l| match l {
                Ok(m) => Some(m),
                Err(u) => {
                    self.report_unreadable(u.id, None, found_by, &u.error);
                    None
                }
            })
            .collect()
    }

    /// The engine below (for tools that copy or inspect a store).
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> writer::Cmd,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer.send(make(tx));
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the store writer ended".into())))
    }

    /// The record behind a sender's idempotency key, with the first answer.
    pub async fn idempotency(
        &self,
        sender: &str,
        key: &str,
    ) -> Result<Option<(IdempotencyRecord, Value)>, StoreError> {
        let Some(row) = self.engine.idempotency(sender, key).await? else {
            return Ok(None);
        };
        let m = self
            .engine
            .message(&row.message_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("idempotency key without its message".into()))?;
        Ok(Some((
            IdempotencyRecord {
                message_id: row.message_id,
                body_sha256: row.body_sha256,
            },
            serde_json::from_str(&m.response).unwrap_or_default(),
        )))
    }

    /// Writes a message and its outbox entries, unless the key is taken; resolves once durable.
    /// The writer assigns the sequence number (`seq` in `a` is ignored).
    pub async fn accept(&self, a: Acceptance) -> Result<AcceptOutcome, StoreError> {
        // sealed here, in the caller's task: the one writer only numbers and writes it
        let key = BodyKey::generate();
        let copies = a
            .entries
            .iter()
            .map(|e| copy_rec(e, &e.content, Some(&key)))
            .collect();
        let rec = message_rec(&a.message, copies, Some(key));
        self.ask(|r| writer::Cmd::Accept(Box::new(a), Box::new(rec), r))
            .await
    }

    /// Reads the state the writer keeps (the counts, the audit head) anew: on an engine
    /// several nodes write, what the others wrote since this node's last batch.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        self.ask(|r| writer::Cmd::Write(Vec::new(), Vec::new(), r))
            .await
    }

    /// Resolves once every write made before the call is durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.writer.durable().await
    }

    pub async fn message(&self, id: &Uuid) -> Result<Option<StoredMessage>, StoreError> {
        self.engine
            .message(id)
            .await?
            .as_ref()
            .map(stored_message)
            .transpose()
    }

    /// The message's outbox entries, one per recipient.
    pub async fn deliveries(&self, id: &Uuid) -> Result<Vec<OutboxEntry>, StoreError> {
        let Some(m) = self.engine.message(id).await? else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for c in &m.copies {
            if let Some(row) = self.engine.delivery(&c.recipient, m.seq).await? {
                out.push(outbox_entry(&m, c, &row)?);
            }
        }
        out.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        Ok(out)
    }

    /// The entry of `recipient` in the message of a delivery row: its copy, read only now.
    pub async fn entry(
        &self,
        recipient: &str,
        row: &DeliveryRow,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        let Some(m) = self.engine.message(&row.message_id).await? else {
            return Ok(None);
        };
        m.copies
            .iter()
            .find(|c| c.recipient == recipient)
            .map(|c| outbox_entry(&m, c, row))
            .transpose()
    }

    /// Up to `limit` entries waiting for `recipient`, oldest first, one per case; each is hidden
    /// for `visibility` unless acknowledged.
    pub async fn take_inbox(
        &self,
        recipient: &str,
        limit: usize,
        visibility: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let _one = self.taking.lock().await;
        // an offered, unacknowledged entry (by any node) stays hidden and holds its case back
        let (heads, _) = self
            .leased_heads(recipient, i64::MAX, limit, &HashSet::new(), visibility)
            .await?;
        let mut taken = Vec::with_capacity(heads.len());
        for (seq, row) in &heads {
            if let Some(e) = self
                .entry_or_dead_letter(recipient, *seq, row, "inbox")
                .await?
            {
                taken.push(e);
            }
        }
        Ok(taken)
    }

    /// A push worker's next attempts: up to `want` case heads of `recipient` due at `now_ms`
    /// and not in `in_flight`, each leased to this node for an attempt's lease period, and
    /// when the next head not yet due falls due (see [`Store::due_heads`]).
    pub async fn lease_due(
        &self,
        recipient: &str,
        now_ms: i64,
        want: usize,
        in_flight: &HashSet<u64>,
    ) -> Result<(Vec<(u64, DeliveryRow)>, Option<i64>), StoreError> {
        self.leased_heads(recipient, now_ms, want, in_flight, self.lease_period)
            .await
    }

    /// Whether this node is the one to run the store-wide job `job` (retention) for the next
    /// `period`: a lease of the job, taken or renewed, which no authority's name can collide with
    /// (`~jobs` is not a slug). With several nodes on one store one runs it at a time; should
    /// that node die, another takes the job once the lease ends.
    pub async fn hold_job(&self, job: u64, period: Duration) -> Result<bool, StoreError> {
        let granted = self.engine.lease(JOBS, &[job], &self.node, period).await?;
        Ok(granted == [job])
    }

    /// Ends this node's lease of an entry (its attempt is recorded).
    pub async fn release(&self, recipient: &str, seq: u64) -> Result<(), StoreError> {
        self.engine.release(recipient, seq, Some(&self.node)).await
    }

    /// Case heads due at `now_ms` that no node holds, leased to this one for `period`. An
    /// entry leased by any node holds its case back. A head is read again once leased (another
    /// node may have delivered it between), and only one still waiting and due is returned.
    async fn leased_heads(
        &self,
        recipient: &str,
        now_ms: i64,
        want: usize,
        in_flight: &HashSet<u64>,
        period: Duration,
    ) -> Result<(Vec<(u64, DeliveryRow)>, Option<i64>), StoreError> {
        if want == 0 {
            return Ok((Vec::new(), None));
        }
        let mut busy = in_flight.clone();
        busy.extend(
            self.engine
                .leased(recipient)
                .await?
                .into_iter()
                .map(|(s, _)| s),
        );
        let (heads, next_due) = self.due_heads(recipient, now_ms, want, &busy).await?;
        if heads.is_empty() {
            return Ok((heads, next_due));
        }
        let seqs: Vec<u64> = heads.iter().map(|(s, _)| *s).collect();
        let granted: HashSet<u64> = self
            .engine
            .lease(recipient, &seqs, &self.node, period)
            .await?
            .into_iter()
            .collect();
        let mut out = Vec::with_capacity(granted.len());
        for (seq, _) in heads {
            if !granted.contains(&seq) {
                continue;
            }
            match self.engine.delivery(recipient, seq).await? {
                Some(row)
                    if Class::of(row.state) == Class::Waiting
                        && row.next_attempt_at_ms.unwrap_or(0) <= now_ms =>
                {
                    out.push((seq, row))
                }
                _ => {
                    self.engine
                        .release(recipient, seq, Some(&self.node))
                        .await?
                }
            }
        }
        Ok((out, next_due))
    }

    /// Up to `want` case heads of `recipient` due at `now_ms` (a push worker's next attempts, or
    /// an inbox take's entries), oldest first, as (seq, delivery row), and when the next head not
    /// yet due falls due. A head in `busy` (in flight, or offered and not acknowledged) holds its
    /// case back and is not returned; later entries of a case wait for the one before them. The walk stops as soon as `want` heads are found and reads at
    /// most [`WALK`] rows; no body is read: [`Store::entry`] reads the ones the worker starts.
    pub async fn due_heads(
        &self,
        recipient: &str,
        now_ms: i64,
        want: usize,
        busy: &HashSet<u64>,
    ) -> Result<(Vec<(u64, DeliveryRow)>, Option<i64>), StoreError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut next_due: Option<i64> = None;
        let mut after: Option<Cursor> = None;
        let mut walked = 0;
        if want == 0 {
            return Ok((out, None));
        }
        loop {
            let page = self
                .engine
                .deliveries(Class::Waiting, Some(recipient), after.as_ref(), PAGE)
                .await?;
            let full = page.len() == PAGE;
            for (cursor, _, seq, row) in page {
                after = Some(cursor);
                walked += 1;
                if !seen.insert(row.case.clone()) || busy.contains(&seq) {
                    continue;
                }
                let due = row.next_attempt_at_ms.unwrap_or(0);
                if due > now_ms {
                    next_due = Some(next_due.map_or(due, |n| n.min(due)));
                    continue;
                }
                out.push((seq, row));
                if out.len() >= want {
                    // more may be due: look again as soon as a slot is free
                    return Ok((out, Some(now_ms)));
                }
            }
            if !full {
                break;
            }
            if walked >= WALK {
                // the rest is read on a later wake-up
                next_due = Some(next_due.map_or(now_ms + 1000, |n| n.min(now_ms + 1000)));
                break;
            }
        }
        Ok((out, next_due))
    }

    /// Writes an entry's delivery state, with its audit entry; a final state removes it from the
    /// waiting entries.
    pub async fn record_delivery(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let e = Box::new(entry.clone());
        self.ask(|r| writer::Cmd::Deliver(e, r)).await
    }

    /// Marks `recipient`'s entry of message `id` acknowledged; `None` when there is none.
    pub async fn ack(
        &self,
        recipient: &str,
        id: &Uuid,
        at: i64,
    ) -> Result<Option<AckOutcome>, StoreError> {
        let out = self
            .ask(|reply| writer::Cmd::Ack {
                recipient: recipient.to_string(),
                id: *id,
                at,
                reply,
            })
            .await?;
        // the writer read the message: its sequence number comes with the answer
        if let Some((_, seq)) = out {
            self.engine.release(recipient, seq, None).await?;
        }
        Ok(out.map(|(outcome, _)| outcome))
    }

    /// Notified whenever `recipient`'s waiting entries change (added, released, delivered,
    /// acknowledged); a change for another recipient does not wake it.
    pub fn signal(&self, recipient: &str) -> Arc<Notify> {
        self.writer.shared.signals.of(recipient)
    }

    /// Durable writes made, and the batches they covered.
    pub fn flush_stats(&self) -> FlushStats {
        self.engine.flush_stats()
    }

    /// Changes waiting for the writer now: past `store.commit_queue_max` the store is behind and
    /// new submissions are refused with 503 until it catches up.
    pub fn commit_queue(&self) -> usize {
        self.writer
            .shared
            .queued
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the store can take work now (no scan, no read).
    pub fn ready(&self) -> Result<(), StoreError> {
        self.engine.ready()
    }

    /// Every waiting entry, from the counts the writer keeps (no scan).
    pub fn pending_count(&self) -> usize {
        self.counts().values().map(|c| c.waiting as usize).sum()
    }

    /// The counts of every recipient, as kept with each write.
    pub fn counts(&self) -> BTreeMap<String, Counts> {
        self.writer
            .shared
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Entries waiting for `recipient` and the `received_at` of the oldest (for `/metrics`),
    /// from what the writer keeps (no scan).
    pub fn outbox_depth(&self, recipient: &str) -> (usize, Option<String>) {
        let waiting = self
            .counts()
            .get(recipient)
            .map_or(0, |c| c.waiting as usize);
        let oldest = self
            .writer
            .shared
            .oldest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(recipient)
            .cloned();
        (waiting, oldest.filter(|_| waiting > 0))
    }

    /// The messages of one case (`correlation_id`), in acceptance order.
    pub async fn case_messages(
        &self,
        correlation_id: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        for id in self.engine.case(correlation_id).await? {
            if let Some(m) = self.engine.message(&id).await? {
                out.push(stored_message(&m)?);
            }
        }
        Ok(out)
    }

    /// Changes message `id`'s record with `amend`, which sees it as it stands in the writer's
    /// order (no other change of the record comes between) and returns the audit entries of its
    /// change, none where there is nothing to change, or `Err` where the change does not apply.
    pub async fn amend(
        &self,
        id: Uuid,
        amend: impl FnOnce(&mut MessageRec) -> Result<Option<Vec<Record>>, DoesNotApply>
        + Send
        + 'static,
    ) -> Result<Amended, StoreError> {
        self.ask(|r| writer::Cmd::Amend(id, Box::new(amend), r))
            .await
    }

    /// Appends audit entries on their own (operations that change no other state).
    pub async fn audit(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.ask(|r| writer::Cmd::Write(vec![], records, r)).await
    }

    /// Up to `limit` audit entries from `from_seq` on, in order.
    pub async fn audit_entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.engine.audit(from_seq, limit).await
    }

    /// Every audit entry naming this subject pseudonym, in order.
    pub async fn audit_by_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError> {
        self.engine.audit_of_subject(subject).await
    }

    /// The head of the audit chain.
    pub fn audit_head(&self) -> Head {
        self.writer
            .shared
            .head
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Signed checkpoints, `(seq, compact JWS)`, in order.
    pub async fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.engine.checkpoints().await
    }

    pub async fn put_checkpoint(&self, seq: u64, jws: &str) -> Result<(), StoreError> {
        let op = Op::PutCheckpoint {
            seq,
            jws: jws.to_string(),
        };
        self.ask(|r| writer::Cmd::Write(vec![op], vec![], r)).await
    }

    /// Verifies the audit log against its checkpoints and these public keys, page by page (in
    /// bounded memory, however long the log).
    pub async fn verify_audit(
        &self,
        keys: &[josekit::jwk::Jwk],
    ) -> Result<Result<crate::audit::verify::Report, crate::audit::verify::Bad>, StoreError> {
        self.verify_audit_counting(keys, &std::sync::atomic::AtomicU64::new(0))
            .await
    }

    /// As [`Store::verify_audit`], adding to `checked` each entry as it is verified (for a
    /// progress bar).
    pub async fn verify_audit_counting(
        &self,
        keys: &[josekit::jwk::Jwk],
        checked: &std::sync::atomic::AtomicU64,
    ) -> Result<Result<crate::audit::verify::Report, crate::audit::verify::Bad>, StoreError> {
        let checkpoints = self.checkpoints().await?;
        let mut v = match crate::audit::verify::Verifier::new(&checkpoints, keys) {
            Ok(v) => v,
            Err(bad) => return Ok(Err(bad)),
        };
        let mut from = 0;
        loop {
            let page = self.engine.audit(from, 4096).await?;
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            let full = page.len() == 4096;
            for e in &page {
                let bytes = serde_json::to_vec(e).expect("entries serialise");
                if let Err(bad) = v.feed(e.seq, &bytes) {
                    return Ok(Err(bad));
                }
            }
            checked.fetch_add(page.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if !full {
                break;
            }
        }
        Ok(v.finish())
    }

    /// Every signing key the gateway has used: `{"jwk": {…}, "retired_at": unix seconds|null}`.
    pub async fn signing_keys(&self) -> Result<Vec<Value>, StoreError> {
        self.engine.signing_keys().await
    }

    /// Records a key (and when it was retired, if it was).
    pub async fn put_signing_key(&self, kid: &str, record: &Value) -> Result<(), StoreError> {
        let op = Op::PutSigningKey {
            kid: kid.to_string(),
            record: record.clone(),
        };
        self.ask(|r| writer::Cmd::Write(vec![op], vec![], r)).await
    }

    /// Up to `limit` messages after `after` (by id, which is time order).
    pub async fn messages_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let page = self.engine.messages(after, limit).await?;
        let mut out = Vec::new();
        for m in self.readable(page, "listing") {
            match stored_message(&m) {
                Ok(s) => out.push(s),
                Err(e) => self.report_unreadable(m.id, None, "listing", &e.to_string()),
            }
        }
        Ok(out)
    }

    /// Up to `limit` entries in `state` after the cursor `after`, with their cursors.
    pub async fn entries_in_state(
        &self,
        state: DeliveryState,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, OutboxEntry)>, StoreError> {
        let mut out = Vec::new();
        let mut after = after;
        while out.len() < limit {
            let page = self
                .engine
                .deliveries(Class::of(state), None, after.as_ref(), PAGE)
                .await?;
            let full = page.len() == PAGE;
            for (cursor, recipient, _, row) in page {
                after = Some(cursor.clone());
                if row.state != state {
                    continue;
                }
                match self.entry(&recipient, &row).await {
                    Ok(Some(e)) => {
                        out.push((cursor, e));
                        if out.len() >= limit {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) if !e.is_transient() => {
                        self.report_unreadable(
                            row.message_id,
                            Some(&recipient),
                            "listing",
                            &e.to_string(),
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Puts an entry back in line for delivery (its new copy, queued), with its audit entries.
    pub async fn requeue(&self, entry: &OutboxEntry, audit: Vec<Record>) -> Result<(), StoreError> {
        let e = Box::new(entry.clone());
        self.ask(|r| writer::Cmd::Requeue(e, audit, r)).await?;
        self.engine.release(&entry.recipient, entry.seq, None).await
    }

    /// One pass of retention over the messages after `from` received before `cut`: metadata
    /// removed, or bodies emptied. Returns where the next bodies' pass may start: after the
    /// messages, from the first listed, whose bodies are all gone.
    async fn retain(
        &self,
        pass: Pass,
        from: Option<Uuid>,
        cut: i64,
        done: &mut Purged,
        reported: &mut std::collections::BTreeSet<Uuid>,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut after = from;
        // every body up to here is gone
        let mut gone_through = from;
        let mut all_gone = true;
        'pages: loop {
            let page = self.engine.messages(after, PAGE).await?;
            let full = page.len() == PAGE;
            for listed in page {
                let m = match listed {
                    Ok(m) => m,
                    Err(u) => {
                        after = Some(u.id);
                        all_gone = false;
                        if reported.insert(u.id) {
                            self.report_unreadable(u.id, None, "retention", &u.error);
                            done.unreadable += 1;
                        }
                        continue;
                    }
                };
                after = Some(m.id);
                let Ok(received) =
                    chrono::DateTime::parse_from_rfc3339(&m.received_at).map(|t| t.timestamp())
                else {
                    tracing::warn!(message_id = %m.id, "retention skipped a message whose time is unreadable");
                    all_gone = false;
                    continue;
                };
                if received >= cut {
                    break 'pages;
                }
                // a body once gone stays gone: nothing of its deliveries to read
                if let Pass::Bodies = pass
                    && m.canonical.is_empty()
                {
                    if all_gone {
                        gone_through = Some(m.id);
                    }
                    continue;
                }
                let mut rows = Vec::new();
                let mut unreadable = None;
                for c in &m.copies {
                    match self.engine.delivery(&c.recipient, m.seq).await {
                        Ok(Some(r)) => rows.push(r),
                        Ok(None) => {}
                        Err(e) if !e.is_transient() => unreadable = Some(e.to_string()),
                        Err(e) => return Err(e),
                    }
                }
                if let Some(error) = unreadable {
                    all_gone = false;
                    if reported.insert(m.id) {
                        self.report_unreadable(m.id, None, "retention", &error);
                        done.unreadable += 1;
                    }
                    continue;
                }
                let about = |detail: &str| {
                    Record::new(Event::Purged, "gateway")
                        .message(m.id, &m.message_type, None)
                        .subjects(&m.subjects)
                        .detail(detail.to_string())
                };
                // a body is kept while any copy still waits
                let ended = rows.iter().all(|d| d.state.is_final());
                match pass {
                    Pass::Metadata if ended => {
                        let op = Op::RemoveMessage {
                            id: m.id,
                            seq: m.seq,
                            sender: m.sender.clone(),
                            source_document_id: m.source_document_id.clone(),
                            case: m.correlation_id.clone(),
                            recipients: m.copies.iter().map(|c| c.recipient.clone()).collect(),
                        };
                        let audit = vec![about("metadata and deliveries")];
                        self.ask(|r| writer::Cmd::Write(vec![op], audit, r)).await?;
                        done.messages += 1;
                    }
                    Pass::Bodies if ended => {
                        let last = rows
                            .iter()
                            .filter_map(|d| d.delivered_at.or(d.acked_at))
                            .max()
                            .unwrap_or(received)
                            .max(received);
                        if last < cut {
                            let op = Op::PutMessage(Box::new(without_bodies(&m)));
                            let audit = vec![about("body")];
                            self.ask(|r| writer::Cmd::Write(vec![op], audit, r)).await?;
                            done.bodies += 1;
                        } else {
                            all_gone = false;
                        }
                    }
                    _ => all_gone = false,
                }
                if all_gone {
                    gone_through = Some(m.id);
                }
            }
            if !full {
                break;
            }
        }
        Ok(gone_through)
    }

    /// Retention at `now` (Unix seconds): bodies of messages whose deliveries have all ended
    /// more than `body_days` ago, metadata of messages older than `audit_days`, and audit
    /// entries older than `audit_days` up to a checkpoint. Each purge is audited. A message that
    /// cannot be read is skipped and counted, and retention goes on with the next.
    ///
    /// Message ids are UUIDv7, so the engine lists messages in the order they were received: a
    /// pass stops at the first message received after its cut, and the bodies' pass starts where
    /// the last one found the first body it had to keep: a purge reads what it may act on, not
    /// everything stored.
    pub async fn purge(
        &self,
        now: i64,
        body_days: u32,
        audit_days: u32,
    ) -> Result<Purged, StoreError> {
        let mut done = Purged::default();
        let body_cut = now - i64::from(body_days) * 86_400;
        let meta_cut = now - i64::from(audit_days) * 86_400;
        let mut reported = std::collections::BTreeSet::new();
        self.retain(Pass::Metadata, None, meta_cut, &mut done, &mut reported)
            .await?;
        let from = *self
            .bodies_gone_through
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let gone_through = self
            .retain(Pass::Bodies, from, body_cut, &mut done, &mut reported)
            .await?;
        *self
            .bodies_gone_through
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = gone_through;
        // audit entries past the audit retention go up to the newest checkpoint before the cut,
        // which stays as the anchor the remaining log starts from
        let mut anchor = None;
        for (seq, _) in self.checkpoints().await? {
            let Some(e) = self.engine.audit(seq, 1).await?.into_iter().next() else {
                continue;
            };
            if e.seq != seq {
                continue;
            }
            let at = chrono::DateTime::parse_from_rfc3339(&e.at)
                .map(|t| t.timestamp())
                .unwrap_or(i64::MAX);
            if at < meta_cut {
                anchor = Some(seq);
            }
        }
        if let Some(anchor) = anchor {
            let first = self
                .engine
                .audit(0, 1)
                .await?
                .first()
                .map_or(anchor, |e| e.seq);
            let removed = (anchor + 1).saturating_sub(first);
            let audit = vec![
                Record::new(Event::Purged, "gateway")
                    .detail(format!("audit entries up to seq {anchor} ({removed})")),
            ];
            self.ask(|r| writer::Cmd::Write(vec![Op::RemoveAuditThrough(anchor)], audit, r))
                .await?;
            done.audit_entries = removed;
        }
        Ok(done)
    }
}
