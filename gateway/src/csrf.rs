//! Cross-site request protection for the admin listener's state-changing routes, beyond the
//! client certificate: a browser presents the operator's certificate to any page that makes it
//! send a request, so a request a browser sends must come from the console's own origin and carry
//! the console's token.
//!
//! A request is a browser's when it carries `Origin` or `Sec-Fetch-Site` (every browser sends one
//! of them on a POST, and a page cannot remove them). Such a request is refused unless its
//! `Origin` is this listener's own and `Sec-Fetch-Site` (when sent) is `same-origin`, and unless
//! `X-CSRF-Token` holds the token `GET /admin/v1/session` gave this role. A request from a client
//! that is not a browser (curl, an operator's scripts) sends neither header and needs no token:
//! no third-party page can make it send anything.
//!
//! The token is an HMAC of the role under a key made at start and never stored: a restart makes
//! the console fetch a new one.

use std::sync::OnceLock;

use actix_web::HttpRequest;
use base64::Engine;
use ring::hmac;

use crate::ingress::problem::Problem;

/// The header the console sends its token in.
pub const HEADER: &str = "x-csrf-token";

fn key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .expect("the system's random source works")
    })
}

/// The token of `role` (`admin:operator`, `admin:auditor`) for this process's life.
pub fn token(role: &str) -> String {
    let tag = hmac::sign(key(), role.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

fn refused(detail: &str) -> Problem {
    Problem::new(
        403,
        "cross-site-request",
        "Cross-site request refused",
        detail,
    )
}

/// Refuses a state-changing request a browser sent from elsewhere, or without `role`'s token.
pub fn check(req: &HttpRequest, role: &str) -> Result<(), Problem> {
    if req.method().is_safe() {
        return Ok(());
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    };
    let (origin, site) = (header("origin"), header("sec-fetch-site"));
    if origin.is_none() && site.is_none() {
        return Ok(());
    }
    if let Some(origin) = origin {
        let own = format!("https://{}", req.connection_info().host());
        if !origin.eq_ignore_ascii_case(&own) {
            return Err(refused(
                "this request came from a page of another origin than this listener",
            ));
        }
    }
    if site.is_some_and(|s| s != "same-origin") {
        return Err(refused(
            "this request came from a page of another site than this listener",
        ));
    }
    let given = header(HEADER)
        .and_then(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.trim())
                .ok()
        })
        .unwrap_or_default();
    hmac::verify(key(), role.as_bytes(), &given).map_err(|_| {
        refused("a browser's request needs the X-CSRF-Token that GET /admin/v1/session gives")
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn post() -> TestRequest {
        TestRequest::post()
            .uri("/admin/v1/policies/reload")
            .insert_header(("host", "127.0.0.1:9443"))
    }

    #[test]
    fn a_client_that_is_not_a_browser_needs_no_token() {
        assert!(check(&post().to_http_request(), "admin:operator").is_ok());
        assert!(check(&TestRequest::get().to_http_request(), "admin:operator").is_ok());
    }

    #[test]
    fn a_browser_needs_its_own_origin_and_the_roles_token() {
        let own = || post().insert_header(("origin", "https://127.0.0.1:9443"));
        let ok = own()
            .insert_header(("sec-fetch-site", "same-origin"))
            .insert_header((HEADER, token("admin:operator")))
            .to_http_request();
        assert!(check(&ok, "admin:operator").is_ok());
        let missing = own().to_http_request();
        assert_eq!(check(&missing, "admin:operator").unwrap_err().status, 403);
        let other_role = own()
            .insert_header((HEADER, token("admin:auditor")))
            .to_http_request();
        assert!(check(&other_role, "admin:operator").is_err());
        let elsewhere = post()
            .insert_header(("origin", "https://evil.example"))
            .insert_header((HEADER, token("admin:operator")))
            .to_http_request();
        assert!(check(&elsewhere, "admin:operator").is_err());
        let cross_site = post()
            .insert_header(("sec-fetch-site", "cross-site"))
            .insert_header((HEADER, token("admin:operator")))
            .to_http_request();
        assert!(check(&cross_site, "admin:operator").is_err());
    }
}
