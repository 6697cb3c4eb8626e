//! canonical → prosecution-flat: ISO-8859-1 records of 128 characters, CRLF-ended. Text longer
//! than its field is cut and characters outside ISO-8859-1 are folded to their closest Latin-1
//! form (else `?`); [`encode_reporting`] says where either happened, for the audit entry.

use jxg_schema::message::*;
use jxg_schema::values::{Instant, IsoDuration, danish_time};
use jxg_schema::{MasterData, Message};

use super::KINDS;
use super::records::{WIDTH, fields};
use crate::EncodeError;

fn cannot(what: impl Into<String>) -> EncodeError {
    EncodeError::CannotCarry {
        format: "prosecution-flat",
        what: what.into(),
    }
}

/// Where text did not fit as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alterations {
    /// Fields whose text was cut to the field's width (`record 2 (PE) field family name`).
    pub cut: Vec<String>,
    /// Fields where a character outside ISO-8859-1 was folded or replaced by `?`.
    pub folded: Vec<String>,
}

/// The closest ISO-8859-1 character, or `None` for `?`.
fn fold(c: char) -> Option<char> {
    if (c as u32) < 0x20 || (0x7F..=0x9F).contains(&(c as u32)) {
        return None;
    }
    if (c as u32) <= 0xFF {
        return Some(c);
    }
    Some(match c {
        'Ł' => 'L',
        'ł' => 'l',
        'Ő' => 'Ö',
        'ő' => 'ö',
        'Ű' => 'Ü',
        'ű' => 'ü',
        'Č' | 'Ć' => 'C',
        'č' | 'ć' => 'c',
        'Š' | 'Ś' => 'S',
        'š' | 'ś' => 's',
        'Ž' | 'Ź' | 'Ż' => 'Z',
        'ž' | 'ź' | 'ż' => 'z',
        'Ń' | 'Ň' => 'N',
        'ń' | 'ň' => 'n',
        'Ę' | 'Ě' => 'E',
        'ę' | 'ě' => 'e',
        'Ą' => 'A',
        'ą' => 'a',
        'Ř' => 'R',
        'ř' => 'r',
        'Ť' => 'T',
        'ť' => 't',
        'Ď' => 'D',
        'ď' => 'd',
        'Ů' => 'U',
        'ů' => 'u',
        '–' | '—' => '-',
        '‘' | '’' => '\'',
        '“' | '”' | '„' => '"',
        '€' => 'E',
        _ => return None,
    })
}

struct Rec {
    kind: &'static str,
    no: usize,
    bytes: Vec<u8>,
}

struct Writer {
    records: Vec<Rec>,
    alterations: Alterations,
}

impl Writer {
    fn record(&mut self, kind: &'static str) -> usize {
        let mut bytes = vec![b' '; WIDTH];
        bytes[..2].copy_from_slice(kind.as_bytes());
        let no = self.records.len() + 1;
        self.records.push(Rec { kind, no, bytes });
        no - 1
    }
    fn span(kind: &str, field: &str) -> (usize, usize) {
        let (_, a, b) = fields(kind)
            .iter()
            .find(|(n, _, _)| *n == field)
            .expect("a field of this record type");
        (a - 1, *b)
    }
    /// Left-aligned text, cut and folded where it must be.
    fn text(&mut self, i: usize, field: &str, value: &str) {
        let (a, b) = Self::span(self.records[i].kind, field);
        let width = b - a;
        let path = super::records::path(self.records[i].no, self.records[i].kind, field);
        let mut out = Vec::with_capacity(width);
        let mut folded = false;
        for c in value.chars() {
            let f = fold(c);
            folded |= f != Some(c);
            out.push(f.map(|c| c as u32 as u8).unwrap_or(b'?'));
        }
        if out.len() > width {
            out.truncate(width);
            self.alterations.cut.push(path.clone());
        }
        if folded {
            self.alterations.folded.push(path);
        }
        self.records[i].bytes[a..a + out.len()].copy_from_slice(&out);
    }
    /// Right-aligned, zero-padded digits.
    fn number(&mut self, i: usize, field: &str, n: u64) -> Result<(), EncodeError> {
        let (a, b) = Self::span(self.records[i].kind, field);
        let s = format!("{n:0width$}", width = b - a);
        if s.len() > b - a {
            return Err(cannot(format!("{n} in the {} field", field)));
        }
        self.records[i].bytes[a..b].copy_from_slice(s.as_bytes());
        Ok(())
    }
    fn raw(&mut self, i: usize, field: &str, s: &str) {
        let (a, _) = Self::span(self.records[i].kind, field);
        self.records[i].bytes[a..a + s.len()].copy_from_slice(s.as_bytes());
    }
    /// The TR record counting every record, and the set as bytes, each record CRLF-ended.
    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        let tr = self.record("TR");
        let n = self.records.len() as u64;
        self.number(tr, "number of records", n)?;
        let mut out = Vec::with_capacity(self.records.len() * (WIDTH + 2));
        for r in &self.records {
            out.extend_from_slice(&r.bytes);
            out.extend_from_slice(b"\r\n");
        }
        Ok(out)
    }

    /// The HD record: the kind, the case, the time and the document id.
    fn header(&mut self, kind: &str, case: &CaseRefs, at: Instant, id: &str) {
        let hd = self.record("HD");
        self.raw(hd, "message kind", kind);
        if let Some(p) = &case.prosecution_case {
            self.raw(hd, "prosecution case no.", p.as_str());
        }
        if let Some(j) = &case.police_journal {
            self.raw(hd, "police journal no.", j.as_str());
        }
        if let Some(c) = &case.court_case {
            self.raw(hd, "court case no.", c.as_str());
        }
        self.date_time(hd, "date", "time", at);
        self.text(hd, "document id", id);
    }
    fn date_time(&mut self, i: usize, date: &str, time: &str, t: Instant) {
        let l = danish_time::to_local(t);
        self.raw(i, date, &l.format("%Y%m%d").to_string());
        self.raw(i, time, &l.format("%H%M%S").to_string());
    }
}

fn flag(b: bool) -> &'static str {
    if b { "J" } else { "N" }
}

/// Encodes one message as a record set.
pub fn encode(m: &Message, md: &MasterData) -> Result<Vec<u8>, EncodeError> {
    encode_reporting(m, md).map(|(b, _)| b)
}

/// Encodes, and says which fields were cut or folded.
pub fn encode_reporting(
    m: &Message,
    md: &MasterData,
) -> Result<(Vec<u8>, Alterations), EncodeError> {
    let t = m.message_type();
    let kind = KINDS
        .iter()
        .find(|(_, k)| *k == t)
        .map(|(k, _)| *k)
        .expect("every type has a kind");
    let mut w = Writer {
        records: Vec::new(),
        alterations: Alterations::default(),
    };
    let id =
        m.id.map(|u| u.to_string())
            .unwrap_or_else(|| m.source_document_id.clone());
    w.header(kind, &m.case, m.occurred_at, &id);
    if let Some(r) = &m.replaces {
        // out, a record set is named by its canonical id, as the HD document id is
        let replaced = crate::reference(r.message_id, r.source_document_id.as_deref())
            .ok_or_else(|| cannot("a correction without the id of the message it replaces"))?;
        let rt = w.record("RT");
        w.text(rt, "replaced document id", &replaced);
        w.raw(
            rt,
            "reason",
            crate::code_of(super::CORRECTION_REASONS, &r.reason),
        );
    }

    let suffix = m.case.court_case.as_ref().map(|c| c.court_code());
    let court_is_suffix = |court: &str| -> Result<(), EncodeError> {
        if suffix == Some(court) {
            Ok(())
        } else {
            Err(cannot(format!(
                "the court {court} without a court case number of that court"
            )))
        }
    };
    let (persons, counts, outcomes): (Vec<&Person>, &[Count], Option<&[Outcome]>) = match &m.body {
        Body::OffenceReported(b) => (b.persons.iter().collect(), &b.counts, None),
        Body::PersonCharged(b) => (vec![&b.person], &b.counts, None),
        Body::PersonArrested(b) => (vec![&b.person], &b.counts, None),
        Body::IndictmentFiled(b) => (b.defendants.iter().collect(), &b.counts, None),
        Body::ChargesWithdrawn(b) => (vec![&b.person], &b.counts, None),
        Body::HearingScheduled(b) => (b.persons.iter().collect(), &[], None),
        Body::RemandOrdered(b) => {
            court_is_suffix(&b.court)?;
            (vec![&b.person], &[], None)
        }
        Body::VerdictIssued(b) => {
            court_is_suffix(&b.court)?;
            (vec![&b.defendant], &b.counts, Some(b.outcomes.as_slice()))
        }
        Body::CustodyAdmitted(b) | Body::CustodyReleased(b) => (vec![&b.person], &[], None),
    };
    if let Body::ChargesWithdrawn(ChargesWithdrawn { court: Some(c), .. }) = &m.body {
        court_is_suffix(c)?;
    }
    for p in persons {
        let i = w.record("PE");
        if let Some(c) = &p.cpr {
            w.raw(i, "CPR", c.digits());
        }
        let role = match p.role {
            Role::Suspect => "ST",
            Role::Defendant => "TT",
            Role::Convicted => "DO",
            Role::Victim => "FO",
            Role::Witness => "VI",
        };
        w.raw(i, "role", role);
        w.text(i, "family name", &p.family_name);
        w.text(i, "given names", &p.given_name);
        if p.cpr.is_none() {
            if let Some(b) = &p.birth_date {
                w.raw(i, "birth date", &b.0.format("%Y%m%d").to_string());
            }
        }
        w.raw(i, "address protected", flag(p.address_protected));
    }
    for c in counts {
        let i = w.record("FO");
        w.number(i, "count no.", c.no.into())?;
        let law = md
            .law(&c.law_ref.law)
            .ok_or_else(|| cannot(format!("the law {}", c.law_ref.law)))?;
        w.raw(i, "law", &law.flat_code);
        w.text(i, "section", c.law_ref.section.as_str());
        if let Some(s) = c.law_ref.subsection {
            w.number(i, "subsection", s.into())?;
        }
        w.text(i, "description", &c.description);
        if let Some(f) = c.committed_from {
            w.raw(
                i,
                "date committed",
                &danish_time::to_local(f).format("%Y%m%d").to_string(),
            );
        }
        if let Some(os) = outcomes {
            let o = os
                .iter()
                .find(|o| o.count_no == c.no)
                .ok_or_else(|| cannot(format!("count {} without an outcome", c.no)))?;
            w.raw(
                i,
                "outcome",
                if o.outcome == OutcomeKind::Guilty {
                    "S"
                } else {
                    "F"
                },
            );
        }
        if let Some(p) = &c.place {
            w.text(i, "place committed", p);
        }
    }
    let sentence = match &m.body {
        Body::VerdictIssued(b) => Some((&b.sentence, Some(b.appeal_deadline))),
        Body::IndictmentFiled(b) => b.requested_sentence.as_ref().map(|s| (s, None)),
        _ => None,
    };
    if let Some((s, deadline)) = sentence {
        let i = w.record("SP");
        let kind = match s.kind {
            SentenceKind::Imprisonment => "FAEN",
            SentenceKind::CommunityService => "SAMF",
            SentenceKind::Fine => "BODE",
            SentenceKind::DayFines => "DAGB",
            SentenceKind::Measure => "FORA",
            SentenceKind::None => "INGN",
        };
        w.raw(i, "kind", kind);
        w.raw(i, "suspended", flag(s.suspended));
        for (d, n, unit) in [
            (s.duration, "duration", "duration unit"),
            (s.probation, "probation", "probation unit"),
        ] {
            if let Some(d) = d {
                let (v, u) = match d {
                    IsoDuration::Days(v) => (v, "D"),
                    IsoDuration::Months(v) => (v, "M"),
                    IsoDuration::Years(v) => (v, "Y"),
                    IsoDuration::Hours(_) => return Err(cannot("a duration in hours")),
                };
                w.number(i, n, v.into())?;
                w.raw(i, unit, u);
            }
        }
        let dkk = |m: &jxg_schema::values::Money| -> Result<u64, EncodeError> {
            if m.currency != "DKK" || m.minor < 0 {
                return Err(cannot(format!("an amount of {} {}", m.minor, m.currency)));
            }
            Ok(m.minor as u64)
        };
        if let Some(f) = &s.fine {
            w.number(i, "amount", dkk(f)?)?;
        }
        if let Some(df) = &s.day_fines {
            w.number(i, "day-fine count", df.count.into())?;
            w.number(i, "day-fine rate", dkk(&df.rate)?)?;
        }
        let conds: Vec<String> = s
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Supervision => "TILSYN".to_string(),
                Condition::Treatment => "BEHANDLING".to_string(),
                Condition::ElectronicMonitoring => "FODLAENKE".to_string(),
                Condition::CommunityServiceHours(h) => format!("SAMF:{h:03}"),
            })
            .collect();
        let conds = conds.join(",");
        if conds.len() > 40 {
            return Err(cannot("more conditions than the 40-character field holds"));
        }
        w.raw(i, "conditions", &conds);
        if let Some(d) = deadline {
            w.raw(i, "appeal deadline", &d.0.format("%Y%m%d").to_string());
        }
    }
    if let Body::HearingScheduled(b) = &m.body {
        let i = w.record("RM");
        w.raw(i, "court code", &b.hearing.court);
        w.date_time(i, "date", "time", b.hearing.starts_at);
        let kind = match b.hearing.kind {
            HearingKind::CustodyHearing => "GRLF",
            HearingKind::MainHearing => "DOMF",
            HearingKind::Pretrial => "FORB",
            HearingKind::Sentencing => "STRU",
        };
        w.raw(i, "kind", kind);
        if let Some(r) = &b.hearing.room {
            w.text(i, "room", r);
        }
        w.raw(i, "defendant in custody", flag(b.defendant_in_custody));
    }
    if let Body::IndictmentFiled(b) = &m.body {
        // the court travels in an RM record unless the court case number already names it
        if suffix != Some(b.court.as_str()) {
            if suffix.is_some() {
                return Err(cannot(format!(
                    "the court {} beside a court case number of another court",
                    b.court
                )));
            }
            let i = w.record("RM");
            w.raw(i, "court code", &b.court);
        }
    }
    let custody = match &m.body {
        Body::PersonArrested(b) => Some((&b.custody, None, Some(b.custody_hearing_requested))),
        Body::RemandOrdered(b) => Some((&b.custody, Some(b.isolation), None)),
        Body::CustodyAdmitted(b) | Body::CustodyReleased(b) => Some((&b.custody, None, None)),
        _ => None,
    };
    if let Some((c, isolation, hearing)) = custody {
        let i = w.record("FB");
        let event = match c.event {
            CustodyEvent::Arrested => "ANH",
            CustodyEvent::Remanded => "VAR",
            CustodyEvent::Admitted => "IND",
            CustodyEvent::Released => "LOE",
            CustodyEvent::Transferred => "OVF",
        };
        w.raw(i, "event", event);
        w.date_time(i, "date", "time", c.at);
        if let Some(inst) = &c.institution {
            w.raw(i, "institution", inst);
        }
        if let Some(u) = c.until {
            w.raw(i, "until", &u.0.format("%Y%m%d").to_string());
        }
        if let Some(r) = c.reason {
            let code = match r {
                ReleaseReason::SentenceServed => "AFSO",
                ReleaseReason::Parole => "PROE",
                ReleaseReason::Acquitted => "FRIF",
                ReleaseReason::RemandLifted => "OPHV",
                ReleaseReason::Transfer => "OVFR",
            };
            w.raw(i, "release reason", code);
        }
        if let Some(iso) = isolation {
            w.raw(i, "isolation", flag(iso));
        }
        if let Some(h) = hearing {
            w.raw(i, "custody hearing requested", flag(h));
        }
    }
    let text = match &m.body {
        Body::IndictmentFiled(b) => b.narrative.clone(),
        Body::ChargesWithdrawn(b) => Some(b.reason.clone()),
        _ => None,
    };
    if let Some(text) = text {
        for line in wrap(&text, WIDTH - 2) {
            let i = w.record("TX");
            w.text(i, "text", &line);
        }
    }
    let out = w.finish()?;
    Ok((out, w.alterations))
}

/// Encodes a withdrawal as a `TILB` record set: HD (the case, the time, the withdrawal's id),
/// one TB (the canonical id of the message withdrawn and why), TR.
pub fn encode_withdrawal(x: &jxg_schema::Withdrawal) -> Result<Vec<u8>, EncodeError> {
    let withdrawn = crate::reference(
        x.withdrawn.message_id,
        x.withdrawn.source_document_id.as_deref(),
    )
    .ok_or_else(|| cannot("a withdrawal without the id of the message withdrawn"))?;
    let mut w = Writer {
        records: Vec::new(),
        alterations: Alterations::default(),
    };
    let id =
        x.id.map(|u| u.to_string())
            .unwrap_or_else(|| x.source_document_id.clone());
    w.header(super::WITHDRAWAL, &x.case, x.occurred_at, &id);
    let tb = w.record("TB");
    w.text(tb, "withdrawn document id", &withdrawn);
    w.raw(
        tb,
        "reason",
        crate::code_of(super::WITHDRAWAL_REASONS, &x.withdrawn.reason),
    );
    w.finish()
}

/// Splits text into lines of at most `width` characters at spaces (a longer word is split).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        let extra = if line.is_empty() { 0 } else { 1 };
        if line.chars().count() + extra + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
