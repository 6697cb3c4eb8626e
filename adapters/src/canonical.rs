//! The canonical format itself: JSON checked against the submission or stored schema and read
//! into the types. Like every adapter it leaves the semantic rules to the caller
//! (`jxg_schema::validate::semantic`, which the gateway runs after every decode).

use jxg_schema::schema::{self, Form};
use jxg_schema::{Message, MessageType, Violations};
use serde_json::Value;

use crate::{Adapter, Context, DecodeError, EncodeError};

#[derive(Debug)]
pub struct Canonical;

impl Canonical {
    /// Decodes either form (told apart by `id`), reporting every violation.
    pub fn decode_any(bytes: &[u8]) -> Result<Message, DecodeError> {
        let v: Value = parse_json(bytes)?;
        let form = if v.get("id").is_some() {
            Form::Stored
        } else {
            Form::Submission
        };
        Self::decode_value(v, form)
    }

    /// Decodes a parsed value in the given form.
    pub fn decode_value(v: Value, form: Form) -> Result<Message, DecodeError> {
        let message_type = v
            .get("type")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<MessageType>().ok());
        let errs = schema::check(form, &v);
        if !errs.is_empty() {
            return Err(DecodeError::invalid(message_type, errs));
        }
        Message::from_value(v).map_err(|e| DecodeError::invalid(message_type, Violations(vec![e])))
    }
}

/// Parses JSON, naming line and column of the first fault.
pub fn parse_json(bytes: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| {
        DecodeError::malformed(format!(
            "not JSON: {} at line {}, column {}",
            classify(&e),
            e.line(),
            e.column()
        ))
    })
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "read error",
    }
}

impl Adapter for Canonical {
    fn name(&self) -> &'static str {
        "canonical"
    }
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn native_authority(&self) -> Option<&'static str> {
        Some("prison")
    }
    fn decode(&self, bytes: &[u8], _ctx: &Context<'_>) -> Result<Message, DecodeError> {
        Self::decode_any(bytes)
    }
    fn encode(&self, message: &Message, _ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        Ok(message.to_bytes())
    }
}
