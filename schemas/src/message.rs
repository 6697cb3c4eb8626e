//! The envelope and the ten message bodies of canonical v1 (docs/formats/canonical-v1.md), and
//! what v2 adds beside them (docs/formats/canonical-v2.md): a correction (a message with
//! `replaces`) and a withdrawal ([`Withdrawal`], type `message.withdrawn`).
//!
//! A [`Message`] reads and writes exactly the JSON of the spec: the body's shape follows `type`,
//! unknown keys are refused at every level, and optional fields are left out rather than `null`.
//! A message is written as v1 unless it carries what only v2 has.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::values::{
    CourtCaseNumber, Cpr, Date, Instant, IsoDuration, JournalNumber, LawRef, Money,
    ProsecutionCaseNumber,
};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// The ten message types of v1.
    MessageType {
        OffenceReported = "offence.reported",
        PersonCharged = "person.charged",
        PersonArrested = "person.arrested",
        IndictmentFiled = "indictment.filed",
        ChargesWithdrawn = "charges.withdrawn",
        HearingScheduled = "hearing.scheduled",
        RemandOrdered = "remand.ordered",
        VerdictIssued = "verdict.issued",
        CustodyAdmitted = "custody.admitted",
        CustodyReleased = "custody.released",
    }
);

impl MessageType {
    /// The purpose a legacy document of this type is given (docs/formats/canonical-v1.md).
    pub fn default_purpose(&self) -> Purpose {
        match self {
            Self::OffenceReported | Self::PersonCharged | Self::PersonArrested => {
                Purpose::CriminalInvestigation
            }
            Self::CustodyAdmitted | Self::CustodyReleased => Purpose::SentenceEnforcement,
            _ => Purpose::CriminalProceedings,
        }
    }
}

string_enum!(
    /// Why the data moves (LED art. 4(1)(b)).
    Purpose {
        CriminalInvestigation = "criminal-investigation",
        CriminalProceedings = "criminal-proceedings",
        SentenceEnforcement = "sentence-enforcement",
        CriminalRecord = "criminal-record",
    }
);

string_enum!(
    /// `internal` < `confidential` < `secret`.
    Classification { Internal = "internal", Confidential = "confidential", Secret = "secret" }
);

string_enum!(
    Role { Suspect = "suspect", Defendant = "defendant", Convicted = "convicted", Victim = "victim", Witness = "witness" }
);

string_enum!(
    SentenceKind {
        Imprisonment = "imprisonment",
        CommunityService = "community_service",
        Fine = "fine",
        DayFines = "day_fines",
        Measure = "measure",
        None = "none",
    }
);

string_enum!(
    CustodyEvent {
        Arrested = "arrested",
        Remanded = "remanded",
        Admitted = "admitted",
        Released = "released",
        Transferred = "transferred",
    }
);

string_enum!(
    ReleaseReason {
        SentenceServed = "sentence_served",
        Parole = "parole",
        Acquitted = "acquitted",
        RemandLifted = "remand_lifted",
        Transfer = "transfer",
    }
);

string_enum!(
    HearingKind {
        CustodyHearing = "custody_hearing",
        MainHearing = "main_hearing",
        Pretrial = "pretrial",
        Sentencing = "sentencing",
    }
);

string_enum!(OutcomeKind { Guilty = "guilty", Acquitted = "acquitted" });

/// A sentence condition: `supervision`, `treatment`, `community_service_hours:N`, `electronic_monitoring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    Supervision,
    Treatment,
    CommunityServiceHours(u16),
    ElectronicMonitoring,
}
impl FromStr for Condition {
    type Err = crate::values::InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "supervision" => Ok(Self::Supervision),
            "treatment" => Ok(Self::Treatment),
            "electronic_monitoring" => Ok(Self::ElectronicMonitoring),
            _ => s
                .strip_prefix("community_service_hours:")
                .and_then(|h| h.parse::<u16>().ok())
                .filter(|h| (30..=300).contains(h))
                .map(Self::CommunityServiceHours)
                .ok_or_else(|| {
                    crate::values::InvalidValue(
                        "a condition is supervision, treatment, electronic_monitoring or community_service_hours:N (30-300)".into(),
                    )
                }),
        }
    }
}
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Supervision => f.write_str("supervision"),
            Self::Treatment => f.write_str("treatment"),
            Self::CommunityServiceHours(h) => write!(f, "community_service_hours:{h}"),
            Self::ElectronicMonitoring => f.write_str("electronic_monitoring"),
        }
    }
}
impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

string_enum!(
    /// Why a message is replaced by a correction (v2).
    CorrectionReason {
        WrongData = "wrong-data",
        WrongPerson = "wrong-person",
        ClericalError = "clerical-error",
        DecisionChanged = "decision-changed",
    }
);

string_enum!(
    /// Why a message is withdrawn (v2). `erasure`: whoever holds it must erase it.
    WithdrawalReason {
        SentInError = "sent-in-error",
        WrongPerson = "wrong-person",
        WrongCase = "wrong-case",
        Duplicate = "duplicate",
        Erasure = "erasure",
    }
);

/// The `type` of a withdrawal.
pub const WITHDRAWN: &str = "message.withdrawn";

/// An earlier message, as a correction or a withdrawal names it: a sender names it by the
/// gateway's id or by its own document id (one of them); what the gateway stores and delivers
/// names both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replaces {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_document_id: Option<String>,
    pub reason: CorrectionReason,
}

/// The body of a withdrawal: the message withdrawn and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_document_id: Option<String>,
    pub reason: WithdrawalReason,
}

/// A person. Either `cpr` or `birth_date` is present (checked by the validator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpr: Option<Cpr>,
    pub given_name: String,
    pub family_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub address_protected: bool,
}

/// A count (forhold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub no: u16,
    pub law_ref: LawRef,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_from: Option<Instant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_to: Option<Instant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayFines {
    pub count: u32,
    pub rate: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sentence {
    pub kind: SentenceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IsoDuration>,
    pub suspended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation: Option<IsoDuration>,
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_fines: Option<DayFines>,
}

impl Sentence {
    /// Whether the prison service must enforce it: unsuspended imprisonment, community service,
    /// or a suspended sentence with supervision, treatment or electronic monitoring.
    pub fn must_be_enforced(&self) -> bool {
        match self.kind {
            SentenceKind::Imprisonment if !self.suspended => true,
            SentenceKind::CommunityService => true,
            _ => {
                self.suspended
                    && self.conditions.iter().any(|c| {
                        matches!(
                            c,
                            Condition::Supervision
                                | Condition::Treatment
                                | Condition::ElectronicMonitoring
                        )
                    })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Custody {
    pub event: CustodyEvent,
    pub at: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReleaseReason>,
}

impl Custody {
    /// An arrest: the event, its time and, where known, its place.
    pub fn arrested(at: Instant, place: Option<String>) -> Self {
        Self {
            event: CustodyEvent::Arrested,
            at,
            place,
            institution: None,
            until: None,
            reason: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hearing {
    pub court: String,
    pub starts_at: Instant,
    pub kind: HearingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub count_no: u16,
    pub outcome: OutcomeKind,
}

/// Every reference to the case known so far; at least one is present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRefs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub police_journal: Option<JournalNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosecution_case: Option<ProsecutionCaseNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub court_case: Option<CourtCaseNumber>,
}

impl CaseRefs {
    /// The ordering key: the police journal number when known, else the first other reference.
    pub fn correlation_id(&self) -> Option<String> {
        self.police_journal
            .as_ref()
            .map(|j| j.to_string())
            .or_else(|| self.prosecution_case.as_ref().map(|p| p.to_string()))
            .or_else(|| self.court_case.as_ref().map(|c| c.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffenceReported {
    pub police_district: String,
    pub reported_at: Instant,
    pub counts: Vec<Count>,
    pub persons: Vec<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonCharged {
    pub police_district: String,
    pub person: Person,
    pub counts: Vec<Count>,
    pub charged_at: Instant,
}

/// The custody hearing's deadline: the arrest plus PT24H (docs/formats/canonical-v1.md), derived, never sent.
pub fn custody_hearing_deadline(arrested_at: Instant) -> Instant {
    Instant::from_utc(arrested_at.utc() + chrono::Duration::hours(24))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonArrested {
    pub police_district: String,
    pub person: Person,
    pub custody: Custody,
    pub counts: Vec<Count>,
    pub custody_hearing_requested: bool,
    pub custody_hearing_deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndictmentFiled {
    pub court: String,
    pub defendants: Vec<Person>,
    pub counts: Vec<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_sentence: Option<Sentence>,
    pub filed_at: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargesWithdrawn {
    pub person: Person,
    pub counts: Vec<Count>,
    pub reason: String,
    pub withdrawn_at: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub court: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HearingScheduled {
    pub hearing: Hearing,
    pub persons: Vec<Person>,
    pub defendant_in_custody: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemandOrdered {
    pub person: Person,
    pub custody: Custody,
    pub isolation: bool,
    pub court: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictIssued {
    pub court: String,
    pub decided_at: Instant,
    pub defendant: Person,
    pub counts: Vec<Count>,
    pub outcomes: Vec<Outcome>,
    pub sentence: Sentence,
    pub appeal_deadline: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodyChange {
    pub person: Person,
    pub custody: Custody,
}

/// The body, whose shape the envelope's `type` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    OffenceReported(OffenceReported),
    PersonCharged(PersonCharged),
    PersonArrested(PersonArrested),
    IndictmentFiled(IndictmentFiled),
    ChargesWithdrawn(ChargesWithdrawn),
    HearingScheduled(HearingScheduled),
    RemandOrdered(RemandOrdered),
    VerdictIssued(VerdictIssued),
    CustodyAdmitted(CustodyChange),
    CustodyReleased(CustodyChange),
}

impl Body {
    pub fn message_type(&self) -> MessageType {
        match self {
            Body::OffenceReported(_) => MessageType::OffenceReported,
            Body::PersonCharged(_) => MessageType::PersonCharged,
            Body::PersonArrested(_) => MessageType::PersonArrested,
            Body::IndictmentFiled(_) => MessageType::IndictmentFiled,
            Body::ChargesWithdrawn(_) => MessageType::ChargesWithdrawn,
            Body::HearingScheduled(_) => MessageType::HearingScheduled,
            Body::RemandOrdered(_) => MessageType::RemandOrdered,
            Body::VerdictIssued(_) => MessageType::VerdictIssued,
            Body::CustodyAdmitted(_) => MessageType::CustodyAdmitted,
            Body::CustodyReleased(_) => MessageType::CustodyReleased,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("body types serialise to JSON")
    }

    /// Reads a body of type `t` from JSON (a `serde_json::Value`, owned or borrowed), naming the
    /// path (from `body`) of the first value the types refuse.
    pub fn from_json<'de, D>(t: MessageType, v: D) -> Result<Body, crate::Violation>
    where
        D: Deserializer<'de, Error = serde_json::Error>,
    {
        Body::from_json_tracked(t, v).map_err(|e| {
            let path = match e.path().to_string().as_str() {
                "." => "body".to_string(),
                p => format!("body.{p}"),
            };
            crate::Violation::new(path, e.into_inner().to_string())
        })
    }
}

/// A canonical v1 message: stored form (with `id` and `received_at`) or submission form (without).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Option<Uuid>,
    pub sender: Option<String>,
    pub source_document_id: String,
    pub occurred_at: Instant,
    pub received_at: Option<Instant>,
    pub purpose: Purpose,
    pub classification: Classification,
    pub case: CaseRefs,
    pub correlation_id: String,
    /// A correction (v2): the message this one replaces in full.
    pub replaces: Option<Replaces>,
    pub body: Body,
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }

    /// The first version that can carry the whole message.
    pub fn version(&self) -> crate::Version {
        if self.replaces.is_some() {
            crate::Version::V2
        } else {
            crate::Version::V1
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("messages serialise to JSON")
    }

    /// Compact JSON bytes in the first version that carries all of it, as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages serialise to JSON")
    }

    /// Compact JSON bytes in `version`. v1 has no `replaces`: it is left out (the caller says so).
    pub fn to_bytes_as(&self, version: crate::Version) -> Vec<u8> {
        serde_json::to_vec(&self.envelope(version)).expect("messages serialise to JSON")
    }

    fn envelope(&self, version: crate::Version) -> EnvelopeRef<'_, Body> {
        EnvelopeRef {
            schema: version.schema(),
            id: self.id,
            message_type: self.message_type().as_str(),
            sender: self.sender.as_deref(),
            source_document_id: &self.source_document_id,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            purpose: self.purpose,
            classification: self.classification,
            case: &self.case,
            correlation_id: &self.correlation_id,
            replaces: self
                .replaces
                .as_ref()
                .filter(|_| version >= crate::Version::V2),
            body: &self.body,
        }
    }
}

/// A withdrawal (v2, type `message.withdrawn`): the envelope of a message in the case of the
/// message withdrawn, and a body naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    pub id: Option<Uuid>,
    pub sender: Option<String>,
    pub source_document_id: String,
    pub occurred_at: Instant,
    pub received_at: Option<Instant>,
    pub purpose: Purpose,
    pub classification: Classification,
    pub case: CaseRefs,
    pub correlation_id: String,
    pub withdrawn: Withdrawn,
}

impl Withdrawal {
    /// A withdrawal as a legacy format states it: its own document id, time and case, and what
    /// it withdraws. A format states no purpose or classification for it; the gateway gives it
    /// those of the message withdrawn, so these are placeholders.
    pub fn submitted(
        source_document_id: String,
        occurred_at: Instant,
        case: CaseRefs,
        correlation_id: String,
        withdrawn: Withdrawn,
    ) -> Self {
        Withdrawal {
            id: None,
            sender: None,
            source_document_id,
            occurred_at,
            received_at: None,
            purpose: Purpose::CriminalProceedings,
            classification: Classification::Confidential,
            case,
            correlation_id,
            withdrawn,
        }
    }

    /// Compact JSON bytes (v2: only v2 has withdrawals).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("withdrawals serialise to JSON")
    }
}

impl Serialize for Withdrawal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EnvelopeRef {
            schema: crate::SCHEMA_V2,
            id: self.id,
            message_type: WITHDRAWN,
            sender: self.sender.as_deref(),
            source_document_id: &self.source_document_id,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            purpose: self.purpose,
            classification: self.classification,
            case: &self.case,
            correlation_id: &self.correlation_id,
            replaces: None,
            body: &self.withdrawn,
        }
        .serialize(s)
    }
}

/// Any canonical document: a message (perhaps a correction) or a withdrawal. Documents are
/// read one at a time and taken apart at once, so the larger variant is not boxed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Document {
    Message(Message),
    Withdrawal(Withdrawal),
}

impl Document {
    /// The `type` as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            Document::Message(m) => m.message_type().as_str(),
            Document::Withdrawal(_) => WITHDRAWN,
        }
    }

    /// Compact JSON bytes in the first version that carries all of it.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Document::Message(m) => m.to_bytes(),
            Document::Withdrawal(w) => w.to_bytes(),
        }
    }

    /// Reads a message or a withdrawal of either version, naming the path of the first value the
    /// types refuse.
    pub fn from_value(v: serde_json::Value) -> Result<Document, crate::Violation> {
        let e: Envelope<serde_json::Value> = serde_path_to_error::deserialize(v).map_err(
            |e: serde_path_to_error::Error<serde_json::Error>| {
                crate::Violation::new(e.path().to_string(), e.into_inner().to_string())
            },
        )?;
        let version = match e.schema.as_str() {
            crate::SCHEMA_V1 => crate::Version::V1,
            crate::SCHEMA_V2 => crate::Version::V2,
            _ => {
                return Err(crate::Violation::new(
                    "schema",
                    format!("must be {} or {}", crate::SCHEMA_V1, crate::SCHEMA_V2),
                ));
            }
        };
        if version == crate::Version::V1 && e.replaces.is_some() {
            return Err(crate::Violation::new(
                "replaces",
                format!("is a field of {}", crate::SCHEMA_V2),
            ));
        }
        if e.message_type == WITHDRAWN {
            if version == crate::Version::V1 {
                return Err(crate::Violation::new(
                    "type",
                    format!("{WITHDRAWN} is a type of {}", crate::SCHEMA_V2),
                ));
            }
            if e.replaces.is_some() {
                return Err(crate::Violation::new(
                    "replaces",
                    "is not a field of a withdrawal",
                ));
            }
            let withdrawn: Withdrawn = serde_path_to_error::deserialize(e.body).map_err(
                |x: serde_path_to_error::Error<serde_json::Error>| {
                    let path = match x.path().to_string().as_str() {
                        "." => "body".to_string(),
                        p => format!("body.{p}"),
                    };
                    crate::Violation::new(path, x.into_inner().to_string())
                },
            )?;
            return Ok(Document::Withdrawal(Withdrawal {
                id: e.id,
                sender: e.sender,
                source_document_id: e.source_document_id,
                occurred_at: e.occurred_at,
                received_at: e.received_at,
                purpose: e.purpose,
                classification: e.classification,
                case: e.case,
                correlation_id: e.correlation_id,
                withdrawn,
            }));
        }
        let t: MessageType = e
            .message_type
            .parse()
            .map_err(|()| crate::Violation::new("type", "is not a message type of this version"))?;
        let body = Body::from_json(t, e.body)?;
        Ok(Document::Message(Message {
            id: e.id,
            sender: e.sender,
            source_document_id: e.source_document_id,
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            purpose: e.purpose,
            classification: e.classification,
            case: e.case,
            correlation_id: e.correlation_id,
            replaces: e.replaces,
            body,
        }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<B> {
    schema: String,
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(rename = "type")]
    message_type: String,
    #[serde(default)]
    sender: Option<String>,
    source_document_id: String,
    occurred_at: Instant,
    #[serde(default)]
    received_at: Option<Instant>,
    purpose: Purpose,
    classification: Classification,
    case: CaseRefs,
    correlation_id: String,
    #[serde(default)]
    replaces: Option<Replaces>,
    body: B,
}

/// The envelope as written: the same keys in the same order as [`Envelope`], borrowing the
/// message, with the body written straight from its type (no intermediate JSON value).
#[derive(Serialize)]
struct EnvelopeRef<'a, B> {
    schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    #[serde(rename = "type")]
    message_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<&'a str>,
    source_document_id: &'a str,
    occurred_at: Instant,
    #[serde(skip_serializing_if = "Option::is_none")]
    received_at: Option<Instant>,
    purpose: Purpose,
    classification: Classification,
    case: &'a CaseRefs,
    correlation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replaces: Option<&'a Replaces>,
    body: &'a B,
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Body::OffenceReported(b) => b.serialize(s),
            Body::PersonCharged(b) => b.serialize(s),
            Body::PersonArrested(b) => b.serialize(s),
            Body::IndictmentFiled(b) => b.serialize(s),
            Body::ChargesWithdrawn(b) => b.serialize(s),
            Body::HearingScheduled(b) => b.serialize(s),
            Body::RemandOrdered(b) => b.serialize(s),
            Body::VerdictIssued(b) => b.serialize(s),
            Body::CustodyAdmitted(b) | Body::CustodyReleased(b) => b.serialize(s),
        }
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.envelope(self.version()).serialize(s)
    }
}

impl Message {
    /// Reads a message from JSON, naming the path of the first value the types refuse
    /// (`body.persons[0].cpr`). The schema check runs before this and reports every structural
    /// fault; this catches what only the types know (a CPR number's date, a real calendar date).
    pub fn from_value(v: serde_json::Value) -> Result<Message, crate::Violation> {
        match Document::from_value(v)? {
            Document::Message(m) => Ok(m),
            Document::Withdrawal(_) => Err(crate::Violation::new(
                "type",
                format!("{WITHDRAWN} is a withdrawal, not a message"),
            )),
        }
    }
}

impl Body {
    fn from_json_tracked<'de, D: Deserializer<'de>>(
        t: MessageType,
        v: D,
    ) -> Result<Self, serde_path_to_error::Error<D::Error>> {
        use serde_path_to_error::deserialize as f;
        Ok(match t {
            MessageType::OffenceReported => Body::OffenceReported(f(v)?),
            MessageType::PersonCharged => Body::PersonCharged(f(v)?),
            MessageType::PersonArrested => Body::PersonArrested(f(v)?),
            MessageType::IndictmentFiled => Body::IndictmentFiled(f(v)?),
            MessageType::ChargesWithdrawn => Body::ChargesWithdrawn(f(v)?),
            MessageType::HearingScheduled => Body::HearingScheduled(f(v)?),
            MessageType::RemandOrdered => Body::RemandOrdered(f(v)?),
            MessageType::VerdictIssued => Body::VerdictIssued(f(v)?),
            MessageType::CustodyAdmitted => Body::CustodyAdmitted(f(v)?),
            MessageType::CustodyReleased => Body::CustodyReleased(f(v)?),
        })
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Message::from_value(v)
            .map_err(|e| serde::de::Error::custom(format!("{}: {}", e.path, e.message)))
    }
}
