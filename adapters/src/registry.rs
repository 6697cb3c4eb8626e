//! Formats by name. Adding a format is one module and one line in [`ADAPTERS`].

use jxg_schema::{Document, MasterData, Message, Withdrawal};

use crate::{DecodeError, EncodeError};

/// What an adapter may consult: reference data, never the outside world.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub master_data: &'a MasterData,
}

/// One exchange format, both directions.
pub trait Adapter: Sync + Send {
    /// The format's name in configuration and on the command line (`police-json`).
    fn name(&self) -> &'static str;
    /// The media type of documents in this format.
    fn media_type(&self) -> &'static str;
    /// The authority whose native format this is (the default sender for `jxg convert`).
    fn native_authority(&self) -> Option<&'static str>;
    /// Bytes to canonical (submission form: no `id`, no `received_at`, no `sender`).
    fn decode(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError>;
    /// Bytes to any document the format has: a message (perhaps a correction), or a withdrawal
    /// where the format has one.
    fn decode_document(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
        self.decode(bytes, ctx).map(Document::Message)
    }
    /// Canonical to bytes.
    fn encode(&self, message: &Message, ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError>;
    /// Canonical to bytes, and where the format had to alter what it was given (a text cut to
    /// its field, a character folded), named by place only — for the delivery's record.
    fn encode_noting(
        &self,
        message: &Message,
        ctx: &Context<'_>,
    ) -> Result<(Vec<u8>, Vec<String>), EncodeError> {
        self.encode(message, ctx).map(|b| (b, Vec::new()))
    }
    /// Whether the format can say that a message replaces an earlier one in full (a correction).
    /// A format that cannot is never given one: the gateway flags the recipient for an operator
    /// instead (docs/formats/canonical-v2.md, "Corrections and withdrawals").
    fn carries_corrections(&self) -> bool {
        false
    }
    /// A withdrawal in this format.
    fn encode_withdrawal(
        &self,
        _withdrawal: &Withdrawal,
        _ctx: &Context<'_>,
    ) -> Result<Vec<u8>, EncodeError> {
        Err(EncodeError::CannotCarry {
            format: self.name(),
            what: "a withdrawal".into(),
        })
    }
}

static ADAPTERS: &[&dyn Adapter] = &[
    &crate::canonical::Canonical,
    &crate::canonical::CanonicalV2,
    &crate::police_json::PoliceJson,
    &crate::court_xml::CourtXml,
    &crate::prosecution_flat::ProsecutionFlat,
];

/// The adapter for a format name.
pub fn get(name: &str) -> Option<&'static dyn Adapter> {
    ADAPTERS.iter().copied().find(|a| a.name() == name)
}

/// Every format name this build knows.
pub fn names() -> Vec<&'static str> {
    ADAPTERS.iter().map(|a| a.name()).collect()
}
