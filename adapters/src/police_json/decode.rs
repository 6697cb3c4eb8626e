//! police-json → canonical. Reads the whole document and reports every violation with its path
//! (`forhold[0].paragraf`), never just the first.

use jxg_schema::message::*;
use jxg_schema::values::{CourtCaseNumber, Instant, JournalNumber, Money, ProsecutionCaseNumber};
use jxg_schema::{Document, MasterData, Message, MessageType, Violations, Withdrawal};
use serde_json::{Map, Value};

use super::fields::{self, LawRefError};
use super::{CORRECTION_REASONS, DOCUMENT_TYPES, WITHDRAWAL, WITHDRAWAL_REASONS};
use crate::canonical::parse_json;
use crate::{Context, DecodeError};

const COMMON: &[&str] = &[
    "dokumenttype",
    "dokumentid",
    "journalnr",
    "anklagenr",
    "rettens_sagsnr",
    "oprettet",
];

/// The blocks each document type may hold beside the common fields.
fn blocks(t: MessageType) -> &'static [&'static str] {
    use MessageType::*;
    match t {
        OffenceReported | PersonCharged => &["personer", "forhold", "fritekst"],
        PersonArrested => &["personer", "forhold", "anholdelse", "fritekst"],
        IndictmentFiled => &["personer", "forhold", "ret", "straf", "fritekst"],
        ChargesWithdrawn => &["personer", "forhold", "begrundelse", "ret"],
        HearingScheduled => &["personer", "retsmoede"],
        RemandOrdered => &["personer", "frihedsberoevelse", "ret"],
        VerdictIssued => &[
            "personer",
            "forhold",
            "afgoerelser",
            "straf",
            "ret",
            "ankefrist",
        ],
        CustodyAdmitted | CustodyReleased => &["personer", "frihedsberoevelse"],
    }
}

/// Decodes one police document into a canonical submission (no `id`, `received_at` or `sender`).
pub fn decode(bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
    crate::canonical::message_only(decode_document(bytes, ctx)?)
}

/// Decodes one police document: a message (perhaps a correction, with `rettelse`) or a
/// withdrawal (`TILBAGEKALDELSE`).
pub fn decode_document(bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
    let value = parse_json(bytes)?;
    let mut r = Reader {
        v: Violations::new(),
        md: ctx.master_data,
    };
    let Some(doc) = value.as_object() else {
        r.v.push("", "a police document is a JSON object");
        return Err(DecodeError::invalid(None, r.v));
    };
    let Some(kind) = r.req_str(doc, "dokumenttype", "dokumenttype") else {
        return Err(DecodeError::invalid(None, r.v));
    };
    if kind == WITHDRAWAL {
        for key in doc.keys() {
            if !COMMON.contains(&key.as_str()) && key != "tilbagekaldelse" {
                r.v.push(
                    key.clone(),
                    format!("is not part of a {WITHDRAWAL} document"),
                );
            }
        }
        return match r.withdrawal(doc) {
            Some(w) if r.v.is_empty() => Ok(Document::Withdrawal(w)),
            _ => Err(DecodeError::invalid(None, r.v)),
        };
    }
    let Some(t) = DOCUMENT_TYPES
        .iter()
        .find(|(d, _)| *d == kind)
        .map(|(_, m)| *m)
    else {
        let names: Vec<&str> = DOCUMENT_TYPES.iter().map(|(d, _)| *d).collect();
        r.v.push(
            "dokumenttype",
            format!("must be one of {}, {WITHDRAWAL}", names.join(", ")),
        );
        return Err(DecodeError::invalid(None, r.v));
    };
    for key in doc.keys() {
        if !COMMON.contains(&key.as_str())
            && !blocks(t).contains(&key.as_str())
            && key != "rettelse"
        {
            r.v.push(
                key.clone(),
                format!("is not part of a {} document", super::document_type(t)),
            );
        }
    }
    let message = r.document(doc, t);
    match message {
        Some(m) if r.v.is_empty() => Ok(Document::Message(m)),
        _ => Err(DecodeError::invalid(Some(t), r.v)),
    }
}

struct Reader<'a> {
    v: Violations,
    md: &'a MasterData,
}

/// A field that is absent or `null` is not there.
fn get<'v>(o: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader<'_> {
    fn req<'v>(&mut self, o: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v Value> {
        let found = get(o, key);
        if found.is_none() {
            self.v.push(path, "is required");
        }
        found
    }

    fn as_str<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v str> {
        let s = v.as_str();
        if s.is_none() {
            self.v.push(path, "must be a string");
        }
        s
    }

    fn req_str<'v>(&mut self, o: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v str> {
        let v = self.req(o, key, path)?;
        self.as_str(v, path)
    }

    fn opt_str<'v>(&mut self, o: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v str> {
        let v = get(o, key)?;
        self.as_str(v, path)
    }

    fn text(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<String> {
        let s = if required {
            self.req_str(o, key, path)
        } else {
            self.opt_str(o, key, path)
        }?;
        if s.trim().is_empty() {
            self.v.push(path, "must not be empty");
            return None;
        }
        Some(s.to_string())
    }

    fn conv<T, E: std::fmt::Display>(&mut self, path: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.v.push(path, e.to_string())).ok()
    }

    fn local_time(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<Instant> {
        let s = if required {
            self.req_str(o, key, path)
        } else {
            self.opt_str(o, key, path)
        }?;
        self.conv(path, fields::parse_local_time(s))
    }

    fn flag(&mut self, o: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
        let s = self.req_str(o, key, path)?;
        self.conv(path, fields::parse_flag(s))
    }

    fn object<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        let v = self.req(o, key, path)?;
        let m = v.as_object();
        if m.is_none() {
            self.v.push(path, "must be an object");
        }
        m
    }

    fn list<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'v Vec<Value>> {
        let v = self.req(o, key, path)?;
        match v.as_array() {
            Some(a) if a.is_empty() => {
                self.v.push(path, "must not be empty");
                None
            }
            Some(a) => Some(a),
            None => {
                self.v.push(path, "must be a list");
                None
            }
        }
    }

    fn unknown_keys(&mut self, o: &Map<String, Value>, allowed: &[&str], path: &str) {
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                self.v.push(at(path, k), "is not a field of this block");
            }
        }
    }

    fn court(&mut self, o: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        let code = self.req_str(o, key, path)?;
        if self.md.court(code).is_none() {
            self.v.push(path, format!("{code} is not a court code"));
            return None;
        }
        Some(code.to_string())
    }

    /// A police document id: 1-40 characters from `A-Z a-z 0-9 - _ /`.
    fn document_id(&mut self, o: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        let s = self.req_str(o, key, path)?;
        let ok = (1..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b));
        if !ok {
            self.v.push(
                path,
                "must be 1-40 characters from A-Z a-z 0-9 - _ / (no spaces)",
            );
        }
        ok.then(|| s.to_string())
    }

    /// One of a code table's codes.
    fn code<T: Copy>(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
        table: &[(&str, T)],
    ) -> Option<T> {
        let s = self.req_str(o, key, path)?;
        let found = table.iter().find(|(c, _)| *c == s).map(|(_, t)| *t);
        if found.is_none() {
            let codes: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
            self.v
                .push(path, format!("must be one of {}", codes.join(", ")));
        }
        found
    }

    /// `rettelse`: the police's own id of the document replaced, and why.
    fn correction(&mut self, doc: &Map<String, Value>) -> Option<Option<Replaces>> {
        if get(doc, "rettelse").is_none() {
            return Some(None);
        }
        let o = self.object(doc, "rettelse", "rettelse")?;
        self.unknown_keys(o, &["erstatter", "aarsag"], "rettelse");
        let replaced = self.document_id(o, "erstatter", "rettelse.erstatter");
        let reason = self.code(o, "aarsag", "rettelse.aarsag", CORRECTION_REASONS);
        Some(Some(Replaces {
            message_id: None,
            source_document_id: Some(replaced?),
            reason: reason?,
        }))
    }

    /// A `TILBAGEKALDELSE`: the police's own id of the document withdrawn, and why. Its purpose
    /// and classification are those of the message withdrawn (the gateway takes them from it).
    fn withdrawal(&mut self, doc: &Map<String, Value>) -> Option<Withdrawal> {
        let id = self.document_id(doc, "dokumentid", "dokumentid");
        let case = self.case(doc);
        let created = self.local_time(doc, "oprettet", "oprettet", true);
        let o = self.object(doc, "tilbagekaldelse", "tilbagekaldelse");
        let withdrawn = o.and_then(|o| {
            self.unknown_keys(o, &["dokumentid", "aarsag"], "tilbagekaldelse");
            let of = self.document_id(o, "dokumentid", "tilbagekaldelse.dokumentid");
            let reason = self.code(o, "aarsag", "tilbagekaldelse.aarsag", WITHDRAWAL_REASONS);
            Some(Withdrawn {
                message_id: None,
                source_document_id: Some(of?),
                reason: reason?,
            })
        });
        let case = case?;
        let correlation_id = case.correlation_id()?;
        Some(Withdrawal::submitted(
            id?,
            created?,
            case,
            correlation_id,
            withdrawn?,
        ))
    }

    fn document(&mut self, doc: &Map<String, Value>, t: MessageType) -> Option<Message> {
        let id = self.document_id(doc, "dokumentid", "dokumentid");
        let replaces = self.correction(doc);
        let case = self.case(doc);
        let created = self.local_time(doc, "oprettet", "oprettet", true);
        let body = self.body(doc, t, created, case.as_ref());
        let case = case?;
        Some(Message {
            id: None,
            sender: None,
            source_document_id: id?,
            occurred_at: created?,
            received_at: None,
            purpose: t.default_purpose(),
            classification: Classification::Confidential,
            correlation_id: case.correlation_id()?,
            case,
            replaces: replaces?,
            body: body?,
        })
    }

    fn case(&mut self, doc: &Map<String, Value>) -> Option<CaseRefs> {
        let journal = self.req_str(doc, "journalnr", "journalnr").and_then(|s| {
            let j = self.conv("journalnr", s.parse::<JournalNumber>())?;
            if self.md.district_by_code(j.district_code()).is_none() {
                self.v.push(
                    "journalnr",
                    format!("{} is not a police district code", j.district_code()),
                );
                return None;
            }
            Some(j)
        });
        let prosecution = match self.opt_str(doc, "anklagenr", "anklagenr") {
            Some(s) => self
                .conv("anklagenr", s.parse::<ProsecutionCaseNumber>())
                .map(Some),
            None => Some(None),
        };
        let court_case = match self.opt_str(doc, "rettens_sagsnr", "rettens_sagsnr") {
            Some(s) => self
                .conv("rettens_sagsnr", s.parse::<CourtCaseNumber>())
                .and_then(|c| {
                    if self.md.court(c.court_code()).is_none() {
                        self.v.push(
                            "rettens_sagsnr",
                            format!("{} is not a court code", c.court_code()),
                        );
                        return None;
                    }
                    Some(Some(c))
                }),
            None => Some(None),
        };
        Some(CaseRefs {
            police_journal: Some(journal?),
            prosecution_case: prosecution?,
            court_case: court_case?,
        })
    }

    fn district(&self, case: Option<&CaseRefs>) -> Option<String> {
        let code = case?.police_journal.as_ref()?.district_code().to_string();
        self.md.district_by_code(&code).map(|d| d.slug.clone())
    }

    fn body(
        &mut self,
        doc: &Map<String, Value>,
        t: MessageType,
        created: Option<Instant>,
        case: Option<&CaseRefs>,
    ) -> Option<Body> {
        let persons = self.persons(doc);
        let counts = if blocks(t).contains(&"forhold") {
            self.counts(doc)
        } else {
            Some(vec![])
        };
        let single = |r: &mut Self, persons: Option<Vec<Person>>| -> Option<Person> {
            let mut p = persons?;
            if p.len() != 1 {
                r.v.push("personer", "must list exactly one person");
                return None;
            }
            p.pop()
        };
        Some(match t {
            MessageType::OffenceReported => Body::OffenceReported(OffenceReported {
                narrative: self.text(doc, "fritekst", "fritekst", false),
                police_district: self.district(case)?,
                reported_at: created?,
                counts: counts?,
                persons: persons?,
            }),
            MessageType::PersonCharged => {
                let _ = self.text(doc, "fritekst", "fritekst", false);
                let persons = persons?;
                let suspects: Vec<&Person> =
                    persons.iter().filter(|p| p.role == Role::Suspect).collect();
                if suspects.len() != 1 {
                    self.v.push(
                        "personer",
                        "a SIGTELSE lists exactly one person with rolle SIGTET",
                    );
                    return None;
                }
                Body::PersonCharged(PersonCharged {
                    police_district: self.district(case)?,
                    person: suspects[0].clone(),
                    counts: counts?,
                    charged_at: created?,
                })
            }
            MessageType::PersonArrested => {
                let _ = self.text(doc, "fritekst", "fritekst", false);
                let person = single(self, persons);
                let a = self.object(doc, "anholdelse", "anholdelse");
                let arrest = a.and_then(|a| {
                    self.unknown_keys(
                        a,
                        &["tidspunkt", "sted", "grundlovsforhoer", "begrundelse"],
                        "anholdelse",
                    );
                    let at = self.local_time(a, "tidspunkt", "anholdelse.tidspunkt", true);
                    let place = self.text(a, "sted", "anholdelse.sted", false);
                    let hearing = self.flag(a, "grundlovsforhoer", "anholdelse.grundlovsforhoer");
                    // the grounds stay with the police: read for form only
                    let _ = self.text(a, "begrundelse", "anholdelse.begrundelse", false);
                    Some((at?, place, hearing?))
                });
                let (at, place, requested) = arrest?;
                Body::PersonArrested(PersonArrested {
                    police_district: self.district(case)?,
                    person: person?,
                    custody: Custody::arrested(at, place),
                    counts: counts?,
                    custody_hearing_requested: requested,
                    custody_hearing_deadline: custody_hearing_deadline(at),
                })
            }
            MessageType::IndictmentFiled => {
                let court = self.court(doc, "ret", "ret");
                let sentence = match get(doc, "straf") {
                    Some(_) => self.sentence(doc).map(Some),
                    None => Some(None),
                };
                Body::IndictmentFiled(IndictmentFiled {
                    narrative: self.text(doc, "fritekst", "fritekst", false),
                    court: court?,
                    defendants: persons?,
                    counts: counts?,
                    requested_sentence: sentence?,
                    filed_at: created?,
                })
            }
            MessageType::ChargesWithdrawn => {
                let court = match get(doc, "ret") {
                    Some(_) => self.court(doc, "ret", "ret").map(Some),
                    None => Some(None),
                };
                let reason = self.text(doc, "begrundelse", "begrundelse", true);
                Body::ChargesWithdrawn(ChargesWithdrawn {
                    person: single(self, persons)?,
                    counts: counts?,
                    reason: reason?,
                    withdrawn_at: created?,
                    court: court?,
                })
            }
            MessageType::HearingScheduled => {
                let h = self.object(doc, "retsmoede", "retsmoede").and_then(|h| {
                    let p = "retsmoede";
                    self.unknown_keys(
                        h,
                        &[
                            "ret",
                            "tidspunkt",
                            "art",
                            "lokale",
                            "tiltalt_frihedsberoevet",
                        ],
                        p,
                    );
                    let court = self.court(h, "ret", "retsmoede.ret");
                    let starts = self.local_time(h, "tidspunkt", "retsmoede.tidspunkt", true);
                    let kind = self
                        .req_str(h, "art", "retsmoede.art")
                        .and_then(|s| self.conv("retsmoede.art", fields::parse_hearing_kind(s)));
                    let room = self.text(h, "lokale", "retsmoede.lokale", false);
                    let custody = self.flag(
                        h,
                        "tiltalt_frihedsberoevet",
                        "retsmoede.tiltalt_frihedsberoevet",
                    );
                    Some((
                        Hearing {
                            court: court?,
                            starts_at: starts?,
                            kind: kind?,
                            room,
                        },
                        custody?,
                    ))
                });
                let (hearing, in_custody) = h?;
                Body::HearingScheduled(HearingScheduled {
                    hearing,
                    persons: persons?,
                    defendant_in_custody: in_custody,
                })
            }
            MessageType::RemandOrdered => {
                let court = self.court(doc, "ret", "ret");
                let (custody, isolation) = self.custody(doc, CustodyEvent::Remanded);
                Body::RemandOrdered(RemandOrdered {
                    person: single(self, persons)?,
                    custody: custody?,
                    isolation: isolation?,
                    court: court?,
                })
            }
            MessageType::VerdictIssued => {
                let court = self.court(doc, "ret", "ret");
                let deadline = self
                    .req_str(doc, "ankefrist", "ankefrist")
                    .and_then(|s| self.conv("ankefrist", fields::parse_date(s)));
                let outcomes = self.outcomes(doc, counts.as_deref());
                let sentence = self.sentence(doc);
                Body::VerdictIssued(VerdictIssued {
                    court: court?,
                    decided_at: created?,
                    defendant: single(self, persons)?,
                    counts: counts?,
                    outcomes: outcomes?,
                    sentence: sentence?,
                    appeal_deadline: deadline?,
                })
            }
            MessageType::CustodyAdmitted => {
                let (custody, _) = self.custody(doc, CustodyEvent::Admitted);
                Body::CustodyAdmitted(CustodyChange {
                    person: single(self, persons)?,
                    custody: custody?,
                })
            }
            MessageType::CustodyReleased => {
                let (custody, _) = self.custody(doc, CustodyEvent::Released);
                Body::CustodyReleased(CustodyChange {
                    person: single(self, persons)?,
                    custody: custody?,
                })
            }
        })
    }

    fn persons(&mut self, doc: &Map<String, Value>) -> Option<Vec<Person>> {
        let list = self.list(doc, "personer", "personer")?;
        let people: Vec<Option<Person>> = list
            .iter()
            .enumerate()
            .map(|(i, p)| self.person(p, &format!("personer[{i}]")))
            .collect();
        people.into_iter().collect()
    }

    fn person(&mut self, v: &Value, path: &str) -> Option<Person> {
        let Some(o) = v.as_object() else {
            self.v.push(path, "must be an object");
            return None;
        };
        self.unknown_keys(
            o,
            &[
                "rolle",
                "cpr",
                "foedselsdato",
                "fornavn",
                "efternavn",
                "adresse",
                "beskyttet",
            ],
            path,
        );
        let role = self
            .req_str(o, "rolle", &at(path, "rolle"))
            .and_then(|s| self.conv(&at(path, "rolle"), fields::parse_role(s)));
        let cpr = match self.opt_str(o, "cpr", &at(path, "cpr")) {
            Some(s) => self.conv(&at(path, "cpr"), fields::parse_cpr(s)).map(Some),
            None => Some(None),
        };
        let birth = match self.opt_str(o, "foedselsdato", &at(path, "foedselsdato")) {
            Some(s) => self
                .conv(&at(path, "foedselsdato"), fields::parse_date(s))
                .map(Some),
            None => Some(None),
        };
        let given = self.text(o, "fornavn", &at(path, "fornavn"), true);
        let family = self.text(o, "efternavn", &at(path, "efternavn"), true);
        let address = self.text(o, "adresse", &at(path, "adresse"), false);
        let protected = self.flag(o, "beskyttet", &at(path, "beskyttet"));
        let (cpr, birth) = (cpr?, birth?);
        if cpr.is_none() && birth.is_none() {
            self.v
                .push(at(path, "cpr"), "either cpr or foedselsdato is required");
            return None;
        }
        if let (Some(c), Some(b)) = (&cpr, &birth) {
            if c.birth_date() != b.0 {
                self.v.push(
                    at(path, "foedselsdato"),
                    "contradicts the date in the CPR number",
                );
                return None;
            }
        }
        Some(Person {
            // the birth date is derived from a CPR number, so only kept without one
            birth_date: if cpr.is_some() { None } else { birth },
            cpr,
            given_name: given?,
            family_name: family?,
            role: role?,
            address,
            address_protected: protected?,
        })
    }

    fn counts(&mut self, doc: &Map<String, Value>) -> Option<Vec<Count>> {
        let list = self.list(doc, "forhold", "forhold")?;
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        let mut ok = true;
        for (i, c) in list.iter().enumerate() {
            let path = format!("forhold[{i}]");
            match self.count(c, &path) {
                Some(c) if !seen.insert(c.no) => {
                    self.v.push(
                        format!("{path}.nr"),
                        format!("count {} appears twice", c.no),
                    );
                    ok = false;
                }
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn count(&mut self, v: &Value, path: &str) -> Option<Count> {
        let Some(o) = v.as_object() else {
            self.v.push(path, "must be an object");
            return None;
        };
        self.unknown_keys(
            o,
            &[
                "nr",
                "paragraf",
                "beskrivelse",
                "gerningstid_fra",
                "gerningstid_til",
                "gerningssted",
            ],
            path,
        );
        let no = self.req(o, "nr", &at(path, "nr")).and_then(|n| {
            let no = n
                .as_u64()
                .filter(|n| (1..=999).contains(n))
                .map(|n| n as u16);
            if no.is_none() {
                self.v.push(at(path, "nr"), "must be a whole number 1-999");
            }
            no
        });
        let law = self
            .req_str(o, "paragraf", &at(path, "paragraf"))
            .and_then(|s| match fields::parse_law_ref(s, self.md) {
                Ok(l) => Some(l),
                Err(LawRefError::UnknownLaw) => {
                    self.v.push(
                        at(path, "paragraf"),
                        format!("names a law that is not known: \"{s}\""),
                    );
                    None
                }
                Err(LawRefError::Unreadable) => {
                    self.v.push(
                        at(path, "paragraf"),
                        format!("is not a law reference with a section: \"{s}\""),
                    );
                    None
                }
            });
        let description = self.text(o, "beskrivelse", &at(path, "beskrivelse"), true);
        let from = match get(o, "gerningstid_fra") {
            Some(_) => self
                .local_time(o, "gerningstid_fra", &at(path, "gerningstid_fra"), true)
                .map(Some),
            None => Some(None),
        };
        let to = match get(o, "gerningstid_til") {
            Some(_) => self
                .local_time(o, "gerningstid_til", &at(path, "gerningstid_til"), true)
                .map(Some),
            None => Some(None),
        };
        let place = self.text(o, "gerningssted", &at(path, "gerningssted"), false);
        let (from, to) = (from?, to?);
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                self.v
                    .push(at(path, "gerningstid_til"), "is before gerningstid_fra");
                return None;
            }
        }
        if from.is_none() && to.is_some() {
            // both None is fine; a `til` without a `fra` has nothing to end
            self.v.push(
                at(path, "gerningstid_fra"),
                "is required when gerningstid_til is given",
            );
            return None;
        }
        Some(Count {
            no: no?,
            law_ref: law?,
            description: description?,
            committed_from: from,
            committed_to: to,
            place,
        })
    }

    fn outcomes(
        &mut self,
        doc: &Map<String, Value>,
        counts: Option<&[Count]>,
    ) -> Option<Vec<Outcome>> {
        let list = self.list(doc, "afgoerelser", "afgoerelser")?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, a) in list.iter().enumerate() {
            let path = format!("afgoerelser[{i}]");
            let Some(o) = a.as_object() else {
                self.v.push(path, "must be an object");
                ok = false;
                continue;
            };
            self.unknown_keys(o, &["forhold_nr", "resultat"], &path);
            let no = self
                .req(o, "forhold_nr", &at(&path, "forhold_nr"))
                .and_then(|n| {
                    let no = n
                        .as_u64()
                        .filter(|n| (1..=999).contains(n))
                        .map(|n| n as u16);
                    if no.is_none() {
                        self.v
                            .push(at(&path, "forhold_nr"), "must be a whole number 1-999");
                    }
                    no
                });
            let result = self
                .req_str(o, "resultat", &at(&path, "resultat"))
                .and_then(|s| match s {
                    "SKYLDIG" => Some(OutcomeKind::Guilty),
                    "FRIFUNDET" => Some(OutcomeKind::Acquitted),
                    _ => {
                        self.v
                            .push(at(&path, "resultat"), "must be SKYLDIG or FRIFUNDET");
                        None
                    }
                });
            match (no, result) {
                (Some(no), Some(outcome)) => {
                    if let Some(cs) = counts {
                        if !cs.iter().any(|c| c.no == no) {
                            self.v
                                .push(at(&path, "forhold_nr"), format!("there is no forhold {no}"));
                            ok = false;
                        }
                    }
                    if out.iter().any(|o: &Outcome| o.count_no == no) {
                        self.v.push(
                            at(&path, "forhold_nr"),
                            format!("forhold {no} has two results"),
                        );
                        ok = false;
                    }
                    out.push(Outcome {
                        count_no: no,
                        outcome,
                    });
                }
                _ => ok = false,
            }
        }
        if let Some(cs) = counts {
            for c in cs {
                if ok && !out.iter().any(|o| o.count_no == c.no) {
                    self.v
                        .push("afgoerelser", format!("forhold {} has no result", c.no));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn sentence(&mut self, doc: &Map<String, Value>) -> Option<Sentence> {
        let s = self.object(doc, "straf", "straf")?;
        self.unknown_keys(
            s,
            &[
                "art",
                "betinget",
                "varighed",
                "proevetid",
                "vilkaar",
                "beloeb",
                "dagboeder_antal",
                "dagboeder_sats",
            ],
            "straf",
        );
        let kind = self
            .req_str(s, "art", "straf.art")
            .and_then(|k| self.conv("straf.art", fields::parse_sentence_kind(k)));
        let suspended = self.flag(s, "betinget", "straf.betinget");
        let duration =
            |r: &mut Self, key: &str| -> Option<Option<jxg_schema::values::IsoDuration>> {
                let path = format!("straf.{key}");
                match r.opt_str(s, key, &path) {
                    Some(d) => r.conv(&path, fields::parse_duration(d)).map(Some),
                    None if get(s, key).is_some() => None,
                    None => Some(None),
                }
            };
        let varighed = duration(self, "varighed");
        let proevetid = duration(self, "proevetid");
        let conditions = match get(s, "vilkaar") {
            None => Some(vec![]),
            Some(Value::Array(items)) => {
                let cs: Vec<Option<Condition>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let path = format!("straf.vilkaar[{i}]");
                        let text = self.as_str(c, &path)?;
                        self.conv(&path, fields::parse_condition(text))
                    })
                    .collect();
                cs.into_iter().collect()
            }
            Some(_) => {
                self.v.push("straf.vilkaar", "must be a list");
                None
            }
        };
        let amount = |r: &mut Self, key: &str| -> Option<Option<Money>> {
            let path = format!("straf.{key}");
            match r.opt_str(s, key, &path) {
                Some(a) => r
                    .conv(&path, fields::parse_amount(a))
                    .map(|m| Some(Money::dkk(m))),
                None if get(s, key).is_some() => None,
                None => Some(None),
            }
        };
        let fine = amount(self, "beloeb");
        let rate = amount(self, "dagboeder_sats");
        let day_count = match get(s, "dagboeder_antal") {
            None => Some(None),
            Some(n) => match n.as_u64().filter(|n| *n >= 1 && *n <= u32::MAX as u64) {
                Some(n) => Some(Some(n as u32)),
                None => {
                    self.v.push(
                        "straf.dagboeder_antal",
                        "must be a whole number of at least 1",
                    );
                    None
                }
            },
        };
        let (rate, day_count) = (rate?, day_count?);
        let day_fines = match (day_count, rate) {
            (Some(count), Some(rate)) => Some(DayFines { count, rate }),
            (None, None) => None,
            (None, Some(_)) => {
                self.v
                    .push("straf.dagboeder_antal", "is required with dagboeder_sats");
                return None;
            }
            (Some(_), None) => {
                self.v
                    .push("straf.dagboeder_sats", "is required with dagboeder_antal");
                return None;
            }
        };
        Some(Sentence {
            kind: kind?,
            duration: varighed?,
            suspended: suspended?,
            probation: proevetid?,
            conditions: conditions?,
            fine: fine?,
            day_fines,
        })
    }

    /// The `frihedsberoevelse` block, and its isolation flag (remand only).
    fn custody(
        &mut self,
        doc: &Map<String, Value>,
        expected: CustodyEvent,
    ) -> (Option<Custody>, Option<bool>) {
        let p = "frihedsberoevelse";
        let Some(f) = self.object(doc, p, p) else {
            return (None, None);
        };
        self.unknown_keys(
            f,
            &[
                "haendelse",
                "tidspunkt",
                "institution",
                "til",
                "aarsag",
                "isolation",
            ],
            p,
        );
        let event = self
            .req_str(f, "haendelse", "frihedsberoevelse.haendelse")
            .and_then(|s| {
                let e = self.conv(
                    "frihedsberoevelse.haendelse",
                    fields::parse_custody_event(s),
                )?;
                if e != expected {
                    self.v.push(
                        "frihedsberoevelse.haendelse",
                        format!(
                            "must be {} in this document type",
                            fields::format_custody_event(expected)
                        ),
                    );
                    return None;
                }
                Some(e)
            });
        let at_ = self.local_time(f, "tidspunkt", "frihedsberoevelse.tidspunkt", true);
        let institution = match self.opt_str(f, "institution", "frihedsberoevelse.institution") {
            Some(code) if self.md.institution(code).is_none() => {
                self.v.push(
                    "frihedsberoevelse.institution",
                    format!("{code} is not an institution code"),
                );
                None
            }
            Some(code) => Some(Some(code.to_string())),
            None if expected == CustodyEvent::Released => Some(None),
            None => {
                self.v.push("frihedsberoevelse.institution", "is required");
                None
            }
        };
        let until = match (self.opt_str(f, "til", "frihedsberoevelse.til"), expected) {
            (Some(s), CustodyEvent::Remanded) => self
                .conv("frihedsberoevelse.til", fields::parse_date(s))
                .map(Some),
            (Some(_), _) => {
                self.v
                    .push("frihedsberoevelse.til", "only a remand has an end date");
                None
            }
            (None, CustodyEvent::Remanded) => {
                self.v.push("frihedsberoevelse.til", "is required");
                None
            }
            (None, _) => Some(None),
        };
        let reason = match (
            self.opt_str(f, "aarsag", "frihedsberoevelse.aarsag"),
            expected,
        ) {
            (Some(s), CustodyEvent::Released) => self
                .conv("frihedsberoevelse.aarsag", fields::parse_release_reason(s))
                .map(Some),
            (Some(_), _) => {
                self.v
                    .push("frihedsberoevelse.aarsag", "only a release has a reason");
                None
            }
            (None, CustodyEvent::Released) => {
                self.v.push("frihedsberoevelse.aarsag", "is required");
                None
            }
            (None, _) => Some(None),
        };
        let isolation = match expected {
            CustodyEvent::Remanded => self.flag(f, "isolation", "frihedsberoevelse.isolation"),
            _ => {
                if get(f, "isolation").is_some() {
                    self.v.push(
                        "frihedsberoevelse.isolation",
                        "only a remand has an isolation flag",
                    );
                }
                Some(false)
            }
        };
        let custody = (|| {
            Some(Custody {
                event: event?,
                at: at_?,
                place: None,
                institution: institution?,
                until: until?,
                reason: reason?,
            })
        })();
        (custody, isolation)
    }
}
