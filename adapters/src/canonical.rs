//! The canonical format itself: JSON checked against the submission or stored schema, then the
//! semantic rules.

use jxg_schema::schema::{self, Form};
use jxg_schema::{Message, MessageType, Violations, validate};
use serde_json::Value;

use crate::{Adapter, Context, DecodeError, EncodeError};

#[derive(Debug)]
pub struct Canonical;

impl Canonical {
    /// Decodes either form (told apart by `id`), reporting every violation.
    pub fn decode_any(bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
        let v: Value = parse_json(bytes)?;
        let form = if v.get("id").is_some() {
            Form::Stored
        } else {
            Form::Submission
        };
        Self::decode_value(v, form, ctx)
    }

    /// Decodes a parsed value in the given form.
    pub fn decode_value(v: Value, form: Form, ctx: &Context<'_>) -> Result<Message, DecodeError> {
        let message_type = v
            .get("type")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<MessageType>().ok());
        let errs = schema::check(form, &v);
        if !errs.is_empty() {
            return Err(DecodeError::invalid(message_type, errs));
        }
        let m = Message::from_value(v)
            .map_err(|e| DecodeError::invalid(message_type, Violations(vec![e])))?;
        let errs = validate::semantic(&m, ctx.master_data);
        errs.into_result(m)
            .map_err(|e| DecodeError::invalid(message_type, e))
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
    fn decode(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
        Self::decode_any(bytes, ctx)
    }
    fn encode(&self, message: &Message, _ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        Ok(message.to_bytes())
    }
}
