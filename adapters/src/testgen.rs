//! What the adapters' tests share: sample files, and generators of canonical values for the
//! property tests.

use jxg_schema::message::*;
use jxg_schema::values::*;
use proptest::prelude::*;

pub fn instant() -> impl Strategy<Value = Instant> {
    // minutes only: police times carry no seconds
    (1_700_000_000i64 / 60..1_900_000_000i64 / 60)
        .prop_map(|m| Instant::from_utc(chrono::DateTime::from_timestamp(m * 60, 0).unwrap()))
}
pub fn date() -> impl Strategy<Value = Date> {
    (1930i32..2030, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| Date(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()))
}
pub fn text() -> impl Strategy<Value = String> {
    // starts and ends with a visible character (court-xml trims element text); holds the
    // characters XML and JSON must escape
    "[A-Za-zÆØÅæøå0-9]([A-Za-zÆØÅæøå0-9 ,.:&<>\"'-]{0,38}[A-Za-zÆØÅæøå0-9.])?"
}
pub fn cpr() -> impl Strategy<Value = Cpr> {
    prop_oneof![
        Just("0104909995"),
        Just("0108629996"),
        Just("0201609995"),
        Just("0201919990"),
        Just("0707614285")
    ]
    .prop_map(|s| s.parse().unwrap())
}
pub fn person() -> impl Strategy<Value = Person> {
    (
        prop_oneof![
            cpr().prop_map(|c| (Some(c), None)),
            date().prop_map(|d| (None, Some(d)))
        ],
        text(),
        text(),
        prop::sample::select(Role::ALL.to_vec()),
        prop::option::of(text()),
        any::<bool>(),
    )
        .prop_map(
            |((cpr, birth_date), given_name, family_name, role, address, address_protected)| {
                Person {
                    cpr,
                    given_name,
                    family_name,
                    birth_date,
                    role,
                    address,
                    address_protected,
                }
            },
        )
}
pub fn law_ref() -> impl Strategy<Value = LawRef> {
    (
        prop::sample::select(vec![
            "straffeloven",
            "faerdselsloven",
            "euforiserende-stoffer",
            "vaabenloven",
        ]),
        "[1-9][0-9]{0,2}[a-z]?",
        prop::option::of(1u16..10),
    )
        .prop_map(|(law, section, subsection)| LawRef {
            law: law.into(),
            section: section.parse().unwrap(),
            subsection,
        })
}
pub fn counts() -> impl Strategy<Value = Vec<Count>> {
    prop::collection::vec(
        (
            law_ref(),
            text(),
            prop::option::of((instant(), prop::option::of(0i64..100_000))),
            prop::option::of(text()),
        ),
        1..4,
    )
    .prop_map(|cs| {
        cs.into_iter()
            .enumerate()
            .map(|(i, (law_ref, description, times, place))| {
                let (from, to) = match times {
                    Some((f, d)) => (
                        Some(f),
                        d.map(|d| Instant::from_utc(f.utc() + chrono::Duration::minutes(d))),
                    ),
                    None => (None, None),
                };
                Count {
                    no: i as u16 + 1,
                    law_ref,
                    description,
                    committed_from: from,
                    committed_to: to,
                    place,
                }
            })
            .collect()
    })
}
pub fn duration() -> impl Strategy<Value = IsoDuration> {
    prop_oneof![
        (1u32..400).prop_map(IsoDuration::Days),
        (1u32..60).prop_map(IsoDuration::Months),
        (1u32..20).prop_map(IsoDuration::Years)
    ]
}
pub fn sentence() -> impl Strategy<Value = Sentence> {
    (
        prop::sample::select(SentenceKind::ALL.to_vec()),
        prop::option::of(duration()),
        any::<bool>(),
        prop::option::of(duration()),
        prop::collection::vec(
            prop_oneof![
                Just(Condition::Supervision),
                Just(Condition::Treatment),
                Just(Condition::ElectronicMonitoring),
                (30u16..=300).prop_map(Condition::CommunityServiceHours)
            ],
            0..3,
        ),
        prop::option::of(0i64..100_000_000),
        prop::option::of((1u32..200, 0i64..1_000_000)),
    )
        .prop_map(
            |(kind, duration, suspended, probation, conditions, fine, df)| Sentence {
                kind,
                duration,
                suspended,
                probation,
                conditions,
                fine: fine.map(Money::dkk),
                day_fines: df.map(|(count, rate)| DayFines {
                    count,
                    rate: Money::dkk(rate),
                }),
            },
        )
}
pub fn institution() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["NORDSJ", "KBHFAENG", "ENNERMRK", "VADEHAV"]).prop_map(String::from)
}
pub fn court() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["KBH", "GLO", "AAR", "HR", "OLR"]).prop_map(String::from)
}

/// Bodies of the types the police receive, holding only what police-json carries.
pub fn police_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            court(),
            prop::collection::vec(person(), 1..3),
            counts(),
            prop::option::of(sentence()),
            instant(),
            prop::option::of(text())
        )
            .prop_map(
                |(court, defendants, counts, requested_sentence, filed_at, narrative)| {
                    Body::IndictmentFiled(IndictmentFiled {
                        court,
                        defendants,
                        counts,
                        requested_sentence,
                        filed_at,
                        narrative,
                    })
                }
            ),
        (
            person(),
            counts(),
            text(),
            instant(),
            prop::option::of(court())
        )
            .prop_map(|(person, counts, reason, withdrawn_at, court)| {
                Body::ChargesWithdrawn(ChargesWithdrawn {
                    person,
                    counts,
                    reason,
                    withdrawn_at,
                    court,
                })
            }),
        (
            court(),
            instant(),
            prop::sample::select(HearingKind::ALL.to_vec()),
            prop::option::of(text()),
            prop::collection::vec(person(), 1..3),
            any::<bool>()
        )
            .prop_map(
                |(court, starts_at, kind, room, persons, defendant_in_custody)| {
                    Body::HearingScheduled(HearingScheduled {
                        hearing: Hearing {
                            court,
                            starts_at,
                            kind,
                            room,
                        },
                        persons,
                        defendant_in_custody,
                    })
                }
            ),
        (
            person(),
            instant(),
            institution(),
            date(),
            any::<bool>(),
            court()
        )
            .prop_map(|(person, at, inst, until, isolation, court)| {
                Body::RemandOrdered(RemandOrdered {
                    person,
                    custody: Custody {
                        event: CustodyEvent::Remanded,
                        at,
                        place: None,
                        institution: Some(inst),
                        until: Some(until),
                        reason: None,
                    },
                    isolation,
                    court,
                })
            }),
        (
            court(),
            instant(),
            person(),
            counts(),
            sentence(),
            date(),
            any::<bool>()
        )
            .prop_map(
                |(court, decided_at, defendant, counts, sentence, appeal_deadline, guilty)| {
                    let outcomes = counts
                        .iter()
                        .map(|c| Outcome {
                            count_no: c.no,
                            outcome: if guilty {
                                OutcomeKind::Guilty
                            } else {
                                OutcomeKind::Acquitted
                            },
                        })
                        .collect();
                    Body::VerdictIssued(VerdictIssued {
                        court,
                        decided_at,
                        defendant,
                        counts,
                        outcomes,
                        sentence,
                        appeal_deadline,
                    })
                }
            ),
        (person(), instant(), institution()).prop_map(|(person, at, inst)| Body::CustodyAdmitted(
            CustodyChange {
                person,
                custody: Custody {
                    event: CustodyEvent::Admitted,
                    at,
                    place: None,
                    institution: Some(inst),
                    until: None,
                    reason: None
                }
            }
        )),
        (
            person(),
            instant(),
            prop::option::of(institution()),
            prop::sample::select(ReleaseReason::ALL.to_vec())
        )
            .prop_map(|(person, at, inst, reason)| {
                Body::CustodyReleased(CustodyChange {
                    person,
                    custody: Custody {
                        event: CustodyEvent::Released,
                        at,
                        place: None,
                        institution: inst,
                        until: None,
                        reason: Some(reason),
                    },
                })
            }),
    ]
}

pub fn case() -> impl Strategy<Value = CaseRefs> {
    (
        prop::sample::select(vec![
            "1470-76543-00012-26",
            "1461-53010-00291-26",
            "1471-34120-00061-26",
        ]),
        prop::option::of(Just("AM-2026-004711")),
        prop::option::of(Just("SS-1234/2026-KBH")),
    )
        .prop_map(|(j, p, c)| CaseRefs {
            police_journal: Some(j.parse().unwrap()),
            prosecution_case: p.map(|p| p.parse().unwrap()),
            court_case: c.map(|c| c.parse().unwrap()),
        })
}

/// A `person.arrested` body; `police_district` is the caller's to align with the case.
pub fn arrest_body() -> impl Strategy<Value = Body> {
    (
        person(),
        instant(),
        prop::option::of(text()),
        counts(),
        any::<bool>(),
    )
        .prop_map(|(person, at, place, counts, requested)| {
            Body::PersonArrested(PersonArrested {
                police_district: "koebenhavn".into(),
                person,
                custody: Custody::arrested(at, place),
                counts,
                custody_hearing_requested: requested,
                custody_hearing_deadline: custody_hearing_deadline(at),
            })
        })
}

/// `tests/data/<rel>`: the sample documents.
pub fn sample_path(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}
pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(sample_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}
pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap()
}
pub fn md() -> jxg_schema::MasterData {
    jxg_schema::MasterData::embedded()
}

/// Removes every address marked protected (what the shipped policies do for every recipient).
pub fn without_protected_addresses(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                if o.get("address_protected") == Some(&serde_json::Value::Bool(true)) {
                    o.remove("address");
                }
                o.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// Whether every instant of a message reads back from its Danish local time (the second pass
/// of the autumn hour does not: formats without an offset cannot carry it).
pub fn local_times_are_unambiguous(m: &jxg_schema::Message) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s
                .parse::<Instant>()
                .map(|t| danish_time::to_instant(danish_time::to_local(t)) == Some(t))
                .unwrap_or(true),
            serde_json::Value::Array(a) => a.iter().all(walk),
            serde_json::Value::Object(o) => o.values().all(walk),
            _ => true,
        }
    }
    walk(&m.to_json())
}

/// Asserts that each legacy sample decodes to its canonical sample (all but `id` and
/// `received_at`, which the gateway assigns), with `sender` set as the gateway would.
pub fn assert_decodes_to_samples(
    decode: impl Fn(&[u8], &crate::Context<'_>) -> Result<jxg_schema::Message, crate::DecodeError>,
    sender: &str,
    pairs: &[(&str, &str)],
) {
    let md = md();
    let ctx = crate::Context { master_data: &md };
    for (legacy, canonical) in pairs {
        let mut m = decode(&read(legacy), &ctx).unwrap_or_else(|e| panic!("{legacy}: {e}"));
        m.sender = Some(sender.into());
        let mut expected = json(canonical);
        let o = expected.as_object_mut().unwrap();
        o.remove("id");
        o.remove("received_at");
        assert_eq!(m.to_json(), expected, "{legacy}");
    }
}
