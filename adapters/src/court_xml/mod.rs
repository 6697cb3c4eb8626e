//! `court-xml`: the courts' XML documents (docs/formats/court-xml.md), version 2.
//!
//! [`tree`] is the framing: hardened streaming parse into a small element tree; `model` names
//! whatever in it the format does not define; [`decode`] reads the tree into canonical;
//! [`encode`] writes canonical as UTF-8 XML valid against `schemas/legacy/court-xml-2.xsd`.

pub mod decode;
pub mod encode;
mod model;
#[cfg(test)]
mod tests;
pub mod tree;

use jxg_schema::message::{CorrectionReason, WithdrawalReason};
use jxg_schema::{Document, Message, Withdrawal};

use crate::{Adapter, Context, DecodeError, EncodeError};

pub use decode::{decode, decode_document};
pub use encode::{encode, encode_withdrawal};

/// The root element of a withdrawal (either direction).
pub const WITHDRAWAL: &str = "Tilbagekaldelse";

/// `Rettelse/@årsag`: why a document is replaced.
pub const CORRECTION_REASONS: &[(&str, CorrectionReason)] = &[
    ("forkerte-oplysninger", CorrectionReason::WrongData),
    ("forkert-person", CorrectionReason::WrongPerson),
    ("skrivefejl", CorrectionReason::ClericalError),
    ("ændret-afgørelse", CorrectionReason::DecisionChanged),
];

/// `Tilbagekaldt/@årsag`: why a document is withdrawn.
pub const WITHDRAWAL_REASONS: &[(&str, WithdrawalReason)] = &[
    ("sendt-ved-fejl", WithdrawalReason::SentInError),
    ("forkert-person", WithdrawalReason::WrongPerson),
    ("forkert-sag", WithdrawalReason::WrongCase),
    ("dublet", WithdrawalReason::Duplicate),
    ("sletning", WithdrawalReason::Erasure),
];

/// The namespace of version 2.
pub const NAMESPACE: &str = "urn:dk:domstol:straffesag:2";

/// The six root elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Dom,
    Kendelse,
    Retsmoede,
    Anklageskrift,
    Anholdelse,
    Tiltalefrafald,
}

impl Root {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Dom" => Root::Dom,
            "Kendelse" => Root::Kendelse,
            "Retsmøde" => Root::Retsmoede,
            "Anklageskrift" => Root::Anklageskrift,
            "Anholdelse" => Root::Anholdelse,
            "Tiltalefrafald" => Root::Tiltalefrafald,
            _ => return None,
        })
    }
    pub fn name(&self) -> &'static str {
        match self {
            Root::Dom => "Dom",
            Root::Kendelse => "Kendelse",
            Root::Retsmoede => "Retsmøde",
            Root::Anklageskrift => "Anklageskrift",
            Root::Anholdelse => "Anholdelse",
            Root::Tiltalefrafald => "Tiltalefrafald",
        }
    }
}

#[derive(Debug)]
pub struct CourtXml;

impl Adapter for CourtXml {
    fn name(&self) -> &'static str {
        "court-xml"
    }
    fn media_type(&self) -> &'static str {
        "application/xml"
    }
    fn native_authority(&self) -> Option<&'static str> {
        Some("courts")
    }
    fn decode(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
        decode(bytes, ctx)
    }
    fn decode_document(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
        decode_document(bytes, ctx)
    }
    fn encode(&self, message: &Message, ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        encode(message, ctx.master_data)
    }
    fn carries_corrections(&self) -> bool {
        true
    }
    fn encode_withdrawal(&self, w: &Withdrawal, ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        encode_withdrawal(w, ctx.master_data)
    }
}
