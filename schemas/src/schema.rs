//! The canonical JSON Schema files (`schemas/canonical/v1/`, `schemas/canonical/v2/`) and a
//! validator over them.
//!
//! In each version `message.schema.json` holds every definition and `submission.schema.json`
//! refers into it, so the two forms cannot drift apart; v2 refers to v1 for everything v1 has. Violations name their place as `body.counts[0].no` and never
//! quote the offending value (it may be a CPR number or a name).

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Registry, Resource, Validator};
use serde_json::Value;

use crate::{Version, Violations};

/// `schemas/canonical/v1/message.schema.json`.
pub const MESSAGE_SCHEMA: &str = include_str!("../canonical/v1/message.schema.json");
/// `schemas/canonical/v1/submission.schema.json`.
pub const SUBMISSION_SCHEMA: &str = include_str!("../canonical/v1/submission.schema.json");
/// The `$id` the submission schema resolves `message.schema.json` against.
pub const MESSAGE_SCHEMA_ID: &str = "https://jxg.invalid/schemas/canonical/v1/message.schema.json";

/// `schemas/canonical/v2/message.schema.json`.
pub const MESSAGE_SCHEMA_V2: &str = include_str!("../canonical/v2/message.schema.json");
/// `schemas/canonical/v2/submission.schema.json`.
pub const SUBMISSION_SCHEMA_V2: &str = include_str!("../canonical/v2/submission.schema.json");
/// The `$id` the v2 submission schema resolves its `message.schema.json` against.
pub const MESSAGE_SCHEMA_V2_ID: &str =
    "https://jxg.invalid/schemas/canonical/v2/message.schema.json";

/// Which form a message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Stored or delivered: with `id` and `received_at`.
    Stored,
    /// Submitted by a sender, or printed by `jxg convert`: neither `id` nor `received_at`.
    Submission,
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("shipped schemas are JSON")
}

/// A validator of `root` that may refer to `resources` by their `$id`.
fn compile(root: &str, resources: &[(&str, &str)]) -> Validator {
    let mut registry = Registry::new();
    for (id, text) in resources {
        registry = registry
            .add(*id, Resource::from_contents(parse(text)))
            .expect("shipped schema registers");
    }
    let registry = registry.prepare().expect("registry prepares");
    jsonschema::options()
        .with_registry(&registry)
        .build(&parse(root))
        .expect("shipped schema compiles")
}

fn validator(version: Version, form: Form) -> &'static Validator {
    static V1_STORED: OnceLock<Validator> = OnceLock::new();
    static V1_SUBMISSION: OnceLock<Validator> = OnceLock::new();
    static V2_STORED: OnceLock<Validator> = OnceLock::new();
    static V2_SUBMISSION: OnceLock<Validator> = OnceLock::new();
    let v1 = (MESSAGE_SCHEMA_ID, MESSAGE_SCHEMA);
    let v2 = (MESSAGE_SCHEMA_V2_ID, MESSAGE_SCHEMA_V2);
    match (version, form) {
        (Version::V1, Form::Stored) => V1_STORED.get_or_init(|| compile(MESSAGE_SCHEMA, &[])),
        (Version::V1, Form::Submission) => {
            V1_SUBMISSION.get_or_init(|| compile(SUBMISSION_SCHEMA, &[v1]))
        }
        (Version::V2, Form::Stored) => V2_STORED.get_or_init(|| compile(MESSAGE_SCHEMA_V2, &[v1])),
        (Version::V2, Form::Submission) => {
            V2_SUBMISSION.get_or_init(|| compile(SUBMISSION_SCHEMA_V2, &[v1, v2]))
        }
    }
}

/// The version a document names in `schema`: v2 when it names v2, else v1 (whose schema then
/// reports a `schema` that is neither).
pub fn version_of(instance: &Value) -> Version {
    match instance.get("schema").and_then(Value::as_str) {
        Some(crate::SCHEMA_V2) => Version::V2,
        _ => Version::V1,
    }
}

/// Every structural violation of `instance` against the schema of `form`.
pub fn check(form: Form, instance: &Value) -> Violations {
    let mut out = Violations::new();
    for e in validator(version_of(instance), form).iter_errors(instance) {
        let base = pointer_to_path(e.instance_path().as_str());
        let (path, message) = describe(base, e.kind());
        out.push(path, message);
    }
    out
}

fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{field}")
    }
}

fn describe(base: String, kind: &ValidationErrorKind) -> (String, String) {
    use ValidationErrorKind as K;
    match kind {
        K::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            (join(&base, name), "is required".into())
        }
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            let first = unexpected.first().map(String::as_str).unwrap_or("?");
            (
                join(&base, first),
                format!(
                    "is not a field of this object (unknown: {})",
                    unexpected.join(", ")
                ),
            )
        }
        K::Type { kind } => (base, format!("must be of type {kind:?}").to_lowercase()),
        K::Enum { options } => (base, format!("must be one of {options}")),
        K::Constant { expected_value } => (base, format!("must be {expected_value}")),
        K::Pattern { .. } | K::Format { .. } => (base, "does not have the required form".into()),
        K::MinLength { limit } => (base, format!("must be at least {limit} characters")),
        K::MaxLength { limit } => (base, format!("must be at most {limit} characters")),
        K::MinItems { limit } => (base, format!("must have at least {limit} entries")),
        K::MaxItems { limit } => (base, format!("must have at most {limit} entries")),
        K::Minimum { limit } => (base, format!("must be at least {limit}")),
        K::Maximum { limit } => (base, format!("must be at most {limit}")),
        K::MinProperties { limit } => (base, format!("must name at least {limit} reference")),
        K::FalseSchema => (base, "is not a field of this kind of message".into()),
        K::OneOfNotValid { .. } | K::OneOfMultipleValid { .. } => (
            base,
            "must name the message by exactly one of message_id and source_document_id".into(),
        ),
        other => (
            base,
            format!("does not satisfy the schema ({})", other.keyword()),
        ),
    }
}

/// `/body/counts/0/no` → `body.counts[0].no`.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_dotted_paths() {
        assert_eq!(
            pointer_to_path("/body/counts/0/law_ref"),
            "body.counts[0].law_ref"
        );
        assert_eq!(pointer_to_path(""), "");
    }

    #[test]
    fn the_submission_schema_shares_the_message_definitions() {
        let sub: Value = serde_json::from_str(SUBMISSION_SCHEMA).unwrap();
        let text = sub.to_string();
        assert!(text.contains("message.schema.json#/$defs/body_by_type"));
        assert!(
            sub.get("$defs").is_none(),
            "definitions live in message.schema.json only"
        );
    }

    #[test]
    fn violations_never_quote_the_value() {
        let mut v: Value = serde_json::from_str(include_str!(
            "../../tests/data/canonical/valid/offence.reported.json"
        ))
        .unwrap();
        v["body"]["persons"][0]["cpr"] = "01049X9995".into();
        v["body"]["persons"][0]["given_name"] = Value::from(7);
        let errs = check(Form::Stored, &v);
        let text = format!("{errs}");
        assert!(
            errs.iter().any(|e| e.path == "body.persons[0].cpr"),
            "{text}"
        );
        assert!(
            errs.iter().any(|e| e.path == "body.persons[0].given_name"),
            "{text}"
        );
        assert!(!text.contains("01049X9995"), "{text}");
    }
}
