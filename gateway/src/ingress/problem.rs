//! The one place errors become HTTP answers: RFC 9457 `application/problem+json`. Bodies never
//! hold a CPR number, a name or an address; an unexpected error is a generic 500.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use jxg_schema::Violation;
use serde_json::json;

/// At most this many violations are listed, then one entry says how many more.
const MAX_ERRORS: usize = 100;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: u16,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<Violation>,
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: u16,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: vec![],
            retry_after: None,
        }
    }
    pub fn with_errors(mut self, errors: Vec<Violation>) -> Self {
        self.errors = errors;
        self
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            401,
            "unauthenticated",
            "No client certificate",
            "a client certificate of the sector CA is required",
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", "Not allowed", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", "Not found", detail)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "method-not-allowed",
            "Method not allowed",
            "this path does not take that method",
        )
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", "Idempotency key reused", detail)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "too-large",
            "Body too large",
            format!("the body is over the limit of {limit} bytes"),
        )
    }
    pub fn unsupported_media(detail: impl Into<String>) -> Self {
        Self::new(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(400, "malformed", "Malformed document", detail)
    }
    /// A JSON body over a structural limit (depth, string length), naming where.
    pub fn json_limit(limit: crate::ingress::limits::JsonLimit) -> Self {
        Self::new(
            400,
            "json-limit",
            "JSON over a limit",
            format!("the body passes a limit at {}", limit.pointer),
        )
        .with_errors(vec![Violation::new(limit.pointer, limit.message)])
    }
    pub fn request_timeout(detail: impl Into<String>) -> Self {
        Self::new(408, "request-timeout", "Request timeout", detail)
    }
    pub fn too_many_connections(limit: usize) -> Self {
        Self::new(
            429,
            "too-many-connections",
            "Too many connections",
            format!("this certificate has more than {limit} connections open; this one is closed"),
        )
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", "Bad request", detail)
    }
    pub fn invalid(errors: Vec<Violation>) -> Self {
        let n = errors.len();
        Self::new(
            422,
            "invalid",
            "Invalid document",
            format!("{n} violation(s) found"),
        )
        .with_errors(errors)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut p = Self::new(
            429,
            "rate-limited",
            "Too many requests",
            "over this authority's rate limit",
        );
        p.retry_after = Some(retry_after);
        p
    }
    /// 503 with `Retry-After: 1`: the store is behind; the sender should try again shortly.
    pub fn store_behind() -> Self {
        let mut p = Self::new(
            503,
            "store-behind",
            "Service unavailable",
            "the store is behind with its writes; nothing was accepted, try again after Retry-After",
        );
        p.retry_after = Some(1);
        p
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut p = Self::new(503, "unavailable", "Service unavailable", detail);
        p.retry_after = Some(5);
        p
    }
    /// A document an adapter refused: 400 when it could not be read, 422 with every violation.
    pub fn from_rejection(r: jxg_adapters::Rejection) -> Self {
        match r {
            jxg_adapters::Rejection::Malformed { message } => Self::malformed(message),
            jxg_adapters::Rejection::Invalid(v) => Self::invalid(v.0),
            jxg_adapters::Rejection::Encoding { message } => Self::unsupported_media(message),
            jxg_adapters::Rejection::Layout(v) => Self::malformed(
                "the document is not well-formed for its format at the places listed",
            )
            .with_errors(v.0),
            _ => Self::malformed("the document could not be read"),
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut errors: Vec<serde_json::Value> = self
            .errors
            .iter()
            .take(MAX_ERRORS)
            .map(|e| json!({"path": e.path, "message": e.message}))
            .collect();
        if self.errors.len() > MAX_ERRORS {
            errors.push(json!({"path": "", "message": format!("{} more violations not listed", self.errors.len() - MAX_ERRORS)}));
        }
        json!({
            "type": format!("urn:jxg:problem:{}", self.slug),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": format!("urn:uuid:{}", uuid::Uuid::now_v7()),
            "errors": errors,
        })
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.slug)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.content_type("application/problem+json");
        if let Some(s) = self.retry_after {
            r.insert_header(("Retry-After", s.to_string()));
        }
        // a connection over its holder's limit, or whose request timed out, is not kept
        if matches!(self.slug, "too-many-connections" | "request-timeout") {
            r.force_close();
        }
        r.body(self.body().to_string())
    }
}

/// The one map from the domain's refusals to HTTP answers (the AMQP consumer uses it too, for the
/// status and reason it puts on a refused message).
impl From<crate::pipeline::Refused> for Problem {
    fn from(r: crate::pipeline::Refused) -> Self {
        use crate::pipeline::Refused;
        match r {
            Refused::Document(rejection) => Problem::from_rejection(rejection),
            Refused::Forbidden(reason) => Problem::forbidden(reason),
            Refused::Conflict(detail) => Problem::conflict(detail),
            Refused::StoreBehind => Problem::store_behind(),
            Refused::Signing => Problem::unavailable("signing failed; nothing was accepted"),
            Refused::Store(e) => Problem::from(e),
        }
    }
}

/// A store that is unavailable (a full or failed disk) is 503, worth trying again; a record
/// that cannot be read is 500 and is not: it is reported to the operators
/// (`GET /admin/v1/unreadable`), and the rest of the store goes on.
impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        if e.is_transient() {
            Problem::unavailable("the store is unavailable; nothing was accepted")
        } else {
            Problem::new(
                500,
                "unreadable-record",
                "Stored record unreadable",
                "a stored record this request needs cannot be read; nothing was changed, and \
                 the record is reported to the operators",
            )
        }
    }
}
