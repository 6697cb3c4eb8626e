use jxg_schema::Message;
use jxg_schema::message::*;
use jxg_schema::values::*;
use proptest::prelude::*;
use serde_json::Value;

use super::{decode, encode, encode_reporting, records};
use crate::testgen::*;
use crate::{Context, Rejection};

#[test]
fn inbound_samples_decode_to_their_canonical_messages() {
    assert_decodes_to_samples(
        decode,
        "prosecution",
        &[
            (
                "prosecution/valid/tilt-1.flat",
                "canonical/valid/indictment.filed.json",
            ),
            (
                "prosecution/valid/opgv-1.flat",
                "canonical/valid/charges.withdrawn.json",
            ),
        ],
    );
}

/// What prosecution-flat cannot carry (its spec's list), removed from a canonical message.
fn carried(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("address");
                o.remove("committed_to");
                if o.contains_key("cpr") {
                    o.remove("birth_date");
                }
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v["body"]);
    if v["type"] != "indictment.filed" {
        v["body"].as_object_mut().unwrap().remove("narrative");
    }
    if let Some(c) = v["body"].get_mut("custody") {
        c.as_object_mut().unwrap().remove("place");
    }
    v
}

#[test]
fn outbound_samples_are_what_the_canonical_messages_encode_to() {
    let md = md();
    let ctx = Context { master_data: &md };
    for (canonical, flat) in [
        (
            "canonical/valid/verdict.issued.json",
            "prosecution/valid/doma-1.flat",
        ),
        (
            "canonical/valid/custody.released.json",
            "prosecution/valid/loes-1.flat",
        ),
    ] {
        let m: Message = serde_json::from_value(carried(json(canonical))).unwrap();
        let out = encode(&m, &md).unwrap();
        let sample = read(flat);
        let ours = decode(&out, &ctx).unwrap_or_else(|e| panic!("{canonical}: {e}"));
        let theirs = decode(&sample, &ctx).unwrap();
        // counts from flat carry only the local date of committed_from
        assert_eq!(ours.case, theirs.case, "{flat}");
        assert_eq!(ours.body, theirs.body, "{flat}");
        if m.id.is_some() {
            assert_eq!(out, sample, "{flat}: byte for byte");
        }
    }
}

#[test]
fn every_invalid_sample_names_its_record_and_field() {
    let md = md();
    let ctx = Context { master_data: &md };
    let manifest = json("prosecution/invalid/manifest.json");
    let entries = manifest.as_array().unwrap();
    assert_eq!(entries.len(), 17);
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let err = decode(&read(&format!("prosecution/invalid/{file}")), &ctx).expect_err(file);
        let record = e["record"].as_u64().unwrap();
        let field = e["field"].as_str().unwrap();
        let (class, v) = match &err.rejection {
            Rejection::Layout(v) => (400, v),
            Rejection::Invalid(v) => (422, v),
            other => panic!("{file}: {other:?}"),
        };
        assert_eq!(class, e["class"].as_u64().unwrap(), "{file}: {v}");
        let hit = v.iter().any(|x| {
            x.path.starts_with(&format!("record {record} ("))
                && x.path.ends_with(&format!("field {field}"))
        });
        assert!(hit, "{file}: want record {record} field {field}, got {v}");
        let text = v.to_string();
        for secret in ["0104909995", "Hansen", "Jens Peter"] {
            assert!(!text.contains(secret), "{file}: {text}");
        }
    }
}

#[test]
fn text_is_cut_and_folded_to_latin1_and_the_change_is_reported() {
    let md = md();
    let mut m: Message =
        serde_json::from_value(carried(json("canonical/valid/custody.released.json"))).unwrap();
    if let Body::CustodyReleased(b) = &mut m.body {
        b.person.family_name = "Łukasiewicz-Kőrösi-Wiśniewska-Østergaard-Hansen".into();
    }
    let (bytes, alt) = encode_reporting(&m, &md).unwrap();
    let back = decode(&bytes, &Context { master_data: &md }).unwrap();
    let Body::CustodyReleased(b) = &back.body else {
        panic!()
    };
    assert_eq!(b.person.family_name, "Lukasiewicz-Körösi-Wisniewska-Øster");
    assert_eq!(alt.cut, ["record 2 (PE) field family name"]);
    assert_eq!(alt.folded, ["record 2 (PE) field family name"]);
    assert!(bytes.iter().all(|b| !(0x80..=0x9F).contains(b)));
}

#[test]
fn records_are_checked_for_layout_before_fields() {
    assert!(records::split(b"").is_err());
    let tr = format!("TR000001{}", " ".repeat(120));
    let e = records::split(tr.as_bytes()).unwrap_err();
    assert_eq!(e.path, "record 1 (TR) field record type");
}

fn flat_text() -> impl Strategy<Value = String> {
    // at most 33 characters: fits the narrowest text field it fills (place, 40)
    "[A-Za-zÆØÅæøå0-9][A-Za-zÆØÅæøå0-9,.:-]{0,10}( [A-Za-zÆØÅæøå0-9,.:-]{1,10}){0,2}"
}

/// Counts as prosecution-flat carries them: a local date, no end.
fn flat_counts() -> impl Strategy<Value = Vec<Count>> {
    prop::collection::vec(
        (
            law_ref(),
            flat_text(),
            prop::option::of(date()),
            prop::option::of(flat_text()),
        ),
        1..4,
    )
    .prop_map(|cs| {
        cs.into_iter()
            .enumerate()
            .map(|(i, (law_ref, description, d, place))| Count {
                no: i as u16 + 1,
                law_ref,
                description,
                committed_from: d.map(|d| danish_time::start_of_day(d.0)),
                committed_to: None,
                place,
            })
            .collect()
    })
}

fn flat_person() -> impl Strategy<Value = Person> {
    person().prop_map(|mut p| {
        p.address = None;
        p.given_name = p
            .given_name
            .chars()
            .filter(|c| c.is_alphanumeric())
            .take(30)
            .collect::<String>()
            + "a";
        p.family_name = p
            .family_name
            .chars()
            .filter(|c| c.is_alphanumeric())
            .take(30)
            .collect::<String>()
            + "b";
        p
    })
}

/// Bodies as prosecution-flat carries them, for every kind.
fn flat_body() -> impl Strategy<Value = Body> {
    let sentence = || {
        sentence().prop_map(|mut s| {
            s.conditions.truncate(2);
            s
        })
    };
    prop_oneof![
        (
            prop::collection::vec(flat_person(), 1..3),
            flat_counts(),
            prop::option::of(sentence()),
            instant(),
            prop::option::of(flat_text())
        )
            .prop_map(
                |(defendants, counts, requested_sentence, filed_at, narrative)| {
                    Body::IndictmentFiled(IndictmentFiled {
                        court: "KBH".into(),
                        defendants,
                        counts,
                        requested_sentence,
                        filed_at,
                        narrative,
                    })
                }
            ),
        (flat_person(), flat_counts(), flat_text(), instant()).prop_map(
            |(person, counts, reason, withdrawn_at)| Body::ChargesWithdrawn(ChargesWithdrawn {
                person,
                counts,
                reason,
                withdrawn_at,
                court: Some("KBH".into())
            })
        ),
        (
            flat_counts(),
            prop::collection::vec(flat_person(), 1..4),
            instant()
        )
            .prop_map(
                |(counts, persons, at)| Body::OffenceReported(OffenceReported {
                    police_district: "koebenhavn".into(),
                    reported_at: at,
                    counts,
                    persons,
                    narrative: None
                })
            ),
        (flat_person(), flat_counts(), instant()).prop_map(|(person, counts, charged_at)| {
            Body::PersonCharged(PersonCharged {
                police_district: "koebenhavn".into(),
                person,
                counts,
                charged_at,
            })
        }),
        (flat_person(), instant(), flat_counts(), any::<bool>()).prop_map(
            |(person, at, counts, requested)| Body::PersonArrested(PersonArrested {
                police_district: "koebenhavn".into(),
                person,
                custody: Custody::arrested(at, None),
                counts,
                custody_hearing_requested: requested,
                custody_hearing_deadline: custody_hearing_deadline(at),
            })
        ),
        (
            court(),
            instant(),
            prop::sample::select(HearingKind::ALL.to_vec()),
            prop::option::of("[A-Za-z0-9]{1,10}"),
            prop::collection::vec(flat_person(), 1..3),
            any::<bool>()
        )
            .prop_map(
                |(court, starts_at, kind, room, persons, c)| Body::HearingScheduled(
                    HearingScheduled {
                        hearing: Hearing {
                            court,
                            starts_at,
                            kind,
                            room
                        },
                        persons,
                        defendant_in_custody: c
                    }
                )
            ),
        (
            flat_person(),
            instant(),
            institution(),
            date(),
            any::<bool>()
        )
            .prop_map(|(person, at, inst, until, isolation)| Body::RemandOrdered(
                RemandOrdered {
                    person,
                    custody: Custody {
                        event: CustodyEvent::Remanded,
                        at,
                        place: None,
                        institution: Some(inst),
                        until: Some(until),
                        reason: None
                    },
                    isolation,
                    court: "KBH".into(),
                }
            )),
        (flat_person(), instant(), flat_counts(), sentence(), date()).prop_map(
            |(defendant, decided_at, counts, sentence, appeal_deadline)| {
                let outcomes = counts
                    .iter()
                    .map(|c| Outcome {
                        count_no: c.no,
                        outcome: OutcomeKind::Guilty,
                    })
                    .collect();
                Body::VerdictIssued(VerdictIssued {
                    court: "KBH".into(),
                    decided_at,
                    defendant,
                    counts,
                    outcomes,
                    sentence,
                    appeal_deadline,
                })
            }
        ),
        (flat_person(), instant(), institution()).prop_map(|(person, at, inst)| {
            Body::CustodyAdmitted(CustodyChange {
                person,
                custody: Custody {
                    event: CustodyEvent::Admitted,
                    at,
                    place: None,
                    institution: Some(inst),
                    until: None,
                    reason: None,
                },
            })
        }),
        (
            flat_person(),
            instant(),
            prop::option::of(institution()),
            prop::sample::select(ReleaseReason::ALL.to_vec())
        )
            .prop_map(|(person, at, inst, r)| {
                Body::CustodyReleased(CustodyChange {
                    person,
                    custody: Custody {
                        event: CustodyEvent::Released,
                        at,
                        place: None,
                        institution: inst,
                        until: None,
                        reason: Some(r),
                    },
                })
            }),
    ]
}

fn own_time(b: &Body) -> Option<Instant> {
    match b {
        Body::IndictmentFiled(b) => Some(b.filed_at),
        Body::ChargesWithdrawn(b) => Some(b.withdrawn_at),
        Body::OffenceReported(b) => Some(b.reported_at),
        Body::PersonCharged(b) => Some(b.charged_at),
        Body::VerdictIssued(b) => Some(b.decided_at),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn canonical_to_flat_and_back_is_the_identity_for_every_kind(body in flat_body(), occurred in instant()) {
        let md = md();
        let case = CaseRefs {
            police_journal: Some("1470-76543-00012-26".parse().unwrap()),
            prosecution_case: Some("AM-2026-004711".parse().unwrap()),
            court_case: Some("SS-1234/2026-KBH".parse().unwrap()),
        };
        let mut body = body;
        if let Body::HearingScheduled(h) = &mut body {
            h.hearing.court = "KBH".into();
        }
        let m = Message {
            id: Some(uuid::Uuid::now_v7()),
            sender: None,
            source_document_id: "X".into(),
            occurred_at: own_time(&body).unwrap_or(occurred),
            received_at: None,
            purpose: body.message_type().default_purpose(),
            classification: Classification::Confidential,
            correlation_id: case.correlation_id().unwrap(),
            case,
            replaces: None,
            body,
        };
        prop_assume!(local_times_are_unambiguous(&m));
        let (bytes, alt) = encode_reporting(&m, &md).unwrap();
        prop_assert!(alt.cut.is_empty() && alt.folded.is_empty(), "{:?}", alt);
        let back = decode(&bytes, &Context { master_data: &md })
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&bytes)));
        prop_assert_eq!(&back.body, &m.body);
        prop_assert_eq!(&back.case, &m.case);
        prop_assert_eq!(back.occurred_at, m.occurred_at);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        let md = md();
        let _ = decode(&bytes, &Context { master_data: &md });
    }

    #[test]
    fn decode_never_panics_on_damaged_samples(pos in 0usize..1300, byte in any::<u8>(), which in 0usize..4) {
        let files = ["tilt-1.flat", "opgv-1.flat", "doma-1.flat", "loes-1.flat"];
        let mut bytes = read(&format!("prosecution/valid/{}", files[which]));
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        let md = md();
        let _ = decode(&bytes, &Context { master_data: &md });
    }
}

#[test]
fn data_in_any_filler_is_refused_naming_the_record() {
    let md = md();
    let ctx = Context { master_data: &md };
    let set = read("prosecution/valid/tilt-1.flat");
    assert!(decode(&set, &ctx).is_ok());
    let mut checked = 0;
    for (i, record) in set.split(|b| *b == b'\n').enumerate() {
        if record.len() < 2 {
            continue;
        }
        let kind = std::str::from_utf8(&record[..2]).unwrap();
        let Some((_, _, last)) = records::fields(kind)
            .iter()
            .find(|(n, _, _)| *n == "filler")
        else {
            continue;
        };
        let mut bad = set.clone();
        bad[i * 130 + last - 1] = b'X';
        let err = decode(&bad, &ctx).expect_err(kind);
        let Rejection::Layout(v) = &err.rejection else {
            panic!("{kind}: {err:?}")
        };
        assert_eq!(
            v.0[0].path,
            format!("record {} ({kind}) field filler", i + 1)
        );
        checked += 1;
    }
    assert_eq!(checked, 7, "HD, PE, two FO, SP, RM and TR have fillers");
}

#[test]
fn an_appeal_deadline_outside_a_doma_and_a_second_sp_are_refused_not_dropped() {
    let md = md();
    let ctx = Context { master_data: &md };
    let set = read("prosecution/valid/tilt-1.flat");
    // each record with its CR; joined again with LF
    let mut records: Vec<Vec<u8>> = set
        .split(|b| *b == b'\n')
        .filter(|r| r.len() > 1)
        .map(|r| r.to_vec())
        .collect();
    let sp = records.iter().position(|r| r.starts_with(b"SP")).unwrap();
    // an appeal deadline (positions 86-93) on the requested sentence of a TILT
    let mut deadline = records.clone();
    deadline[sp][85..93].copy_from_slice(b"20260505");
    // a second SP right after the first, counted by the trailer
    records.insert(sp + 1, records[sp].clone());
    let tr = records.len() - 1;
    let count = format!("{:06}", records.len());
    records[tr][2..8].copy_from_slice(count.as_bytes());
    let bytes = |set: Vec<Vec<u8>>| {
        let mut b = set.join(&b'\n');
        b.push(b'\n');
        b
    };
    let err = decode(&bytes(deadline), &ctx).expect_err("deadline");
    let Rejection::Invalid(v) = &err.rejection else {
        panic!("{err:?}")
    };
    let want = format!("record {} (SP) field appeal deadline", sp + 1);
    assert!(v.iter().any(|x| x.path == want), "want {want}, got {v}");
    // a second SP is out of order: the layout is refused (400) before anything is read
    let err = decode(&bytes(records), &ctx).expect_err("second SP");
    let Rejection::Layout(v) = &err.rejection else {
        panic!("{err:?}")
    };
    assert_eq!(
        v.0[0].path,
        format!("record {} (SP) field record type", sp + 2)
    );
}

/// The records of a set, each without its CRLF.
fn records_of(set: &[u8]) -> Vec<Vec<u8>> {
    set.split(|b| *b == b'\n')
        .filter(|r| r.len() > 1)
        .map(|r| r.strip_suffix(b"\r").unwrap_or(r).to_vec())
        .collect()
}

/// A record set from records, with its trailer's count made right.
fn set_of(mut records: Vec<Vec<u8>>) -> Vec<u8> {
    let tr = records.len() - 1;
    let count = format!("{:06}", records.len());
    records[tr][2..8].copy_from_slice(count.as_bytes());
    let mut out = records.join(&b"\r\n"[..]);
    out.extend_from_slice(b"\r\n");
    out
}

/// A record of `kind` with a document id at 3-42 and a reason at 43-46.
fn reference_record(kind: &str, id: &str, reason: &str) -> Vec<u8> {
    let mut r = vec![b' '; records::WIDTH];
    r[..2].copy_from_slice(kind.as_bytes());
    r[2..2 + id.len()].copy_from_slice(id.as_bytes());
    r[42..42 + reason.len()].copy_from_slice(reason.as_bytes());
    r
}

fn invalid_paths(e: crate::DecodeError) -> Vec<String> {
    let Rejection::Invalid(v) = e.rejection else {
        panic!("{e:?}")
    };
    v.iter().map(|x| x.path.clone()).collect()
}

#[test]
fn a_correction_carries_an_rt_record_out_by_canonical_id_and_in_by_the_prosecution_id() {
    let md = md();
    let ctx = Context { master_data: &md };
    let mut m: Message =
        serde_json::from_slice(&read("canonical/valid/verdict.issued.json")).unwrap();
    let replaced = uuid::Uuid::parse_str("019ecb4d-3be8-7d9e-a3c1-0dcd6a9487b8").unwrap();
    m.replaces = Some(Replaces {
        message_id: Some(replaced),
        source_document_id: Some("DOM-2026-000417".into()),
        reason: CorrectionReason::DecisionChanged,
    });
    let out = records_of(&encode(&m, &md).unwrap());
    assert!(out[0].starts_with(b"HDDOMA"));
    assert_eq!(
        out[1],
        reference_record("RT", &replaced.to_string(), "AEND")
    );

    let mut tilt = records_of(&read("prosecution/valid/tilt-1.flat"));
    tilt.insert(1, reference_record("RT", "ANK-2026-0001", "OPLY"));
    let got = decode(&set_of(tilt.clone()), &ctx).unwrap();
    let r = got.replaces.expect("a correction");
    assert_eq!(r.source_document_id.as_deref(), Some("ANK-2026-0001"));
    assert_eq!(r.reason, CorrectionReason::WrongData);

    let mut unknown = tilt.clone();
    unknown[1] = reference_record("RT", "ANK-2026-0001", "HMMM");
    assert_eq!(
        invalid_paths(decode(&set_of(unknown), &ctx).unwrap_err()),
        ["record 2 (RT) field reason"]
    );
    let mut nameless = tilt.clone();
    nameless[1] = reference_record("RT", "", "OPLY");
    assert_eq!(
        invalid_paths(decode(&set_of(nameless), &ctx).unwrap_err()),
        ["record 2 (RT) field replaced document id"]
    );
    // one RT, right after HD: a second one, or one further down, is out of order (400)
    let mut twice = tilt.clone();
    twice.insert(2, reference_record("RT", "ANK-2026-0001", "OPLY"));
    assert!(matches!(
        decode(&set_of(twice), &ctx).unwrap_err().rejection,
        Rejection::Layout(_)
    ));
    let mut late = records_of(&read("prosecution/valid/tilt-1.flat"));
    let at = late.len() - 1;
    late.insert(at, reference_record("RT", "ANK-2026-0001", "OPLY"));
    assert!(matches!(
        decode(&set_of(late), &ctx).unwrap_err().rejection,
        Rejection::Layout(_)
    ));
}

#[test]
fn a_withdrawal_is_a_tilb_record_set_both_ways() {
    let md = md();
    let ctx = Context { master_data: &md };
    let v: Value = serde_json::from_slice(&read("canonical/v2/message.withdrawn.json")).unwrap();
    let Ok(jxg_schema::Document::Withdrawal(w)) = jxg_schema::Document::from_value(v) else {
        panic!("the sample is a withdrawal")
    };
    let out = records_of(&super::encode_withdrawal(&w).unwrap());
    assert_eq!(out.len(), 3, "HD, TB, TR: nothing of what it withdraws");
    assert!(out[0].starts_with(b"HDTILB"));
    assert_eq!(
        out[1],
        reference_record("TB", &w.withdrawn.message_id.unwrap().to_string(), "FEJL")
    );
    let d = super::decode_document(&set_of(out.clone()), &ctx).unwrap();
    let jxg_schema::Document::Withdrawal(got) = d else {
        panic!("{d:?}")
    };
    assert_eq!(got.case, w.case);
    assert_eq!(got.occurred_at, w.occurred_at);
    assert_eq!(
        got.withdrawn.source_document_id,
        w.withdrawn.message_id.map(|u| u.to_string())
    );
    assert_eq!(got.withdrawn.reason, WithdrawalReason::SentInError);
    assert!(decode(&set_of(out.clone()), &ctx).is_err(), "not a message");

    // a person in a withdrawal, and a TB in a message, are refused where they stand
    let pe = records_of(&read("prosecution/valid/tilt-1.flat"))
        .into_iter()
        .find(|r| r.starts_with(b"PE"))
        .unwrap();
    let mut with_person = out.clone();
    with_person.insert(2, pe);
    assert_eq!(
        invalid_paths(super::decode_document(&set_of(with_person), &ctx).unwrap_err()),
        ["record 3 (PE) field record type"]
    );
    let mut no_tb = out.clone();
    no_tb.remove(1);
    assert_eq!(
        invalid_paths(super::decode_document(&set_of(no_tb), &ctx).unwrap_err()),
        ["record 1 (HD) field message kind"]
    );
    let mut tilt = records_of(&read("prosecution/valid/tilt-1.flat"));
    tilt.insert(1, reference_record("TB", "ANK-2026-0001", "FEJL"));
    assert_eq!(
        invalid_paths(decode(&set_of(tilt), &ctx).unwrap_err()),
        ["record 2 (TB) field record type"]
    );
}
