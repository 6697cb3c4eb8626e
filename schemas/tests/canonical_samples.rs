//! The Rust types and the JSON Schema files agree: every canonical sample validates and
//! round-trips through the types, and no structural mutation that the types refuse gets past
//! the schema.

use std::path::PathBuf;

use jxg_schema::schema::{self, Form};
use jxg_schema::{MasterData, Message, validate};
use serde_json::Value;

fn samples() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/canonical/valid");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 11, "ten types, verdict.issued twice");
    out
}

fn form_of(v: &Value) -> Form {
    if v.get("id").is_some() {
        Form::Stored
    } else {
        Form::Submission
    }
}

#[test]
fn every_sample_validates_round_trips_and_passes_the_semantic_rules() {
    let md = MasterData::embedded();
    for (name, v) in samples() {
        let errs = schema::check(form_of(&v), &v);
        assert!(errs.is_empty(), "{name}: {errs}");
        let m: Message =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            m.to_json(),
            v,
            "{name} does not round-trip through the types"
        );
        let sem = validate::semantic(&m, &md);
        assert!(sem.is_empty(), "{name}: {sem}");
    }
}

#[test]
fn the_stored_and_submission_forms_are_told_apart() {
    for (name, v) in samples() {
        let other = match form_of(&v) {
            Form::Stored => Form::Submission,
            Form::Submission => Form::Stored,
        };
        assert!(
            !schema::check(other, &v).is_empty(),
            "{name} passes as the other form"
        );
    }
}

/// Every object key in `v`, as a JSON pointer.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn mutations(v: &Value) -> Vec<(String, Value)> {
    let mut ps = Vec::new();
    pointers(v, String::new(), &mut ps);
    let mut out = Vec::new();
    for p in ps {
        let (parent, key) = p.rsplit_once('/').unwrap();
        let replacements: [(&str, Option<Value>); 6] = [
            ("removed", None),
            ("null", Some(Value::Null)),
            ("number", Some(Value::from(12345))),
            ("string", Some(Value::from("x"))),
            ("empty list", Some(Value::Array(vec![]))),
            ("negative", Some(Value::from(-1))),
        ];
        for (what, r) in replacements {
            let mut m = v.clone();
            match r {
                Some(r) => *m.pointer_mut(&p).unwrap() = r,
                None => {
                    m.pointer_mut(parent)
                        .unwrap()
                        .as_object_mut()
                        .unwrap()
                        .remove(key);
                }
            }
            out.push((format!("{p} {what}"), m));
        }
        let mut m = v.clone();
        if let Some(obj) = m.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert("unexpected_field".into(), Value::from(true));
            out.push((format!("{parent} + unknown key"), m));
        }
    }
    out
}

#[test]
fn whatever_the_types_refuse_for_structure_the_schema_refuses_too() {
    let mut refused_by_both = 0;
    for (name, v) in samples() {
        let form = form_of(&v);
        for (what, m) in mutations(&v) {
            let types_ok = serde_json::from_value::<Message>(m.clone()).is_ok();
            let schema_ok = schema::check(form, &m).is_empty();
            assert!(
                types_ok || !schema_ok,
                "{name}: {what}: the types refuse it but the schema accepts it"
            );
            if !types_ok && !schema_ok {
                refused_by_both += 1;
            }
        }
    }
    assert!(
        refused_by_both > 1000,
        "the mutations must exercise the refusal path ({refused_by_both})"
    );
}
