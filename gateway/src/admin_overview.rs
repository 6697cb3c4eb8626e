//! `GET /admin/v1/session` (who the caller is, its cross-site token, its language) and
//! `GET /admin/v1/overview` (the state of the exchange at a glance): the two reads the console
//! starts from, open to both admin roles. Counts, states and names only: no message, no subject.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::admin_ops::any_role;
use crate::ingress::AppState;
use crate::ingress::identity::AdminRole;
use crate::ingress::problem::Problem;

/// The languages the console speaks, the first the default.
const LANGUAGES: [&str; 2] = ["en", "da"];

/// The caller's preferred language of [`LANGUAGES`] by `Accept-Language` (RFC 9110 §12.5.4:
/// the highest weight first, `da-DK` counting as `da`); English when none fits.
pub fn language(accept: Option<&str>) -> &'static str {
    let mut best: Option<(f32, &'static str)> = None;
    for item in accept.unwrap_or_default().split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
            .unwrap_or(1.0f32);
        let primary = tag.split('-').next().unwrap_or_default();
        let Some(lang) = LANGUAGES.iter().find(|l| **l == primary) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map_or(LANGUAGES[0], |(_, l)| l)
}

pub async fn session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let (role, name) = any_role(&req)?;
    let accept = req
        .headers()
        .get("accept-language")
        .and_then(|v| v.to_str().ok());
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "role": match role {
                AdminRole::Operator => "operator",
                AdminRole::Auditor => "auditor",
            },
            "csrf_token": crate::csrf::token(name),
            "language": language(accept),
            "node": state.pipeline.store.node(),
        })))
}

pub async fn overview(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    any_role(&req)?;
    let p = &state.pipeline;
    let counts = p.store.counts();
    let activity = jxg_core::activity::activity();
    let authorities: Vec<Value> = p
        .config
        .authorities
        .iter()
        .map(|a| {
            let c = counts.get(&a.id).copied().unwrap_or_default();
            let (_, oldest) = p.store.outbox_depth(&a.id);
            let mut v =
                serde_json::to_value(activity.summary(&a.id, p.config.delivery.breaker_failures))
                    .expect("JSON");
            v["id"] = json!(a.id);
            v["name"] = json!(a.name);
            v["format"] = json!(a.format);
            v["delivery"] = json!(format!("{:?}", a.delivery).to_lowercase());
            v["waiting"] = json!(c.waiting);
            v["dead"] = json!(c.dead);
            v["oldest_waiting"] = json!(oldest);
            v
        })
        .collect();
    let broker = state
        .broker
        .as_ref()
        .map(|b| json!({"connected": b.is_connected(), "blocked": b.blocked()}));
    let store = match p.store.ready() {
        Ok(()) => json!({"ready": true, "error": null}),
        Err(e) => json!({"ready": false, "error": e.to_string()}),
    };
    let now = chrono::Utc::now().timestamp();
    let warn = i64::from(p.config.tls.expiry_warning_days);
    let certificates: Vec<Value> = state
        .tls
        .get()
        .map(|t| t.expiries().to_vec())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, end)| {
            let days_left = (end - now).div_euclid(86_400);
            json!({"certificate": name, "days_left": days_left, "near_end": days_left < warn})
        })
        .collect();
    let current = p.signer.load().kid().to_string();
    let keys: Vec<Value> = p
        .store
        .signing_keys()
        .await?
        .into_iter()
        .map(|r| {
            let kid = r["jwk"]["kid"].clone();
            json!({"kid": kid, "current": kid == current.as_str(), "retired_at": r["retired_at"]})
        })
        .collect();
    let head = p.store.audit_head();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "node": p.store.node(),
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "authorities": authorities,
            "broker": broker,
            "store": store,
            "draining": state.draining.load(std::sync::atomic::Ordering::SeqCst),
            "certificates": certificates,
            "signing_keys": keys,
            "audit": {
                "entries": head.next_seq.saturating_sub(1),
                "last_verification": state.verifications.last(),
            },
        })))
}

/// Samples every authority's backlog into the activity record, every
/// [`jxg_core::activity::SAMPLE_SECONDS`], for the overview's trend.
pub async fn sample_backlogs(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(
        jxg_core::activity::SAMPLE_SECONDS,
    ));
    loop {
        tick.tick().await;
        if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let counts = state.pipeline.store.counts();
        for a in &state.pipeline.config.authorities {
            let waiting = counts.get(&a.id).map_or(0, |c| c.waiting);
            jxg_core::activity::activity().backlog(&a.id, waiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::language;

    #[test]
    fn the_language_follows_accept_language() {
        assert_eq!(language(None), "en");
        assert_eq!(language(Some("da-DK,da;q=0.9,en;q=0.8")), "da");
        assert_eq!(language(Some("en-GB,da;q=0.5")), "en");
        assert_eq!(language(Some("de,da;q=0.3")), "da");
        assert_eq!(language(Some("da;q=0.2,en;q=0.7")), "en");
        assert_eq!(language(Some("fr")), "en");
        assert_eq!(language(Some("da;q=0")), "en");
    }
}
