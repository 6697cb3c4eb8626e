//! The path of one message after decoding: validate → authorize → route → per recipient
//! (minimise → encode → sign) → store durably → receipt.

use std::sync::Arc;

use jxg_adapters::registry::Adapter;
use jxg_adapters::{Context, DecodeError};
use jxg_schema::message::{WITHDRAWN, WithdrawalReason};
use jxg_schema::values::Instant;
use jxg_schema::{Document, MasterData, Message, Withdrawal, validate};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Event, Record};
use crate::config::Config;
use crate::policy::PolicyStore;
use crate::revision;
use crate::routing;
use crate::signing::{DeliveryClaims, Signer, sha256_b64};
use crate::store::{
    AcceptOutcome, Acceptance, OutboxEntry, Skipped, Store, StoreError, StoredMessage,
};
use crate::telemetry::{metrics, stage};
use opentelemetry::KeyValue;
use tracing::Instrument;

/// The stretches of a case whose durations are exported (`jxg_case_stage_duration_seconds`):
/// report → indictment, indictment → verdict, verdict → admission.
pub const CASE_STAGES: [(&str, &str); 3] = [
    ("offence.reported", "indictment.filed"),
    ("indictment.filed", "verdict.issued"),
    ("verdict.issued", "custody.admitted"),
];

fn decision(policy: &str, effect: &'static str) {
    metrics().policy_decisions.add(
        1,
        &[
            KeyValue::new("policy", policy.to_string()),
            KeyValue::new("effect", effect),
        ],
    );
}

/// What the caller is told.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 202: accepted now.
    Accepted(Value),
    /// 200 with `JXG-Duplicate: true`: the first answer again.
    Duplicate(Value),
}

/// Decode and full validation, as the gateway and `jxg convert` both run it.
pub fn decode_document(
    adapter: &dyn Adapter,
    bytes: &[u8],
    md: &MasterData,
) -> Result<Message, DecodeError> {
    let m = {
        let _s = stage("decode");
        adapter.decode(bytes, &Context { master_data: md })?
    };
    let _s = stage("validate");
    check_semantics(m, md)
}

/// As [`decode_document`], for any document the format has: a message (perhaps a correction)
/// or a withdrawal.
pub fn decode_any(
    adapter: &dyn Adapter,
    bytes: &[u8],
    md: &MasterData,
) -> Result<Document, DecodeError> {
    let d = {
        let _s = stage("decode");
        adapter.decode_document(bytes, &Context { master_data: md })?
    };
    let _s = stage("validate");
    match d {
        Document::Message(m) => check_semantics(m, md).map(Document::Message),
        w => Ok(w),
    }
}

/// The rules a schema cannot state, after any decode (docs/formats/canonical-v1.md).
pub fn check_semantics(m: Message, md: &MasterData) -> Result<Message, DecodeError> {
    let t = m.message_type();
    validate::semantic(&m, md)
        .into_result(m)
        .map_err(|v| DecodeError::invalid(Some(t), v))
}

/// Why a message was not accepted: the domain's own errors. The HTTP layer maps them to
/// problem+json in one place (`jxg_gateway::ingress::problem`), the AMQP consumer to its
/// acknowledgement in one place (`jxg_gateway::ingress::amqp`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    /// The document cannot be read, or breaks a rule: which field, and why.
    #[error("the document was refused")]
    Document(jxg_adapters::Rejection),
    /// A policy does not allow it.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The sender's document id was used before with other content.
    #[error("{0}")]
    Conflict(String),
    /// The store is behind with its writes; nothing was accepted.
    #[error("the store is behind with its writes")]
    StoreBehind,
    /// Signing failed; nothing was accepted.
    #[error("signing failed")]
    Signing,
    /// The store failed; nothing was accepted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refused {
    /// Whether the same document may be accepted when tried again later (the gateway's state,
    /// not the document, stood in the way).
    pub fn is_transient(&self) -> bool {
        match self {
            Refused::StoreBehind | Refused::Signing => true,
            Refused::Store(e) => e.is_transient(),
            Refused::Document(_) | Refused::Forbidden(_) | Refused::Conflict(_) => false,
        }
    }
}

/// Turns a decode failure into its refusal, checking first that the sender may send the type
/// (a type it may only receive is forbidden whatever else is wrong with the document).
pub fn rejection(e: DecodeError, sender: &str, policies: &PolicyStore) -> Refused {
    if let Some(t) = e.message_type {
        if let Err(r) = policies.current().may_send_type(sender, t) {
            return Refused::Forbidden(r.reason);
        }
    }
    Refused::Document(e.rejection)
}

/// What every recipient's copy of one message starts from, made once per message: its body as
/// JSON (what the disclosure rules work on) and the pseudonyms of the persons in it.
#[derive(Debug, Clone)]
pub struct Shape {
    body: Value,
    pub subjects: Vec<String>,
}

/// One recipient's copy of a message: decided, minimised, encoded and signed.
#[derive(Debug, Clone)]
pub struct PreparedCopy {
    pub bytes: Vec<u8>,
    pub format: String,
    pub media_type: String,
    /// Detached JWS of `bytes`.
    pub signature: String,
    /// Where the recipient's format altered the message (places only).
    pub alterations: Vec<String>,
    /// What the disclosure rules removed for this recipient, with the rule (paths only).
    pub removed: Vec<crate::policy::Removal>,
    /// Audit pseudonyms of the persons in this copy.
    pub subjects: Vec<String>,
    /// The policies that permitted the recipient.
    pub permitted_by: Vec<String>,
}

/// The message a copy belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub message_id: Uuid,
    pub seq: u64,
    pub message_type: &'a str,
    pub correlation_id: &'a str,
    pub received_at: &'a str,
    pub traceparent: Option<&'a str>,
}

impl PreparedCopy {
    /// The copy as an outbox entry of `recipient`, waiting for its first attempt.
    pub fn entry(self, m: &Meta<'_>, recipient: &str) -> OutboxEntry {
        OutboxEntry {
            message_id: m.message_id,
            seq: m.seq,
            recipient: recipient.to_string(),
            format: self.format,
            media_type: self.media_type,
            message_type: m.message_type.to_string(),
            correlation_id: m.correlation_id.to_string(),
            received_at: m.received_at.to_string(),
            content: self.bytes,
            signature: self.signature,
            traceparent: m.traceparent.map(String::from),
            acked_at: None,
            state: Default::default(),
            attempts: 0,
            next_attempt_at_ms: None,
            last_error: None,
            delivered_at: None,
            alterations: self.alterations,
            removed: self.removed,
            subjects: self.subjects,
        }
    }
}

/// Why a recipient gets no copy.
#[derive(Debug, Clone)]
pub enum NoCopy {
    /// A policy does not let the recipient have the message.
    Refused(crate::policy::Refusal),
    /// Permitted, but its disclosure profile cannot be applied (it would hide a field the
    /// recipient's format requires).
    Unminimisable {
        permitted_by: Vec<String>,
        refusal: crate::policy::Refusal,
    },
    /// Permitted and minimised, but the recipient's format cannot express it.
    Unencodable {
        permitted_by: Vec<String>,
        removed: Vec<crate::policy::Removal>,
        error: String,
    },
    /// Signing failed: nothing may be accepted.
    Signing,
}

/// The audit records of what each disclosure rule removed for `recipient` (places only).
fn minimised(
    about: &dyn Fn(Event, &str) -> Record,
    recipient: &str,
    removed: &[crate::policy::Removal],
) -> Vec<Record> {
    let mut by_rule: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for r in removed {
        by_rule
            .entry(r.rule.as_str())
            .or_default()
            .push(r.path.as_str());
    }
    by_rule
        .into_iter()
        .map(|(rule, paths)| {
            decision(rule, "minimise");
            about(Event::Minimised, "gateway")
                .recipient(recipient)
                .rule(rule)
                .detail(format!("removed {}", paths.join(" ")))
        })
        .collect()
}

/// What [`Pipeline::commit`] writes: a message decided and prepared, with its copies.
struct Accepted<'a> {
    id: Uuid,
    /// A correction's or withdrawal's message acted on.
    acts_on: Option<Uuid>,
    /// A withdrawal for erasure: the message acted on is erased with it.
    erase: bool,
    sender: &'a str,
    message_type: &'a str,
    source_document_id: &'a str,
    received_at: Instant,
    correlation_id: &'a str,
    body_sha256: String,
    canonical: Vec<u8>,
    subjects: Vec<String>,
    skipped: Vec<Skipped>,
    traceparent: Option<String>,
    sender_signature: Option<String>,
    policy_digest: &'a str,
    entries: Vec<OutboxEntry>,
    audit: Vec<Record>,
    /// The `received` record, its detail written at commit.
    audit_record: Record,
}

/// The detached signature of one recipient's copy.
fn sign_copy(signer: &Signer, bytes: &[u8], claims: DeliveryClaims<'_>) -> Result<String, NoCopy> {
    let _s = stage("sign");
    signer.detached(bytes, claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        NoCopy::Signing
    })
}

/// Counts what each recipient of an accepted correction or withdrawal was told.
fn count_rectification(kind: &'static str, tally: &[&'static str]) {
    for told in tally {
        metrics().rectifications.add(
            1,
            &[KeyValue::new("kind", kind), KeyValue::new("told", *told)],
        );
    }
}

/// May `sender` correct or withdraw `o`?
fn may_correct(
    policy: &crate::policy::Policies,
    sender: &str,
    o: &revision::Original,
) -> Result<(), Refused> {
    let _s = stage("authorize");
    policy
        .may_correct(sender, &o.stored.sender, &o.message)
        .map(|_| ())
        .map_err(|r| {
            decision(&r.rule, "forbid");
            Refused::Forbidden(r.reason)
        })
}

/// The gateway's state for the pipeline.
pub struct Pipeline {
    pub config: Config,
    /// The configuration's authorities, compiled: what the request path looks up.
    pub registry: std::sync::Arc<crate::registry::Registry>,
    pub store: Arc<Store>,
    /// The signing key in force; a rotation swaps it.
    pub signer: arc_swap::ArcSwap<Signer>,
    pub master_data: MasterData,
    /// The policy set in force; each message keeps the set it started with.
    pub policies: PolicyStore,
    /// CPR numbers → audit pseudonyms.
    pub pseudonyms: crate::audit::Pseudonyms,
    /// Each authority's registered public keys, for `application/jose` submissions.
    pub sender_keys: std::collections::BTreeMap<String, Vec<josekit::jwk::Jwk>>,
}

impl Pipeline {
    /// The published keys: the current one and every key retired within the body retention
    /// (copies it signed may still be waiting or kept).
    pub async fn jwks(&self) -> Value {
        let current = self.signer.load().jwks();
        let mut keys = current["keys"].as_array().cloned().unwrap_or_default();
        let horizon =
            chrono::Utc::now().timestamp() - i64::from(self.config.retention.body_days) * 86_400;
        if let Ok(records) = self.store.signing_keys().await {
            for r in records {
                let recent = r["retired_at"].as_i64().is_some_and(|t| t >= horizon);
                if recent && !keys.iter().any(|k| k["kid"] == r["jwk"]["kid"]) {
                    keys.push(r["jwk"].clone());
                }
            }
        }
        json!({ "keys": keys })
    }

    /// The start of every copy of `m` (see [`Shape`]).
    pub fn shape(&self, m: &Message) -> Shape {
        let body = m.body.to_json();
        Shape {
            subjects: self.pseudonyms.subjects_in(&body),
            body,
        }
    }

    /// What accepting and replaying a message both do for each recipient: decide under
    /// `policy`, minimise to the recipient's profile, encode in its format and sign with
    /// `signer` (`issued_at` in the signature's claims).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_copy(
        &self,
        policy: &crate::policy::Policies,
        signer: &Signer,
        sender: &str,
        m: &Message,
        shape: &Shape,
        to: &crate::registry::Entry,
        id: Uuid,
        issued_at: i64,
    ) -> Result<PreparedCopy, NoCopy> {
        let recipient = to.id.as_str();
        let verdict = {
            let _s = stage("authorize");
            policy.may_receive(recipient, sender, m)
        };
        let permitted_by = match verdict {
            Ok(v) => {
                for p in &v.policies {
                    decision(p, "permit");
                }
                v.policies
            }
            Err(r) => {
                decision(&r.rule, "forbid");
                return Err(NoCopy::Refused(r));
            }
        };
        let minimised = {
            let _s = stage("minimise");
            policy.minimise_json(recipient, &to.clearances, m, &shape.body)
        };
        let (view, left) = minimised.map_err(|refusal| NoCopy::Unminimisable {
            permitted_by: permitted_by.clone(),
            refusal,
        })?;
        let adapter = to.adapter;
        let encoded = {
            let _s = stage("encode");
            adapter.encode_noting(
                &view.message,
                &Context {
                    master_data: &self.master_data,
                },
            )
        };
        let (bytes, alterations) = match encoded {
            Ok(b) => b,
            Err(e) => {
                return Err(NoCopy::Unencodable {
                    permitted_by,
                    removed: view.removed,
                    error: e.to_string(),
                });
            }
        };
        let signature = sign_copy(
            signer,
            &bytes,
            DeliveryClaims {
                message_id: &id.to_string(),
                message_type: m.message_type().as_str(),
                recipient,
                issued_at,
            },
        )?;
        Ok(PreparedCopy {
            subjects: match left {
                Some(body) => self.pseudonyms.subjects_in(&body),
                None => shape.subjects.clone(),
            },
            bytes,
            format: adapter.name().to_string(),
            media_type: adapter.media_type().to_string(),
            signature,
            alterations,
            removed: view.removed,
            permitted_by,
        })
    }

    /// Accepts a decoded message from `sender`: every later stage, then a durable commit.
    pub async fn accept(
        &self,
        sender: &str,
        m: Message,
        body: &[u8],
        traceparent: Option<String>,
    ) -> Result<Answer, Refused> {
        self.accept_signed(sender, m, body, traceparent, None).await
    }

    /// Accepts any decoded document: a message, a correction or a withdrawal.
    pub async fn accept_document(
        &self,
        sender: &str,
        d: Document,
        body: &[u8],
        traceparent: Option<String>,
        sender_signature: Option<String>,
    ) -> Result<Answer, Refused> {
        match d {
            Document::Message(m) => {
                self.accept_signed(sender, m, body, traceparent, sender_signature)
                    .await
            }
            Document::Withdrawal(w) => {
                self.accept_withdrawal(sender, w, body, traceparent, sender_signature)
                    .await
            }
        }
    }

    /// As [`Pipeline::accept`], keeping the sender's own signature (the request body, a compact
    /// JWS) with the message. A message with `replaces` is a correction (see [`crate::revision`]).
    pub async fn accept_signed(
        &self,
        sender: &str,
        mut m: Message,
        body: &[u8],
        traceparent: Option<String>,
        sender_signature: Option<String>,
    ) -> Result<Answer, Refused> {
        self.refuse_while_behind()?;
        let t = m.message_type();
        let policy = self.policies.current();
        let signer = self.signer.load_full();
        let body_sha256 = sha256_b64(body);
        // a correction acts on the latest version of a message; it is resolved after the
        // idempotency check, so that the same correction sent again gets its first answer
        let original = match m.replaces.clone() {
            None => None,
            Some(r) => {
                if let Some(a) = self
                    .repeated(sender, &m.source_document_id, &body_sha256)
                    .await?
                {
                    return Ok(a);
                }
                let o = revision::original(
                    &self.store,
                    sender,
                    r.message_id,
                    r.source_document_id.as_deref(),
                    "replaces",
                )
                .await?;
                may_correct(&policy, sender, &o)?;
                revision::check_same(&m, &o)?;
                m.replaces = Some(o.replaces(r.reason));
                Some(o)
            }
        };
        // a correction is decided as a message of the authority whose message it replaces
        let on_behalf = original
            .as_ref()
            .map_or(sender, |o| o.stored.sender.as_str());
        {
            let _s = stage("authorize");
            policy.may_send(on_behalf, &m).map_err(|r| {
                decision(&r.rule, "forbid");
                Refused::Forbidden(r.reason)
            })?;
        }
        if original.is_none() {
            if let Some(a) = self
                .repeated(sender, &m.source_document_id, &body_sha256)
                .await?
            {
                return Ok(a);
            }
        }
        let id = Uuid::now_v7();
        let received_at = Instant::now();
        m.id = Some(id);
        m.received_at = Some(received_at);
        m.sender = Some(sender.to_string());
        self.record_span(id, &m.correlation_id);
        // the writer gives the message its sequence number
        let seq = 0;
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        let proposed = {
            let _s = stage("route");
            routing::default_recipients(&m)
        };
        // every recipient the routing proposes, then every other that holds the message replaced
        let mut candidates: Vec<(String, bool)> = proposed
            .iter()
            .map(|r| (r.as_str().to_string(), true))
            .collect();
        if let Some(o) = &original {
            for h in &o.holders {
                if !candidates.iter().any(|(c, _)| c == h) {
                    candidates.push((h.clone(), false));
                }
            }
        }
        // a recipient that was never given the message replaced gets the correction as new
        let fresh = original.as_ref().map(|_| Message {
            replaces: None,
            ..m.clone()
        });
        let mut refused = Vec::new();
        let shape = self.shape(&m);
        let subjects = &shape.subjects;
        // a correction is about the persons of the message it replaces too (a wrong person's
        // subject access shows that their data was corrected away)
        let mut concerned = subjects.clone();
        if let Some(o) = &original {
            for s in &o.stored.subjects {
                if !concerned.contains(s) {
                    concerned.push(s.clone());
                }
            }
        }
        let purpose = m.purpose.as_str();
        let about = |event, actor: &str| {
            Record::new(event, actor)
                .message(id, t.as_str(), Some(purpose))
                .subjects(&concerned)
        };
        let mut audit = vec![];
        // what each recipient of a correction is told, counted once it is accepted
        let mut tally: Vec<&'static str> = vec![];
        let received = received_at.to_string();
        let correlation_id = m.correlation_id.clone();
        let meta = |message_type| Meta {
            message_id: id,
            seq,
            message_type,
            correlation_id: &correlation_id,
            received_at: &received,
            traceparent: traceparent.as_deref(),
        };
        for (recipient, routed) in &candidates {
            let recipient = recipient.as_str();
            let decided = about(Event::Decided, "gateway").recipient(recipient);
            let Some(to) = self
                .registry
                .lookup(recipient)
                .map(|a| self.registry.entry(&a))
            else {
                skipped.push(Skipped::new(recipient, "not registered"));
                audit.push(decided.detail("skipped: not registered"));
                continue;
            };
            let issued_at = received_at.unix_seconds();
            let told = original.as_ref().and_then(|o| {
                let may = *routed && policy.may_receive(recipient, on_behalf, &m).is_ok();
                revision::told(o, recipient, *routed, may)
            });
            match (told, &original) {
                (Some(revision::Told::Withdrawal), Some(o)) => {
                    let w = o.withdrawal(
                        id,
                        sender,
                        &m.source_document_id,
                        m.occurred_at,
                        received_at,
                        WithdrawalReason::Erasure,
                    );
                    let about_o = |event| {
                        about(event, "gateway")
                            .recipient(recipient)
                            .subjects(&o.stored.subjects)
                    };
                    match self.withdrawal_copy(&signer, &w, to, issued_at) {
                        Ok(copy) => {
                            audit.push(about_o(Event::Decided).detail(format!(
                                "withdrawal of {} for erasure: may not hold the correction",
                                o.stored.id
                            )));
                            audit.push(about_o(Event::Queued).detail(format!(
                                "{}, {} bytes",
                                copy.format,
                                copy.bytes.len()
                            )));
                            let mut e = copy.entry(&meta(WITHDRAWN), recipient);
                            e.subjects = o.stored.subjects.clone();
                            entries.push(e);
                            tally.push("withdrawal");
                        }
                        Err(NoCopy::Signing) => return Err(Refused::Signing),
                        Err(_) => {
                            let why = format!("{} cannot carry a withdrawal", to.adapter.name());
                            audit.push(about_o(Event::Decided).detail(format!(
                                "{}: withdrawal of {} for erasure: {why}",
                                revision::FLAGGED,
                                o.stored.id
                            )));
                            skipped.push(revision::flagged(recipient, &why));
                            tally.push("flagged");
                        }
                    }
                    continue;
                }
                (Some(revision::Told::Correction), Some(o))
                    if !to.adapter.carries_corrections() =>
                {
                    let why = format!("{} cannot carry a correction", to.adapter.name());
                    audit.push(decided.detail(format!(
                        "{}: correction of {}: {why}",
                        revision::FLAGGED,
                        o.stored.id
                    )));
                    skipped.push(revision::flagged(recipient, &why));
                    tally.push("flagged");
                    continue;
                }
                _ => {}
            }
            let message = match (told, &fresh) {
                (Some(revision::Told::New), Some(f)) => f,
                _ => &m,
            };
            let copy = match self.prepare_copy(
                &policy, &signer, on_behalf, message, &shape, to, id, issued_at,
            ) {
                Ok(c) => c,
                Err(NoCopy::Refused(r)) => {
                    refused.push(format!("{recipient} ({})", r.rule));
                    audit.push(
                        decided
                            .rule(r.rule.clone())
                            .detail(format!("deny: {}", r.reason)),
                    );
                    skipped.push(Skipped::refused(recipient, r));
                    continue;
                }
                Err(NoCopy::Unminimisable {
                    permitted_by,
                    refusal: r,
                }) => {
                    audit.push(decided.rule(permitted_by.join(", ")).detail("permit"));
                    audit.push(
                        about(Event::Minimised, "gateway")
                            .recipient(recipient)
                            .rule(r.rule.clone())
                            .detail(format!("skipped: {}", r.reason)),
                    );
                    skipped.push(match told {
                        Some(revision::Told::Correction) => {
                            tally.push("flagged");
                            revision::flagged(recipient, &r.reason)
                        }
                        _ => Skipped::refused(recipient, r),
                    });
                    continue;
                }
                Err(NoCopy::Unencodable {
                    permitted_by,
                    removed,
                    error,
                }) => {
                    audit.push(decided.rule(permitted_by.join(", ")).detail("permit"));
                    audit.extend(minimised(&about, recipient, &removed));
                    audit.push(
                        about(Event::Decided, "gateway")
                            .recipient(recipient)
                            .detail(format!("skipped: {error}")),
                    );
                    skipped.push(match told {
                        Some(revision::Told::Correction) => {
                            tally.push("flagged");
                            revision::flagged(recipient, &error)
                        }
                        _ => Skipped::new(recipient, error),
                    });
                    continue;
                }
                Err(NoCopy::Signing) => return Err(Refused::Signing),
            };
            let what = match (told, &original) {
                (Some(revision::Told::Correction), Some(o)) => {
                    tally.push("correction");
                    format!("permit; correction of {}", o.stored.id)
                }
                (Some(revision::Told::New), Some(o)) => {
                    tally.push("new");
                    format!("permit; correction of {}, as a new message", o.stored.id)
                }
                _ => "permit".to_string(),
            };
            audit.push(decided.rule(copy.permitted_by.join(", ")).detail(what));
            audit.extend(minimised(&about, recipient, &copy.removed));
            audit.push(
                about(Event::Signed, "gateway")
                    .recipient(recipient)
                    .subjects(&copy.subjects)
                    .detail(format!("kid {}", signer.kid())),
            );
            audit.push(
                about(Event::Queued, "gateway")
                    .recipient(recipient)
                    .subjects(&copy.subjects)
                    .detail(format!("{}, {} bytes", copy.format, copy.bytes.len())),
            );
            entries.push(copy.entry(&meta(t.as_str()), recipient));
        }
        // a correction is kept whoever may have it: what it replaced must be accounted for
        if original.is_none() && refused.len() == proposed.len() {
            return Err(Refused::Forbidden(format!(
                "no recipient may receive this message: {}",
                refused.join(", ")
            )));
        }
        let accepted = Accepted {
            id,
            acts_on: original.as_ref().map(|o| o.stored.id),
            erase: false,
            sender,
            message_type: t.as_str(),
            source_document_id: &m.source_document_id,
            received_at,
            correlation_id: &m.correlation_id,
            body_sha256,
            canonical: m.to_bytes(),
            subjects: subjects.clone(),
            skipped,
            traceparent,
            sender_signature,
            policy_digest: &policy.digest,
            entries,
            audit,
            audit_record: about(Event::Received, sender),
        };
        let answer = self.commit(&signer, accepted).await?;
        if matches!(answer, Answer::Accepted(_)) {
            self.case_stages(&m.correlation_id, t, received_at).await;
            count_rectification("correction", &tally);
        }
        Ok(answer)
    }

    /// Accepts a withdrawal from `sender`: every recipient given the message withdrawn (and
    /// not yet told otherwise) gets the withdrawal in its format, or is flagged for an operator
    /// when its format cannot carry one.
    pub async fn accept_withdrawal(
        &self,
        sender: &str,
        mut w: Withdrawal,
        body: &[u8],
        traceparent: Option<String>,
        sender_signature: Option<String>,
    ) -> Result<Answer, Refused> {
        self.refuse_while_behind()?;
        let policy = self.policies.current();
        let signer = self.signer.load_full();
        let body_sha256 = sha256_b64(body);
        if let Some(a) = self
            .repeated(sender, &w.source_document_id, &body_sha256)
            .await?
        {
            return Ok(a);
        }
        let o = revision::original(
            &self.store,
            sender,
            w.withdrawn.message_id,
            w.withdrawn.source_document_id.as_deref(),
            "body",
        )
        .await?;
        may_correct(&policy, sender, &o)?;
        revision::check_case(&w.correlation_id, &o)?;
        let id = Uuid::now_v7();
        let received_at = Instant::now();
        let reason = w.withdrawn.reason;
        // what a withdrawal is about is the message withdrawn: its purpose, classification and
        // case references, whatever a format could state of them
        w = o.withdrawal(
            id,
            sender,
            &w.source_document_id,
            w.occurred_at,
            received_at,
            reason,
        );
        self.record_span(id, &w.correlation_id);
        let subjects = &o.stored.subjects;
        let purpose = w.purpose.as_str();
        let about = |event, actor: &str| {
            Record::new(event, actor)
                .message(id, WITHDRAWN, Some(purpose))
                .subjects(subjects)
        };
        let received = received_at.to_string();
        let mut audit = vec![];
        let mut entries = vec![];
        let mut skipped = vec![];
        let mut tally = vec![];
        for recipient in &o.holders {
            let recipient = recipient.as_str();
            let decided = about(Event::Decided, "gateway").recipient(recipient);
            let Some(to) = self
                .registry
                .lookup(recipient)
                .map(|a| self.registry.entry(&a))
            else {
                skipped.push(Skipped::new(recipient, "not registered"));
                audit.push(decided.detail("skipped: not registered"));
                continue;
            };
            match self.withdrawal_copy(&signer, &w, to, received_at.unix_seconds()) {
                Ok(copy) => {
                    audit.push(decided.detail(format!(
                        "withdrawal of {} ({reason}): was given it",
                        o.stored.id
                    )));
                    audit.push(
                        about(Event::Queued, "gateway")
                            .recipient(recipient)
                            .detail(format!("{}, {} bytes", copy.format, copy.bytes.len())),
                    );
                    tally.push("withdrawal");
                    let mut e = copy.entry(
                        &Meta {
                            message_id: id,
                            seq: 0,
                            message_type: WITHDRAWN,
                            correlation_id: &w.correlation_id,
                            received_at: &received,
                            traceparent: traceparent.as_deref(),
                        },
                        recipient,
                    );
                    e.subjects = subjects.clone();
                    entries.push(e);
                }
                Err(NoCopy::Signing) => return Err(Refused::Signing),
                Err(_) => {
                    let why = format!("{} cannot carry a withdrawal", to.adapter.name());
                    audit.push(decided.detail(format!(
                        "{}: withdrawal of {}: {why}",
                        revision::FLAGGED,
                        o.stored.id
                    )));
                    skipped.push(revision::flagged(recipient, &why));
                    tally.push("flagged");
                }
            }
        }
        let accepted = Accepted {
            id,
            acts_on: Some(o.stored.id),
            erase: w.withdrawn.reason == WithdrawalReason::Erasure,
            sender,
            message_type: WITHDRAWN,
            source_document_id: &w.source_document_id,
            received_at,
            correlation_id: &w.correlation_id,
            body_sha256,
            canonical: w.to_bytes(),
            subjects: subjects.clone(),
            skipped,
            traceparent,
            sender_signature,
            policy_digest: &policy.digest,
            entries,
            audit,
            audit_record: about(Event::Received, sender),
        };
        let answer = self.commit(&signer, accepted).await?;
        if matches!(answer, Answer::Accepted(_)) {
            count_rectification("withdrawal", &tally);
        }
        Ok(answer)
    }

    /// A withdrawal for one recipient: encoded in its format and signed.
    fn withdrawal_copy(
        &self,
        signer: &Signer,
        w: &Withdrawal,
        to: &crate::registry::Entry,
        issued_at: i64,
    ) -> Result<PreparedCopy, NoCopy> {
        let adapter = to.adapter;
        let ctx = Context {
            master_data: &self.master_data,
        };
        let bytes = adapter
            .encode_withdrawal(w, &ctx)
            .map_err(|e| NoCopy::Unencodable {
                permitted_by: vec![],
                removed: vec![],
                error: e.to_string(),
            })?;
        let id = w.id.map(|i| i.to_string()).unwrap_or_default();
        let signature = sign_copy(
            signer,
            &bytes,
            DeliveryClaims {
                message_id: &id,
                message_type: WITHDRAWN,
                recipient: to.id.as_str(),
                issued_at,
            },
        )?;
        Ok(PreparedCopy {
            bytes,
            format: adapter.name().to_string(),
            media_type: adapter.media_type().to_string(),
            signature,
            alterations: vec![],
            removed: vec![],
            subjects: vec![],
            permitted_by: vec![],
        })
    }

    /// While the disk is behind, new work is refused instead of queued.
    fn refuse_while_behind(&self) -> Result<(), Refused> {
        if self.store.commit_queue() >= self.config.store.commit_queue_max {
            return Err(Refused::StoreBehind);
        }
        Ok(())
    }

    fn record_span(&self, id: Uuid, correlation_id: &str) {
        let span = tracing::Span::current();
        span.record("message_id", tracing::field::display(id));
        span.record(
            "case",
            crate::telemetry::case_hash(&self.pseudonyms, correlation_id),
        );
    }

    /// The first answer to a document id `sender` used before, if it did.
    async fn repeated(
        &self,
        sender: &str,
        key: &str,
        body_sha256: &str,
    ) -> Result<Option<Answer>, Refused> {
        match self.store.idempotency(sender, key).await? {
            Some((rec, first)) => self
                .duplicate(rec.body_sha256 == body_sha256, first)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// Signs the receipt, writes the message with its entries and audit records, and answers
    /// once the write is durable.
    async fn commit(&self, signer: &Signer, a: Accepted<'_>) -> Result<Answer, Refused> {
        let claims = json!({
            "id": a.id.to_string(),
            "source_document_id": a.source_document_id,
            "sender": a.sender,
            "type": a.message_type,
            "received_at": a.received_at.to_string(),
            "body_sha256": a.body_sha256,
        });
        let receipt = {
            let _s = stage("sign");
            signer.receipt(&claims).map_err(|e| {
                tracing::error!(error = %e, "signing failed");
                Refused::Signing
            })?
        };
        let response = json!({"id": a.id.to_string(), "status": "accepted", "type": a.message_type, "receipt": receipt});
        let stored = StoredMessage {
            id: a.id,
            seq: 0,
            sender: a.sender.to_string(),
            message_type: a.message_type.to_string(),
            source_document_id: a.source_document_id.to_string(),
            received_at: a.received_at.to_string(),
            correlation_id: a.correlation_id.to_string(),
            body_sha256: a.body_sha256,
            response: response.clone(),
            canonical: String::from_utf8(a.canonical).expect("JSON is UTF-8"),
            subjects: a.subjects,
            skipped: a.skipped,
            traceparent: a.traceparent,
            sender_signature: a.sender_signature,
            policy_digest: a.policy_digest.to_string(),
        };
        let mut audit = a.audit;
        audit.insert(
            0,
            a.audit_record.detail(format!(
                "{} recipient(s), {} skipped; policies {}",
                a.entries.len(),
                stored.skipped.len(),
                &a.policy_digest[..12]
            )),
        );
        let started = std::time::Instant::now();
        let store_span = crate::telemetry::stage_span("store");
        let outcome = store_span
            .in_scope(|| {
                self.store.accept(Acceptance {
                    message: stored,
                    acts_on: a.acts_on,
                    erase: a.erase,
                    entries: a.entries,
                    audit,
                })
            })
            .await?;
        match outcome {
            AcceptOutcome::Accepted => {
                self.store.durable().instrument(store_span).await?;
                crate::telemetry::stage_done("store", started);
                tracing::info!(message_id = %a.id, sender = a.sender, r#type = a.message_type, "accepted");
                Ok(Answer::Accepted(response))
            }
            AcceptOutcome::Duplicate(first) => self.duplicate(true, first).await,
            AcceptOutcome::Conflict => self.duplicate(false, Value::Null).await,
            AcceptOutcome::Acted(by) => Err(Refused::Conflict(format!(
                "message {} was replaced or withdrawn by message {by} meanwhile",
                a.acts_on.map(|o| o.to_string()).unwrap_or_default()
            ))),
        }
    }

    /// Records the time since the case's earlier message of the type before `t` in
    /// [`CASE_STAGES`] (e.g. indictment after report). A failure to read only loses the sample.
    async fn case_stages(&self, correlation_id: &str, t: jxg_schema::MessageType, at: Instant) {
        let wanted: Vec<&(&str, &str)> = CASE_STAGES
            .iter()
            .filter(|(_, to)| *to == t.as_str())
            .collect();
        if wanted.is_empty() {
            return;
        }
        let Ok(earlier) = self.store.case_messages(correlation_id).await else {
            return;
        };
        for (from, to) in wanted {
            let first = earlier
                .iter()
                .filter(|e| e.message_type == *from)
                .filter_map(|e| e.received_at.parse::<Instant>().ok())
                .min();
            if let Some(first) = first {
                let seconds = (at.unix_seconds() - first.unix_seconds()) as f64;
                metrics().case_stage_seconds.record(
                    seconds.max(0.0),
                    &[KeyValue::new("from", *from), KeyValue::new("to", *to)],
                );
            }
        }
    }

    async fn duplicate(&self, same_body: bool, first: Value) -> Result<Answer, Refused> {
        if !same_body {
            return Err(Refused::Conflict(
                "this document id was used before with different content".into(),
            ));
        }
        // the first answer may still be waiting for its flush: never confirm it before that
        self.store.durable().await?;
        Ok(Answer::Duplicate(first))
    }
}
