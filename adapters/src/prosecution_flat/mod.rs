//! `prosecution-flat`: the prosecution service's fixed-width record sets (docs/formats/prosecution-flat.md).
//!
//! [`records`] is the framing (a cursor over 128-character records that checks length, type,
//! order, control bytes and the trailer count); [`decode`] reads fields into canonical;
//! [`encode`] writes ISO-8859-1 records.

pub mod decode;
pub mod encode;
pub mod records;
#[cfg(test)]
mod tests;

use jxg_schema::{Message, MessageType};

use crate::{Adapter, Context, DecodeError, EncodeError};

pub use decode::decode;
pub use encode::{Alterations, encode, encode_reporting};

/// The ten message kinds and their canonical types.
pub const KINDS: &[(&str, MessageType)] = &[
    ("TILT", MessageType::IndictmentFiled),
    ("OPGV", MessageType::ChargesWithdrawn),
    ("ANML", MessageType::OffenceReported),
    ("SIGT", MessageType::PersonCharged),
    ("ANHO", MessageType::PersonArrested),
    ("RETM", MessageType::HearingScheduled),
    ("VART", MessageType::RemandOrdered),
    ("DOMA", MessageType::VerdictIssued),
    ("INDS", MessageType::CustodyAdmitted),
    ("LOES", MessageType::CustodyReleased),
];

#[derive(Debug)]
pub struct ProsecutionFlat;

impl Adapter for ProsecutionFlat {
    fn name(&self) -> &'static str {
        "prosecution-flat"
    }
    fn media_type(&self) -> &'static str {
        "text/x-jxg-flat"
    }
    fn native_authority(&self) -> Option<&'static str> {
        Some("prosecution")
    }
    fn decode(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
        decode(bytes, ctx)
    }
    fn encode(&self, message: &Message, ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        encode(message, ctx.master_data)
    }
    fn encode_noting(
        &self,
        message: &Message,
        ctx: &Context<'_>,
    ) -> Result<(Vec<u8>, Vec<String>), EncodeError> {
        let (bytes, alt) = encode_reporting(message, ctx.master_data)?;
        let notes = alt
            .cut
            .iter()
            .map(|p| format!("{p}: cut to the field's width"))
            .chain(
                alt.folded
                    .iter()
                    .map(|p| format!("{p}: characters outside ISO-8859-1 folded")),
            )
            .collect();
        Ok((bytes, notes))
    }
}
