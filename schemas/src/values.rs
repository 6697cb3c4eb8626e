//! Validated values: each type can only hold a valid value, so code after decoding trusts it.
//! Each parses from its canonical text form and prints back to it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value did not parse. Never holds the value itself (it may be a CPR number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(msg: impl Into<String>) -> InvalidValue {
    InvalidValue(msg.into())
}

macro_rules! string_serde {
    ($t:ty, $expecting:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(|e: InvalidValue| {
                    serde::de::Error::custom(format!("{}: {}", $expecting, e))
                })
            }
        }
    };
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A CPR number: ten digits whose first six are a date that exists in the century digit 7 gives
/// (schemas/master-data/). The modulus-11 check is deliberately not applied.
///
/// `Debug` never shows the number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpr(String);

impl Cpr {
    /// The ten digits.
    pub fn digits(&self) -> &str {
        &self.0
    }
    /// `DDMMYY-SSSS`, the form legacy formats write.
    pub fn hyphenated(&self) -> String {
        format!("{}-{}", &self.0[..6], &self.0[6..])
    }
    /// The birth date the number encodes.
    pub fn birth_date(&self) -> NaiveDate {
        cpr_date(&self.0).expect("a Cpr holds a valid date")
    }
}

fn cpr_date(d: &str) -> Option<NaiveDate> {
    let num = |r: std::ops::Range<usize>| d[r].parse::<u32>().ok();
    let (day, month, yy, digit7) = (num(0..2)?, num(2..4)?, num(4..6)?, num(6..7)?);
    let century = match (digit7, yy) {
        (0..=3, _) => 1900,
        (4 | 9, 0..=36) => 2000,
        (4 | 9, _) => 1900,
        (5..=8, 0..=57) => 2000,
        (5..=8, _) => 1800,
        _ => return None,
    };
    NaiveDate::from_ymd_opt((century + yy) as i32, month, day)
}

impl FromStr for Cpr {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if s.len() != 10 || !all_digits(s) {
            return Err(invalid("a CPR number is 10 digits"));
        }
        if cpr_date(s).is_none() {
            return Err(invalid(
                "the CPR number's date does not exist in the century its 7th digit gives",
            ));
        }
        Ok(Cpr(s.to_string()))
    }
}
impl fmt::Display for Cpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Cpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cpr(<redacted>)")
    }
}
string_serde!(Cpr, "cpr");

/// A police journal number `KKKK-NNNNN-NNNNN-YY`; `KKKK` is the district code, checked against
/// master data by the validator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JournalNumber(String);

impl JournalNumber {
    pub fn district_code(&self) -> &str {
        &self.0[..4]
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for JournalNumber {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() == 4
            && [4, 5, 5, 2]
                .iter()
                .zip(&parts)
                .all(|(n, p)| p.len() == *n && all_digits(p));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid("a police journal number is DDDD-DDDDD-DDDDD-YY"))
        }
    }
}
impl fmt::Display for JournalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(JournalNumber, "police journal number");

/// A court case number `SS-<serial>/<year>-<court code>`; the suffix names the court.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CourtCaseNumber(String);

impl CourtCaseNumber {
    pub fn court_code(&self) -> &str {
        self.0.rsplit('-').next().expect("checked at parse")
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for CourtCaseNumber {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let err = || invalid("a court case number is SS-<serial>/<year>-<court code>");
        let rest = s.strip_prefix("SS-").ok_or_else(err)?;
        let (serial, rest) = rest.split_once('/').ok_or_else(err)?;
        let (year, court) = rest.split_once('-').ok_or_else(err)?;
        let ok = all_digits(serial)
            && serial.len() <= 6
            && year.len() == 4
            && all_digits(year)
            && (2..=3).contains(&court.len())
            && court.bytes().all(|b| b.is_ascii_uppercase());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(err())
        }
    }
}
impl fmt::Display for CourtCaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(CourtCaseNumber, "court case number");

/// A prosecution case number `AM-YYYY-NNNNNN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProsecutionCaseNumber(String);

impl ProsecutionCaseNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for ProsecutionCaseNumber {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let p: Vec<&str> = s.split('-').collect();
        let ok = p.len() == 3
            && p[0] == "AM"
            && p[1].len() == 4
            && all_digits(p[1])
            && p[2].len() == 6
            && all_digits(p[2]);
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid("a prosecution case number is AM-YYYY-NNNNNN"))
        }
    }
}
impl fmt::Display for ProsecutionCaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(ProsecutionCaseNumber, "prosecution case number");

/// A law section: digits with an optional lower-case letter (`276`, `244a`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Section(String);

impl Section {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for Section {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let digits = s.trim_end_matches(|c: char| c.is_ascii_lowercase());
        let letters = s.len() - digits.len();
        let ok =
            all_digits(digits) && digits.len() <= 4 && !digits.starts_with('0') && letters <= 1;
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(invalid(
                "a section is digits with an optional lower-case letter",
            ))
        }
    }
}
impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(Section, "section");

/// A law reference `{"law", "section", "subsection"?}`; `law` is checked against master data by
/// the validator (the list can be replaced without a rebuild).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LawRef {
    pub law: String,
    pub section: Section,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsection: Option<u16>,
}

/// An ISO 8601 duration with one unit: `P14D`, `P6M`, `P2Y`, `PT24H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IsoDuration {
    Days(u32),
    Months(u32),
    Years(u32),
    Hours(u32),
}
impl FromStr for IsoDuration {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let err = || invalid("a duration is ISO 8601 with one unit: P14D, P6M, P2Y or PT24H");
        let (rest, hours) = match s.strip_prefix("PT") {
            Some(r) => (r, true),
            None => (s.strip_prefix('P').ok_or_else(err)?, false),
        };
        let unit = rest.chars().last().ok_or_else(err)?;
        let num = &rest[..rest.len() - 1];
        if !all_digits(num) || num.len() > 6 {
            return Err(err());
        }
        let n: u32 = num.parse().map_err(|_| err())?;
        match (hours, unit) {
            (true, 'H') => Ok(Self::Hours(n)),
            (false, 'D') => Ok(Self::Days(n)),
            (false, 'M') => Ok(Self::Months(n)),
            (false, 'Y') => Ok(Self::Years(n)),
            _ => Err(err()),
        }
    }
}
impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days(n) => write!(f, "P{n}D"),
            Self::Months(n) => write!(f, "P{n}M"),
            Self::Years(n) => write!(f, "P{n}Y"),
            Self::Hours(n) => write!(f, "PT{n}H"),
        }
    }
}
string_serde!(IsoDuration, "duration");

/// Money in minor units (øre); never floats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub minor: i64,
    pub currency: String,
}

impl Money {
    pub fn dkk(minor: i64) -> Self {
        Self {
            minor,
            currency: "DKK".into(),
        }
    }
}

/// An instant in UTC with seconds precision, written `2026-11-28T09:14:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instant(DateTime<Utc>);

/// The earliest year of an instant in a message: before it no case event is plausible, and
/// Danish local time had no whole-minute offset from UTC.
pub const EARLIEST_YEAR: i32 = 1900;

impl Instant {
    pub fn from_utc(t: DateTime<Utc>) -> Self {
        Self(t.with_nanosecond_zero())
    }
    pub fn now() -> Self {
        Self::from_utc(Utc::now())
    }
    pub fn utc(&self) -> DateTime<Utc> {
        self.0
    }
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }
}
trait NanoZero {
    fn with_nanosecond_zero(self) -> Self;
}
impl NanoZero for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        Utc.timestamp_opt(self.timestamp(), 0)
            .single()
            .expect("whole seconds exist")
    }
}
/// The layout of an instant and of a date, parsed once (every message has several of each).
static INSTANT_ITEMS: std::sync::LazyLock<Vec<chrono::format::Item<'static>>> =
    std::sync::LazyLock::new(|| strftime_items("%Y-%m-%dT%H:%M:%SZ"));
static DATE_ITEMS: std::sync::LazyLock<Vec<chrono::format::Item<'static>>> =
    std::sync::LazyLock::new(|| strftime_items("%Y-%m-%d"));

fn strftime_items(layout: &'static str) -> Vec<chrono::format::Item<'static>> {
    chrono::format::StrftimeItems::new(layout)
        .parse_to_owned()
        .expect("the layout is valid")
}

fn parse_with(s: &str, items: &[chrono::format::Item<'static>]) -> Option<chrono::format::Parsed> {
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    Some(parsed)
}

impl FromStr for Instant {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let naive = parse_with(s, &INSTANT_ITEMS)
            .and_then(|p| p.to_naive_datetime_with_offset(0).ok())
            .filter(|_| s.len() == 20)
            .ok_or_else(|| {
                invalid("an instant is RFC 3339 in UTC with seconds: 2026-11-28T09:14:00Z")
            })?;
        if naive.year() < EARLIEST_YEAR {
            return Err(invalid("an instant is in 1900 or later"));
        }
        Ok(Self(naive.and_utc()))
    }
}
impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        if (0..=9999).contains(&t.year()) {
            write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        } else {
            write!(f, "{}", t.format_with_items(INSTANT_ITEMS.iter()))
        }
    }
}
string_serde!(Instant, "instant");

/// A calendar date `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

impl FromStr for Date {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        parse_with(s, &DATE_ITEMS)
            .and_then(|p| p.to_naive_date().ok())
            .filter(|d| s.len() == 10 && d.year() >= 1800)
            .map(Self)
            .ok_or_else(|| invalid("a date is YYYY-MM-DD"))
    }
}
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        if (0..=9999).contains(&d.year()) {
            write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
        } else {
            write!(f, "{}", d.format_with_items(DATE_ITEMS.iter()))
        }
    }
}
string_serde!(Date, "date");

/// Danish local time (Europe/Copenhagen, with daylight saving), the zone of every legacy format.
pub mod danish_time {
    use super::*;
    use chrono::LocalResult;
    use chrono_tz::Europe::Copenhagen;

    /// The instant of a Danish wall-clock time. An hour that does not exist (spring forward) is
    /// `None`; one that exists twice (fall back) gives the earlier instant.
    pub fn to_instant(local: NaiveDateTime) -> Option<Instant> {
        match Copenhagen.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(Instant::from_utc(t.with_timezone(&Utc))),
            LocalResult::Ambiguous(earlier, _) => {
                Some(Instant::from_utc(earlier.with_timezone(&Utc)))
            }
            LocalResult::None => None,
        }
    }
    /// The Danish wall-clock time of an instant.
    pub fn to_local(t: Instant) -> NaiveDateTime {
        t.utc().with_timezone(&Copenhagen).naive_local()
    }
    /// The Danish wall-clock time with its UTC offset.
    pub fn to_local_with_offset(t: Instant) -> DateTime<chrono_tz::Tz> {
        t.utc().with_timezone(&Copenhagen)
    }
    /// 00:00 Danish local time of a date (for formats that carry only a date).
    pub fn start_of_day(d: NaiveDate) -> Instant {
        to_instant(d.and_hms_opt(0, 0, 0).expect("midnight exists"))
            .expect("midnight exists in Europe/Copenhagen")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpr_century_rule_decides_whether_a_leap_day_exists() {
        assert!("0104909995".parse::<Cpr>().is_ok());
        assert!("0707614285".parse::<Cpr>().is_ok());
        assert!("3102909995".parse::<Cpr>().is_err(), "31 February");
        // digit 7 = 1 → 1900s; 29-02-1900 does not exist
        assert!("2902001995".parse::<Cpr>().is_err());
        // digit 7 = 4, YY 00 → 2000s; 29-02-2000 exists
        assert!("2902004995".parse::<Cpr>().is_ok());
        assert_eq!(
            "0201609995"
                .parse::<Cpr>()
                .unwrap()
                .birth_date()
                .to_string(),
            "1960-01-02"
        );
        assert_eq!(
            "0101585000"
                .parse::<Cpr>()
                .unwrap()
                .birth_date()
                .to_string(),
            "1858-01-01"
        );
        assert!(!format!("{:?}", "0104909995".parse::<Cpr>().unwrap()).contains("0104"));
    }

    #[test]
    fn reference_numbers_parse_only_in_their_form() {
        assert!("1470-76543-00012-26".parse::<JournalNumber>().is_ok());
        assert!("1470-7654-00012-26".parse::<JournalNumber>().is_err());
        assert_eq!(
            "SS-1234/2026-KBH"
                .parse::<CourtCaseNumber>()
                .unwrap()
                .court_code(),
            "KBH"
        );
        assert!("SS 1-1234/2026".parse::<CourtCaseNumber>().is_err());
        assert!("AM-2026-004711".parse::<ProsecutionCaseNumber>().is_ok());
        assert!("AM-26-004711".parse::<ProsecutionCaseNumber>().is_err());
    }

    #[test]
    fn durations_instants_and_dates_round_trip_their_text() {
        for s in ["P14D", "P6M", "P2Y", "PT24H"] {
            assert_eq!(s.parse::<IsoDuration>().unwrap().to_string(), s);
        }
        for s in ["P", "P2W", "PT2D", "14D", "P1Y2M"] {
            assert!(s.parse::<IsoDuration>().is_err(), "{s}");
        }
        assert_eq!(
            "2026-11-28T09:14:00Z"
                .parse::<Instant>()
                .unwrap()
                .to_string(),
            "2026-11-28T09:14:00Z"
        );
        assert!("2026-11-28T09:14:00+01:00".parse::<Instant>().is_err());
        assert!("2026-11-28T09:14Z".parse::<Instant>().is_err());
        assert!("2026-02-30".parse::<Date>().is_err());
    }

    #[test]
    fn instants_and_dates_are_read_and_written_as_their_chrono_layout_does() {
        // every year from 1800 to 2200, every month, and times across the day
        let mut t = Utc.with_ymd_and_hms(1800, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap();
        let mut seen = 0;
        while t < end {
            let i = Instant::from_utc(t);
            let text = t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            assert_eq!(i.to_string(), text);
            if t.year() >= EARLIEST_YEAR {
                assert_eq!(text.parse::<Instant>().unwrap(), i, "{text}");
            }
            let d = Date(t.date_naive());
            assert_eq!(d.to_string(), t.format("%Y-%m-%d").to_string());
            assert_eq!(d.to_string().parse::<Date>().unwrap(), d);
            t += chrono::Duration::seconds(86_400 * 13 + 3_607 * 5 + 11);
            seen += 1;
        }
        assert!(seen > 10_000);
        // what chrono's parser refuses, ours refuses too
        for s in [
            "2026-11-28T09:14:00",
            "2026-11-28 09:14:00Z",
            "2026-13-28T09:14:00Z",
            "2026-11-31T09:14:00Z",
            "2026-11-28T24:14:00Z",
            "2026-11-28T09:60:00Z",
            "+2026-11-28T09:14:00Z",
            "2026-1-028T09:14:00Z",
            "1899-12-31T23:59:59Z",
        ] {
            assert!(s.parse::<Instant>().is_err(), "{s}");
        }
        for s in [
            "2026-1-01",
            "2026-01-1",
            "1799-12-31",
            "20260101",
            "2026-02-29",
        ] {
            assert!(s.parse::<Date>().is_err(), "{s}");
        }
        // a year outside four digits is written as chrono writes it
        let far = Date(NaiveDate::from_ymd_opt(12_345, 6, 7).unwrap());
        assert_eq!(far.to_string(), far.0.format("%Y-%m-%d").to_string());
    }

    #[test]
    fn danish_local_time_handles_both_daylight_saving_edges() {
        let t = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            danish_time::to_instant(t("2026-02-15 00:20"))
                .unwrap()
                .to_string(),
            "2026-02-14T23:20:00Z"
        );
        assert_eq!(
            danish_time::to_instant(t("2026-07-18 22:40"))
                .unwrap()
                .to_string(),
            "2026-07-18T20:40:00Z"
        );
        assert!(danish_time::to_instant(t("2026-03-29 02:30")).is_none());
        // 25 October 2026, 02:30 happens twice: the earlier (summer time) instant wins
        assert_eq!(
            danish_time::to_instant(t("2026-10-25 02:30"))
                .unwrap()
                .to_string(),
            "2026-10-25T00:30:00Z"
        );
    }
}
