//! The operators' and auditors' console under `/console/` on the admin listener: a few static
//! files (`gateway/console/`), compiled into the binary, that run in the browser over the admin
//! API (`/admin/v1/…`) with the caller's own client certificate. Served to the operator's and
//! the auditor's certificates only; every asset comes from here (no CDN, no font), under a
//! Content-Security-Policy that allows nothing but this origin and no inline script or style.

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use crate::admin_ops::any_role;
use crate::ingress::not_allowed;
use crate::ingress::problem::Problem;

/// The policy every console response carries.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The console's files: name, media type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/api.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/i18n.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/charts.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../console/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../console/favicon.svg"),
    ),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/console")
            .route(web::get().to(to_console))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/console/")
            .route(web::get().to(index))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/console/{file}")
            .route(web::get().to(asset))
            .default_service(web::to(not_allowed)),
    );
}

fn serve(name: &str) -> Option<HttpResponse> {
    let (_, media_type, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    Some(
        HttpResponse::Ok()
            .content_type(*media_type)
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            // the files change with the binary: a browser asks again each time
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*body),
    )
}

async fn to_console(req: HttpRequest) -> Result<HttpResponse, Problem> {
    any_role(&req)?;
    Ok(HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish())
}

async fn index(req: HttpRequest) -> Result<HttpResponse, Problem> {
    any_role(&req)?;
    Ok(serve("index.html").expect("the console has its index"))
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, Problem> {
    any_role(&req)?;
    serve(&file).ok_or_else(|| Problem::not_found("the console has no such file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file the index and the scripts load is one the console serves, and no file holds
    /// inline script, an inline style or an address of another origin.
    #[test]
    fn the_console_loads_only_its_own_files() {
        let served: Vec<&str> = ASSETS.iter().map(|(n, _, _)| *n).collect();
        for (name, _, body) in ASSETS {
            for (open, close) in [("src=\"", '"'), ("href=\"", '"'), ("from './", '\'')] {
                for part in body.split(open).skip(1) {
                    let target = part.split(close).next().unwrap();
                    let file = target
                        .trim_start_matches("/console/")
                        .trim_start_matches("./");
                    if target.starts_with('#') {
                        continue;
                    }
                    assert!(served.contains(&file), "{name} loads {target}, not served");
                }
            }
            let outside = body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !outside.contains("http://") && !outside.contains("https://"),
                "{name} names another origin"
            );
            if name.ends_with(".html") {
                assert!(!body.contains(" style="), "{name} has an inline style");
                let handler = body.split(" on").skip(1).any(|rest| {
                    let word: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
                    !word.is_empty() && rest[word.len()..].starts_with('=')
                });
                assert!(!handler, "{name} has an inline handler");
                let scripts = body.matches("<script").count();
                assert_eq!(
                    scripts,
                    body.matches("<script type=\"module\" src=").count()
                );
            }
        }
    }
}
