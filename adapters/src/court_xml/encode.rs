//! canonical → court-xml: UTF-8, times in Danish local time with their offset, every document
//! valid against `schemas/legacy/court-xml-2.xsd`.

use jxg_schema::message::*;
use jxg_schema::values::{Instant, IsoDuration, danish_time};
use jxg_schema::{MasterData, Message};
use quick_xml::escape::escape;

use super::{NAMESPACE, Root};
use crate::EncodeError;

fn cannot(what: impl Into<String>) -> EncodeError {
    EncodeError::CannotCarry {
        format: "court-xml",
        what: what.into(),
    }
}

fn time(t: Instant) -> String {
    danish_time::to_local_with_offset(t)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// An indenting writer of elements.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }
    fn attrs(&mut self, attrs: &[(&str, String)]) {
        for (k, v) in attrs {
            self.out
                .push_str(&format!(" {k}=\"{}\"", escape(v.as_str())));
        }
    }
    fn open(&mut self, name: &str, attrs: &[(&str, String)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }
    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str(&format!("</{name}>\n"));
    }
    fn empty(&mut self, name: &str, attrs: &[(&str, String)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str("/>\n");
    }
    fn text(&mut self, name: &str, attrs: &[(&str, String)], text: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str(&format!(">{}</{name}>\n", escape(text)));
    }
}

fn root_of(b: &Body) -> Result<Root, EncodeError> {
    Ok(match b {
        Body::VerdictIssued(_) => Root::Dom,
        Body::RemandOrdered(_) => Root::Kendelse,
        Body::HearingScheduled(_) => Root::Retsmoede,
        Body::IndictmentFiled(_) => Root::Anklageskrift,
        Body::PersonArrested(_) => Root::Anholdelse,
        Body::ChargesWithdrawn(_) => Root::Tiltalefrafald,
        other => return Err(cannot(format!("a {} message", other.message_type()))),
    })
}

/// Encodes one message as a court document.
pub fn encode(m: &Message, md: &MasterData) -> Result<Vec<u8>, EncodeError> {
    let root = root_of(&m.body)?;
    let mut x = Xml {
        out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        depth: 0,
    };
    let id =
        m.id.map(|u| u.to_string())
            .unwrap_or_else(|| m.source_document_id.clone());
    let mut attrs = vec![
        ("xmlns", NAMESPACE.to_string()),
        ("version", "2.3".to_string()),
    ];
    if root == Root::Kendelse {
        attrs.push(("type", "varetægtsfængsling".to_string()));
    }
    attrs.push(("dokumentid", id));
    x.open(root.name(), &attrs);
    let court: Option<String> = match &m.body {
        Body::VerdictIssued(b) => Some(b.court.clone()),
        Body::RemandOrdered(b) => Some(b.court.clone()),
        Body::HearingScheduled(b) => Some(b.hearing.court.clone()),
        Body::IndictmentFiled(b) => Some(b.court.clone()),
        Body::ChargesWithdrawn(b) => b.court.clone(),
        Body::PersonArrested(_) if m.case.court_case.is_some() => {
            // a court case exists: its court, so that the case number's suffix equals Ret
            m.case
                .court_case
                .as_ref()
                .map(|c| c.court_code().to_string())
        }
        Body::PersonArrested(_) => {
            // the district court that serves the journal number's police district
            let j = m
                .case
                .police_journal
                .as_ref()
                .ok_or_else(|| cannot("an arrest without a police journal number"))?;
            let d = md
                .district_by_code(j.district_code())
                .ok_or_else(|| cannot("an unknown police district"))?;
            Some(d.default_court.clone())
        }
        _ => None,
    };
    sag(&mut x, &m.case, court.as_deref(), md)?;
    if let Some(r) = &m.replaces {
        // out, a document is named by its canonical id, as `dokumentid` is
        let replaced = crate::reference(r.message_id, r.source_document_id.as_deref())
            .ok_or_else(|| cannot("a correction without the id of the message it replaces"))?;
        x.empty(
            "Rettelse",
            &[
                ("erstatter", replaced),
                (
                    "årsag",
                    crate::code_of(super::CORRECTION_REASONS, &r.reason).to_string(),
                ),
            ],
        );
    }
    match &m.body {
        Body::VerdictIssued(b) => {
            x.text("Afsagt", &[], &time(b.decided_at));
            x.open("Tiltalte", &[]);
            person(&mut x, &b.defendant);
            x.close("Tiltalte");
            for c in &b.counts {
                let outcome = b
                    .outcomes
                    .iter()
                    .find(|o| o.count_no == c.no)
                    .map(|o| o.outcome);
                count(
                    &mut x,
                    c,
                    Some(
                        outcome
                            .ok_or_else(|| cannot(format!("count {} without an outcome", c.no)))?,
                    ),
                );
            }
            sentence(&mut x, "Straf", &b.sentence)?;
            x.text("Ankefrist", &[], &b.appeal_deadline.to_string());
        }
        Body::RemandOrdered(b) => {
            x.text("Afsagt", &[], &time(b.custody.at));
            person(&mut x, &b.person);
            let until = b
                .custody
                .until
                .ok_or_else(|| cannot("a remand without an end date"))?;
            x.empty(
                "Varetægt",
                &[
                    ("til", until.to_string()),
                    ("isolation", b.isolation.to_string()),
                ],
            );
            if let Some(i) = &b.custody.institution {
                x.empty("Institution", &[("kode", i.clone())]);
            }
        }
        Body::HearingScheduled(b) => {
            x.text("Tidspunkt", &[], &time(b.hearing.starts_at));
            let art = match b.hearing.kind {
                HearingKind::CustodyHearing => "grundlovsforhør",
                HearingKind::MainHearing => "domsforhandling",
                HearingKind::Pretrial => "forberedende",
                HearingKind::Sentencing => "strafudmåling",
            };
            x.text("Art", &[], art);
            if let Some(r) = &b.hearing.room {
                x.text("Lokale", &[], r);
            }
            for p in &b.persons {
                person(&mut x, p);
            }
            x.text(
                "TiltaltFrihedsberøvet",
                &[],
                &b.defendant_in_custody.to_string(),
            );
        }
        Body::IndictmentFiled(b) => {
            x.text("Indleveret", &[], &time(b.filed_at));
            x.open("Tiltalte", &[]);
            for p in &b.defendants {
                person(&mut x, p);
            }
            x.close("Tiltalte");
            for c in &b.counts {
                count(&mut x, c, None);
            }
            if let Some(s) = &b.requested_sentence {
                sentence(&mut x, "Strafpåstand", s)?;
            }
            if let Some(n) = &b.narrative {
                x.text("Beskrivelse", &[], n);
            }
        }
        Body::PersonArrested(b) => {
            person(&mut x, &b.person);
            let mut a = vec![("tidspunkt", time(b.custody.at))];
            if let Some(p) = &b.custody.place {
                a.push(("sted", p.clone()));
            }
            x.empty("Anholdt", &a);
            if b.custody_hearing_requested {
                x.empty(
                    "Grundlovsforhør",
                    &[("frist", time(b.custody_hearing_deadline))],
                );
            }
            for c in &b.counts {
                count(&mut x, c, None);
            }
        }
        Body::ChargesWithdrawn(b) => {
            person(&mut x, &b.person);
            for c in &b.counts {
                count(&mut x, c, None);
            }
            x.text("Tilbagetaget", &[], &time(b.withdrawn_at));
            x.text("Begrundelse", &[], &b.reason);
        }
        _ => unreachable!("root_of refused the other types"),
    }
    x.close(root.name());
    Ok(x.out.into_bytes())
}

/// Encodes a withdrawal as a `Tilbagekaldelse`: the case, the time, and the canonical id of the
/// message withdrawn with the reason.
pub fn encode_withdrawal(
    w: &jxg_schema::Withdrawal,
    md: &MasterData,
) -> Result<Vec<u8>, EncodeError> {
    let withdrawn = crate::reference(
        w.withdrawn.message_id,
        w.withdrawn.source_document_id.as_deref(),
    )
    .ok_or_else(|| cannot("a withdrawal without the id of the message withdrawn"))?;
    let mut x = Xml {
        out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        depth: 0,
    };
    let id =
        w.id.map(|u| u.to_string())
            .unwrap_or_else(|| w.source_document_id.clone());
    x.open(
        super::WITHDRAWAL,
        &[
            ("xmlns", NAMESPACE.to_string()),
            ("version", "2.3".to_string()),
            ("dokumentid", id),
        ],
    );
    let court = w
        .case
        .court_case
        .as_ref()
        .map(|c| c.court_code().to_string());
    sag(&mut x, &w.case, court.as_deref(), md)?;
    x.text("Tidspunkt", &[], &time(w.occurred_at));
    x.empty(
        "Tilbagekaldt",
        &[
            ("dokumentid", withdrawn),
            (
                "årsag",
                crate::code_of(super::WITHDRAWAL_REASONS, &w.withdrawn.reason).to_string(),
            ),
        ],
    );
    x.close(super::WITHDRAWAL);
    Ok(x.out.into_bytes())
}

fn sag(
    x: &mut Xml,
    case: &CaseRefs,
    court: Option<&str>,
    md: &MasterData,
) -> Result<(), EncodeError> {
    x.open("Sag", &[]);
    if let Some(c) = &case.court_case {
        x.text("Sagsnummer", &[], c.as_str());
    }
    if let Some(code) = court {
        let name = md
            .court(code)
            .ok_or_else(|| cannot(format!("the court {code}")))?;
        x.text("Ret", &[("kode", code.to_string())], &name.name);
    }
    if let Some(j) = &case.police_journal {
        x.text("PolitiJournalnummer", &[], j.as_str());
    }
    if let Some(a) = &case.prosecution_case {
        x.text("Anklagenummer", &[], a.as_str());
    }
    x.close("Sag");
    Ok(())
}

fn person(x: &mut Xml, p: &Person) {
    let role = match p.role {
        Role::Suspect => "sigtet",
        Role::Defendant => "tiltalt",
        Role::Convicted => "dømt",
        Role::Victim => "forurettet",
        Role::Witness => "vidne",
    };
    let mut a = Vec::new();
    if let Some(c) = &p.cpr {
        a.push(("cpr", c.digits().to_string()));
    }
    a.push(("rolle", role.to_string()));
    x.open("Person", &a);
    x.open("Navn", &[]);
    x.text("Fornavn", &[], &p.given_name);
    x.text("Efternavn", &[], &p.family_name);
    x.close("Navn");
    if p.cpr.is_none() {
        if let Some(b) = &p.birth_date {
            x.text("Fødselsdato", &[], &b.to_string());
        }
    }
    match &p.address {
        Some(addr) => x.text(
            "Adresse",
            &[("beskyttet", p.address_protected.to_string())],
            addr,
        ),
        None if p.address_protected => x.empty("Adresse", &[("beskyttet", "true".into())]),
        None => {}
    }
    x.close("Person");
}

fn count(x: &mut Xml, c: &Count, outcome: Option<OutcomeKind>) {
    x.open("Forhold", &[("nr", c.no.to_string())]);
    let mut l = vec![
        ("lov", c.law_ref.law.clone()),
        ("paragraf", c.law_ref.section.to_string()),
    ];
    if let Some(s) = c.law_ref.subsection {
        l.push(("stk", s.to_string()));
    }
    x.empty("Lovhenvisning", &l);
    x.text("Beskrivelse", &[], &c.description);
    let mut g = Vec::new();
    if let Some(f) = c.committed_from {
        g.push(("fra", time(f)));
    }
    if let Some(t) = c.committed_to {
        g.push(("til", time(t)));
    }
    if !g.is_empty() {
        x.empty("Gerningstid", &g);
    }
    if let Some(p) = &c.place {
        x.text("Gerningssted", &[], p);
    }
    if let Some(o) = outcome {
        x.text(
            "Afgørelse",
            &[],
            if o == OutcomeKind::Guilty {
                "skyldig"
            } else {
                "frifundet"
            },
        );
    }
    x.close("Forhold");
}

fn duration(x: &mut Xml, name: &str, d: IsoDuration) -> Result<(), EncodeError> {
    let (n, unit) = match d {
        IsoDuration::Days(n) => (n, "dage"),
        IsoDuration::Months(n) => (n, "måneder"),
        IsoDuration::Years(n) => (n, "år"),
        IsoDuration::Hours(_) => return Err(cannot("a duration in hours")),
    };
    x.text(name, &[("enhed", unit.to_string())], &n.to_string());
    Ok(())
}

fn sentence(x: &mut Xml, name: &str, s: &Sentence) -> Result<(), EncodeError> {
    let art = match s.kind {
        SentenceKind::Imprisonment => "fængsel",
        SentenceKind::CommunityService => "samfundstjeneste",
        SentenceKind::Fine => "bøde",
        SentenceKind::DayFines => "dagbøder",
        SentenceKind::Measure => "foranstaltning",
        SentenceKind::None => "ingen",
    };
    x.open(
        name,
        &[
            ("art", art.to_string()),
            ("betinget", s.suspended.to_string()),
        ],
    );
    if let Some(d) = s.duration {
        duration(x, "Varighed", d)?;
    }
    if let Some(d) = s.probation {
        duration(x, "Prøvetid", d)?;
    }
    for c in &s.conditions {
        let v = match c {
            Condition::Supervision => "tilsyn".to_string(),
            Condition::Treatment => "behandling".to_string(),
            Condition::ElectronicMonitoring => "fodlænke".to_string(),
            Condition::CommunityServiceHours(h) => format!("samfundstjeneste:{h}"),
        };
        x.text("Vilkår", &[], &v);
    }
    if let Some(f) = &s.fine {
        x.text(
            "Bøde",
            &[("valuta", f.currency.clone())],
            &crate::police_json::fields::format_amount(f.minor),
        );
    }
    if let Some(d) = &s.day_fines {
        if d.rate.currency != "DKK" {
            return Err(cannot(format!("day fines in {}", d.rate.currency)));
        }
        x.empty(
            "Dagbøder",
            &[
                ("antal", d.count.to_string()),
                (
                    "sats",
                    crate::police_json::fields::format_amount(d.rate.minor),
                ),
            ],
        );
    }
    x.close(name);
    Ok(())
}
