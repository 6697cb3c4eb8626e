//! The rules of canonical v1 that a JSON Schema cannot state: master-data codes, derived fields,
//! and contradictions inside one message. Paths are canonical (`body.outcomes[1].count_no`).

use std::collections::BTreeSet;

use crate::Violations;
use crate::master_data::MasterData;
use crate::message::*;

/// Every semantic violation of `m`.
pub fn semantic(m: &Message, md: &MasterData) -> Violations {
    let mut v = Violations::new();
    envelope(m, md, &mut v);
    match &m.body {
        Body::OffenceReported(b) => {
            district(&b.police_district, "body.police_district", md, &mut v);
            counts(&b.counts, "body.counts", md, &mut v);
            for (i, p) in b.persons.iter().enumerate() {
                person(p, &format!("body.persons[{i}]"), &mut v);
            }
        }
        Body::PersonCharged(b) => {
            district(&b.police_district, "body.police_district", md, &mut v);
            person(&b.person, "body.person", &mut v);
            counts(&b.counts, "body.counts", md, &mut v);
        }
        Body::PersonArrested(b) => {
            district(&b.police_district, "body.police_district", md, &mut v);
            person(&b.person, "body.person", &mut v);
            custody(
                &b.custody,
                CustodyEvent::Arrested,
                "body.custody",
                md,
                &mut v,
            );
            counts(&b.counts, "body.counts", md, &mut v);
            let expected = custody_hearing_deadline(b.custody.at);
            if b.custody_hearing_deadline != expected {
                v.push(
                    "body.custody_hearing_deadline",
                    format!("must be the arrest time plus PT24H ({expected})"),
                );
            }
        }
        Body::IndictmentFiled(b) => {
            court(&b.court, "body.court", md, &mut v);
            for (i, p) in b.defendants.iter().enumerate() {
                person(p, &format!("body.defendants[{i}]"), &mut v);
            }
            counts(&b.counts, "body.counts", md, &mut v);
        }
        Body::ChargesWithdrawn(b) => {
            person(&b.person, "body.person", &mut v);
            counts(&b.counts, "body.counts", md, &mut v);
            if let Some(c) = &b.court {
                court(c, "body.court", md, &mut v);
            }
        }
        Body::HearingScheduled(b) => {
            court(&b.hearing.court, "body.hearing.court", md, &mut v);
            for (i, p) in b.persons.iter().enumerate() {
                person(p, &format!("body.persons[{i}]"), &mut v);
            }
        }
        Body::RemandOrdered(b) => {
            person(&b.person, "body.person", &mut v);
            custody(
                &b.custody,
                CustodyEvent::Remanded,
                "body.custody",
                md,
                &mut v,
            );
            if b.custody.until.is_none() {
                v.push(
                    "body.custody.until",
                    "a remand names the date it lasts until",
                );
            }
            court(&b.court, "body.court", md, &mut v);
        }
        Body::VerdictIssued(b) => {
            court(&b.court, "body.court", md, &mut v);
            person(&b.defendant, "body.defendant", &mut v);
            counts(&b.counts, "body.counts", md, &mut v);
            let nos: BTreeSet<u16> = b.counts.iter().map(|c| c.no).collect();
            let mut seen = BTreeSet::new();
            for (i, o) in b.outcomes.iter().enumerate() {
                if !nos.contains(&o.count_no) {
                    v.push(
                        format!("body.outcomes[{i}].count_no"),
                        format!("there is no count {}", o.count_no),
                    );
                } else if !seen.insert(o.count_no) {
                    v.push(
                        format!("body.outcomes[{i}].count_no"),
                        format!("count {} has two outcomes", o.count_no),
                    );
                }
            }
            for n in nos.difference(&seen) {
                if b.outcomes.iter().all(|o| o.count_no != *n) {
                    v.push("body.outcomes", format!("count {n} has no outcome"));
                }
            }
            sentence(&b.sentence, "body.sentence", &mut v);
        }
        Body::CustodyAdmitted(b) => {
            person(&b.person, "body.person", &mut v);
            custody(
                &b.custody,
                CustodyEvent::Admitted,
                "body.custody",
                md,
                &mut v,
            );
            if b.custody.institution.is_none() {
                v.push(
                    "body.custody.institution",
                    "an admission names the institution",
                );
            }
        }
        Body::CustodyReleased(b) => {
            person(&b.person, "body.person", &mut v);
            custody(
                &b.custody,
                CustodyEvent::Released,
                "body.custody",
                md,
                &mut v,
            );
            if b.custody.reason.is_none() {
                v.push("body.custody.reason", "a release names its reason");
            }
        }
    }
    if let Body::IndictmentFiled(IndictmentFiled {
        requested_sentence: Some(s),
        ..
    }) = &m.body
    {
        sentence(s, "body.requested_sentence", &mut v);
    }
    v
}

fn envelope(m: &Message, md: &MasterData, v: &mut Violations) {
    match m.case.correlation_id() {
        None => v.push("case", "at least one case reference is required"),
        Some(expected) if expected != m.correlation_id => v.push(
            "correlation_id",
            "must be the police journal number when known, else the first other case reference",
        ),
        Some(_) => {}
    }
    if let Some(j) = &m.case.police_journal {
        if md.district_by_code(j.district_code()).is_none() {
            v.push(
                "case.police_journal",
                format!("{} is not a police district code", j.district_code()),
            );
        }
    }
    if let Some(c) = &m.case.court_case {
        if md.court(c.court_code()).is_none() {
            v.push(
                "case.court_case",
                format!("{} is not a court code", c.court_code()),
            );
        }
    }
}

fn district(slug: &str, path: &str, md: &MasterData, v: &mut Violations) {
    if md.district_by_slug(slug).is_none() {
        v.push(path, format!("{slug} is not a police district"));
    }
}

fn court(code: &str, path: &str, md: &MasterData, v: &mut Violations) {
    if md.court(code).is_none() {
        v.push(path, format!("{code} is not a court code"));
    }
}

fn person(p: &Person, path: &str, v: &mut Violations) {
    if p.cpr.is_none() && p.birth_date.is_none() {
        v.push(
            format!("{path}.cpr"),
            "either cpr or birth_date is required",
        );
    }
    if let (Some(cpr), Some(bd)) = (&p.cpr, &p.birth_date) {
        if cpr.birth_date() != bd.0 {
            v.push(
                format!("{path}.birth_date"),
                "contradicts the date in the CPR number",
            );
        }
    }
}

fn counts(cs: &[Count], path: &str, md: &MasterData, v: &mut Violations) {
    let mut seen = BTreeSet::new();
    for (i, c) in cs.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !(1..=999).contains(&c.no) {
            v.push(format!("{p}.no"), "count numbers are 1-999");
        } else if !seen.insert(c.no) {
            v.push(format!("{p}.no"), format!("count {} appears twice", c.no));
        }
        if md.law(&c.law_ref.law).is_none() {
            v.push(
                format!("{p}.law_ref.law"),
                format!("{} is not a known law", c.law_ref.law),
            );
        }
        if let (Some(f), Some(t)) = (c.committed_from, c.committed_to) {
            if t < f {
                v.push(format!("{p}.committed_to"), "is before committed_from");
            }
        }
    }
}

fn custody(c: &Custody, expected: CustodyEvent, path: &str, md: &MasterData, v: &mut Violations) {
    if c.event != expected {
        v.push(
            format!("{path}.event"),
            format!("must be {expected} in this message type"),
        );
    }
    if let Some(i) = &c.institution {
        if md.institution(i).is_none() {
            v.push(
                format!("{path}.institution"),
                format!("{i} is not an institution code"),
            );
        }
    }
    if c.reason.is_some() && c.event != CustodyEvent::Released {
        v.push(format!("{path}.reason"), "only a release has a reason");
    }
    if let Some(until) = c.until {
        if until.0 < c.at.utc().date_naive() {
            v.push(format!("{path}.until"), "is before the custody began");
        }
    }
}

fn sentence(s: &Sentence, path: &str, v: &mut Violations) {
    let needs_duration = matches!(s.kind, SentenceKind::Imprisonment);
    if needs_duration && s.duration.is_none() {
        v.push(format!("{path}.duration"), "imprisonment has a duration");
    }
    if s.probation.is_some() && !s.suspended {
        v.push(
            format!("{path}.probation"),
            "only a suspended sentence has a probation period",
        );
    }
    if s.kind == SentenceKind::DayFines && s.day_fines.is_none() {
        v.push(
            format!("{path}.day_fines"),
            "day fines name their count and rate",
        );
    }
    if s.kind == SentenceKind::Fine && s.fine.is_none() {
        v.push(format!("{path}.fine"), "a fine names its amount");
    }
    for (name, m) in [
        ("fine", s.fine.as_ref()),
        ("day_fines.rate", s.day_fines.as_ref().map(|d| &d.rate)),
    ] {
        if let Some(m) = m {
            if m.minor < 0 {
                v.push(format!("{path}.{name}.minor"), "must not be negative");
            }
        }
    }
}
