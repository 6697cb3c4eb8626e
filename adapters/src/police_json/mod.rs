//! `police-json`: the police case system's JSON documents (docs/formats/police-json.md).
//!
//! [`fields`] reads and writes the format's field conventions (local times, CPR numbers, law
//! references, amounts, durations, flags); [`decode`] and [`encode`] map whole documents.

mod decode;
mod encode;
pub mod fields;
#[cfg(test)]
mod tests;

use jxg_schema::message::{CorrectionReason, WithdrawalReason};
use jxg_schema::{Document, Message, MessageType, Withdrawal};

use crate::{Adapter, Context, DecodeError, EncodeError};

pub use decode::{decode, decode_document};
pub use encode::{encode, encode_with};

#[derive(Debug)]
pub struct PoliceJson;

/// The ten document types and their canonical types.
pub const DOCUMENT_TYPES: &[(&str, MessageType)] = &[
    ("ANMELDELSE", MessageType::OffenceReported),
    ("SIGTELSE", MessageType::PersonCharged),
    ("ANHOLDELSE", MessageType::PersonArrested),
    ("TILTALE", MessageType::IndictmentFiled),
    ("OPGIVELSE", MessageType::ChargesWithdrawn),
    ("RETSMOEDE", MessageType::HearingScheduled),
    ("VARETAEGT", MessageType::RemandOrdered),
    ("DOM", MessageType::VerdictIssued),
    ("INDSAT", MessageType::CustodyAdmitted),
    ("LOESLADT", MessageType::CustodyReleased),
];

/// The document type of a withdrawal (either direction).
pub const WITHDRAWAL: &str = "TILBAGEKALDELSE";

/// `rettelse.aarsag`: why a document is replaced.
pub const CORRECTION_REASONS: &[(&str, CorrectionReason)] = &[
    ("FORKERTE_OPLYSNINGER", CorrectionReason::WrongData),
    ("FORKERT_PERSON", CorrectionReason::WrongPerson),
    ("SKRIVEFEJL", CorrectionReason::ClericalError),
    ("AENDRET_AFGOERELSE", CorrectionReason::DecisionChanged),
];

/// `tilbagekaldelse.aarsag`: why a document is withdrawn.
pub const WITHDRAWAL_REASONS: &[(&str, WithdrawalReason)] = &[
    ("SENDT_VED_FEJL", WithdrawalReason::SentInError),
    ("FORKERT_PERSON", WithdrawalReason::WrongPerson),
    ("FORKERT_SAG", WithdrawalReason::WrongCase),
    ("DUBLET", WithdrawalReason::Duplicate),
    ("SLETNING", WithdrawalReason::Erasure),
];

pub fn document_type(t: MessageType) -> &'static str {
    DOCUMENT_TYPES
        .iter()
        .find(|(_, m)| *m == t)
        .map(|(d, _)| *d)
        .expect("every type has a document type")
}

impl Adapter for PoliceJson {
    fn name(&self) -> &'static str {
        "police-json"
    }
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn native_authority(&self) -> Option<&'static str> {
        Some("police")
    }
    fn decode(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
        decode(bytes, ctx)
    }
    fn decode_document(&self, bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
        decode_document(bytes, ctx)
    }
    fn encode(&self, message: &Message, ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        encode::encode_with(message, ctx.master_data)
    }
    fn carries_corrections(&self) -> bool {
        true
    }
    fn encode_withdrawal(
        &self,
        w: &Withdrawal,
        _ctx: &Context<'_>,
    ) -> Result<Vec<u8>, EncodeError> {
        encode::encode_withdrawal(w)
    }
}
