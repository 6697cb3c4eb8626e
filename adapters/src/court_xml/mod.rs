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

use jxg_schema::Message;

use crate::{Adapter, Context, DecodeError, EncodeError};

pub use decode::decode;
pub use encode::encode;

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
    fn encode(&self, message: &Message, ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        encode(message, ctx.master_data)
    }
}
