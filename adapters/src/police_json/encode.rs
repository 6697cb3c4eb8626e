//! canonical → police-json. Writes what the format carries and leaves out what its "Cannot
//! carry" list names; a message without a police journal number cannot be written at all.

use jxg_schema::message::*;
use jxg_schema::values::Money;
use jxg_schema::{MasterData, Message};
use serde_json::{Map, Value, json};

use super::fields;
use crate::EncodeError;

fn cannot(what: impl Into<String>) -> EncodeError {
    EncodeError::CannotCarry {
        format: "police-json",
        what: what.into(),
    }
}

/// Encodes with the embedded master data (law short forms).
pub fn encode(m: &Message) -> Result<Vec<u8>, EncodeError> {
    encode_with(m, &MasterData::embedded())
}

/// Encodes a withdrawal as a `TILBAGEKALDELSE`: the case, the time, and the canonical id of the
/// message withdrawn with the reason.
pub fn encode_withdrawal(w: &jxg_schema::Withdrawal) -> Result<Vec<u8>, EncodeError> {
    let journal = w
        .case
        .police_journal
        .as_ref()
        .ok_or_else(|| cannot("a withdrawal without a police journal number"))?;
    let withdrawn = crate::reference(
        w.withdrawn.message_id,
        w.withdrawn.source_document_id.as_deref(),
    )
    .ok_or_else(|| cannot("a withdrawal without the id of the message withdrawn"))?;
    let d = json!({
        "dokumenttype": super::WITHDRAWAL,
        "dokumentid": w.id.map(|u| u.to_string()).unwrap_or_else(|| w.source_document_id.clone()),
        "journalnr": journal.to_string(),
        "anklagenr": w.case.prosecution_case.as_ref().map(|c| c.to_string()),
        "rettens_sagsnr": w.case.court_case.as_ref().map(|c| c.to_string()),
        "oprettet": fields::format_local_time(w.occurred_at),
        "tilbagekaldelse": {
            "dokumentid": withdrawn,
            "aarsag": crate::code_of(super::WITHDRAWAL_REASONS, &w.withdrawn.reason),
        },
    });
    Ok(serde_json::to_vec(&d).expect("JSON"))
}

/// Encodes one message as a police document.
pub fn encode_with(m: &Message, md: &MasterData) -> Result<Vec<u8>, EncodeError> {
    let journal = m
        .case
        .police_journal
        .as_ref()
        .ok_or_else(|| cannot("a message without a police journal number"))?;
    let mut d = Map::new();
    let t = m.message_type();
    d.insert("dokumenttype".into(), json!(super::document_type(t)));
    let id =
        m.id.map(|u| u.to_string())
            .unwrap_or_else(|| m.source_document_id.clone());
    d.insert("dokumentid".into(), json!(id));
    if let Some(r) = &m.replaces {
        // out, a document is named by its canonical id, as `dokumentid` is
        let replaced = crate::reference(r.message_id, r.source_document_id.as_deref())
            .ok_or_else(|| cannot("a correction without the id of the message it replaces"))?;
        d.insert(
            "rettelse".into(),
            json!({"erstatter": replaced, "aarsag": crate::code_of(super::CORRECTION_REASONS, &r.reason)}),
        );
    }
    d.insert("journalnr".into(), json!(journal.to_string()));
    d.insert(
        "anklagenr".into(),
        json!(m.case.prosecution_case.as_ref().map(|c| c.to_string())),
    );
    d.insert(
        "rettens_sagsnr".into(),
        json!(m.case.court_case.as_ref().map(|c| c.to_string())),
    );
    let court = |d: &mut Map<String, Value>, c: &str| d.insert("ret".into(), json!(c));
    match &m.body {
        Body::IndictmentFiled(b) => {
            court(&mut d, &b.court);
        }
        Body::ChargesWithdrawn(ChargesWithdrawn { court: Some(c), .. }) => {
            court(&mut d, c);
        }
        Body::RemandOrdered(b) => {
            court(&mut d, &b.court);
        }
        Body::VerdictIssued(b) => {
            court(&mut d, &b.court);
        }
        _ => {}
    }
    d.insert(
        "oprettet".into(),
        json!(fields::format_local_time(m.occurred_at)),
    );
    let persons =
        |ps: &[&Person]| -> Value { Value::Array(ps.iter().map(|p| person(p)).collect()) };
    match &m.body {
        Body::OffenceReported(b) => {
            d.insert(
                "personer".into(),
                persons(&b.persons.iter().collect::<Vec<_>>()),
            );
            d.insert("forhold".into(), counts(&b.counts, md)?);
            if let Some(n) = &b.narrative {
                d.insert("fritekst".into(), json!(n));
            }
        }
        Body::PersonCharged(b) => {
            d.insert("personer".into(), persons(&[&b.person]));
            d.insert("forhold".into(), counts(&b.counts, md)?);
        }
        Body::PersonArrested(b) => {
            d.insert("personer".into(), persons(&[&b.person]));
            d.insert("forhold".into(), counts(&b.counts, md)?);
            let mut a = Map::new();
            a.insert(
                "tidspunkt".into(),
                json!(fields::format_local_time(b.custody.at)),
            );
            if let Some(p) = &b.custody.place {
                a.insert("sted".into(), json!(p));
            }
            a.insert(
                "grundlovsforhoer".into(),
                json!(fields::format_flag(b.custody_hearing_requested)),
            );
            d.insert("anholdelse".into(), Value::Object(a));
        }
        Body::IndictmentFiled(b) => {
            d.insert(
                "personer".into(),
                persons(&b.defendants.iter().collect::<Vec<_>>()),
            );
            d.insert("forhold".into(), counts(&b.counts, md)?);
            if let Some(s) = &b.requested_sentence {
                d.insert("straf".into(), sentence(s)?);
            }
            if let Some(n) = &b.narrative {
                d.insert("fritekst".into(), json!(n));
            }
        }
        Body::ChargesWithdrawn(b) => {
            d.insert("personer".into(), persons(&[&b.person]));
            d.insert("forhold".into(), counts(&b.counts, md)?);
            d.insert("begrundelse".into(), json!(b.reason));
        }
        Body::HearingScheduled(b) => {
            d.insert(
                "personer".into(),
                persons(&b.persons.iter().collect::<Vec<_>>()),
            );
            let mut h = Map::new();
            h.insert("ret".into(), json!(b.hearing.court));
            h.insert(
                "tidspunkt".into(),
                json!(fields::format_local_time(b.hearing.starts_at)),
            );
            h.insert(
                "art".into(),
                json!(fields::format_hearing_kind(b.hearing.kind)),
            );
            if let Some(r) = &b.hearing.room {
                h.insert("lokale".into(), json!(r));
            }
            h.insert(
                "tiltalt_frihedsberoevet".into(),
                json!(fields::format_flag(b.defendant_in_custody)),
            );
            d.insert("retsmoede".into(), Value::Object(h));
        }
        Body::RemandOrdered(b) => {
            d.insert("personer".into(), persons(&[&b.person]));
            d.insert(
                "frihedsberoevelse".into(),
                custody(&b.custody, Some(b.isolation)),
            );
        }
        Body::VerdictIssued(b) => {
            d.insert("personer".into(), persons(&[&b.defendant]));
            d.insert("forhold".into(), counts(&b.counts, md)?);
            let results: Vec<Value> = b
                .outcomes
                .iter()
                .map(|o| {
                    let r = match o.outcome {
                        OutcomeKind::Guilty => "SKYLDIG",
                        OutcomeKind::Acquitted => "FRIFUNDET",
                    };
                    json!({"forhold_nr": o.count_no, "resultat": r})
                })
                .collect();
            d.insert("afgoerelser".into(), Value::Array(results));
            d.insert("straf".into(), sentence(&b.sentence)?);
            d.insert(
                "ankefrist".into(),
                json!(fields::format_date(b.appeal_deadline)),
            );
        }
        Body::CustodyAdmitted(b) | Body::CustodyReleased(b) => {
            d.insert("personer".into(), persons(&[&b.person]));
            d.insert("frihedsberoevelse".into(), custody(&b.custody, None));
        }
    }
    Ok(serde_json::to_vec_pretty(&Value::Object(d)).expect("JSON values serialise"))
}

fn person(p: &Person) -> Value {
    let mut o = Map::new();
    o.insert("rolle".into(), json!(fields::format_role(p.role)));
    match (&p.cpr, &p.birth_date) {
        (Some(c), _) => o.insert("cpr".into(), json!(c.hyphenated())),
        (None, Some(b)) => o.insert("foedselsdato".into(), json!(fields::format_date(*b))),
        (None, None) => None,
    };
    o.insert("fornavn".into(), json!(p.given_name));
    o.insert("efternavn".into(), json!(p.family_name));
    if let Some(a) = &p.address {
        o.insert("adresse".into(), json!(a));
    }
    o.insert(
        "beskyttet".into(),
        json!(fields::format_flag(p.address_protected)),
    );
    Value::Object(o)
}

fn counts(cs: &[Count], md: &MasterData) -> Result<Value, EncodeError> {
    cs.iter()
        .map(|c| {
            let mut o = Map::new();
            o.insert("nr".into(), json!(c.no));
            let law = fields::format_law_ref(&c.law_ref, md)
                .ok_or_else(|| cannot(format!("the law {}", c.law_ref.law)))?;
            o.insert("paragraf".into(), json!(law));
            o.insert("beskrivelse".into(), json!(c.description));
            if let Some(t) = c.committed_from {
                o.insert(
                    "gerningstid_fra".into(),
                    json!(fields::format_local_time(t)),
                );
            }
            if let Some(t) = c.committed_to {
                o.insert(
                    "gerningstid_til".into(),
                    json!(fields::format_local_time(t)),
                );
            }
            if let Some(p) = &c.place {
                o.insert("gerningssted".into(), json!(p));
            }
            Ok(Value::Object(o))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn amount(m: &Money) -> Result<String, EncodeError> {
    if m.currency != "DKK" {
        return Err(cannot(format!("an amount in {}", m.currency)));
    }
    Ok(fields::format_amount(m.minor))
}

fn sentence(s: &Sentence) -> Result<Value, EncodeError> {
    let mut o = Map::new();
    o.insert("art".into(), json!(fields::format_sentence_kind(s.kind)));
    o.insert("betinget".into(), json!(fields::format_flag(s.suspended)));
    let duration = |d| fields::format_duration(d).ok_or_else(|| cannot("a duration in hours"));
    if let Some(d) = s.duration {
        o.insert("varighed".into(), json!(duration(d)?));
    }
    if let Some(d) = s.probation {
        o.insert("proevetid".into(), json!(duration(d)?));
    }
    if !s.conditions.is_empty() {
        let cs: Vec<String> = s
            .conditions
            .iter()
            .map(|c| fields::format_condition(*c))
            .collect();
        o.insert("vilkaar".into(), json!(cs));
    }
    if let Some(f) = &s.fine {
        o.insert("beloeb".into(), json!(amount(f)?));
    }
    if let Some(df) = &s.day_fines {
        o.insert("dagboeder_antal".into(), json!(df.count));
        o.insert("dagboeder_sats".into(), json!(amount(&df.rate)?));
    }
    Ok(Value::Object(o))
}

fn custody(c: &Custody, isolation: Option<bool>) -> Value {
    let mut o = Map::new();
    let event = match c.event {
        CustodyEvent::Remanded => "VARETAEGT",
        CustodyEvent::Released => "LOESLADT",
        _ => "INDSAT",
    };
    o.insert("haendelse".into(), json!(event));
    o.insert("tidspunkt".into(), json!(fields::format_local_time(c.at)));
    if let Some(i) = &c.institution {
        o.insert("institution".into(), json!(i));
    }
    if let Some(u) = c.until {
        o.insert("til".into(), json!(fields::format_date(u)));
    }
    if let Some(r) = c.reason {
        o.insert("aarsag".into(), json!(fields::format_release_reason(r)));
    }
    if let Some(i) = isolation {
        o.insert("isolation".into(), json!(fields::format_flag(i)));
    }
    Value::Object(o)
}
