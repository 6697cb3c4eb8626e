//! The authority listener: routes, the caller's identity, and request reading (content type,
//! size) before the pipeline runs. Checks run in this order: certificate (401/403), content
//! type (415), size (413), well-formedness (400), the right to send (403), validation (422).

pub mod amqp;
pub mod identity;
pub mod limits;
pub mod problem;
pub mod refusals;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use jxg_adapters::canonical::Canonical;
use jxg_adapters::registry::Adapter;

use self::identity::AuthorityId;
use jxg_core::revision;
use jxg_schema::Document;
use jxg_schema::schema::Form;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::pipeline::{self, Answer, Pipeline};
use identity::Peer;
use problem::Problem;
use tracing::Instrument;

/// Shared state of the listeners.
pub struct AppState {
    pub pipeline: Pipeline,
    /// Set on SIGTERM: new requests answer 503 while in-flight ones finish.
    pub draining: AtomicBool,
    /// Authority-API requests being answered now.
    pub inflight: std::sync::atomic::AtomicUsize,
    /// Requests per second per authority.
    pub limits: limits::RateLimits,
    /// Cheap refusals counted for their next audit summary.
    pub refusals: refusals::Refusals,
    /// The broker, when an authority is delivered by amqp.
    pub broker: Option<Arc<crate::broker::Broker>>,
    /// The listeners' TLS material, once serving.
    pub tls: std::sync::OnceLock<Arc<crate::tls::LiveTls>>,
    /// Audit verifications started from the admin API.
    pub verifications: crate::admin_ops::Verifications,
}

/// The authenticated authority of a request (mapped from its certificate once per connection).
#[derive(Debug, Clone)]
pub struct Caller(pub AuthorityId);

impl FromRequest for Caller {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Err(p) = identity::Slot::check(req) {
            return std::future::ready(Err(p));
        }
        std::future::ready(match req.conn_data::<Peer>() {
            Some(Peer::Authority(id)) => {
                let limited = req
                    .app_data::<web::Data<AppState>>()
                    .map(|s| s.limits.take(id));
                match limited {
                    Some(Err(retry_after)) => Err(Problem::rate_limited(retry_after)),
                    _ => Ok(Caller(id.clone())),
                }
            }
            Some(Peer::Admin(_)) => Err(Problem::forbidden(
                "an admin certificate cannot use the authority API",
            )),
            Some(Peer::Unmapped) => {
                tracing::warn!("certificate maps to no registered authority");
                Err(Problem::forbidden(
                    "the certificate maps to no registered authority",
                ))
            }
            None => Err(Problem::unauthenticated()),
        })
    }
}

/// The authority API, as `main` serves it and tests mount it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/police/v1/dokumenter")
            .route(web::post().to(post_police))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/courts/v1/dokumenter")
            .route(web::post().to(post_courts))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/messages")
            .route(web::post().to(post_canonical))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/messages/{id}")
            .route(web::get().to(get_message))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/inbox")
            .route(web::get().to(get_inbox))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/inbox/{id}/ack")
            .route(web::post().to(post_ack))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .route(web::get().to(jwks))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi))
            .default_service(web::to(not_allowed)),
    );
}

pub async fn not_allowed() -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::method_not_allowed())
}

pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::not_found("no such path"))
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.pipeline.jwks().await)
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::AUTHORITY)
}

fn refuse_while_draining(state: &AppState) -> Result<(), Problem> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(Problem::unavailable("the gateway is shutting down"));
    }
    Ok(())
}

/// `application/json`, with no charset or `utf-8`.
fn require_json(req: &HttpRequest) -> Result<(), Problem> {
    let mut parts = content_type(req).split(';').map(str::trim);
    let media = parts.next().unwrap_or("").to_ascii_lowercase();
    if media != "application/json" {
        return Err(Problem::unsupported_media(
            "the body must be application/json",
        ));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("charset")
                && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            {
                return Err(Problem::unsupported_media("the body must be UTF-8"));
            }
        }
    }
    Ok(())
}

/// Reads the body within its route's size limit and `limits.body_read_seconds`, refusing it as
/// soon as it passes either.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &crate::config::Limits,
) -> Result<web::Bytes, Problem> {
    let limit = limits
        .body_bytes_per_route
        .get(req.path())
        .copied()
        .unwrap_or(limits.body_bytes);
    let seconds = limits.body_read_seconds;
    tokio::time::timeout(
        std::time::Duration::from_secs(seconds),
        read_limited(req, payload, limit),
    )
    .await
    .unwrap_or_else(|_| {
        Err(Problem::request_timeout(format!(
            "the body did not arrive within {seconds} s"
        )))
    })
}

/// The JSON body within `limits.json_depth` and `limits.json_string_bytes`.
fn check_json(body: &[u8], limits: &crate::config::Limits) -> Result<(), Problem> {
    limits::check_json(body, limits.json_depth, limits.json_string_bytes)
        .map_err(Problem::json_limit)
}

async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Problem> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Problem::too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Problem::bad_request("the body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(Problem::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn traceparent(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get("traceparent")?.to_str().ok()?;
    // version-traceid-parentid-flags, lowercase hex
    let ok = v.len() == 55
        && v.split('-').map(str::len).eq([2, 32, 16, 2])
        && v.bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| v.to_string())
}

/// The span of one submission: a child of the caller's `traceparent` when it sent one, with the
/// trace id in every log line of the request.
pub fn ingest_span(authority: &str, format: &'static str, caller: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "ingest",
        otel.name = format!("ingest {format}"),
        otel.kind = "server",
        authority,
        format,
        message_id = tracing::field::Empty,
        case = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::adopt(&span, caller);
    if let Some(t) = crate::telemetry::traceparent(&span, caller.map(String::from)) {
        span.record("trace_id", crate::telemetry::trace_id(Some(&t)));
    }
    span
}

/// The `traceparent` stored with a message and passed on to its recipients: the gateway's own
/// span when traces are exported, else the caller's.
fn passed_on(req: &HttpRequest) -> Option<String> {
    crate::telemetry::traceparent(&tracing::Span::current(), traceparent(req))
}

fn answer(who: &str, format: &str, r: Result<Answer, Problem>) -> Result<HttpResponse, Problem> {
    match r {
        Ok(Answer::Accepted(body)) => {
            crate::telemetry::accepted(who, format, body["type"].as_str().unwrap_or(""));
            Ok(HttpResponse::Accepted().json(body))
        }
        Ok(Answer::Duplicate(body)) => Ok(HttpResponse::Ok()
            .insert_header(("JXG-Duplicate", "true"))
            .json(body)),
        Err(p) => {
            crate::telemetry::rejected(who, format, p.status, p.slug);
            Err(p)
        }
    }
}

async fn post_police(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let police: &'static dyn Adapter = &jxg_adapters::police_json::PoliceJson;
    let span = ingest_span(&caller.0, police.name(), traceparent(&req).as_deref());
    let r = legacy(&state, &caller, &req, payload, police, false)
        .instrument(span)
        .await;
    answer(&caller.0, police.name(), r)
}

async fn post_courts(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let courts: &'static dyn Adapter = &jxg_adapters::court_xml::CourtXml;
    let span = ingest_span(&caller.0, courts.name(), traceparent(&req).as_deref());
    let r = legacy(&state, &caller, &req, payload, courts, true)
        .instrument(span)
        .await;
    answer(&caller.0, courts.name(), r)
}

/// A legacy document over HTTP: its format's media type (and, for XML, a charset that agrees with
/// the declaration), the body within the limit, then decode and the pipeline.
async fn legacy(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    payload: web::Payload,
    adapter: &'static dyn Adapter,
    xml: bool,
) -> Result<Answer, Problem> {
    refuse_while_draining(state)?;
    if xml {
        require_xml_media(req)?;
    } else {
        require_json(req)?;
    }
    let p = &state.pipeline;
    let body = read_body(req, payload, &p.config.limits).await?;
    if xml {
        require_xml(req, &body)?;
    } else {
        check_json(&body, &p.config.limits)?;
    }
    let d = pipeline::decode_any(adapter, &body, &p.master_data)
        .map_err(|e| pipeline::rejection(e, &caller.0, &p.policies))?;
    p.accept_document(&caller.0, d, &body, passed_on(req), None)
        .await
        .map_err(Problem::from)
}

/// `application/xml` or `text/xml`.
fn require_xml_media(req: &HttpRequest) -> Result<(), Problem> {
    let media = content_type(req)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/xml" && media != "text/xml" {
        return Err(Problem::unsupported_media(
            "the body must be application/xml or text/xml",
        ));
    }
    Ok(())
}

fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A `charset` in the Content-Type must agree with the XML declaration (none means UTF-8).
fn require_xml(req: &HttpRequest, body: &[u8]) -> Result<(), Problem> {
    let parts = content_type(req).split(';').map(str::trim).skip(1);
    let declared = match jxg_adapters::court_xml::tree::declared_encoding(body) {
        Ok(e) => e,
        Err(jxg_adapters::court_xml::tree::FrameError::Encoding(m)) => {
            return Err(Problem::unsupported_media(m));
        }
        // not well-formed: the adapter answers 400 with the details
        Err(_) => return Ok(()),
    };
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("charset") {
                let charset = v.trim().trim_matches('"').to_ascii_uppercase();
                let same = match declared {
                    jxg_adapters::court_xml::tree::Encoding::Utf8 => {
                        charset == "UTF-8" || charset == "UTF8"
                    }
                    jxg_adapters::court_xml::tree::Encoding::Latin1 => {
                        charset == "ISO-8859-1" || charset == "LATIN1"
                    }
                };
                if !same {
                    return Err(Problem::unsupported_media(format!(
                        "the charset (Content-Type says {charset}, the declaration {})",
                        declared.label()
                    )));
                }
            }
        }
    }
    Ok(())
}

async fn post_canonical(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let span = ingest_span(&caller.0, "canonical", traceparent(&req).as_deref());
    let r = canonical(&state, &caller, &req, payload)
        .instrument(span)
        .await;
    answer(&caller.0, "canonical", r)
}

async fn canonical(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Answer, Problem> {
    refuse_while_draining(state)?;
    let p = &state.pipeline;
    let jose = content_type(req)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/jose");
    if jose {
        if !p.sender_keys.contains_key(caller.0.as_str()) {
            return Err(Problem::unsupported_media(
                "this authority has no registered signing keys: submit application/json",
            ));
        }
    } else {
        require_json(req)?;
    }
    let body = read_body(req, payload, &p.config.limits).await?;
    let (json, sender_signature) = if jose {
        let text = std::str::from_utf8(&body)
            .map_err(|_| Problem::malformed("a compact JWS is ASCII"))?
            .trim();
        if text.split('.').count() != 3 {
            return Err(Problem::malformed(
                "the body is not a compact JWS (header.payload.signature)",
            ));
        }
        let payload = crate::signing::verify_sender(text, &p.sender_keys[caller.0.as_str()])
            .map_err(Problem::forbidden)?;
        (payload, Some(text.to_string()))
    } else {
        (body.to_vec(), None)
    };
    check_json(&json, &p.config.limits)?;
    let v = {
        let _s = crate::telemetry::stage("decode");
        jxg_adapters::canonical::parse_json(&json)
            .map_err(|e| pipeline::rejection(e, &caller.0, &p.policies))?
    };
    if let Some(named) = v.get("sender") {
        if named.as_str() != Some(caller.0.as_str()) {
            return Err(Problem::forbidden(
                "the message names another sender than the certificate's authority",
            ));
        }
    }
    // a correction is decided against the message it replaces, once that is found
    let correction = v.get("replaces").is_some();
    if let Some(t) = v
        .get("type")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .filter(|_| !correction)
    {
        p.policies
            .current()
            .may_send_type(&caller.0, t)
            .map_err(|r| Problem::forbidden(r.reason))?;
    }
    let assigned: Vec<jxg_schema::Violation> = ["id", "received_at"]
        .into_iter()
        .filter(|k| v.get(*k).is_some())
        .map(|k| {
            jxg_schema::Violation::new(k, "is assigned by the gateway and must not be submitted")
        })
        .collect();
    if !assigned.is_empty() {
        return Err(Problem::invalid(assigned));
    }
    let d = {
        let _s = crate::telemetry::stage("validate");
        Canonical::decode_value_document(v, Form::Submission)
            .and_then(|d| match d {
                Document::Message(m) => {
                    pipeline::check_semantics(m, &p.master_data).map(Document::Message)
                }
                w => Ok(w),
            })
            .map_err(|e| pipeline::rejection(e, &caller.0, &p.policies))?
    };
    p.accept_document(&caller.0, d, &body, passed_on(req), sender_signature)
        .await
        .map_err(Problem::from)
}

fn parse_id(raw: &str) -> Result<Uuid, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found("no such message"))
}

async fn get_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&path)?;
    let store = &state.pipeline.store;
    // only the sender learns that a message exists
    let m = store
        .message(&id)
        .await?
        .filter(|m| m.sender == caller.0.as_str())
        .ok_or_else(|| Problem::not_found("no such message"))?;
    let seconds = |t: Option<i64>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| jxg_schema::values::Instant::from_utc(t).to_string())
    };
    let mut recipients: Vec<Value> = store
        .deliveries(&id).await?
        .iter()
        .map(|e| {
            json!({
                "recipient": e.recipient,
                "status": e.state.as_str(),
                "attempts": e.attempts,
                "next_attempt_at": e.next_attempt_at_ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "last_error": e.last_error,
                "delivered_at": seconds(e.delivered_at),
                "acked_at": seconds(e.acked_at),
                "alterations": e.alterations,
                "removed": e.removed,
                "copy": if revision::is_withdrawal(e) { "withdrawal" } else { "message" },
            })
        })
        .collect();
    recipients.extend(m.skipped.iter().map(|s| {
        let status = if s.reason.starts_with(revision::FLAGGED) {
            "flagged"
        } else {
            "skipped"
        };
        json!({"recipient": s.recipient, "status": status, "attempts": 0, "next_attempt_at": null,
               "last_error": s.reason, "policy": s.policy, "delivered_at": null, "acked_at": null})
    }));
    Ok(HttpResponse::Ok().json(json!({"id": m.id, "type": m.message_type, "received_at": m.received_at, "recipients": recipients})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    limit: Option<usize>,
    wait: Option<u64>,
}

async fn get_inbox(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let q = web::Query::<InboxQuery>::from_query(req.query_string()).map_err(|_| {
        Problem::bad_request("query parameters are limit (1-500) and wait (0-30 seconds)")
    })?;
    let limit = q.limit.unwrap_or(100);
    let wait = q.wait.unwrap_or(0);
    if !(1..=500).contains(&limit) || wait > 30 {
        return Err(Problem::bad_request(
            "limit is 1-500 and wait is 0-30 seconds",
        ));
    }
    let p = &state.pipeline;
    if p.registry.entry(&caller.0).delivery != crate::config::Delivery::Pull {
        // documents are pushed to this authority: its inbox stays empty, so nothing arrives twice
        return Ok(HttpResponse::Ok().json(json!({"items": []})));
    }
    let visibility = Duration::from_secs(p.config.limits.inbox_visibility_seconds);
    let wait = wait.min(p.config.limits.inbox_max_wait_seconds);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let signal = p.store.signal(&caller.0);
    let items = loop {
        let notified = signal.notified();
        let items = p.store.take_inbox(&caller.0, limit, visibility).await?;
        if !items.is_empty() {
            // offered only once on disk (a message lost to a crash after it was offered would
            // come back from its sender under another id)
            p.store.durable().await?;
            break items;
        }
        if tokio::time::Instant::now() >= deadline {
            break items;
        }
        // wake on a new entry, or re-check when a hidden entry's visibility may have passed
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            notified,
        )
        .await;
    };
    let items: Vec<Value> = items
        .iter()
        .map(|e| {
            let bytes = e.content.clone();
            let mut o = json!({
                "id": e.message_id,
                "type": e.message_type,
                "format": e.format,
                "signature": e.signature,
                "correlation_id": e.correlation_id,
                "received_at": e.received_at,
            });
            match String::from_utf8(bytes) {
                Ok(text) => o["content"] = Value::from(text),
                Err(raw) => {
                    use base64::Engine;
                    o["content_base64"] = Value::from(
                        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
                    )
                }
            }
            if let Some(t) = &e.traceparent {
                o["traceparent"] = Value::from(t.clone());
            }
            o
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

async fn post_ack(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&path)?;
    let store = &state.pipeline.store;
    let now = jxg_schema::values::Instant::now().unix_seconds();
    match store.ack(&caller.0, &id, now).await? {
        None => Err(Problem::not_found("no such message in this inbox")),
        Some(outcome) => {
            store.durable().await?;
            if outcome == crate::store::AckOutcome::Acked {
                crate::telemetry::delivered(&caller.0, "pull");
            }
            Ok(HttpResponse::Ok().json(json!({"id": id, "status": "acked"})))
        }
    }
}

/// The state the app needs, shared by both listeners.
pub type State = web::Data<AppState>;

pub fn shared(state: AppState) -> State {
    web::Data::from(Arc::new(state))
}
