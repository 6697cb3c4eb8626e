//! court-xml → canonical. Every violation is named by an XPath-like path of local names
//! (`/Dom/Forhold[2]/Lovhenvisning/@paragraf`).

use chrono::DateTime;
use jxg_schema::message::*;
use jxg_schema::values::{
    CourtCaseNumber, Date, Instant, IsoDuration, JournalNumber, LawRef, Money,
    ProsecutionCaseNumber,
};
use jxg_schema::{Document, MasterData, Message, MessageType, Violations, Withdrawal};

use super::model::{self, child_path};
use super::tree::{self, Element, FrameError};
use super::{NAMESPACE, Root};
use crate::{Context, DecodeError, Rejection};

/// Decodes one court document into a canonical submission (no `id`, `received_at` or `sender`).
pub fn decode(bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
    crate::canonical::message_only(decode_document(bytes, ctx)?)
}

/// Decodes one court document: a message (perhaps a correction, with `Rettelse`) or a
/// withdrawal (`Tilbagekaldelse`).
pub fn decode_document(bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
    let root = tree::parse(bytes).map_err(|e| match e {
        FrameError::Encoding(m) => DecodeError {
            message_type: None,
            rejection: Rejection::Encoding { message: m },
        },
        FrameError::Malformed(m) => DecodeError::malformed(m),
    })?;
    if root.name == super::WITHDRAWAL {
        return decode_withdrawal(&root, ctx.master_data).map(Document::Withdrawal);
    }
    decode_tree(&root, ctx.master_data).map(Document::Message)
}

/// Whether the root is in the format's namespace (nothing else of it is read when not).
fn in_namespace(r: &mut Reader<'_>, root: &Element, path: &str) -> bool {
    if root.namespace.as_deref() != Some(NAMESPACE) {
        let found = root.namespace.as_deref().unwrap_or("none");
        r.v.push(
            path,
            format!("must be in namespace {NAMESPACE} (found namespace `{found}`)"),
        );
        return false;
    }
    true
}

/// The root's `version`: 2.0 to 2.3.
fn version(r: &mut Reader<'_>, root: &Element, path: &str) {
    match root.attr("version") {
        Some("2.0" | "2.1" | "2.2" | "2.3") => {}
        Some(_) => r.v.push(
            format!("{path}/@version"),
            "versions 2.0 to 2.3 are accepted",
        ),
        None => r.v.push(format!("{path}/@version"), "is required"),
    }
}

/// A document id of 1-128 characters in attribute `name`.
fn document_id(r: &mut Reader<'_>, el: &Element, name: &str, path: &str) -> Option<String> {
    match el.attr(name) {
        Some(s) if (1..=128).contains(&s.len()) && !s.trim().is_empty() => Some(s.to_string()),
        Some(_) => {
            r.v.push(format!("{path}/@{name}"), "must be 1-128 characters");
            None
        }
        None => {
            r.v.push(format!("{path}/@{name}"), "is required");
            None
        }
    }
}

/// One of a code table's codes in attribute `name`.
fn code<T: Copy>(
    r: &mut Reader<'_>,
    el: &Element,
    name: &str,
    path: &str,
    table: &[(&str, T)],
) -> Option<T> {
    let s = r.attr(el, name, path)?;
    let found = table.iter().find(|(c, _)| *c == s).map(|(_, t)| *t);
    if found.is_none() {
        let codes: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
        r.v.push(
            format!("{path}/@{name}"),
            format!("must be one of {}", codes.join(", ")),
        );
    }
    found
}

/// A `Tilbagekaldelse`. Its purpose and classification are those of the message withdrawn (the
/// gateway takes them from it).
pub fn decode_withdrawal(root: &Element, md: &MasterData) -> Result<Withdrawal, DecodeError> {
    let mut r = Reader {
        v: Violations::new(),
        md,
    };
    let path = format!("/{}", root.name);
    if !in_namespace(&mut r, root, &path) {
        return Err(DecodeError::invalid(None, r.v));
    }
    model::check_withdrawal(root, &mut r.v);
    version(&mut r, root, &path);
    let id = document_id(&mut r, root, "dokumentid", &path);
    let (case, _) = r.sag(root, &path, None);
    let at = r.time(root, "Tidspunkt", &path);
    let p = format!("{path}/Tilbagekaldt");
    let withdrawn = r.child(root, "Tilbagekaldt", &path).and_then(|t| {
        let of = document_id(&mut r, t, "dokumentid", &p);
        let reason = code(&mut r, t, "årsag", &p, super::WITHDRAWAL_REASONS);
        Some(Withdrawn {
            message_id: None,
            source_document_id: Some(of?),
            reason: reason?,
        })
    });
    if !r.v.is_empty() {
        return Err(DecodeError::invalid(None, r.v));
    }
    let (Some(id), Some(case), Some(at), Some(withdrawn)) = (id, case, at, withdrawn) else {
        r.v.push(&path, "could not be read");
        return Err(DecodeError::invalid(None, r.v));
    };
    let Some(correlation_id) = case.correlation_id() else {
        r.v.push(format!("{path}/Sag"), "names no case reference");
        return Err(DecodeError::invalid(None, r.v));
    };
    Ok(Withdrawal::submitted(
        id,
        at,
        case,
        correlation_id,
        withdrawn,
    ))
}

/// Decodes a parsed document.
pub fn decode_tree(root: &Element, md: &MasterData) -> Result<Message, DecodeError> {
    let mut r = Reader {
        v: Violations::new(),
        md,
    };
    let path = format!("/{}", root.name);
    let kind = Root::from_name(&root.name);
    let Some(kind) = kind else {
        r.v.push(&path, "is not a root element of court-xml 2 (Dom, Kendelse, Retsmøde, Anklageskrift, Anholdelse, Tiltalefrafald, Tilbagekaldelse)");
        return Err(DecodeError::invalid(None, r.v));
    };
    let t = kind.message_type();
    if !in_namespace(&mut r, root, &path) {
        return Err(DecodeError::invalid(Some(t), r.v));
    }
    model::check(root, kind, &mut r.v);
    version(&mut r, root, &path);
    if kind == Root::Kendelse && root.attr("type") != Some("varetægtsfængsling") {
        r.v.push(
            format!("{path}/@type"),
            "only type=\"varetægtsfængsling\" is accepted",
        );
    }
    let id = document_id(&mut r, root, "dokumentid", &path);
    let replaces = root.child("Rettelse").and_then(|e| {
        let p = format!("{path}/Rettelse");
        let of = document_id(&mut r, e, "erstatter", &p);
        let reason = code(&mut r, e, "årsag", &p, super::CORRECTION_REASONS);
        Some(Replaces {
            message_id: None,
            source_document_id: Some(of?),
            reason: reason?,
        })
    });
    let (case, court) = r.sag(root, &path, Some(kind));
    let (occurred, body) = r.body(root, &path, kind, court.clone(), case.as_ref());
    if !r.v.is_empty() {
        return Err(DecodeError::invalid(Some(t), r.v));
    }
    let (Some(id), Some(case), Some(occurred), Some(body)) = (id, case, occurred, body) else {
        r.v.push(&path, "could not be read");
        return Err(DecodeError::invalid(Some(t), r.v));
    };
    let Some(correlation_id) = case.correlation_id() else {
        r.v.push(format!("{path}/Sag"), "names no case reference");
        return Err(DecodeError::invalid(Some(t), r.v));
    };
    Ok(Message {
        id: None,
        sender: None,
        source_document_id: id,
        occurred_at: occurred,
        received_at: None,
        purpose: t.default_purpose(),
        classification: Classification::Confidential,
        case,
        correlation_id,
        replaces,
        body,
    })
}

pub(super) fn parse_datetime(s: &str) -> Result<Instant, &'static str> {
    let t = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|_| "must be an xs:dateTime with an offset, e.g. 2026-06-15T14:30:00+02:00")?;
    // before 1900 no court event is plausible, and Danish local time then had no whole-minute
    // offset, so such a time could not be written back as it came
    if chrono::Datelike::year(&t.to_utc()) < jxg_schema::values::EARLIEST_YEAR {
        return Err("must be in 1900 or later");
    }
    Ok(Instant::from_utc(t.to_utc()))
}

pub(super) fn parse_date(s: &str) -> Result<Date, &'static str> {
    s.trim()
        .parse::<Date>()
        .map_err(|_| "must be an xs:date YYYY-MM-DD")
}

fn parse_bool(s: &str) -> Result<bool, &'static str> {
    match s.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("must be true or false"),
    }
}

struct Reader<'a> {
    v: Violations,
    md: &'a MasterData,
}

impl Reader<'_> {
    fn conv<T, E: std::fmt::Display>(&mut self, path: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.v.push(path, e.to_string())).ok()
    }

    fn child<'e>(&mut self, parent: &'e Element, name: &str, path: &str) -> Option<&'e Element> {
        let c = parent.child(name);
        if c.is_none() {
            self.v.push(format!("{path}/{name}"), "is required");
        }
        c
    }

    fn text(&mut self, parent: &Element, name: &str, path: &str, required: bool) -> Option<String> {
        let Some(c) = parent.child(name) else {
            if required {
                self.v.push(format!("{path}/{name}"), "is required");
            }
            return None;
        };
        let t = c.text.trim();
        if t.is_empty() {
            self.v.push(format!("{path}/{name}"), "must not be empty");
            return None;
        }
        Some(t.to_string())
    }

    fn attr<'e>(&mut self, el: &'e Element, name: &str, path: &str) -> Option<&'e str> {
        let a = el.attr(name);
        if a.is_none() {
            self.v.push(format!("{path}/@{name}"), "is required");
        }
        a
    }

    fn time(&mut self, parent: &Element, name: &str, path: &str) -> Option<Instant> {
        let t = self.text(parent, name, path, true)?;
        self.conv(&format!("{path}/{name}"), parse_datetime(&t))
    }

    fn court_code(&mut self, code: &str, path: &str) -> Option<String> {
        if self.md.court(code).is_none() {
            self.v.push(path, format!("{code} is not a court code"));
            return None;
        }
        Some(code.to_string())
    }

    /// The name in `Ret`, when there is one, is the name of the court its code names (case and
    /// spacing aside): a court written one way and coded another is refused, not half read.
    fn court_name_agrees(&mut self, ret: &Element, code: &str, path: &str) -> bool {
        let words = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        let named = words(&ret.text);
        let Some(court) = self.md.court(code) else {
            return true;
        };
        if named.is_empty() || named == words(&court.name) {
            return true;
        }
        self.v.push(
            path,
            format!("names another court than its code {code} ({})", court.name),
        );
        false
    }

    /// `Sag`: the case references and the court (`Ret kode`).
    fn sag(
        &mut self,
        root: &Element,
        path: &str,
        kind: Option<Root>,
    ) -> (Option<CaseRefs>, Option<String>) {
        // a withdrawal (no kind) and a Tiltalefrafald may leave the court out
        let ret_required = kind.is_some_and(|k| k != Root::Tiltalefrafald);
        let p = format!("{path}/Sag");
        let Some(sag) = self.child(root, "Sag", path) else {
            return (None, None);
        };
        let ret = sag.child("Ret");
        let court = match ret {
            Some(ret) => self
                .attr(ret, "kode", &format!("{p}/Ret"))
                .and_then(|k| self.court_code(k, &format!("{p}/Ret/@kode")))
                .filter(|k| self.court_name_agrees(ret, k, &format!("{p}/Ret"))),
            None if !ret_required => None,
            None => {
                self.v.push(format!("{p}/Ret"), "is required");
                None
            }
        };
        let mut ok = true;
        let court_case = match sag.child("Sagsnummer") {
            Some(s) => match s.text.trim().parse::<CourtCaseNumber>() {
                Ok(c) => {
                    let code = ret.and_then(|r| r.attr("kode"));
                    if code.is_some_and(|k| k != c.court_code()) {
                        self.v.push(
                            format!("{p}/Sagsnummer"),
                            "its suffix must equal the court code of Ret",
                        );
                        ok = false;
                    } else if self.md.court(c.court_code()).is_none() && code.is_none() {
                        self.v.push(
                            format!("{p}/Sagsnummer"),
                            format!("{} is not a court code", c.court_code()),
                        );
                        ok = false;
                    }
                    Some(c)
                }
                Err(e) => {
                    self.v.push(format!("{p}/Sagsnummer"), e.to_string());
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let journal = match sag.child("PolitiJournalnummer") {
            Some(j) => match j.text.trim().parse::<JournalNumber>() {
                Ok(j) if self.md.district_by_code(j.district_code()).is_none() => {
                    self.v.push(
                        format!("{p}/PolitiJournalnummer"),
                        format!("{} is not a police district code", j.district_code()),
                    );
                    ok = false;
                    None
                }
                Ok(j) => Some(j),
                Err(e) => {
                    self.v
                        .push(format!("{p}/PolitiJournalnummer"), e.to_string());
                    ok = false;
                    None
                }
            },
            None if kind == Some(Root::Anholdelse) => {
                self.v
                    .push(format!("{p}/PolitiJournalnummer"), "is required");
                ok = false;
                None
            }
            None => None,
        };
        let prosecution = match sag.child("Anklagenummer") {
            Some(a) => match a.text.trim().parse::<ProsecutionCaseNumber>() {
                Ok(a) => Some(a),
                Err(e) => {
                    self.v.push(format!("{p}/Anklagenummer"), e.to_string());
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let case = CaseRefs {
            police_journal: journal,
            prosecution_case: prosecution,
            court_case,
        };
        if ok && case.correlation_id().is_none() {
            self.v.push(&p, "must name at least one case reference");
        }
        (ok.then_some(case), court)
    }

    fn body(
        &mut self,
        root: &Element,
        path: &str,
        kind: Root,
        court: Option<String>,
        case: Option<&CaseRefs>,
    ) -> (Option<Instant>, Option<Body>) {
        match kind {
            Root::Dom => {
                let decided = self.time(root, "Afsagt", path);
                let defendant = self.single_person(root, "Tiltalte", path);
                let (counts, outcomes) = self.counts(root, path, true);
                let sentence = self
                    .child(root, "Straf", path)
                    .and_then(|s| self.sentence(s, &format!("{path}/Straf")));
                let deadline = self
                    .text(root, "Ankefrist", path, true)
                    .and_then(|d| self.conv(&format!("{path}/Ankefrist"), parse_date(&d)));
                let body = (|| {
                    Some(Body::VerdictIssued(VerdictIssued {
                        court: court?,
                        decided_at: decided?,
                        defendant: defendant?,
                        counts: counts?,
                        outcomes: outcomes?,
                        sentence: sentence?,
                        appeal_deadline: deadline?,
                    }))
                })();
                (decided, body)
            }
            Root::Kendelse => {
                let decided = self.time(root, "Afsagt", path);
                let person = self.only_person(root, path);
                let v = self.child(root, "Varetægt", path);
                let vp = format!("{path}/Varetægt");
                let until = v.and_then(|v| self.attr(v, "til", &vp).map(str::to_string));
                let until = until.and_then(|u| self.conv(&format!("{vp}/@til"), parse_date(&u)));
                let isolation = v.and_then(|v| self.attr(v, "isolation", &vp).map(str::to_string));
                let isolation =
                    isolation.and_then(|i| self.conv(&format!("{vp}/@isolation"), parse_bool(&i)));
                let institution = match root.child("Institution") {
                    Some(i) => {
                        let ip = format!("{path}/Institution");
                        match self.attr(i, "kode", &ip) {
                            Some(k) if self.md.institution(k).is_none() => {
                                self.v.push(
                                    format!("{ip}/@kode"),
                                    format!("{k} is not an institution code"),
                                );
                                None
                            }
                            Some(k) => Some(Some(k.to_string())),
                            None => None,
                        }
                    }
                    None => Some(None),
                };
                let body = (|| {
                    Some(Body::RemandOrdered(RemandOrdered {
                        person: person?,
                        custody: Custody {
                            event: CustodyEvent::Remanded,
                            at: decided?,
                            place: None,
                            institution: institution?,
                            until: Some(until?),
                            reason: None,
                        },
                        isolation: isolation?,
                        court: court?,
                    }))
                })();
                (decided, body)
            }
            Root::Retsmoede => {
                let starts = self.time(root, "Tidspunkt", path);
                let kind = self.text(root, "Art", path, true).and_then(|a| {
                    let k = match a.as_str() {
                        "grundlovsforhør" => Some(HearingKind::CustodyHearing),
                        "domsforhandling" => Some(HearingKind::MainHearing),
                        "forberedende" => Some(HearingKind::Pretrial),
                        "strafudmåling" => Some(HearingKind::Sentencing),
                        _ => None,
                    };
                    if k.is_none() {
                        self.v.push(format!("{path}/Art"), "must be grundlovsforhør, domsforhandling, forberedende or strafudmåling");
                    }
                    k
                });
                let room = self.text(root, "Lokale", path, false);
                let persons = self.persons(root, path);
                let custody = self
                    .text(root, "TiltaltFrihedsberøvet", path, true)
                    .and_then(|b| {
                        self.conv(&format!("{path}/TiltaltFrihedsberøvet"), parse_bool(&b))
                    });
                let body = (|| {
                    Some(Body::HearingScheduled(HearingScheduled {
                        hearing: Hearing {
                            court: court?,
                            starts_at: starts?,
                            kind: kind?,
                            room,
                        },
                        persons: persons?,
                        defendant_in_custody: custody?,
                    }))
                })();
                (starts, body)
            }
            Root::Anklageskrift => {
                let filed = self.time(root, "Indleveret", path);
                let defendants = self
                    .child(root, "Tiltalte", path)
                    .and_then(|t| self.persons(t, &format!("{path}/Tiltalte")));
                let (counts, _) = self.counts(root, path, false);
                let sentence = match root.child("Strafpåstand") {
                    Some(s) => self.sentence(s, &format!("{path}/Strafpåstand")).map(Some),
                    None => Some(None),
                };
                let narrative = self.text(root, "Beskrivelse", path, false);
                let body = (|| {
                    Some(Body::IndictmentFiled(IndictmentFiled {
                        court: court?,
                        defendants: defendants?,
                        counts: counts?,
                        requested_sentence: sentence?,
                        filed_at: filed?,
                        narrative,
                    }))
                })();
                (filed, body)
            }
            Root::Anholdelse => {
                let person = self.only_person(root, path);
                let ap = format!("{path}/Anholdt");
                let arrest = self.child(root, "Anholdt", path).and_then(|a| {
                    let at = self.attr(a, "tidspunkt", &ap).map(str::to_string);
                    let at =
                        at.and_then(|t| self.conv(&format!("{ap}/@tidspunkt"), parse_datetime(&t)));
                    Some((at?, a.attr("sted").map(str::to_string)))
                });
                let gp = format!("{path}/Grundlovsforhør");
                let deadline = match root.child("Grundlovsforhør") {
                    Some(g) => {
                        let f = self.attr(g, "frist", &gp).map(str::to_string);
                        f.and_then(|f| self.conv(&format!("{gp}/@frist"), parse_datetime(&f)))
                            .map(|d| (true, Some(d)))
                    }
                    None => Some((false, None)),
                };
                let (counts, _) = self.counts(root, path, false);
                let district = case
                    .and_then(|c| c.police_journal.as_ref())
                    .and_then(|j| self.md.district_by_code(j.district_code()))
                    .map(|d| d.slug.clone());
                let at = arrest.as_ref().map(|a| a.0);
                let body = (|| {
                    let (at, place) = arrest?;
                    let (requested, deadline) = deadline?;
                    Some(Body::PersonArrested(PersonArrested {
                        police_district: district?,
                        person: person?,
                        custody: Custody::arrested(at, place),
                        counts: counts?,
                        custody_hearing_requested: requested,
                        custody_hearing_deadline: deadline
                            .unwrap_or_else(|| custody_hearing_deadline(at)),
                    }))
                })();
                (at, body)
            }
            Root::Tiltalefrafald => {
                let withdrawn = self.time(root, "Tilbagetaget", path);
                let person = self.only_person(root, path);
                let (counts, _) = self.counts(root, path, false);
                let reason = self.text(root, "Begrundelse", path, true);
                let body = (|| {
                    Some(Body::ChargesWithdrawn(ChargesWithdrawn {
                        person: person?,
                        counts: counts?,
                        reason: reason?,
                        withdrawn_at: withdrawn?,
                        court,
                    }))
                })();
                (withdrawn, body)
            }
        }
    }

    /// Exactly one `Person` directly under `parent`.
    fn only_person(&mut self, parent: &Element, path: &str) -> Option<Person> {
        let ps: Vec<&Element> = parent.children_named("Person").collect();
        if ps.len() != 1 {
            self.v
                .push(format!("{path}/Person"), "exactly one Person is required");
            return None;
        }
        self.person(ps[0], &format!("{path}/Person"))
    }

    /// Exactly one `Person` in the `wrapper` element.
    fn single_person(&mut self, root: &Element, wrapper: &str, path: &str) -> Option<Person> {
        let w = self.child(root, wrapper, path)?;
        self.only_person(w, &format!("{path}/{wrapper}"))
    }

    /// Every `Person` directly under `parent` (at least one).
    fn persons(&mut self, parent: &Element, path: &str) -> Option<Vec<Person>> {
        let ps: Vec<&Element> = parent.children_named("Person").collect();
        if ps.is_empty() {
            self.v
                .push(format!("{path}/Person"), "at least one Person is required");
            return None;
        }
        let out: Vec<Option<Person>> = ps
            .iter()
            .map(|p| self.person(p, &child_path(parent, path, p)))
            .collect();
        out.into_iter().collect()
    }

    fn person(&mut self, p: &Element, path: &str) -> Option<Person> {
        let role = self.attr(p, "rolle", path).and_then(|r| {
            let role = match r {
                "sigtet" => Some(Role::Suspect),
                "tiltalt" => Some(Role::Defendant),
                "dømt" => Some(Role::Convicted),
                "forurettet" => Some(Role::Victim),
                "vidne" => Some(Role::Witness),
                _ => None,
            };
            if role.is_none() {
                self.v.push(
                    format!("{path}/@rolle"),
                    "must be sigtet, tiltalt, dømt, forurettet or vidne",
                );
            }
            role
        });
        let cpr = match p.attr("cpr") {
            Some(c) => self
                .conv(
                    &format!("{path}/@cpr"),
                    c.parse::<jxg_schema::values::Cpr>().map_err(|e| e.0),
                )
                .map(Some),
            None => Some(None),
        };
        let birth = match p.child("Fødselsdato") {
            Some(b) => self
                .conv(&format!("{path}/Fødselsdato"), parse_date(&b.text))
                .map(Some),
            None => Some(None),
        };
        let navn = self.child(p, "Navn", path);
        let np = format!("{path}/Navn");
        let given = navn.and_then(|n| self.text(n, "Fornavn", &np, true));
        let family = navn.and_then(|n| self.text(n, "Efternavn", &np, true));
        let (address, protected) = match p.child("Adresse") {
            Some(a) => {
                let ap = format!("{path}/Adresse");
                let prot = match a.attr("beskyttet") {
                    Some(b) => self.conv(&format!("{ap}/@beskyttet"), parse_bool(b)),
                    None => Some(false),
                };
                let text = a.text.trim();
                (Some((!text.is_empty()).then(|| text.to_string())), prot)
            }
            None => (Some(None), Some(false)),
        };
        let (cpr, birth) = (cpr?, birth?);
        if cpr.is_none() && birth.is_none() {
            self.v.push(
                format!("{path}/@cpr"),
                "either cpr or Fødselsdato is required",
            );
            return None;
        }
        if let (Some(c), Some(b)) = (&cpr, &birth) {
            if c.birth_date() != b.0 {
                self.v.push(
                    format!("{path}/Fødselsdato"),
                    "contradicts the date in the CPR number",
                );
                return None;
            }
        }
        Some(Person {
            birth_date: if cpr.is_some() { None } else { birth },
            cpr,
            given_name: given?,
            family_name: family?,
            role: role?,
            address: address?,
            address_protected: protected?,
        })
    }

    /// Every `Forhold`, and (for a verdict) the outcome each carries.
    fn counts(
        &mut self,
        root: &Element,
        path: &str,
        verdict: bool,
    ) -> (Option<Vec<Count>>, Option<Vec<Outcome>>) {
        let fs: Vec<&Element> = root.children_named("Forhold").collect();
        if fs.is_empty() {
            self.v.push(
                format!("{path}/Forhold"),
                "at least one Forhold is required",
            );
            return (None, None);
        }
        let mut counts = Vec::new();
        let mut outcomes = Vec::new();
        let mut ok = true;
        let mut seen = std::collections::BTreeSet::new();
        for f in fs {
            let fp = child_path(root, path, f);
            let no = self.attr(f, "nr", &fp).and_then(|n| {
                let no = n
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=999).contains(n));
                if no.is_none() {
                    self.v.push(format!("{fp}/@nr"), "count numbers are 1-999");
                }
                no
            });
            if let Some(n) = no {
                if !seen.insert(n) {
                    self.v
                        .push(format!("{fp}/@nr"), format!("count {n} appears twice"));
                    ok = false;
                }
            }
            if verdict
                && f.child("Lovhenvisning").is_none()
                && f.child("Beskrivelse").is_none()
                && f.child("Afgørelse").is_some()
            {
                let n = no.map(|n| n.to_string()).unwrap_or_default();
                self.v.push(
                    &fp,
                    format!("gives an outcome for count {n}, which this verdict does not describe"),
                );
                ok = false;
                continue;
            }
            let count = self.count(f, &fp, no);
            let outcome = if verdict {
                self.text(f, "Afgørelse", &fp, true)
                    .and_then(|a| match a.as_str() {
                        "skyldig" => Some(OutcomeKind::Guilty),
                        "frifundet" => Some(OutcomeKind::Acquitted),
                        _ => {
                            self.v
                                .push(format!("{fp}/Afgørelse"), "must be skyldig or frifundet");
                            None
                        }
                    })
            } else {
                if f.child("Afgørelse").is_some() {
                    self.v
                        .push(format!("{fp}/Afgørelse"), "only a verdict gives outcomes");
                }
                Some(OutcomeKind::Guilty)
            };
            match (count, outcome) {
                (Some(c), Some(o)) => {
                    outcomes.push(Outcome {
                        count_no: c.no,
                        outcome: o,
                    });
                    counts.push(c);
                }
                _ => ok = false,
            }
        }
        if !ok {
            return (None, None);
        }
        (Some(counts), verdict.then_some(outcomes))
    }

    fn count(&mut self, f: &Element, fp: &str, no: Option<u16>) -> Option<Count> {
        let lp = format!("{fp}/Lovhenvisning");
        let law = self.child(f, "Lovhenvisning", fp).and_then(|l| {
            let law = self.attr(l, "lov", &lp).and_then(|id| {
                if self.md.law(id).is_none() {
                    self.v
                        .push(format!("{lp}/@lov"), format!("{id} is not a known law"));
                    return None;
                }
                Some(id.to_string())
            });
            let section = self
                .attr(l, "paragraf", &lp)
                .and_then(|s| self.conv(&format!("{lp}/@paragraf"), s.parse()));
            let sub = match l.attr("stk") {
                Some(s) => match s.trim().parse::<u16>() {
                    Ok(n) => Some(Some(n)),
                    Err(_) => {
                        self.v.push(format!("{lp}/@stk"), "must be a whole number");
                        None
                    }
                },
                None => Some(None),
            };
            Some(LawRef {
                law: law?,
                section: section?,
                subsection: sub?,
            })
        });
        let description = self.text(f, "Beskrivelse", fp, true);
        let (from, to) = match f.child("Gerningstid") {
            Some(g) => {
                let gp = format!("{fp}/Gerningstid");
                let from = match g.attr("fra") {
                    Some(t) => self
                        .conv(&format!("{gp}/@fra"), parse_datetime(t))
                        .map(Some),
                    None => Some(None),
                };
                let to = match g.attr("til") {
                    Some(t) => self
                        .conv(&format!("{gp}/@til"), parse_datetime(t))
                        .map(Some),
                    None => Some(None),
                };
                (from, to)
            }
            None => (Some(None), Some(None)),
        };
        let place = self.text(f, "Gerningssted", fp, false);
        let (from, to) = (from?, to?);
        if let (Some(a), Some(b)) = (from, to) {
            if b < a {
                self.v
                    .push(format!("{fp}/Gerningstid/@til"), "is before fra");
                return None;
            }
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

    fn sentence(&mut self, s: &Element, path: &str) -> Option<Sentence> {
        let kind = self.attr(s, "art", path).and_then(|a| {
            let k = match a {
                "fængsel" => Some(SentenceKind::Imprisonment),
                "samfundstjeneste" => Some(SentenceKind::CommunityService),
                "bøde" => Some(SentenceKind::Fine),
                "dagbøder" => Some(SentenceKind::DayFines),
                "foranstaltning" => Some(SentenceKind::Measure),
                "ingen" => Some(SentenceKind::None),
                _ => None,
            };
            if k.is_none() {
                self.v
                    .push(format!("{path}/@art"), "is not a sentence kind");
            }
            k
        });
        let suspended = self
            .attr(s, "betinget", path)
            .and_then(|b| self.conv(&format!("{path}/@betinget"), parse_bool(b)));
        let duration = |r: &mut Self, name: &str| -> Option<Option<IsoDuration>> {
            let Some(d) = s.child(name) else {
                return Some(None);
            };
            let dp = format!("{path}/{name}");
            let n = r.conv(
                &dp,
                d.text
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| "must be a whole number"),
            );
            let unit = r.attr(d, "enhed", &dp);
            let d = match (n, unit) {
                (Some(n), Some("dage")) => IsoDuration::Days(n),
                (Some(n), Some("uger")) => IsoDuration::Days(n * 7),
                (Some(n), Some("måneder")) => IsoDuration::Months(n),
                (Some(n), Some("år")) => IsoDuration::Years(n),
                (_, Some(_)) => {
                    r.v.push(format!("{dp}/@enhed"), "must be dage, måneder or år");
                    return None;
                }
                _ => return None,
            };
            Some(Some(d))
        };
        let varighed = duration(self, "Varighed");
        let proevetid = duration(self, "Prøvetid");
        let conditions: Vec<Option<Condition>> = s
            .children_named("Vilkår")
            .map(|v| {
                let vp = child_path(s, path, v);
                let c = match v.text.trim() {
                    "tilsyn" => Some(Condition::Supervision),
                    "behandling" => Some(Condition::Treatment),
                    "fodlænke" => Some(Condition::ElectronicMonitoring),
                    t => t
                        .strip_prefix("samfundstjeneste:")
                        .and_then(|h| h.parse::<u16>().ok())
                        .filter(|h| (30..=300).contains(h))
                        .map(Condition::CommunityServiceHours),
                };
                if c.is_none() {
                    self.v.push(
                        vp,
                        "must be tilsyn, behandling, fodlænke or samfundstjeneste:<hours> (30-300)",
                    );
                }
                c
            })
            .collect();
        let conditions: Option<Vec<Condition>> = conditions.into_iter().collect();
        let fine = match s.child("Bøde") {
            Some(b) => {
                let bp = format!("{path}/Bøde");
                let currency = b.attr("valuta").unwrap_or("DKK").to_string();
                if currency.len() != 3 || !currency.bytes().all(|c| c.is_ascii_uppercase()) {
                    self.v.push(
                        format!("{bp}/@valuta"),
                        "must be a three-letter currency code",
                    );
                }
                self.conv(&bp, crate::police_json::fields::parse_amount(b.text.trim()))
                    .map(|minor| Some(Money { minor, currency }))
            }
            None => Some(None),
        };
        let day_fines = match s.child("Dagbøder") {
            Some(d) => {
                let dp = format!("{path}/Dagbøder");
                let count = self.attr(d, "antal", &dp).and_then(|a| {
                    self.conv(
                        &format!("{dp}/@antal"),
                        a.trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or("must be a whole number of at least 1"),
                    )
                });
                let rate = self.attr(d, "sats", &dp).and_then(|a| {
                    self.conv(
                        &format!("{dp}/@sats"),
                        crate::police_json::fields::parse_amount(a.trim()),
                    )
                });
                (|| {
                    Some(Some(DayFines {
                        count: count?,
                        rate: Money::dkk(rate?),
                    }))
                })()
            }
            None => Some(None),
        };
        Some(Sentence {
            kind: kind?,
            duration: varighed?,
            suspended: suspended?,
            probation: proevetid?,
            conditions: conditions?,
            fine: fine?,
            day_fines: day_fines?,
        })
    }
}

/// The canonical type of each root.
impl Root {
    pub fn message_type(&self) -> MessageType {
        match self {
            Root::Dom => MessageType::VerdictIssued,
            Root::Kendelse => MessageType::RemandOrdered,
            Root::Retsmoede => MessageType::HearingScheduled,
            Root::Anklageskrift => MessageType::IndictmentFiled,
            Root::Anholdelse => MessageType::PersonArrested,
            Root::Tiltalefrafald => MessageType::ChargesWithdrawn,
        }
    }
}
