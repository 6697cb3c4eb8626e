//! The admin listener: health, readiness, metrics and the JWKS for any certificate of the sector
//! CA; the `/admin/v1/…` routes for the role each needs (the admin API: `gateway/openapi/admin.json`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::admin_ops::{self as ops, role};
use crate::audit::{Event, Record};
use crate::ingress::identity::{AdminRole, Peer};
use crate::ingress::problem::Problem;
use crate::ingress::{AppState, jwks, not_allowed};

fn any_certificate(req: &HttpRequest) -> Result<(), Problem> {
    crate::ingress::identity::Slot::check(req)?;
    req.conn_data::<Peer>()
        .map(|_| ())
        .ok_or_else(Problem::unauthenticated)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // a query string that does not fit its route is a problem+json 400 that says why
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        let detail = match &e {
            actix_web::error::QueryPayloadError::Deserialize(d) => {
                format!("the query string does not fit this route: {d}")
            }
            _ => "the query string does not fit this route".to_string(),
        };
        Problem::bad_request(detail).into()
    }));
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .route(web::get().to(jwks))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/session")
            .route(web::get().to(crate::admin_overview::session))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/overview")
            .route(web::get().to(crate::admin_overview::overview))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/messages")
            .route(web::get().to(ops::messages))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/messages/{id}")
            .route(web::get().to(ops::message))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/rectifications")
            .route(web::get().to(ops::rectifications))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/rectifications/{id}/notified")
            .route(web::post().to(ops::notified))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/messages/{id}/replay")
            .route(web::post().to(ops::replay))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/cases/{correlation}/timeline")
            .route(web::get().to(ops::timeline))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/dead-letters")
            .route(web::get().to(ops::dead_letters))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/unreadable")
            .route(web::get().to(ops::unreadable))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/authorities")
            .route(web::get().to(ops::authorities))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/routes")
            .route(web::get().to(ops::routes))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/keys")
            .route(web::get().to(ops::keys))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/keys/rotate")
            .route(web::post().to(ops::rotate))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/audit")
            .route(web::get().to(ops::audit))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/audit/subject-access")
            .route(web::post().to(ops::subject_access))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/audit/verifications")
            .route(web::post().to(ops::start_verification))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/audit/verifications/{id}")
            .route(web::get().to(ops::verification))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/audit/verify")
            .route(web::get().to(ops::verify))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/policies")
            .route(web::get().to(policies))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/policies/explain")
            .route(web::get().to(explain_policies))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/policies/reload")
            .route(web::post().to(reload_policies))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi))
            .default_service(web::to(not_allowed)),
    );
}

async fn healthz(req: HttpRequest) -> Result<HttpResponse, Problem> {
    any_certificate(&req)?;
    Ok(HttpResponse::Ok().json(json!({"status": "alive"})))
}

async fn readyz(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    any_certificate(&req)?;
    let mut reasons = Vec::new();
    if let Err(e) = state.pipeline.store.ready() {
        reasons.push(format!("store: {e}"));
    }
    if let Some(b) = &state.broker {
        if let Some(why) = b.blocked() {
            reasons.push(format!("broker: blocks publishing ({why})"));
        } else if !b.is_connected() {
            reasons.push("broker: not connected".to_string());
        }
    }
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        reasons.push("shutting down".to_string());
    }
    // a certificate near its end still works: a warning, not a reason to take traffic away
    let warnings: Vec<_> = state
        .tls
        .get()
        .map(|tls| tls.expiring(state.pipeline.config.tls.expiry_warning_days))
        .unwrap_or_default()
        .into_iter()
        .map(|(certificate, days_left)| {
            json!({"certificate": certificate, "days_left": days_left,
                   "detail": "a configured certificate expires soon"})
        })
        .collect();
    if reasons.is_empty() {
        Ok(HttpResponse::Ok().json(json!({
            "status": "ready",
            "node": state.pipeline.store.node(),
            "signing_key": state.pipeline.signer.load().kid(),
            "warnings": warnings,
        })))
    } else {
        Ok(HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(
                json!({"status": "not ready", "node": state.pipeline.store.node(),
                         "reasons": reasons, "warnings": warnings}),
            ))
    }
}

async fn metrics(req: HttpRequest) -> Result<HttpResponse, Problem> {
    any_certificate(&req)?;
    let text = web::block(crate::telemetry::render_prometheus)
        .await
        .map_err(|_| Problem::unavailable("the metrics could not be read"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}

async fn openapi(req: HttpRequest) -> Result<HttpResponse, Problem> {
    any_certificate(&req)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::ADMIN))
}

async fn policies(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    role(&req, AdminRole::Operator)?;
    Ok(HttpResponse::Ok().json(state.pipeline.policies.current().summary()))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    message_id: String,
    recipient: String,
}

/// The policies in force explained for one stored message and one recipient: each decision,
/// and each cut of the recipient's copy with its rule (paths, never values).
async fn explain_policies(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ExplainQuery>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let p = &state.pipeline;
    let invalid =
        |field: &str, why: &str| Problem::invalid(vec![jxg_schema::Violation::new(field, why)]);
    let id = uuid::Uuid::parse_str(&q.message_id)
        .map_err(|_| invalid("message_id", "is not a message id"))?;
    if p.config.authority(&q.recipient).is_none() {
        return Err(invalid("recipient", "is not a registered authority"));
    }
    let (stored, doc) = ops::stored_document(&p.store, id, "there is nothing to explain").await?;
    let m = match doc {
        jxg_schema::Document::Message(m) => m,
        _ => {
            return Err(Problem::new(
                409,
                "not-a-message",
                "Not a message",
                "a withdrawal carries no content for the policies to decide on",
            ));
        }
    };
    let e = crate::policy::explain(&p.policies.current(), &m, &stored.sender, &q.recipient);
    state
        .pipeline
        .store
        .audit(vec![
            Record::new(Event::Consulted, actor)
                .message(id, &stored.message_type, None)
                .recipient(&q.recipient)
                .detail("policy explanation"),
        ])
        .await?;
    Ok(HttpResponse::Ok().json(e))
}

/// Validates the policy folder again and swaps the whole set in, or keeps the set in force and
/// answers 422 with every error. Messages being accepted finish under the set they started with.
async fn reload_policies(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let actor = role(&req, AdminRole::Operator)?;
    let s = state.clone();
    let result = web::block(move || s.pipeline.policies.reload())
        .await
        .map_err(|_| {
            Problem::unavailable("the reload did not finish; the policies in force are unchanged")
        })?;
    match result {
        Ok(r) => {
            tracing::info!(digest = %r.digest, previous = %r.previous_digest, "policies reloaded");
            state
                .pipeline
                .store
                .audit(vec![
                    Record::new(Event::PolicyReloaded, actor)
                        .detail(format!("{} → {}", r.previous_digest, r.digest)),
                ])
                .await?;
            Ok(HttpResponse::Ok().json(r))
        }
        Err(errors) => {
            tracing::warn!(
                errors = errors.len(),
                "policy reload refused; the old set stays"
            );
            Err(Problem::new(
                422,
                "policies-invalid",
                "Policies not loaded",
                format!(
                    "{} error(s); the policies in force ({}) are unchanged",
                    errors.len(),
                    state.pipeline.policies.current().digest
                ),
            )
            .with_errors(
                errors
                    .into_iter()
                    .map(|e| {
                        jxg_schema::Violation::new(format!("{}:{}", e.file, e.line), e.message)
                    })
                    .collect(),
            ))
        }
    }
}
