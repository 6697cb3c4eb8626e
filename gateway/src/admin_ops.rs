//! The `/admin/v1/…` handlers for operators and auditors (the admin API: `gateway/openapi/admin.json`). Operators see
//! metadata, deliveries, the registry, policies and keys, and may replay and rotate; they never
//! see a body or an audit subject. Auditors read the audit log, answer subject-access requests
//! and verify the chain; they cannot replay or rotate. Every read is audited as `consulted`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Event, Record};
use crate::ingress::AppState;
use crate::ingress::identity::{AdminRole, Peer};
use crate::ingress::problem::Problem;
use crate::pipeline::{Meta, NoCopy};
use crate::signing::Signer;
use crate::store::{Amended, DeliveryState, OutboxEntry, StoredMessage};

const MAX_LIMIT: usize = 500;

/// The most records one page of a filtered listing examines: a filter that matches little
/// returns what it found so far with a cursor to go on from, instead of scanning the store.
const MAX_SCAN: usize = 5000;

/// Runs a long read (a listing, a verification) on the blocking pool, so that the admin
/// listener's workers stay free: `/healthz` and `/readyz` answer whatever else it is doing.
async fn off_request_path<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Problem> {
    let rt = tokio::runtime::Handle::current();
    web::block(move || rt.block_on(work))
        .await
        .map_err(|_| Problem::unavailable("the read could not be run"))
}

fn role_name(role: AdminRole) -> &'static str {
    match role {
        AdminRole::Operator => "admin:operator",
        AdminRole::Auditor => "admin:auditor",
    }
}

/// The caller holds `role`: 401 without a certificate, 403 with any other. A state-changing
/// request a browser sent must also pass the cross-site check ([`crate::csrf`]).
pub fn role(req: &HttpRequest, role: AdminRole) -> Result<&'static str, Problem> {
    let name = role_name(role);
    crate::ingress::identity::Slot::check(req)?;
    match req.conn_data::<Peer>() {
        None => Err(Problem::unauthenticated()),
        Some(Peer::Admin(r)) if *r == role => {
            crate::csrf::check(req, name)?;
            Ok(name)
        }
        Some(_) => Err(Problem::forbidden(format!(
            "this needs the {} role",
            &name["admin:".len()..]
        ))),
    }
}

/// The caller holds either admin role (an authority's certificate gets 403): the role and its
/// audit name.
pub fn any_role(req: &HttpRequest) -> Result<(AdminRole, &'static str), Problem> {
    crate::ingress::identity::Slot::check(req)?;
    match req.conn_data::<Peer>() {
        None => Err(Problem::unauthenticated()),
        Some(Peer::Admin(r)) => {
            let name = role_name(*r);
            crate::csrf::check(req, name)?;
            Ok((*r, name))
        }
        Some(_) => Err(Problem::forbidden(
            "this needs the operator or the auditor role",
        )),
    }
}

/// Audits an admin read or action that changes no other state.
async fn audited(state: &AppState, record: Record) -> Result<(), Problem> {
    state
        .pipeline
        .store
        .audit(vec![record])
        .await
        .map_err(Problem::from)
}

async fn consulted(state: &AppState, actor: &str, what: String) -> Result<(), Problem> {
    audited(state, Record::new(Event::Consulted, actor).detail(what)).await
}

fn bad_query(field: &str, why: &str) -> Problem {
    Problem::invalid(vec![jxg_schema::Violation::new(field, why)])
}

fn limit(l: Option<usize>) -> Result<usize, Problem> {
    match l {
        None => Ok(100),
        Some(0) => Err(bad_query("limit", "must be at least 1")),
        Some(n) => Ok(n.min(MAX_LIMIT)),
    }
}

fn seconds(t: Option<i64>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The `kid` in the protected header of a detached JWS (`header..signature`).
fn signing_kid(jws: &str) -> Option<String> {
    use base64::Engine;
    let header = jws.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["kid"].as_str().map(String::from)
}

/// A delivery as operators see it: state and places, never content.
fn delivery(e: &OutboxEntry) -> Value {
    json!({
        "signed_with": signing_kid(&e.signature),
        "recipient": e.recipient,
        "format": e.format,
        "status": e.state.as_str(),
        "attempts": e.attempts,
        "last_error": e.last_error,
        "next_attempt_at": e.next_attempt_at_ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "delivered_at": seconds(e.delivered_at),
        "acked_at": seconds(e.acked_at),
        "removed": e.removed,
        "alterations": e.alterations,
    })
}

/// A message's metadata, never its body.
fn metadata(m: &StoredMessage, deliveries: &[OutboxEntry]) -> Value {
    let mut recipients: Vec<Value> = deliveries.iter().map(delivery).collect();
    recipients.extend(m.skipped.iter().map(|s| {
        json!({"recipient": s.recipient, "status": "skipped", "reason": s.reason, "policy": s.policy})
    }));
    json!({
        "id": m.id,
        "type": m.message_type,
        "sender": m.sender,
        "source_document_id": m.source_document_id,
        "received_at": m.received_at,
        "correlation_id": m.correlation_id,
        "policy_digest": m.policy_digest,
        "body_purged": m.canonical.is_empty(),
        "sender_signed": m.sender_signature.is_some(),
        "trace_id": jxg_core::telemetry::trace_id(m.traceparent.as_deref()),
        "recipients": recipients,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    status: Option<String>,
    recipient: Option<String>,
    #[serde(rename = "type")]
    message_type: Option<String>,
    sender: Option<String>,
    /// The sender's own document id.
    document_id: Option<String>,
    /// The case (correlation id).
    case: Option<String>,
    /// Accepted at or after (RFC 3339).
    from: Option<String>,
    /// Accepted before (RFC 3339).
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// What a message listing keeps, besides its deliveries' recipient and state.
#[derive(Debug, Clone, Default)]
struct MessageFilter {
    message_type: Option<String>,
    sender: Option<String>,
    document_id: Option<String>,
    case: Option<String>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

impl MessageFilter {
    fn keeps(&self, m: &StoredMessage) -> bool {
        let at = || {
            chrono::DateTime::parse_from_rfc3339(&m.received_at)
                .map(|t| t.to_utc())
                .ok()
        };
        self.message_type
            .as_ref()
            .is_none_or(|t| *t == m.message_type)
            && self.sender.as_ref().is_none_or(|s| *s == m.sender)
            && self
                .document_id
                .as_ref()
                .is_none_or(|d| *d == m.source_document_id)
            && self.case.as_ref().is_none_or(|c| *c == m.correlation_id)
            && self.from.is_none_or(|f| at().is_some_and(|a| a >= f))
            && self.to.is_none_or(|t| at().is_some_and(|a| a < t))
    }
}

fn status_of(s: &str) -> Option<DeliveryState> {
    match s {
        "queued" => Some(DeliveryState::Queued),
        "retrying" => Some(DeliveryState::Retrying),
        "delivered" => Some(DeliveryState::Delivered),
        "dead" => Some(DeliveryState::Dead),
        "superseded" => Some(DeliveryState::Superseded),
        _ => None,
    }
}

pub async fn messages(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let limit = limit(q.limit)?;
    let status = match &q.status {
        Some(s) => Some(status_of(s).ok_or_else(|| {
            bad_query(
                "status",
                "is one of queued, retrying, delivered, dead, superseded",
            )
        })?),
        None => None,
    };
    if let Some(t) = &q.message_type {
        if t.parse::<jxg_schema::MessageType>().is_err() {
            return Err(bad_query("type", "is not a canonical message type"));
        }
    }
    for (field, a) in [("recipient", &q.recipient), ("sender", &q.sender)] {
        if a.as_ref()
            .is_some_and(|a| state.pipeline.config.authority(a).is_none())
        {
            return Err(bad_query(field, "is not a registered authority"));
        }
    }
    let filter = MessageFilter {
        message_type: q.message_type.clone(),
        sender: q.sender.clone(),
        document_id: q.document_id.clone(),
        case: q.case.clone(),
        from: instant("from", &q.from)?,
        to: instant("to", &q.to)?,
    };
    let after = cursor(&q.cursor)?;
    let store = state.pipeline.store.clone();
    let recipient = q.recipient.clone();
    let (items, next) = off_request_path(scan(store, after, limit, move |store, m| {
        let (filter, recipient) = (filter.clone(), recipient.clone());
        async move {
            if !filter.keeps(&m) {
                return Ok(None);
            }
            let deliveries = store.deliveries(&m.id).await?;
            let matches = deliveries.iter().any(|d| {
                recipient.as_ref().is_none_or(|r| *r == d.recipient)
                    && status.is_none_or(|s| s == d.state)
            }) || (status.is_none() && recipient.is_none());
            Ok(matches.then(|| metadata(&m, &deliveries)))
        }
    }))
    .await??;
    consulted(
        &state,
        actor,
        format!("message metadata, {} item(s)", items.len()),
    )
    .await?;
    let mut body = json!({ "items": items });
    if let Some(n) = next {
        body["next_cursor"] = Value::from(n);
    }
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RectificationsQuery {
    state: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Corrections and withdrawals, oldest first, with where each stands with each recipient and
/// its age; by default only the open ones (a recipient has not got it yet, or is flagged for an
/// operator to tell by other means). Scans in bounded pages, as the message list does.
pub async fn rectifications(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<RectificationsQuery>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let limit = limit(q.limit)?;
    let only_open = match q.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => return Err(bad_query("state", "is open or all")),
    };
    let after = cursor(&q.cursor)?;
    let store = state.pipeline.store.clone();
    let now = chrono::Utc::now();
    let (items, next) = off_request_path(scan(store, after, limit, move |store, m| async move {
        if !jxg_core::revision::may_be_rectification(&m) {
            return Ok(None);
        }
        let deliveries = store.deliveries(&m.id).await?;
        let Some(r) = jxg_core::revision::rectification(&m, &deliveries) else {
            return Ok(None);
        };
        if only_open && !r.open {
            return Ok(None);
        }
        Ok(Some(rectification_json(&r, now)))
    }))
    .await??;
    consulted(
        &state,
        actor,
        format!("rectifications, {} item(s)", items.len()),
    )
    .await?;
    let mut body = json!({ "items": items });
    if let Some(n) = next {
        body["next_cursor"] = Value::from(n);
    }
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notified {
    recipient: String,
}

/// An operator's confirmation that a recipient flagged in a correction or withdrawal (its
/// format cannot carry what it had to be told) was told by other means: the rectification is
/// done with it. Audited as `notified`; confirming again changes nothing.
pub async fn notified(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let id = message_id(&id)?;
    let ask: Notified = serde_json::from_slice(&body).map_err(|_| {
        bad_query(
            "recipient",
            "the body is {\"recipient\": \"<authority id>\"}",
        )
    })?;
    let store = state.pipeline.store.clone();
    let stored = store
        .message(&id)
        .await?
        .filter(jxg_core::revision::may_be_rectification)
        .ok_or_else(|| Problem::not_found("no such correction or withdrawal"))?;
    if jxg_core::revision::rectification(&stored, &[]).is_none() {
        return Err(Problem::not_found("no such correction or withdrawal"));
    }
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (who, recipient) = (actor.to_string(), ask.recipient.clone());
    let amended = store
        .amend(id, move |m| {
            jxg_core::revision::confirm_notified(m, &recipient, &who, &at)
        })
        .await?;
    match amended {
        Amended::Changed | Amended::Unchanged => {}
        Amended::NoSuchMessage => {
            return Err(Problem::not_found("no such correction or withdrawal"));
        }
        Amended::Refused => {
            // what the body named is not repeated: it is whatever was typed
            return Err(Problem::new(
                409,
                "not-flagged",
                "Recipient not flagged",
                "the recipient named is not flagged in this correction or withdrawal: it is \
                 told through the gateway",
            ));
        }
    }
    let stored = store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no such correction or withdrawal"))?;
    let deliveries = store.deliveries(&id).await?;
    let r = jxg_core::revision::rectification(&stored, &deliveries)
        .ok_or_else(|| Problem::not_found("no such correction or withdrawal"))?;
    Ok(HttpResponse::Ok().json(rectification_json(&r, chrono::Utc::now())))
}

/// A rectification as the admin API shows it: with its age at `now`.
fn rectification_json(
    r: &jxg_core::revision::Rectification,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let age = chrono::DateTime::parse_from_rfc3339(&r.received_at)
        .map(|t| (now - t.to_utc()).num_seconds().max(0))
        .unwrap_or(0);
    let mut v = serde_json::to_value(r).expect("JSON");
    v["age_seconds"] = Value::from(age);
    v
}

/// The `cursor` of a paged list: the id of the last message of the page before.
fn cursor(raw: &Option<String>) -> Result<Option<Uuid>, Problem> {
    raw.as_deref()
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| bad_query("cursor", "is not a cursor of this list"))
        })
        .transpose()
}

/// Pages over the messages after `after` in acceptance order, keeping what `keep` makes of
/// each, until `limit` are kept, the store ends, or [`MAX_SCAN`] were examined; with the cursor
/// to go on from (the last kept, or the last examined when the bound was reached).
async fn scan<F, Fut>(
    store: std::sync::Arc<crate::store::Store>,
    mut after: Option<Uuid>,
    limit: usize,
    keep: F,
) -> Result<(Vec<Value>, Option<String>), crate::store::StoreError>
where
    F: Fn(std::sync::Arc<crate::store::Store>, StoredMessage) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Value>, crate::store::StoreError>>,
{
    let mut items: Vec<Value> = Vec::new();
    let mut scanned = 0;
    loop {
        let page = store.messages_after(after, 200).await?;
        if page.is_empty() {
            return Ok((items, None));
        }
        for m in page {
            if scanned >= MAX_SCAN {
                // go on from the last one examined
                return Ok((items, after.map(|a| a.to_string())));
            }
            scanned += 1;
            after = Some(m.id);
            let Some(v) = keep(store.clone(), m).await? else {
                continue;
            };
            if items.len() == limit {
                let next = items
                    .last()
                    .and_then(|v| v["id"].as_str().map(String::from));
                return Ok((items, next));
            }
            items.push(v);
        }
    }
}

fn message_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such message"))
}

pub async fn message(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let id = message_id(&id)?;
    let store = &state.pipeline.store;
    let m = store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no such message"))?;
    let deliveries = store.deliveries(&id).await?;
    audited(
        &state,
        Record::new(Event::Consulted, actor)
            .message(id, &m.message_type, None)
            .detail("message metadata"),
    )
    .await?;
    Ok(HttpResponse::Ok().json(metadata(&m, &deliveries)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    recipient: Option<String>,
}

/// A stored message and its canonical document: 404 when there is none, 410 when its body is
/// purged (`then` says what that means for the caller), 503 when it cannot be read.
pub async fn stored_document(
    store: &crate::store::Store,
    id: Uuid,
    then: &str,
) -> Result<(StoredMessage, jxg_schema::Document), Problem> {
    let stored = store
        .message(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no such message"))?;
    if stored.canonical.is_empty() {
        return Err(Problem::new(
            410,
            "purged",
            "Body purged",
            format!(
                "this message's body is gone (retention purged it, or its sender withdrew it for \
                 erasure); {then}"
            ),
        ));
    }
    let doc = serde_json::from_str(&stored.canonical)
        .ok()
        .and_then(|v| jxg_schema::Document::from_value(v).ok())
        .ok_or_else(|| Problem::unavailable("the stored message is unreadable"))?;
    Ok((stored, doc))
}

/// Re-delivers a message's dead-lettered copies (or the copy of one recipient), deciding,
/// minimising, encoding and signing it anew under the policies and key in force.
pub async fn replay(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<ReplayQuery>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let id = message_id(&id)?;
    let p = &state.pipeline;
    let (stored, doc) = stored_document(&p.store, id, "it cannot be delivered again").await?;
    let deliveries = p.store.deliveries(&id).await?;
    let targets: Vec<&OutboxEntry> = match &q.recipient {
        Some(r) => {
            let e = deliveries
                .iter()
                .find(|d| d.recipient == *r)
                .ok_or_else(|| {
                    bad_query(
                        "recipient",
                        "this message has no delivery to that recipient",
                    )
                })?;
            vec![e]
        }
        None => deliveries
            .iter()
            .filter(|d| d.state == DeliveryState::Dead)
            .collect(),
    };
    if targets.is_empty() {
        return Err(Problem::new(
            409,
            "nothing-to-replay",
            "Nothing to replay",
            "no delivery of this message is dead-lettered; name one with ?recipient=",
        ));
    }
    let m = match doc {
        jxg_schema::Document::Message(m) if m.replaces.is_none() => m,
        // what a correction or a withdrawal told each recipient was decided when it was
        // accepted (who held the message acted on then): the same signed copy is sent again
        _ => return replay_as_decided(&state, actor, id, &stored, targets).await,
    };
    let policy = p.policies.current();
    let signer = p.signer.load_full();
    let shape = p.shape(&m);
    let mut outcomes = Vec::new();
    for old in targets {
        let r = old.recipient.as_str();
        let about = |event| {
            Record::new(event, actor)
                .message(id, &stored.message_type, Some(m.purpose.as_str()))
                .recipient(r)
                .subjects(&old.subjects)
        };
        let refused = async |rule: String, why: String| -> Result<Value, Problem> {
            audited(
                &state,
                about(Event::Replayed)
                    .rule(rule.clone())
                    .detail(format!("refused: {why}")),
            )
            .await?;
            Ok(json!({"recipient": r, "outcome": "refused", "policy": rule, "reason": why}))
        };
        let Some(to) = p.registry.lookup(r).map(|id| p.registry.entry(&id)) else {
            outcomes.push(refused(String::new(), "not registered".into()).await?);
            continue;
        };
        let copy = match p.prepare_copy(
            &policy,
            &signer,
            &stored.sender,
            &m,
            &shape,
            to,
            id,
            chrono::Utc::now().timestamp(),
        ) {
            Ok(c) => c,
            Err(NoCopy::Refused(refusal) | NoCopy::Unminimisable { refusal, .. }) => {
                outcomes.push(refused(refusal.rule, refusal.reason).await?);
                continue;
            }
            Err(NoCopy::Unencodable { error, .. }) => {
                outcomes.push(refused(String::new(), error).await?);
                continue;
            }
            Err(NoCopy::Signing) => {
                return Err(Problem::unavailable("signing failed; nothing was queued"));
            }
        };
        let subjects = copy.subjects.clone();
        let entry = copy.entry(
            &Meta {
                message_id: id,
                seq: old.seq,
                message_type: &old.message_type,
                correlation_id: &old.correlation_id,
                received_at: &old.received_at,
                traceparent: old.traceparent.as_deref(),
            },
            r,
        );
        p.store
            .requeue(
                &entry,
                vec![about(Event::Replayed).subjects(&subjects).detail(format!(
                    "was {}; signed with kid {}",
                    old.state.as_str(),
                    signer.kid()
                ))],
            )
            .await?;
        outcomes.push(json!({"recipient": r, "outcome": "queued"}));
    }
    p.store.durable().await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "recipients": outcomes })))
}

/// Replays the copies of a correction or a withdrawal as they were made at its acceptance.
async fn replay_as_decided(
    state: &web::Data<AppState>,
    actor: &str,
    id: uuid::Uuid,
    stored: &jxg_core::store::StoredMessage,
    targets: Vec<&OutboxEntry>,
) -> Result<HttpResponse, Problem> {
    let p = &state.pipeline;
    let mut outcomes = Vec::new();
    for old in targets {
        let entry = OutboxEntry {
            state: DeliveryState::Queued,
            attempts: 0,
            next_attempt_at_ms: None,
            last_error: None,
            delivered_at: None,
            acked_at: None,
            ..old.clone()
        };
        let record = Record::new(Event::Replayed, actor)
            .message(id, &stored.message_type, None)
            .recipient(&old.recipient)
            .subjects(&old.subjects)
            .detail(format!(
                "was {}; the copy made at acceptance, sent again",
                old.state.as_str()
            ));
        p.store.requeue(&entry, vec![record]).await?;
        outcomes.push(json!({"recipient": old.recipient, "outcome": "queued"}));
    }
    p.store.durable().await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "recipients": outcomes })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn dead_letters(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let actor = role(&req, AdminRole::Operator)?;
    let limit = limit(q.limit)?;
    let after = match &q.cursor {
        Some(c) => {
            Some(crate::store::Cursor(b64.decode(c).map_err(|_| {
                bad_query("cursor", "is not a cursor of this list")
            })?))
        }
        None => None,
    };
    let mut page = state
        .pipeline
        .store
        .entries_in_state(DeliveryState::Dead, after, limit + 1)
        .await?;
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        b64.encode(&page[limit - 1].0.0)
    });
    let items: Vec<Value> = page
        .iter()
        .map(|(_, e)| {
            let mut d = delivery(e);
            d["message_id"] = json!(e.message_id);
            d["type"] = json!(e.message_type);
            d
        })
        .collect();
    consulted(
        &state,
        actor,
        format!("dead letters, {} item(s)", items.len()),
    )
    .await?;
    let mut body = json!({ "items": items });
    if let Some(n) = next {
        body["next_cursor"] = Value::from(n);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// The stored records found unreadable since the gateway started (ids, where found and why;
/// never content). Their deliveries are dead-lettered; the rest of the store goes on.
pub async fn unreadable(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let items = state.pipeline.store.unreadable();
    consulted(
        &state,
        actor,
        format!("unreadable records, {} item(s)", items.len()),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

pub async fn authorities(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    role(&req, AdminRole::Operator)?;
    // the backlog from the counts the store keeps with every write: no scan
    let counts = state.pipeline.store.counts();
    let items: Vec<Value> = state
        .pipeline
        .config
        .authorities
        .iter()
        .map(|a| {
            let c = counts.get(&a.id).copied().unwrap_or_default();
            let (_, oldest) = state.pipeline.store.outbox_depth(&a.id);
            json!({
                "id": a.id, "name": a.name, "format": a.format,
                "delivery": format!("{:?}", a.delivery).to_lowercase(),
                "webhook": a.webhook, "rate_per_second": a.rate_per_second, "burst": a.burst,
                "clearances": a.clearances,
                "waiting": c.waiting, "dead": c.dead, "oldest_waiting": oldest,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

pub async fn routes(req: HttpRequest) -> Result<HttpResponse, Problem> {
    role(&req, AdminRole::Operator)?;
    Ok(HttpResponse::Ok().json(json!({ "items": crate::routing::table() })))
}

pub async fn keys(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    role(&req, AdminRole::Operator)?;
    let current = state.pipeline.signer.load().kid().to_string();
    let published = state.pipeline.jwks().await;
    let items: Vec<Value> = state
        .pipeline
        .store
        .signing_keys().await?
        .into_iter()
        .map(|r| {
            let kid = r["jwk"]["kid"].clone();
            json!({
                "kid": kid,
                "alg": r["jwk"]["alg"],
                "current": kid == current.as_str(),
                "retired_at": seconds(r["retired_at"].as_i64()),
                "published": published["keys"].as_array().is_some_and(|k| k.iter().any(|k| k["kid"] == kid)),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "current": current, "items": items })))
}

/// A new signing key: written over the configured key file (atomically, mode 0600), the old key
/// kept in the JWKS while copies it signed may still be in flight.
pub async fn rotate(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let p = &state.pipeline;
    let fail = |e: String| {
        tracing::error!(error = %e, "key rotation failed");
        Problem::unavailable("the key rotation failed; the current key stays")
    };
    let pem = crate::certs::new_signing_key().map_err(|e| fail(e.to_string()))?;
    let next = Signer::from_pem(pem.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let path = p.config.resolve(&p.config.signing.key);
    let tmp = path.with_extension("pem.new");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| fail(e.to_string()))?;
        f.write_all(pem.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| fail(e.to_string()))?;
    }
    let previous = p.signer.load_full();
    let now = chrono::Utc::now().timestamp();
    p.store
        .put_signing_key(
            next.kid(),
            &json!({"jwk": next.jwks()["keys"][0], "retired_at": null}),
        )
        .await?;
    p.store
        .put_signing_key(
            previous.kid(),
            &json!({"jwk": previous.jwks()["keys"][0], "retired_at": now}),
        )
        .await?;
    std::fs::rename(&tmp, &path).map_err(|e| fail(e.to_string()))?;
    let kid = next.kid().to_string();
    p.signer.store(std::sync::Arc::new(next));
    audited(
        &state,
        Record::new(Event::KeyRotated, actor).detail(format!("{} → {kid}", previous.kid())),
    )
    .await?;
    p.store.durable().await?;
    tracing::info!(previous = %previous.kid(), current = %kid, "signing key rotated");
    Ok(HttpResponse::Ok().json(json!({"previous": previous.kid(), "current": kid})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    message_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn instant(
    field: &str,
    raw: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Problem> {
    raw.as_ref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.to_utc())
                .map_err(|_| bad_query(field, "is not an RFC 3339 time"))
        })
        .transpose()
}

pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Auditor)?;
    let limit = limit(q.limit)?;
    let message = match &q.message_id {
        Some(m) => {
            Some(Uuid::parse_str(m).map_err(|_| bad_query("message_id", "is not a message id"))?)
        }
        None => None,
    };
    let (from, to) = (instant("from", &q.from)?, instant("to", &q.to)?);
    let mut seq = match &q.cursor {
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| bad_query("cursor", "is not a cursor of this list"))?,
        None => 1,
    };
    let store = state.pipeline.store.clone();
    let (items, next) = off_request_path(async move {
        let mut items = Vec::new();
        let mut next = None;
        let mut scanned = 0;
        'scan: loop {
            let page = store.audit_entries(seq, 500).await?;
            let Some(last) = page.last() else { break };
            seq = last.seq + 1;
            for e in page {
                if scanned >= MAX_SCAN * 4 {
                    // go on from the first one not examined
                    next = Some(e.seq.to_string());
                    break 'scan;
                }
                scanned += 1;
                let at = chrono::DateTime::parse_from_rfc3339(&e.at)
                    .map(|t| t.to_utc())
                    .ok();
                let wanted = message.is_none_or(|m| e.record.message_id == Some(m))
                    && from.is_none_or(|f| at.is_some_and(|a| a >= f))
                    && to.is_none_or(|t| at.is_some_and(|a| a < t));
                if !wanted {
                    continue;
                }
                if items.len() == limit {
                    next = Some(e.seq.to_string());
                    break 'scan;
                }
                items.push(e);
            }
        }
        Ok::<_, crate::store::StoreError>((items, next))
    })
    .await??;
    let mut record = Record::new(Event::Consulted, actor)
        .detail(format!("audit log, {} entr(ies)", items.len()));
    if let Some(m) = message {
        record.message_id = Some(m);
    }
    audited(&state, record).await?;
    let mut body = json!({ "items": items });
    if let Some(n) = next {
        body["next_cursor"] = Value::from(n);
    }
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectAccess {
    cpr: String,
}

/// Every audit entry about one person (LED art. 14): the CPR number travels in the body only.
pub async fn subject_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Auditor)?;
    let ask: SubjectAccess = serde_json::from_slice(&body)
        .map_err(|_| bad_query("cpr", "the body is {\"cpr\": \"DDMMYYSSSS\"}"))?;
    let cpr: jxg_schema::values::Cpr = ask
        .cpr
        .parse()
        .map_err(|_| bad_query("cpr", "is not a valid CPR number"))?;
    let subject = state.pipeline.pseudonyms.of(&cpr.to_string());
    let (store, of) = (state.pipeline.store.clone(), subject.clone());
    let entries = off_request_path(async move { store.audit_by_subject(&of).await }).await??;
    let mut disclosures: Vec<Value> = entries
        .iter()
        .filter(|e| {
            matches!(
                e.record.event,
                Event::Delivered | Event::Acked | Event::Notified
            )
        })
        .map(|e| {
            json!({"message_id": e.record.message_id, "type": e.record.message_type,
                         "recipient": e.record.recipient, "at": e.at, "event": e.record.event})
        })
        .collect();
    later_acts(&state.pipeline.store, &mut disclosures).await?;
    audited(
        &state,
        Record::new(Event::Consulted, actor)
            .subjects(std::slice::from_ref(&subject))
            .detail(format!("subject access, {} entr(ies)", entries.len())),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "subject": subject,
        "entries": entries,
        "disclosures": disclosures,
    })))
}

/// Adds to each disclosure what was done to its message later (`later`): the correction or
/// withdrawal, when, and where it stands with that disclosure's recipient (its copy and
/// delivery state, when it was delivered or acknowledged, or that it is flagged).
async fn later_acts(store: &crate::store::Store, disclosures: &mut [Value]) -> Result<(), Problem> {
    let mut seen: std::collections::BTreeMap<Uuid, Option<Value>> = Default::default();
    for d in disclosures.iter_mut() {
        let Some(id) = d["message_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = seen.entry(id) {
            let found = match store.message(&id).await? {
                Some(m) => jxg_core::revision::acted_on_by(store, &m).await?,
                None => None,
            };
            let later = match found {
                None => None,
                Some((l, act)) => {
                    let deliveries = store.deliveries(&l.id).await?;
                    let r = jxg_core::revision::rectification(&l, &deliveries);
                    Some(json!({"act": act.as_str(), "by": l.id, "at": l.received_at,
                           "recipients": r.map(|r| serde_json::to_value(r.recipients).expect("JSON"))}))
                }
            };
            slot.insert(later);
        }
        let Some(Some(later)) = seen.get(&id) else {
            continue;
        };
        let recipient = d["recipient"].clone();
        let mut later = later.clone();
        // only where it stands with this disclosure's recipient
        let mine = later["recipients"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["recipient"] == recipient).cloned());
        later.as_object_mut().map(|o| o.remove("recipients"));
        later["to_recipient"] = mine.unwrap_or(Value::Null);
        d["later"] = later;
    }
    Ok(())
}

/// Audit verifications started from `POST /admin/v1/audit/verifications`, the latest few kept
/// (in memory, this node's) so that a console can show one's progress and the overview the last
/// result.
#[derive(Debug, Default)]
pub struct Verifications {
    jobs: std::sync::Mutex<std::collections::VecDeque<std::sync::Arc<Verification>>>,
}

/// One verification of the audit log.
#[derive(Debug)]
pub struct Verification {
    id: Uuid,
    by: &'static str,
    started_at: String,
    /// Entries in the log when it started.
    total: u64,
    checked: std::sync::atomic::AtomicU64,
    /// The outcome, once finished.
    outcome: std::sync::Mutex<Option<Value>>,
}

/// Verifications kept.
const VERIFICATIONS_KEPT: usize = 16;

impl Verifications {
    fn start(&self, by: &'static str, total: u64) -> std::sync::Arc<Verification> {
        let v = std::sync::Arc::new(Verification {
            id: Uuid::now_v7(),
            by,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            total,
            checked: Default::default(),
            outcome: Default::default(),
        });
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.push_back(v.clone());
            while jobs.len() > VERIFICATIONS_KEPT {
                jobs.pop_front();
            }
        }
        v
    }

    fn get(&self, id: Uuid) -> Option<std::sync::Arc<Verification>> {
        self.jobs.lock().ok()?.iter().find(|j| j.id == id).cloned()
    }

    /// The latest finished verification, as `GET …/verifications/{id}` shows it.
    pub fn last(&self) -> Option<Value> {
        let jobs = self.jobs.lock().ok()?;
        jobs.iter()
            .rev()
            .find(|j| j.outcome.lock().is_ok_and(|o| o.is_some()))
            .map(|j| j.json())
    }
}

impl Verification {
    fn json(&self) -> Value {
        let checked = self.checked.load(std::sync::atomic::Ordering::Relaxed);
        let outcome = self.outcome.lock().ok().and_then(|o| o.clone());
        let mut v = json!({
            "id": self.id,
            "by": self.by,
            "started_at": self.started_at,
            "total": self.total,
            "checked": checked,
            "status": "running",
        });
        if let Some(Value::Object(o)) = outcome {
            for (k, x) in o {
                v[k] = x;
            }
        }
        v
    }
}

/// The public keys of every signing key the gateway has used.
async fn audit_keys(store: &crate::store::Store) -> Result<Vec<josekit::jwk::Jwk>, Problem> {
    Ok(store
        .signing_keys()
        .await?
        .into_iter()
        .filter_map(|v| v["jwk"].as_object().cloned())
        .filter_map(|m| josekit::jwk::Jwk::from_map(m).ok())
        .collect())
}

/// Starts verifying the audit log in the background: 202 with where to follow its progress.
pub async fn start_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Auditor)?;
    let store = state.pipeline.store.clone();
    let keys = audit_keys(&store).await?;
    let total = store.audit_head().next_seq.saturating_sub(1);
    let job = state.verifications.start(actor, total);
    consulted(&state, actor, "audit verification".into()).await?;
    let running = job.clone();
    tokio::spawn(async move {
        let outcome = match store.verify_audit_counting(&keys, &running.checked).await {
            Ok(Ok(r)) => json!({"status": "ok", "report": r}),
            Ok(Err(bad)) => json!({"status": "bad", "seq": bad.seq, "reason": bad.reason}),
            Err(e) => {
                tracing::error!(error = %e, "the audit verification could not read the log");
                json!({"status": "failed", "reason": "the audit log could not be read"})
            }
        };
        if let Ok(mut o) = running.outcome.lock() {
            *o = Some(outcome);
        }
    });
    Ok(HttpResponse::Accepted()
        .insert_header((
            "Location",
            format!("/admin/v1/audit/verifications/{}", job.id),
        ))
        .json(job.json()))
}

/// Where a verification stands: entries checked of the total, and its outcome once finished.
pub async fn verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    role(&req, AdminRole::Auditor)?;
    let job = Uuid::parse_str(&id)
        .ok()
        .and_then(|id| state.verifications.get(id))
        .ok_or_else(|| Problem::not_found("no such verification on this node"))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(job.json()))
}

pub async fn verify(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Auditor)?;
    let store = state.pipeline.store.clone();
    let keys = audit_keys(&store).await?;
    let result = off_request_path(async move { store.verify_audit(&keys).await }).await??;
    consulted(&state, actor, "audit verification".into()).await?;
    Ok(match result {
        Ok(r) => HttpResponse::Ok().json(json!({"status": "ok", "report": r})),
        Err(bad) => {
            HttpResponse::Ok().json(json!({"status": "bad", "seq": bad.seq, "reason": bad.reason}))
        }
    })
}

/// One case's messages in acceptance order, with sender, recipients, and when each was accepted
/// and delivered (or taken from the inbox), and the time between the stages of
/// [`crate::pipeline::CASE_STAGES`]. Metadata only: no body, no subject.
pub async fn timeline(
    req: HttpRequest,
    state: web::Data<AppState>,
    correlation: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let store = &state.pipeline.store;
    let (case_store, case) = (store.clone(), correlation.clone());
    let found = off_request_path(async move { case_store.case_messages(&case).await }).await??;
    if found.is_empty() {
        return Err(Problem::not_found("no message of this case is held"));
    }
    let mut messages = Vec::new();
    for m in &found {
        let recipients: Vec<Value> = store
            .deliveries(&m.id)
            .await?
            .iter()
            .map(|d| {
                json!({
                    "recipient": d.recipient,
                    "format": d.format,
                    "status": d.state.as_str(),
                    "delivered_at": seconds(d.delivered_at.or(d.acked_at)),
                })
            })
            .chain(m.skipped.iter().map(
                |s| json!({"recipient": s.recipient, "status": "skipped", "delivered_at": null}),
            ))
            .collect();
        messages.push(json!({
            "id": m.id,
            "type": m.message_type,
            "sender": m.sender,
            "accepted_at": m.received_at,
            "recipients": recipients,
        }));
    }
    let at = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp())
    };
    let stages: Vec<Value> = crate::pipeline::CASE_STAGES
        .iter()
        .filter_map(|(from, to)| {
            let first = |ty: &str| {
                found
                    .iter()
                    .filter(|m| m.message_type == ty)
                    .filter_map(|m| at(&m.received_at))
                    .min()
            };
            let (a, b) = (first(from)?, first(to)?);
            Some(json!({"from": from, "to": to, "seconds": b - a}))
        })
        .collect();
    consulted(
        &state,
        actor,
        format!("case timeline, {} message(s)", found.len()),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "correlation_id": correlation.as_str(),
        "messages": messages,
        "stages": stages,
    })))
}
