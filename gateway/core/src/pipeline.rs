//! The path of one message after decoding: validate → authorize → route → per recipient
//! (minimise → encode → sign) → store durably → receipt.

use std::sync::Arc;

use jxg_adapters::registry::Adapter;
use jxg_adapters::{Context, DecodeError};
use jxg_schema::values::Instant;
use jxg_schema::{MasterData, Message, validate};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Event, Record};
use crate::config::Config;
use crate::policy::PolicyStore;
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
        let claims = DeliveryClaims {
            message_id: &id.to_string(),
            message_type: m.message_type().as_str(),
            recipient,
            issued_at,
        };
        let signature = {
            let _s = stage("sign");
            signer.detached(&bytes, claims).map_err(|e| {
                tracing::error!(error = %e, "signing failed");
                NoCopy::Signing
            })?
        };
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

    /// As [`Pipeline::accept`], keeping the sender's own signature (the request body, a compact
    /// JWS) with the message.
    pub async fn accept_signed(
        &self,
        sender: &str,
        mut m: Message,
        body: &[u8],
        traceparent: Option<String>,
        sender_signature: Option<String>,
    ) -> Result<Answer, Refused> {
        // back-pressure: while the disk is behind, refuse new work instead of queueing it
        if self.store.commit_queue() >= self.config.store.commit_queue_max {
            return Err(Refused::StoreBehind);
        }
        let t = m.message_type();
        let policy = self.policies.current();
        let signer = self.signer.load_full();
        {
            let _s = stage("authorize");
            policy.may_send(sender, &m).map_err(|r| {
                decision(&r.rule, "forbid");
                Refused::Forbidden(r.reason)
            })?;
        }
        let body_sha256 = sha256_b64(body);
        if let Some((rec, first)) = self
            .store
            .idempotency(sender, &m.source_document_id)
            .await?
        {
            return self.duplicate(rec.body_sha256 == body_sha256, first).await;
        }
        let id = Uuid::now_v7();
        let received_at = Instant::now();
        m.id = Some(id);
        m.received_at = Some(received_at);
        m.sender = Some(sender.to_string());
        let span = tracing::Span::current();
        span.record("message_id", tracing::field::display(id));
        span.record(
            "case",
            crate::telemetry::case_hash(&self.pseudonyms, &m.correlation_id),
        );
        // the writer gives the message its sequence number
        let seq = 0;
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        let proposed = {
            let _s = stage("route");
            routing::default_recipients(&m)
        };
        let mut refused = Vec::new();
        let shape = self.shape(&m);
        let subjects = &shape.subjects;
        let purpose = m.purpose.as_str();
        let about = |event, actor: &str| {
            Record::new(event, actor)
                .message(id, t.as_str(), Some(purpose))
                .subjects(subjects)
        };
        let mut audit = vec![];
        for &routed in &proposed {
            let recipient = routed.as_str();
            let decided = about(Event::Decided, "gateway").recipient(recipient);
            let Some(to) = self.registry.routed(routed) else {
                skipped.push(Skipped::new(recipient, "not registered"));
                audit.push(decided.detail("skipped: not registered"));
                continue;
            };
            let issued_at = received_at.unix_seconds();
            let copy =
                match self.prepare_copy(&policy, &signer, sender, &m, &shape, to, id, issued_at) {
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
                        skipped.push(Skipped::refused(recipient, r));
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
                        skipped.push(Skipped::new(recipient, error));
                        continue;
                    }
                    Err(NoCopy::Signing) => return Err(Refused::Signing),
                };
            audit.push(decided.rule(copy.permitted_by.join(", ")).detail("permit"));
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
            entries.push(copy.entry(
                &Meta {
                    message_id: id,
                    seq,
                    message_type: t.as_str(),
                    correlation_id: &m.correlation_id,
                    received_at: &received_at.to_string(),
                    traceparent: traceparent.as_deref(),
                },
                recipient,
            ));
        }
        if refused.len() == proposed.len() {
            return Err(Refused::Forbidden(format!(
                "no recipient may receive this message: {}",
                refused.join(", ")
            )));
        }
        let claims = json!({
            "id": id.to_string(),
            "source_document_id": m.source_document_id,
            "sender": sender,
            "type": t.as_str(),
            "received_at": received_at.to_string(),
            "body_sha256": body_sha256,
        });
        let receipt = {
            let _s = stage("sign");
            signer.receipt(&claims).map_err(|e| {
                tracing::error!(error = %e, "signing failed");
                Refused::Signing
            })?
        };
        let response = json!({"id": id.to_string(), "status": "accepted", "type": t.as_str(), "receipt": receipt});
        let stored = StoredMessage {
            id,
            seq,
            sender: sender.to_string(),
            message_type: t.as_str().to_string(),
            source_document_id: m.source_document_id.clone(),
            received_at: received_at.to_string(),
            correlation_id: m.correlation_id.clone(),
            body_sha256,
            response: response.clone(),
            canonical: String::from_utf8(m.to_bytes()).expect("JSON is UTF-8"),
            subjects: subjects.clone(),
            skipped,
            traceparent,
            sender_signature,
            policy_digest: policy.digest.clone(),
        };
        audit.insert(
            0,
            about(Event::Received, sender).detail(format!(
                "{} recipient(s), {} skipped; policies {}",
                entries.len(),
                stored.skipped.len(),
                &policy.digest[..12]
            )),
        );
        let started = std::time::Instant::now();
        let store_span = crate::telemetry::stage_span("store");
        let outcome = store_span
            .in_scope(|| {
                self.store.accept(Acceptance {
                    message: stored,
                    entries,
                    audit,
                })
            })
            .await?;
        match outcome {
            AcceptOutcome::Accepted => {
                self.store.durable().instrument(store_span).await?;
                crate::telemetry::stage_done("store", started);
                tracing::info!(message_id = %id, sender, r#type = t.as_str(), "accepted");
                self.case_stages(&m.correlation_id, t, received_at).await;
                Ok(Answer::Accepted(response))
            }
            AcceptOutcome::Duplicate(first) => self.duplicate(true, first).await,
            AcceptOutcome::Conflict => self.duplicate(false, Value::Null).await,
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
