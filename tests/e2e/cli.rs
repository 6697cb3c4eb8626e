//! `jxg convert` and `jxg validate`, through the real binary.

use std::process::Command;

use jxg_tests::*;
use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(jxg_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The submission schema, checked by the off-the-shelf `jsonschema` validator from the files.
fn submission_validator() -> jsonschema::Validator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/canonical/v1");
    let load = |f: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap()
    };
    let registry = jsonschema::Registry::new()
        .add(
            "https://jxg.invalid/schemas/canonical/v1/message.schema.json",
            jsonschema::Resource::from_contents(load("message.schema.json")),
        )
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .build(&load("submission.schema.json"))
        .unwrap()
}

#[test]
fn converted_police_samples_are_their_canonical_submissions() {
    let v = submission_validator();
    let samples = samples_dir();
    for (doc, canonical) in [
        ("anmeldelse-1.json", "offence.reported.json"),
        ("sigtelse-1.json", "person.charged.json"),
        ("anholdelse-1.json", "person.arrested.json"),
    ] {
        let path = samples.join("police/valid").join(doc);
        let (code, out, err) = run(&[
            "convert",
            "--from",
            "police-json",
            "--to",
            "canonical",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{doc}: {err}");
        let got: Value = serde_json::from_str(&out).unwrap();
        let errors: Vec<String> = v.iter_errors(&got).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc}: {errors:?}");
        let mut want: Value =
            serde_json::from_slice(&sample(&format!("canonical/valid/{canonical}"))).unwrap();
        want.as_object_mut().unwrap().remove("id");
        want.as_object_mut().unwrap().remove("received_at");
        assert_eq!(got, want, "{doc}");
    }
}

#[test]
fn invalid_input_exits_1_naming_the_path_and_bad_usage_exits_2() {
    let manifest: Value = serde_json::from_slice(&sample("police/invalid/manifest.json")).unwrap();
    for e in manifest.as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let path = samples_dir().join("police/invalid").join(file);
        let (code, out, err) = run(&[
            "convert",
            "--from",
            "police-json",
            "--to",
            "canonical",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{file}");
        assert!(out.is_empty());
        let p: Value = serde_json::from_str(&err).unwrap_or_else(|_| panic!("{file}: {err}"));
        let got: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["path"].as_str().unwrap())
            .collect();
        for w in e["convert_paths"].as_array().unwrap() {
            assert!(got.contains(&w.as_str().unwrap()), "{file}: {got:?}");
        }
    }
    let (code, _, _) = run(&["convert", "--from", "cobol", "--to", "canonical"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["convert", "--to", "canonical"]);
    assert_eq!(code, 2);
}

#[test]
fn canonical_converts_to_police_json_and_validate_checks_both_forms() {
    let path = samples_dir().join("canonical/valid/custody.admitted.json");
    let (code, out, err) = run(&[
        "convert",
        "--from",
        "canonical",
        "--to",
        "police-json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["dokumenttype"], "INDSAT");
    assert_eq!(got["personer"][0]["cpr"], "010490-9995");
    for f in ["custody.admitted.json", "verdict.issued.json"] {
        let (code, _, err) = run(&[
            "validate",
            samples_dir()
                .join("canonical/valid")
                .join(f)
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(code, 0, "{f}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut bad: Value =
        serde_json::from_slice(&sample("canonical/valid/verdict.issued.json")).unwrap();
    bad["body"]["outcomes"][1]["count_no"] = Value::from(7);
    let p = dir.path().join("bad.json");
    std::fs::write(&p, bad.to_string()).unwrap();
    let (code, _, err) = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("body.outcomes[1].count_no"), "{err}");
}

#[test]
fn converted_court_samples_are_their_canonical_submissions() {
    let v = submission_validator();
    for (doc, canonical) in [
        ("dom-1-latin1.xml", "verdict.issued.json"),
        ("dom-2-utf8.xml", "verdict.issued-suspended.json"),
        ("kendelse-varetaegt-1.xml", "remand.ordered.json"),
        ("retsmoede-grundlovsforhoer-1.xml", "hearing.scheduled.json"),
    ] {
        let path = samples_dir().join("court/valid").join(doc);
        let (code, out, err) = run(&[
            "convert",
            "--from",
            "court-xml",
            "--to",
            "canonical",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{doc}: {err}");
        let got: Value = serde_json::from_str(&out).unwrap();
        assert!(v.iter_errors(&got).next().is_none(), "{doc}");
        let mut want: Value =
            serde_json::from_slice(&sample(&format!("canonical/valid/{canonical}"))).unwrap();
        want.as_object_mut().unwrap().remove("id");
        want.as_object_mut().unwrap().remove("received_at");
        assert_eq!(got, want, "{doc}");
    }
    // and out again: the story indictment as the courts receive it
    let path = samples_dir().join("canonical/valid/indictment.filed.json");
    let (code, out, err) = run(&[
        "convert",
        "--from",
        "canonical",
        "--to",
        "court-xml",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Anklageskrift"),
        "{out}"
    );
    // a hostile document is refused by the same code path
    let path = samples_dir().join("court/invalid/xxe-external-entity.xml");
    let (code, _, err) = run(&[
        "convert",
        "--from",
        "court-xml",
        "--to",
        "canonical",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("DOCTYPE") && !err.contains("root:x:0:0"),
        "{err}"
    );
}
