//! prosecution-flat → canonical. Layout faults (length, type, order, trailer, non-digits in a
//! numeric field, anything but spaces in a filler, control bytes) are 400 and name the first one;
//! everything else — a record or field the message kind has no place for among them — is 422
//! and names every violation, as `record N (XX) field F`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use jxg_schema::message::*;
use jxg_schema::values::{
    CourtCaseNumber, Date, Instant, IsoDuration, JournalNumber, LawRef, Money,
    ProsecutionCaseNumber, danish_time,
};
use jxg_schema::{Document, MasterData, Message, MessageType, Violation, Violations, Withdrawal};

use super::records::{self, Record};
use super::{CORRECTION_REASONS, KINDS, WITHDRAWAL, WITHDRAWAL_REASONS};
use crate::{Context, DecodeError, Rejection};

/// The numeric fields of each record type: digits, or all spaces when absent.
const NUMERIC: &[(&str, &[&str])] = &[
    ("HD", &["date", "time"]),
    ("PE", &["CPR", "birth date"]),
    ("FO", &["count no.", "subsection", "date committed"]),
    (
        "SP",
        &[
            "duration",
            "probation",
            "amount",
            "day-fine count",
            "day-fine rate",
            "appeal deadline",
        ],
    ),
    ("RM", &["date", "time"]),
    ("FB", &["date", "time", "until"]),
];

fn layout(v: Violation) -> DecodeError {
    DecodeError {
        message_type: None,
        rejection: Rejection::Layout(Violations(vec![v])),
    }
}

/// Decodes one record set into a canonical submission (no `id`, `received_at` or `sender`).
pub fn decode(bytes: &[u8], ctx: &Context<'_>) -> Result<Message, DecodeError> {
    crate::canonical::message_only(decode_document(bytes, ctx)?)
}

/// Decodes one record set: a message (perhaps a correction, with an `RT` record) or a
/// withdrawal (`TILB`).
pub fn decode_document(bytes: &[u8], ctx: &Context<'_>) -> Result<Document, DecodeError> {
    let recs = records::split(bytes).map_err(layout)?;
    for r in &recs {
        let numeric = NUMERIC
            .iter()
            .find(|(k, _)| *k == r.kind)
            .map(|(_, f)| *f)
            .unwrap_or(&[]);
        for f in numeric {
            let raw = r.raw(f);
            let blank = raw.iter().all(|b| *b == b' ');
            if !blank && !raw.iter().all(u8::is_ascii_digit) {
                return Err(layout(Violation::new(
                    r.path(f),
                    "a numeric field holds only digits (or only spaces when absent)",
                )));
            }
        }
        // the format defines nothing in a filler: whatever stands there would be dropped
        let has_filler = records::fields(r.kind)
            .iter()
            .any(|(n, _, _)| *n == "filler");
        if has_filler && !r.raw("filler").iter().all(|b| *b == b' ') {
            return Err(layout(Violation::new(
                r.path("filler"),
                "the filler holds only spaces: the format defines nothing there",
            )));
        }
    }
    let mut d = Reader {
        v: Violations::new(),
        md: ctx.master_data,
    };
    let hd = &recs[0];
    let kind = hd.text("message kind").unwrap_or_default();
    if kind == WITHDRAWAL {
        let w = d.withdrawal(&recs);
        return match w {
            Some(w) if d.v.is_empty() => Ok(Document::Withdrawal(w)),
            _ => Err(DecodeError::invalid(None, d.v)),
        };
    }
    let Some(t) = KINDS.iter().find(|(k, _)| *k == kind).map(|(_, t)| *t) else {
        d.v.push(
            hd.path("message kind"),
            format!("{kind} is not a message kind"),
        );
        return Err(DecodeError::invalid(None, d.v));
    };
    d.records_of_kind(&recs, &kind, t);
    if !d.v.is_empty() {
        return Err(DecodeError::invalid(Some(t), d.v));
    }
    let m = d.message(&recs, t);
    match m {
        Some(m) if d.v.is_empty() => Ok(Document::Message(m)),
        _ => Err(DecodeError::invalid(Some(t), d.v)),
    }
}

struct Reader<'a> {
    v: Violations,
    md: &'a MasterData,
}

/// The records each message kind takes between HD and TR.
fn takes(t: MessageType) -> &'static [&'static str] {
    use MessageType::*;
    match t {
        IndictmentFiled => &["PE", "FO", "SP", "RM", "TX"],
        ChargesWithdrawn => &["PE", "FO", "TX"],
        OffenceReported | PersonCharged => &["PE", "FO"],
        PersonArrested => &["PE", "FO", "FB"],
        HearingScheduled => &["PE", "RM"],
        RemandOrdered | CustodyAdmitted | CustodyReleased => &["PE", "FB"],
        VerdictIssued => &["PE", "FO", "SP"],
    }
}

fn digits(r: &Record<'_>, f: &str) -> Option<u64> {
    r.text(f).and_then(|s| s.parse().ok())
}

impl Reader<'_> {
    /// Whatever a kind has no place for is refused, never left out: a record type it does not
    /// take, and the verdict-only fields (a count's outcome, the appeal deadline) outside a DOMA.
    /// (A second SP, RM or FB is out of order, which the framing refuses.)
    fn records_of_kind(&mut self, recs: &[Record<'_>], kind: &str, t: MessageType) {
        let verdict = t == MessageType::VerdictIssued;
        for r in recs {
            // any kind may be a correction
            if r.kind == "HD" || r.kind == "TR" || r.kind == "RT" {
                continue;
            }
            if !takes(t).contains(&r.kind) {
                self.v.push(
                    r.path("record type"),
                    format!("a {kind} record set has no {} records", r.kind),
                );
                continue;
            }
            if !verdict && r.kind == "FO" && r.raw("outcome") != b" " {
                self.v.push(r.path("outcome"), "is given in a DOMA only");
            }
            if !verdict && r.kind == "SP" && r.text("appeal deadline").is_some() {
                self.v
                    .push(r.path("appeal deadline"), "is given in a DOMA only");
            }
        }
    }

    fn date(&mut self, r: &Record<'_>, f: &str) -> Option<Option<NaiveDate>> {
        match r.text(f) {
            None => Some(None),
            Some(s) => match NaiveDate::parse_from_str(&s, "%Y%m%d") {
                Ok(d) => Some(Some(d)),
                Err(_) => {
                    self.v.push(r.path(f), format!("{s} is not a date"));
                    None
                }
            },
        }
    }

    /// A date and a time of one record, in Danish local time.
    fn instant(&mut self, r: &Record<'_>, date: &str, time: &str) -> Option<Instant> {
        let d = self.date(r, date)?;
        let Some(d) = d else {
            self.v.push(r.path(date), "is required");
            return None;
        };
        let t = match r.text(time) {
            Some(s) => match NaiveTime::parse_from_str(&s, "%H%M%S") {
                Ok(t) => t,
                Err(_) => {
                    self.v.push(r.path(time), format!("{s} is not a time"));
                    return None;
                }
            },
            None => NaiveTime::MIN,
        };
        let i = danish_time::to_instant(NaiveDateTime::new(d, t));
        if i.is_none() {
            self.v.push(
                r.path(time),
                "does not exist in Danish local time (the clocks skip that hour)",
            );
        }
        i
    }

    fn flag(&mut self, r: &Record<'_>, f: &str) -> Option<bool> {
        match r.raw(f) {
            b"J" => Some(true),
            b"N" | b" " => Some(false),
            _ => {
                self.v.push(r.path(f), "must be J or N");
                None
            }
        }
    }

    /// A document id of 1-40 characters in field `f`, and a reason from `table` in `reason`.
    fn reference<T: Copy>(
        &mut self,
        r: &Record<'_>,
        f: &str,
        table: &[(&str, T)],
    ) -> Option<(String, T)> {
        let id = r.text(f);
        if id.is_none() {
            self.v.push(r.path(f), "is required");
        }
        let code = r.text("reason").unwrap_or_default();
        let reason = table.iter().find(|(c, _)| *c == code).map(|(_, t)| *t);
        if reason.is_none() {
            let codes: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
            self.v.push(
                r.path("reason"),
                format!("must be one of {}", codes.join(", ")),
            );
        }
        Some((id?, reason?))
    }

    /// A `TILB`: HD, exactly one TB, TR. Its purpose and classification are those of the message
    /// withdrawn (the gateway takes them from it).
    fn withdrawal(&mut self, recs: &[Record<'_>]) -> Option<Withdrawal> {
        let head = self.header(recs);
        let mut tb = None;
        for r in &recs[1..recs.len() - 1] {
            if r.kind == "TB" {
                tb = Some(r);
            } else {
                self.v.push(
                    r.path("record type"),
                    format!("a {WITHDRAWAL} record set has no {} records", r.kind),
                );
            }
        }
        let Some(tb) = tb else {
            self.v.push(
                recs[0].path("message kind"),
                format!("a {WITHDRAWAL} record set has one TB record"),
            );
            return None;
        };
        let withdrawn = self.reference(tb, "withdrawn document id", WITHDRAWAL_REASONS);
        let (case, correlation_id, at, id) = head?;
        let (of, reason) = withdrawn?;
        Some(Withdrawal::submitted(
            id,
            at,
            case,
            correlation_id,
            Withdrawn {
                message_id: None,
                source_document_id: Some(of),
                reason,
            },
        ))
    }

    fn message(&mut self, recs: &[Record<'_>], t: MessageType) -> Option<Message> {
        let head = self.header(recs);
        let replaces = match recs.iter().find(|r| r.kind == "RT") {
            None => Some(None),
            Some(rt) => self
                .reference(rt, "replaced document id", CORRECTION_REASONS)
                .map(|(of, reason)| {
                    Some(Replaces {
                        message_id: None,
                        source_document_id: Some(of),
                        reason,
                    })
                }),
        };
        let (case, correlation_id, at, id) = head?;
        let hd = &recs[0];
        let of = |k: &'static str| recs.iter().filter(move |r| r.kind == k);
        let persons: Vec<Option<Person>> = of("PE").map(|r| self.person(r)).collect();
        let persons: Option<Vec<Person>> = persons.into_iter().collect();
        let counts: Vec<Option<(Count, Option<OutcomeKind>, usize)>> =
            of("FO").map(|r| self.count(r)).collect();
        let counts: Option<Vec<(Count, Option<OutcomeKind>, usize)>> = counts.into_iter().collect();
        let sp = of("SP").next();
        let rm = of("RM").next();
        let fb = of("FB").next();
        let text: Vec<String> = of("TX").filter_map(|r| r.text("text")).collect();
        let text = (!text.is_empty()).then(|| text.join(" "));
        let body = self.body(t, hd, &case, at, persons?, counts?, sp, rm, fb, text)?;
        Some(Message {
            id: None,
            sender: None,
            source_document_id: id,
            occurred_at: at,
            received_at: None,
            purpose: t.default_purpose(),
            classification: Classification::Confidential,
            case,
            correlation_id,
            replaces: replaces?,
            body,
        })
    }

    /// The HD record: the case references, the time and the document id.
    fn header(&mut self, recs: &[Record<'_>]) -> Option<(CaseRefs, String, Instant, String)> {
        let hd = &recs[0];
        let prosecution = match hd.text("prosecution case no.") {
            Some(s) => self
                .parse::<ProsecutionCaseNumber>(hd, "prosecution case no.", &s)
                .map(Some),
            None => Some(None),
        };
        let journal = match hd.text("police journal no.") {
            Some(s) => self
                .parse::<JournalNumber>(hd, "police journal no.", &s)
                .and_then(|j| {
                    if self.md.district_by_code(j.district_code()).is_none() {
                        self.v.push(
                            hd.path("police journal no."),
                            format!("{} is not a police district code", j.district_code()),
                        );
                        return None;
                    }
                    Some(Some(j))
                }),
            None => Some(None),
        };
        let court_case = match hd.text("court case no.") {
            Some(s) => self
                .parse::<CourtCaseNumber>(hd, "court case no.", &s)
                .and_then(|c| {
                    if self.md.court(c.court_code()).is_none() {
                        self.v.push(
                            hd.path("court case no."),
                            format!("{} is not a court code", c.court_code()),
                        );
                        return None;
                    }
                    Some(Some(c))
                }),
            None => Some(None),
        };
        let at = self.instant(hd, "date", "time");
        let id = hd.text("document id");
        if id.is_none() {
            self.v.push(hd.path("document id"), "is required");
        }
        let case = CaseRefs {
            police_journal: journal?,
            prosecution_case: prosecution?,
            court_case: court_case?,
        };
        let Some(correlation_id) = case.correlation_id() else {
            self.v.push(
                hd.path("police journal no."),
                "the header names no case reference",
            );
            return None;
        };
        Some((case, correlation_id, at?, id?))
    }

    fn parse<T: std::str::FromStr<Err = jxg_schema::values::InvalidValue>>(
        &mut self,
        r: &Record<'_>,
        f: &str,
        s: &str,
    ) -> Option<T> {
        s.parse()
            .map_err(|e: jxg_schema::values::InvalidValue| self.v.push(r.path(f), e.0))
            .ok()
    }

    fn person(&mut self, r: &Record<'_>) -> Option<Person> {
        let cpr = match r.text("CPR") {
            Some(s) => self
                .parse::<jxg_schema::values::Cpr>(r, "CPR", &s)
                .map(Some),
            None => Some(None),
        };
        let role = match r.raw("role") {
            b"ST" => Some(Role::Suspect),
            b"TT" => Some(Role::Defendant),
            b"DO" => Some(Role::Convicted),
            b"FO" => Some(Role::Victim),
            b"VI" => Some(Role::Witness),
            _ => {
                self.v.push(r.path("role"), "must be ST, TT, DO, FO or VI");
                None
            }
        };
        let family = r.text("family name");
        if family.is_none() {
            self.v.push(r.path("family name"), "is required");
        }
        let given = r.text("given names");
        if given.is_none() {
            self.v.push(r.path("given names"), "is required");
        }
        let birth = self.date(r, "birth date");
        let protected = self.flag(r, "address protected");
        let (cpr, birth) = (cpr?, birth?);
        if cpr.is_none() && birth.is_none() {
            self.v.push(
                r.path("CPR"),
                "either a CPR number or a birth date is required",
            );
            return None;
        }
        if let (Some(c), Some(b)) = (&cpr, birth) {
            if c.birth_date() != b {
                self.v.push(
                    r.path("birth date"),
                    "contradicts the date in the CPR number",
                );
                return None;
            }
        }
        Some(Person {
            birth_date: if cpr.is_some() { None } else { birth.map(Date) },
            cpr,
            given_name: given?,
            family_name: family?,
            role: role?,
            address: None,
            address_protected: protected?,
        })
    }

    fn count(&mut self, r: &Record<'_>) -> Option<(Count, Option<OutcomeKind>, usize)> {
        let no = digits(r, "count no.")
            .filter(|n| (1..=999).contains(n))
            .map(|n| n as u16);
        if no.is_none() {
            self.v.push(r.path("count no."), "count numbers are 1-999");
        }
        let law = r
            .text("law")
            .and_then(|c| self.md.law_by_flat_code(&c).map(|l| l.id.clone()));
        if law.is_none() {
            self.v
                .push(r.path("law"), "must be STRF, FAEL, EUFO or VAAB");
        }
        let section = match r.text("section") {
            Some(s) => self.parse(r, "section", &s),
            None => {
                self.v.push(r.path("section"), "is required");
                None
            }
        };
        let sub = digits(r, "subsection").map(|n| n as u16);
        let description = r.text("description");
        if description.is_none() {
            self.v.push(r.path("description"), "is required");
        }
        let date = self.date(r, "date committed");
        let outcome = match r.raw("outcome") {
            b"S" => Some(Some(OutcomeKind::Guilty)),
            b"F" => Some(Some(OutcomeKind::Acquitted)),
            b" " => Some(None),
            _ => {
                self.v.push(r.path("outcome"), "must be S, F or a space");
                None
            }
        };
        let count = Count {
            no: no?,
            law_ref: LawRef {
                law: law?,
                section: section?,
                subsection: sub,
            },
            description: description?,
            committed_from: date?.map(danish_time::start_of_day),
            committed_to: None,
            place: r.text("place committed"),
        };
        Some((count, outcome?, r.no))
    }

    fn duration(&mut self, r: &Record<'_>, n: &str, unit: &str) -> Option<Option<IsoDuration>> {
        let Some(v) = digits(r, n) else {
            return Some(None);
        };
        let v = v as u32;
        match r.raw(unit) {
            b"D" => Some(Some(IsoDuration::Days(v))),
            b"M" => Some(Some(IsoDuration::Months(v))),
            b"Y" => Some(Some(IsoDuration::Years(v))),
            _ => {
                self.v.push(r.path(unit), "must be D, M or Y");
                None
            }
        }
    }

    fn sentence(&mut self, r: &Record<'_>) -> Option<Sentence> {
        let kind = match r.raw("kind") {
            b"FAEN" => Some(SentenceKind::Imprisonment),
            b"SAMF" => Some(SentenceKind::CommunityService),
            b"BODE" => Some(SentenceKind::Fine),
            b"DAGB" => Some(SentenceKind::DayFines),
            b"FORA" => Some(SentenceKind::Measure),
            b"INGN" => Some(SentenceKind::None),
            _ => {
                self.v.push(
                    r.path("kind"),
                    "must be FAEN, SAMF, BODE, DAGB, FORA or INGN",
                );
                None
            }
        };
        let suspended = self.flag(r, "suspended");
        let duration = self.duration(r, "duration", "duration unit");
        let probation = self.duration(r, "probation", "probation unit");
        let fine = digits(r, "amount").map(|m| Money::dkk(m as i64));
        let day_fines = match (digits(r, "day-fine count"), digits(r, "day-fine rate")) {
            (Some(c), Some(rate)) => Some(Some(DayFines {
                count: c as u32,
                rate: Money::dkk(rate as i64),
            })),
            (None, None) => Some(None),
            _ => {
                self.v.push(
                    r.path("day-fine count"),
                    "day-fine count and rate go together",
                );
                None
            }
        };
        let conditions: Option<Vec<Condition>> = match r.text("conditions") {
            None => Some(vec![]),
            Some(s) => s
                .split(',')
                .map(|c| {
                    let c = c.trim();
                    let parsed = match c {
                        "TILSYN" => Some(Condition::Supervision),
                        "BEHANDLING" => Some(Condition::Treatment),
                        "FODLAENKE" => Some(Condition::ElectronicMonitoring),
                        _ => c
                            .strip_prefix("SAMF:")
                            .filter(|h| h.len() == 3 && h.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|h| h.parse::<u16>().ok())
                            .filter(|h| (30..=300).contains(h))
                            .map(Condition::CommunityServiceHours),
                    };
                    if parsed.is_none() {
                        self.v.push(
                            r.path("conditions"),
                            format!("{c} is not TILSYN, BEHANDLING, FODLAENKE or SAMF:NNN"),
                        );
                    }
                    parsed
                })
                .collect(),
        };
        Some(Sentence {
            kind: kind?,
            duration: duration?,
            suspended: suspended?,
            probation: probation?,
            conditions: conditions?,
            fine,
            day_fines: day_fines?,
        })
    }

    fn only<'p>(&mut self, hd: &Record<'_>, persons: &'p [Person]) -> Option<&'p Person> {
        if persons.len() != 1 {
            self.v.push(
                records::path(2, "PE", "record type"),
                format!(
                    "a {} names exactly one PE record",
                    hd.text("message kind").unwrap_or_default()
                ),
            );
            return None;
        }
        persons.first()
    }

    fn required<'r, 'b>(
        &mut self,
        hd: &Record<'_>,
        rec: Option<&'r Record<'b>>,
        kind: &str,
    ) -> Option<&'r Record<'b>> {
        if rec.is_none() {
            self.v.push(
                hd.path("message kind"),
                format!(
                    "a {} needs a {kind} record",
                    hd.text("message kind").unwrap_or_default()
                ),
            );
        }
        rec
    }

    fn district(&mut self, hd: &Record<'_>, case: &CaseRefs) -> Option<String> {
        let d = case
            .police_journal
            .as_ref()
            .and_then(|j| self.md.district_by_code(j.district_code()))
            .map(|d| d.slug.clone());
        if d.is_none() {
            self.v
                .push(hd.path("police journal no."), "is required for this kind");
        }
        d
    }

    fn suffix_court(&mut self, hd: &Record<'_>, case: &CaseRefs) -> Option<String> {
        let c = case.court_case.as_ref().map(|c| c.court_code().to_string());
        if c.is_none() {
            self.v
                .push(hd.path("court case no."), "is required for this kind");
        }
        c
    }

    fn custody(&mut self, fb: &Record<'_>, expected: CustodyEvent) -> Option<Custody> {
        let event = match fb.raw("event") {
            b"ANH" => CustodyEvent::Arrested,
            b"VAR" => CustodyEvent::Remanded,
            b"IND" => CustodyEvent::Admitted,
            b"LOE" => CustodyEvent::Released,
            b"OVF" => CustodyEvent::Transferred,
            _ => {
                self.v
                    .push(fb.path("event"), "must be ANH, VAR, IND, LOE or OVF");
                return None;
            }
        };
        if event != expected {
            self.v.push(
                fb.path("event"),
                format!("must be the {expected} event for this kind"),
            );
        }
        let at = self.instant(fb, "date", "time");
        let institution = fb.text("institution");
        if let Some(i) = &institution {
            if self.md.institution(i).is_none() {
                self.v.push(
                    fb.path("institution"),
                    format!("{i} is not an institution code"),
                );
            }
        }
        let until = self.date(fb, "until");
        let reason = match fb.raw("release reason") {
            b"AFSO" => Some(Some(ReleaseReason::SentenceServed)),
            b"PROE" => Some(Some(ReleaseReason::Parole)),
            b"FRIF" => Some(Some(ReleaseReason::Acquitted)),
            b"OPHV" => Some(Some(ReleaseReason::RemandLifted)),
            b"OVFR" => Some(Some(ReleaseReason::Transfer)),
            b"    " => Some(None),
            _ => {
                self.v.push(
                    fb.path("release reason"),
                    "must be AFSO, PROE, FRIF, OPHV or OVFR",
                );
                None
            }
        };
        Some(Custody {
            event,
            at: at?,
            place: None,
            institution,
            until: until?.map(Date),
            reason: reason?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        t: MessageType,
        hd: &Record<'_>,
        case: &CaseRefs,
        at: Instant,
        persons: Vec<Person>,
        counts: Vec<(Count, Option<OutcomeKind>, usize)>,
        sp: Option<&Record<'_>>,
        rm: Option<&Record<'_>>,
        fb: Option<&Record<'_>>,
        text: Option<String>,
    ) -> Option<Body> {
        let plain: Vec<Count> = counts.iter().map(|(c, _, _)| c.clone()).collect();
        let need_counts = |r: &mut Self| {
            if plain.is_empty() {
                r.v.push(hd.path("message kind"), "needs at least one FO record");
            }
        };
        Some(match t {
            MessageType::IndictmentFiled => {
                need_counts(self);
                let suffix = case.court_case.as_ref().map(|c| c.court_code().to_string());
                let court = match rm {
                    Some(rm) => {
                        let code = rm.text("court code").unwrap_or_default();
                        if self.md.court(&code).is_none() {
                            self.v
                                .push(rm.path("court code"), format!("{code} is not a court code"));
                            return None;
                        }
                        if suffix.as_ref().is_some_and(|s| *s != code) {
                            self.v.push(
                                rm.path("court code"),
                                "differs from the court of the court case number",
                            );
                            return None;
                        }
                        code
                    }
                    None => match suffix {
                        Some(s) => s,
                        None => {
                            let d = case
                                .police_journal
                                .as_ref()
                                .and_then(|j| self.md.district_by_code(j.district_code()));
                            match d {
                                Some(d) => d.default_court.clone(),
                                None => {
                                    self.v.push(hd.path("police journal no."), "no court can be told: no RM record, court case or journal number");
                                    return None;
                                }
                            }
                        }
                    },
                };
                let requested_sentence = match sp {
                    Some(sp) => Some(self.sentence(sp)?),
                    None => None,
                };
                if persons.is_empty() {
                    self.v.push(
                        hd.path("message kind"),
                        "a TILT names its defendants in PE records",
                    );
                    return None;
                }
                Body::IndictmentFiled(IndictmentFiled {
                    court,
                    defendants: persons,
                    counts: plain,
                    requested_sentence,
                    filed_at: at,
                    narrative: text,
                })
            }
            MessageType::ChargesWithdrawn => {
                need_counts(self);
                let person = self.only(hd, &persons)?.clone();
                let Some(reason) = text else {
                    self.v.push(
                        hd.path("message kind"),
                        "an OPGV gives its reason in TX records",
                    );
                    return None;
                };
                let court = case.court_case.as_ref().map(|c| c.court_code().to_string());
                Body::ChargesWithdrawn(ChargesWithdrawn {
                    person,
                    counts: plain,
                    reason,
                    withdrawn_at: at,
                    court,
                })
            }
            MessageType::OffenceReported => {
                need_counts(self);
                if persons.is_empty() {
                    self.v.push(
                        hd.path("message kind"),
                        "an ANML names persons in PE records",
                    );
                    return None;
                }
                Body::OffenceReported(OffenceReported {
                    police_district: self.district(hd, case)?,
                    reported_at: at,
                    counts: plain,
                    persons,
                    narrative: None,
                })
            }
            MessageType::PersonCharged => {
                need_counts(self);
                let person = self.only(hd, &persons)?.clone();
                Body::PersonCharged(PersonCharged {
                    police_district: self.district(hd, case)?,
                    person,
                    counts: plain,
                    charged_at: at,
                })
            }
            MessageType::PersonArrested => {
                need_counts(self);
                let person = self.only(hd, &persons)?.clone();
                let fb = self.required(hd, fb, "FB")?;
                let custody = self.custody(fb, CustodyEvent::Arrested)?;
                let requested = self.flag(fb, "custody hearing requested")?;
                Body::PersonArrested(PersonArrested {
                    police_district: self.district(hd, case)?,
                    person,
                    custody_hearing_deadline: custody_hearing_deadline(custody.at),
                    custody,
                    counts: plain,
                    custody_hearing_requested: requested,
                })
            }
            MessageType::HearingScheduled => {
                let rm = self.required(hd, rm, "RM")?;
                let court = rm.text("court code").unwrap_or_default();
                if self.md.court(&court).is_none() {
                    self.v.push(
                        rm.path("court code"),
                        format!("{court} is not a court code"),
                    );
                }
                let starts_at = self.instant(rm, "date", "time");
                let kind = match rm.raw("kind") {
                    b"GRLF" => Some(HearingKind::CustodyHearing),
                    b"DOMF" => Some(HearingKind::MainHearing),
                    b"FORB" => Some(HearingKind::Pretrial),
                    b"STRU" => Some(HearingKind::Sentencing),
                    _ => {
                        self.v
                            .push(rm.path("kind"), "must be GRLF, DOMF, FORB or STRU");
                        None
                    }
                };
                let in_custody = self.flag(rm, "defendant in custody");
                if persons.is_empty() {
                    self.v.push(
                        hd.path("message kind"),
                        "a RETM names persons in PE records",
                    );
                    return None;
                }
                Body::HearingScheduled(HearingScheduled {
                    hearing: Hearing {
                        court,
                        starts_at: starts_at?,
                        kind: kind?,
                        room: rm.text("room"),
                    },
                    persons,
                    defendant_in_custody: in_custody?,
                })
            }
            MessageType::RemandOrdered => {
                let person = self.only(hd, &persons)?.clone();
                let fb = self.required(hd, fb, "FB")?;
                let custody = self.custody(fb, CustodyEvent::Remanded)?;
                let isolation = self.flag(fb, "isolation")?;
                Body::RemandOrdered(RemandOrdered {
                    person,
                    custody,
                    isolation,
                    court: self.suffix_court(hd, case)?,
                })
            }
            MessageType::VerdictIssued => {
                need_counts(self);
                let defendant = self.only(hd, &persons)?.clone();
                let sp = self.required(hd, sp, "SP")?;
                let sentence = self.sentence(sp)?;
                let deadline = self.date(sp, "appeal deadline")?;
                let Some(deadline) = deadline else {
                    self.v
                        .push(sp.path("appeal deadline"), "is required in a DOMA");
                    return None;
                };
                let mut outcomes = Vec::new();
                for (c, o, no) in &counts {
                    match o {
                        Some(o) => outcomes.push(Outcome {
                            count_no: c.no,
                            outcome: *o,
                        }),
                        None => self.v.push(
                            records::path(*no, "FO", "outcome"),
                            "a DOMA gives each count its outcome",
                        ),
                    }
                }
                Body::VerdictIssued(VerdictIssued {
                    court: self.suffix_court(hd, case)?,
                    decided_at: at,
                    defendant,
                    counts: plain,
                    outcomes,
                    sentence,
                    appeal_deadline: Date(deadline),
                })
            }
            MessageType::CustodyAdmitted | MessageType::CustodyReleased => {
                let person = self.only(hd, &persons)?.clone();
                let fb = self.required(hd, fb, "FB")?;
                let expected = if t == MessageType::CustodyAdmitted {
                    CustodyEvent::Admitted
                } else {
                    CustodyEvent::Released
                };
                let custody = self.custody(fb, expected)?;
                let change = CustodyChange { person, custody };
                if t == MessageType::CustodyAdmitted {
                    Body::CustodyAdmitted(change)
                } else {
                    Body::CustodyReleased(change)
                }
            }
        })
    }
}
