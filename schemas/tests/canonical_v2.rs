//! Canonical v2 beside v1: the v2 schema files and the types agree on corrections and
//! withdrawals, v1 documents read as before, and neither version takes what it does not define.

use std::path::PathBuf;

use jxg_schema::schema::{self, Form};
use jxg_schema::{Document, MasterData, Message, Version, validate};
use serde_json::{Value, json};

fn read(rel: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/canonical")
        .join(rel);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn v1_samples() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/canonical/valid");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.clone(), read(&format!("valid/{name}")))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "every v1 type has a sample");
    out
}

/// The paths of the violations the schema of `form` reports for `v`.
fn faults(form: Form, v: &Value) -> Vec<String> {
    schema::check(form, v)
        .iter()
        .map(|x| x.path.clone())
        .collect()
}

#[test]
fn every_v1_message_is_a_v2_message_and_is_written_in_the_version_asked_for() {
    for (name, v1) in v1_samples() {
        let mut v2 = v1.clone();
        v2["schema"] = json!("jxg.canonical/v2");
        let form = if v1.get("id").is_some() {
            Form::Stored
        } else {
            Form::Submission
        };
        assert!(faults(form, &v1).is_empty(), "{name}");
        assert!(
            faults(form, &v2).is_empty(),
            "{name}: {:?}",
            faults(form, &v2)
        );
        let m: Message = serde_json::from_value(v2.clone()).unwrap();
        assert_eq!(m.version(), Version::V1, "{name}: nothing of v2 in it");
        let as_v2: Value = serde_json::from_slice(&m.to_bytes_as(Version::V2)).unwrap();
        assert_eq!(as_v2, v2, "{name}");
        let as_v1: Value = serde_json::from_slice(&m.to_bytes_as(Version::V1)).unwrap();
        assert_eq!(as_v1, v1, "{name}");
        assert_eq!(serde_json::from_slice::<Value>(&m.to_bytes()).unwrap(), v1);
    }
}

#[test]
fn a_correction_validates_round_trips_and_is_written_without_replaces_only_in_v1() {
    let md = MasterData::embedded();
    let c = read("v2/verdict.issued-correction.json");
    assert!(
        faults(Form::Stored, &c).is_empty(),
        "{:?}",
        faults(Form::Stored, &c)
    );
    let m: Message = serde_json::from_value(c.clone()).unwrap();
    assert!(validate::semantic(&m, &md).is_empty());
    let r = m
        .replaces
        .as_ref()
        .expect("a correction names what it replaces");
    assert_eq!(r.source_document_id.as_deref(), Some("DOM-2026-000417"));
    assert_eq!(r.reason.as_str(), "decision-changed");
    assert_eq!(m.version(), Version::V2);
    assert_eq!(serde_json::from_slice::<Value>(&m.to_bytes()).unwrap(), c);
    let v1: Value = serde_json::from_slice(&m.to_bytes_as(Version::V1)).unwrap();
    assert!(v1.get("replaces").is_none());
    assert_eq!(v1["schema"], "jxg.canonical/v1");
    assert!(faults(Form::Stored, &v1).is_empty());

    // v1 has no `replaces`: the schema and the types both say where
    let mut in_v1 = c.clone();
    in_v1["schema"] = json!("jxg.canonical/v1");
    assert_eq!(faults(Form::Stored, &in_v1), ["replaces"]);
    assert_eq!(Document::from_value(in_v1).unwrap_err().path, "replaces");
    // stored, it names both ids; a reason it does not know is refused
    let mut one = c.clone();
    one["replaces"]
        .as_object_mut()
        .unwrap()
        .remove("message_id");
    assert_eq!(faults(Form::Stored, &one), ["replaces.message_id"]);
    let mut odd = c.clone();
    odd["replaces"]["reason"] = json!("felt-like-it");
    assert_eq!(faults(Form::Stored, &odd), ["replaces.reason"]);
    let mut extra = c;
    extra["replaces"]["note"] = json!("x");
    assert_eq!(faults(Form::Stored, &extra), ["replaces.note"]);
}

#[test]
fn a_submitted_correction_names_its_message_by_exactly_one_id() {
    let mut s = read("v2/verdict.issued-correction.json");
    let o = s.as_object_mut().unwrap();
    o.remove("id");
    o.remove("received_at");
    // both ids: which one is meant?
    assert_eq!(faults(Form::Submission, &s), ["replaces"]);
    s["replaces"] = json!({"reason": "wrong-data"});
    assert_eq!(faults(Form::Submission, &s), ["replaces"]);
    for by in [
        json!({"message_id": "019ecb4d-3be8-7d9e-a3c1-0dcd6a9487b8", "reason": "wrong-data"}),
        json!({"source_document_id": "DOM-2026-000417", "reason": "wrong-data"}),
    ] {
        s["replaces"] = by;
        assert!(faults(Form::Submission, &s).is_empty(), "{s}");
        assert!(serde_json::from_value::<Message>(s.clone()).is_ok());
    }
}

#[test]
fn a_withdrawal_validates_round_trips_and_exists_only_in_v2() {
    let w = read("v2/message.withdrawn.json");
    assert!(
        faults(Form::Stored, &w).is_empty(),
        "{:?}",
        faults(Form::Stored, &w)
    );
    let d = Document::from_value(w.clone()).unwrap();
    let Document::Withdrawal(ref x) = d else {
        panic!("a withdrawal: {d:?}")
    };
    assert_eq!(x.withdrawn.reason.as_str(), "sent-in-error");
    assert_eq!(d.type_name(), "message.withdrawn");
    assert_eq!(serde_json::from_slice::<Value>(&d.to_bytes()).unwrap(), w);
    // it is not a message: reading it as one says so
    assert_eq!(
        serde_json::from_value::<Message>(w.clone())
            .unwrap_err()
            .to_string()
            .split(':')
            .next(),
        Some("type")
    );

    let mut in_v1 = w.clone();
    in_v1["schema"] = json!("jxg.canonical/v1");
    assert_eq!(faults(Form::Stored, &in_v1), ["type"]);
    assert_eq!(Document::from_value(in_v1).unwrap_err().path, "type");
    let mut with_replaces = w.clone();
    with_replaces["replaces"] = read("v2/verdict.issued-correction.json")["replaces"].clone();
    assert_eq!(faults(Form::Stored, &with_replaces), ["replaces"]);
    assert_eq!(
        Document::from_value(with_replaces).unwrap_err().path,
        "replaces"
    );
    // its body is the reference and the reason, nothing of the message withdrawn
    let mut carrying = w.clone();
    carrying["body"]["sentence"] = json!({"kind": "fine"});
    assert_eq!(faults(Form::Stored, &carrying), ["body.sentence"]);
    let mut unknown = w.clone();
    unknown["body"]["reason"] = json!("bored");
    assert_eq!(faults(Form::Stored, &unknown), ["body.reason"]);
    let mut submitted = w;
    let o = submitted.as_object_mut().unwrap();
    o.remove("id");
    o.remove("received_at");
    assert_eq!(faults(Form::Submission, &submitted), ["body"]);
    submitted["body"]
        .as_object_mut()
        .unwrap()
        .remove("message_id");
    assert!(faults(Form::Submission, &submitted).is_empty());
}

#[test]
fn a_schema_that_names_no_version_is_refused_naming_both() {
    let mut v = read("valid/verdict.issued.json");
    v["schema"] = json!("jxg.canonical/v3");
    assert_eq!(faults(Form::Stored, &v), ["schema"]);
    let e = Document::from_value(v).unwrap_err();
    assert_eq!(e.path, "schema");
    assert!(
        e.message.contains("v1") && e.message.contains("v2"),
        "{e:?}"
    );
}
