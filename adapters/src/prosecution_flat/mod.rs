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

use jxg_schema::message::{CorrectionReason, WithdrawalReason};
use jxg_schema::{Document, Message, MessageType, Withdrawal};

use crate::{Adapter, Context, DecodeError, EncodeError};

pub use decode::{decode, decode_document};
pub use encode::{Alterations, encode, encode_reporting, encode_withdrawal};

/// The message kind of a withdrawal (either direction): HD, one TB, TR.
pub const WITHDRAWAL: &str = "TILB";

/// `RT` reason: why a record set is replaced.
pub const CORRECTION_REASONS: &[(&str, CorrectionReason)] = &[
    ("OPLY", CorrectionReason::WrongData),
    ("PERS", CorrectionReason::WrongPerson),
    ("SKRF", CorrectionReason::ClericalError),
    ("AEND", CorrectionReason::DecisionChanged),
];

/// `TB` reason: why a record set is withdrawn.
pub const WITHDRAWAL_REASONS: &[(&str, WithdrawalReason)] = &[
    ("FEJL", WithdrawalReason::SentInError),
    ("PERS", WithdrawalReason::WrongPerson),
    ("SAGF", WithdrawalReason::WrongCase),
    ("DUBL", WithdrawalReason::Duplicate),
    ("SLET", WithdrawalReason::Erasure),
];

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
    fn decode_document(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
        decode_document(bytes, ctx)
    }
    fn carries_corrections(&self) -> bool {
        true
    }
    fn encode_withdrawal(
        &self,
        w: &Withdrawal,
        _ctx: &Context<'_>,
    ) -> Result<Vec<u8>, EncodeError> {
        encode_withdrawal(w)
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
