//! The admin listener: health, readiness, metrics and the JWKS. Any certificate of the sector CA
//! may read these; the `/admin/v1/…` routes with roles come with the audit work.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::ingress::identity::Peer;
use crate::ingress::problem::Problem;
use crate::ingress::{AppState, jwks, not_allowed};

fn any_certificate(req: &HttpRequest) -> Result<(), Problem> {
    req.conn_data::<Peer>()
        .map(|_| ())
        .ok_or_else(Problem::unauthenticated)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
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
    if let Err(e) = state.pipeline.store.pending_count() {
        reasons.push(format!("store: {e}"));
    }
    if let Some(b) = &state.broker {
        if !b.is_connected() {
            reasons.push("broker: not connected".to_string());
        }
    }
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        reasons.push("shutting down".to_string());
    }
    if reasons.is_empty() {
        Ok(HttpResponse::Ok()
            .json(json!({"status": "ready", "signing_key": state.pipeline.signer.kid()})))
    } else {
        Ok(HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({"status": "not ready", "reasons": reasons})))
    }
}

async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    any_certificate(&req)?;
    let store = &state.pipeline.store;
    let text = state
        .metrics
        .render(store.flush_stats(), store.pending_count().unwrap_or(0));
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
