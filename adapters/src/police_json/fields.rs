//! The field conventions of police-json, both directions.

use chrono::{NaiveDate, NaiveDateTime};
use jxg_schema::master_data::{Law, MasterData};
use jxg_schema::message::{
    Condition, CustodyEvent, HearingKind, ReleaseReason, Role, SentenceKind,
};
use jxg_schema::values::{Date, Instant, IsoDuration, LawRef, Section, danish_time};

/// `dd-mm-yyyy HH:MM` in Danish local time → instant. `Err` says why, without the value.
pub fn parse_local_time(s: &str) -> Result<Instant, &'static str> {
    let naive = (s.len() == 16)
        .then(|| NaiveDateTime::parse_from_str(s, "%d-%m-%Y %H:%M").ok())
        .flatten()
        .ok_or("must be a local time dd-mm-yyyy HH:MM")?;
    danish_time::to_instant(naive)
        .ok_or("does not exist in Danish local time (the clocks skip that hour)")
}

pub fn format_local_time(t: Instant) -> String {
    danish_time::to_local(t)
        .format("%d-%m-%Y %H:%M")
        .to_string()
}

/// `dd-mm-yyyy`.
pub fn parse_date(s: &str) -> Result<Date, &'static str> {
    (s.len() == 10)
        .then(|| NaiveDate::parse_from_str(s, "%d-%m-%Y").ok())
        .flatten()
        .map(Date)
        .ok_or("must be a date dd-mm-yyyy")
}

pub fn format_date(d: Date) -> String {
    d.0.format("%d-%m-%Y").to_string()
}

/// `J` / `N`.
pub fn parse_flag(s: &str) -> Result<bool, &'static str> {
    match s {
        "J" => Ok(true),
        "N" => Ok(false),
        _ => Err("must be \"J\" or \"N\""),
    }
}

pub fn format_flag(b: bool) -> &'static str {
    if b { "J" } else { "N" }
}

/// `DDMMYY-SSSS` or `DDMMYYSSSS`.
pub fn parse_cpr(s: &str) -> Result<jxg_schema::values::Cpr, String> {
    let digits: String = match (s.len(), s.as_bytes().get(6)) {
        (11, Some(b'-')) => format!("{}{}", &s[..6], &s[7..]),
        (10, _) => s.to_string(),
        _ => return Err("must be a CPR number DDMMYY-SSSS".into()),
    };
    digits
        .parse()
        .map_err(|e: jxg_schema::values::InvalidValue| e.0)
}

/// Danish amounts: `1.500,00`, `1500,00`, `1.500`, `1500` → øre.
pub fn parse_amount(s: &str) -> Result<i64, &'static str> {
    const ERR: &str = "must be an amount in Danish notation, e.g. 1.500,00";
    let (int, dec) = match s.split_once(',') {
        Some((i, d)) if d.len() == 2 && d.bytes().all(|b| b.is_ascii_digit()) => (i, d),
        Some(_) => return Err(ERR),
        None => (s, "00"),
    };
    let groups: Vec<&str> = int.split('.').collect();
    let ok = if groups.len() == 1 {
        !int.is_empty() && int.len() <= 15 && int.bytes().all(|b| b.is_ascii_digit())
    } else {
        (1..=3).contains(&groups[0].len())
            && groups.len() <= 5
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
            && groups[1..].iter().all(|g| g.len() == 3)
    };
    if !ok {
        return Err(ERR);
    }
    let kroner: i64 = groups.concat().parse().map_err(|_| ERR)?;
    let oere: i64 = dec.parse().map_err(|_| ERR)?;
    Ok(kroner * 100 + oere)
}

/// øre → `1.500,00`.
pub fn format_amount(minor: i64) -> String {
    let (kr, oere) = (minor.abs() / 100, minor.abs() % 100);
    let digits = kr.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{}{grouped},{oere:02}", if minor < 0 { "-" } else { "" })
}

/// `6 maaneder`, `60 dage`, `2 uger` (→ days), `1 aar`.
pub fn parse_duration(s: &str) -> Result<IsoDuration, &'static str> {
    const ERR: &str = "must be a duration \"<n> dage|uger|maaneder|aar\"";
    let (n, unit) = s.split_once(' ').ok_or(ERR)?;
    if n.is_empty() || n.len() > 5 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ERR);
    }
    let n: u32 = n.parse().map_err(|_| ERR)?;
    match unit {
        "dag" | "dage" => Ok(IsoDuration::Days(n)),
        "uge" | "uger" => Ok(IsoDuration::Days(n * 7)),
        "maaned" | "maaneder" => Ok(IsoDuration::Months(n)),
        "aar" => Ok(IsoDuration::Years(n)),
        _ => Err(ERR),
    }
}

/// `None` for hours, which police-json cannot carry.
pub fn format_duration(d: IsoDuration) -> Option<String> {
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match d {
        IsoDuration::Days(n) => Some(plural(n, "dag", "dage")),
        IsoDuration::Months(n) => Some(plural(n, "maaned", "maaneder")),
        IsoDuration::Years(n) => Some(format!("{n} aar")),
        IsoDuration::Hours(_) => None,
    }
}

/// Why a law reference was refused; both quote the text (docs/formats/police-json.md allows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LawRefError {
    UnknownLaw,
    Unreadable,
}

/// Reads a law reference as officers type it: case-insensitive, any spacing, the law's short
/// form or any listed spelling, before the section or after it (`§ 276 i straffeloven`).
pub fn parse_law_ref(text: &str, md: &MasterData) -> Result<LawRef, LawRefError> {
    let s = MasterData::folded(text);
    let (s, subsection) = match s.rfind(",stk") {
        Some(i) => {
            let rest = s[i + 4..].trim_start_matches('.');
            let n: u16 = rest
                .parse()
                .ok()
                .filter(|_| rest.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(LawRefError::Unreadable)?;
            (s[..i].to_string(), Some(n))
        }
        None => (s, None),
    };
    let names: Vec<(&str, &Law)> = md.law_spellings().collect();
    let (law, section) = if let Some(rest) = s.strip_prefix('§') {
        // `§ 276 i straffeloven`
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, tail) = rest.split_at(digits_end);
        let try_split = |letter: &str, tail: &str| -> Option<(&Law, String)> {
            let name = tail.strip_prefix('i')?;
            let law = names
                .iter()
                .find(|(n, _)| name == *n || name.strip_suffix('.') == Some(*n))?
                .1;
            Some((law, format!("{digits}{letter}")))
        };
        let mut chars = tail.chars();
        let with_letter = chars
            .next()
            .filter(|c| c.is_ascii_lowercase())
            .and_then(|c| try_split(&c.to_string(), chars.as_str()));
        match with_letter.or_else(|| try_split("", tail)) {
            Some(found) => found,
            None if tail.starts_with('i') && !digits.is_empty() => {
                return Err(LawRefError::UnknownLaw);
            }
            None => return Err(LawRefError::Unreadable),
        }
    } else {
        let Some((name, law)) = names.iter().find(|(n, _)| s.starts_with(*n)) else {
            return Err(LawRefError::UnknownLaw);
        };
        let rest = s[name.len()..].trim_start_matches('.');
        let rest = rest.strip_prefix('§').unwrap_or(rest);
        (*law, rest.to_string())
    };
    let section: Section = section.parse().map_err(|_| LawRefError::Unreadable)?;
    Ok(LawRef {
        law: law.id.clone(),
        section,
        subsection,
    })
}

/// `Strfl. § 276, stk. 1`.
pub fn format_law_ref(r: &LawRef, md: &MasterData) -> Option<String> {
    let law = md.law(&r.law)?;
    Some(match r.subsection {
        Some(n) => format!("{} § {}, stk. {n}", law.short_form, r.section),
        None => format!("{} § {}", law.short_form, r.section),
    })
}

macro_rules! code_table {
    ($parse:ident, $format:ident, $t:ty, $what:literal, { $($code:literal => $v:expr),+ $(,)? }) => {
        pub fn $parse(s: &str) -> Result<$t, String> {
            match s {
                $($code => Ok($v),)+
                _ => Err(format!(concat!("must be one of ", $what, ": {}"), [$($code),+].join(", "))),
            }
        }
        pub fn $format(v: $t) -> &'static str {
            $(if v == $v { return $code; })+
            unreachable!("every value has a code")
        }
    };
}

code_table!(parse_role, format_role, Role, "the roles", {
    "SIGTET" => Role::Suspect, "TILTALT" => Role::Defendant, "DOMFAELDT" => Role::Convicted,
    "FORURETTET" => Role::Victim, "VIDNE" => Role::Witness,
});
code_table!(parse_hearing_kind, format_hearing_kind, HearingKind, "the hearing kinds", {
    "GRUNDLOVSFORHOER" => HearingKind::CustodyHearing, "DOMSFORHANDLING" => HearingKind::MainHearing,
    "FORBEREDENDE" => HearingKind::Pretrial, "STRAFUDMAALING" => HearingKind::Sentencing,
});
code_table!(parse_sentence_kind, format_sentence_kind, SentenceKind, "the sentence kinds", {
    "FAENGSEL" => SentenceKind::Imprisonment, "SAMFUNDSTJENESTE" => SentenceKind::CommunityService,
    "BOEDE" => SentenceKind::Fine, "DAGBOEDER" => SentenceKind::DayFines,
    "FORANSTALTNING" => SentenceKind::Measure, "INGEN" => SentenceKind::None,
});
code_table!(parse_custody_event, format_custody_event, CustodyEvent, "the events", {
    "INDSAT" => CustodyEvent::Admitted, "LOESLADT" => CustodyEvent::Released, "VARETAEGT" => CustodyEvent::Remanded,
});
code_table!(parse_release_reason, format_release_reason, ReleaseReason, "the reasons", {
    "AFSONET" => ReleaseReason::SentenceServed, "PROEVELOESLADT" => ReleaseReason::Parole,
    "FRIFUNDET" => ReleaseReason::Acquitted, "OPHAEVET" => ReleaseReason::RemandLifted,
    "OVERFOERT" => ReleaseReason::Transfer,
});

/// `TILSYN`, `BEHANDLING`, `FODLAENKE`, `SAMFUNDSTJENESTE:<hours>` (30-300).
pub fn parse_condition(s: &str) -> Result<Condition, &'static str> {
    const ERR: &str = "must be TILSYN, BEHANDLING, FODLAENKE or SAMFUNDSTJENESTE:<hours> (30-300)";
    match s {
        "TILSYN" => Ok(Condition::Supervision),
        "BEHANDLING" => Ok(Condition::Treatment),
        "FODLAENKE" => Ok(Condition::ElectronicMonitoring),
        _ => s
            .strip_prefix("SAMFUNDSTJENESTE:")
            .filter(|h| h.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|h| h.parse::<u16>().ok())
            .filter(|h| (30..=300).contains(h))
            .map(Condition::CommunityServiceHours)
            .ok_or(ERR),
    }
}

pub fn format_condition(c: Condition) -> String {
    match c {
        Condition::Supervision => "TILSYN".into(),
        Condition::Treatment => "BEHANDLING".into(),
        Condition::ElectronicMonitoring => "FODLAENKE".into(),
        Condition::CommunityServiceHours(h) => format!("SAMFUNDSTJENESTE:{h}"),
    }
}
