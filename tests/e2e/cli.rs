//! `jxg convert`, `jxg validate` and `jxg policy`, through the real binary.

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
        let got = problem_paths(&p);
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

/// Line of the first occurrence of `needle` in a file.
fn line_of(path: &std::path::Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn policy_check_names_file_and_line_of_every_unknown_path_attribute_and_authority() {
    let home = Home::new();
    let dir = home.path().join("policies");
    let config = home.path().join("gateway.toml");
    let config = config.to_str().unwrap();
    let (code, out, err) = run(&["policy", "check", "--config", config]);
    assert_eq!(code, 0, "the shipped set passes: {err}");
    assert!(out.starts_with("ok: "), "{out}");

    let edit = |file: &str, from: &str, to: &str| {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    };
    edit("disclosure.toml", "\"/isolation\"", "\"/isolated\"");
    edit(
        "authorization.cedar",
        "resource.sentence_must_be_enforced",
        "resource.sentence_enforced",
    );
    edit(
        "authorization.cedar",
        "Authority::\"courts\"",
        "Authority::\"court\"",
    );
    let (code, _, err) = run(&["policy", "check", "--config", config]);
    assert_eq!(code, 1);
    let expect = [
        (
            "disclosure.toml",
            line_of(&dir.join("disclosure.toml"), "\"/isolated\""),
            "/isolated",
        ),
        (
            "authorization.cedar",
            line_of(
                &dir.join("authorization.cedar"),
                "resource.sentence_enforced",
            ),
            "sentence_enforced",
        ),
        (
            "authorization.cedar",
            line_of(&dir.join("authorization.cedar"), "Authority::\"court\""),
            "court",
        ),
    ];
    for (file, line, what) in expect {
        let prefix = format!("{file}:{line}: ");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(what)),
            "expected {prefix}… {what} in:\n{err}"
        );
    }
    assert!(err.contains("3 error(s)"), "{err}");
}

#[test]
fn policy_explain_names_each_decision_its_policy_and_each_removal_with_its_rule() {
    let home = Home::new();
    let config = home.path().join("gateway.toml");
    let hearing = home.path().join("hearing.json");
    let mut h: Value =
        serde_json::from_slice(&sample("canonical/valid/hearing.scheduled.json")).unwrap();
    let report: Value =
        serde_json::from_slice(&sample("canonical/valid/offence.reported.json")).unwrap();
    h["body"]["persons"] = report["body"]["persons"].clone();
    std::fs::write(&hearing, serde_json::to_vec(&h).unwrap()).unwrap();
    let explain = |file: &std::path::Path, recipient: &str| {
        let (code, out, err) = run(&[
            "policy",
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--message",
            file.to_str().unwrap(),
            "--recipient",
            recipient,
        ]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = explain(&hearing, "prison");
    for line in [
        "send      courts: permit (courts-send-court-decisions)",
        "route     prison: proposed by routing",
        "receive   prison: permit (prison-receives-what-it-must-enforce)",
        "removed   /body/persons/1 by no-victims-or-witnesses-to-prison",
        "removed   /body/persons/2 by no-victims-or-witnesses-to-prison",
        "removed   /body/persons/0/address by prison-sees-persons-hearings-custody-sentences",
        "result    prison receives hearing.scheduled less 3 field(s)",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
    }
    let out = explain(&hearing, "police");
    assert!(
        out.lines()
            .any(|l| l == "removed   /body/persons/1/address by protected-address-needs-clearance"),
        "{out}"
    );
    let mut fine: Value =
        serde_json::from_slice(&sample("canonical/valid/verdict.issued-suspended.json")).unwrap();
    fine["body"]["sentence"]["conditions"] = Value::Array(vec![]);
    let path = home.path().join("verdict.json");
    std::fs::write(&path, serde_json::to_vec(&fine).unwrap()).unwrap();
    let out = explain(&path, "prison");
    assert!(
        out.lines()
            .any(|l| l == "receive   prison: deny (prison-verdicts-only-when-enforced)"),
        "{out}"
    );
    assert!(out.contains("result    prison does not receive this message"));
    assert!(
        !out.contains("stergaard") && !out.contains("0108629996"),
        "no personal data"
    );
}

#[test]
fn convert_reads_and_writes_both_canonical_versions_and_refuses_what_a_format_cannot_carry() {
    let read = |rel: &str| -> Value { serde_json::from_slice(&sample(rel)).unwrap() };
    let convert = |from: &str, to: &str, rel: &str| {
        let path = samples_dir().join(rel);
        run(&[
            "convert",
            "--from",
            from,
            "--to",
            to,
            path.to_str().unwrap(),
        ])
    };
    for rel in [
        "canonical/v2/verdict.issued-correction.json",
        "canonical/v2/message.withdrawn.json",
    ] {
        let (code, out, err) = convert("canonical", "canonical-v2", rel);
        assert_eq!(code, 0, "{rel}: {err}");
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            read(rel),
            "{rel}"
        );
        // the police and the prosecution formats say it their own way
        let (code, out, err) = convert("canonical-v2", "police-json", rel);
        assert_eq!(code, 0, "{rel}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert!(
            doc.get("rettelse").is_some() || doc["dokumenttype"] == "TILBAGEKALDELSE",
            "{rel}: {doc}"
        );
        let (code, out, err) = convert("canonical-v2", "prosecution-flat", rel);
        assert_eq!(code, 0, "{rel}: {err}");
        assert!(
            out.contains("\r\nRT") || out.starts_with("HDTILB"),
            "{rel}: {out}"
        );
        let (code, out, err) = convert("canonical-v2", "court-xml", rel);
        assert_eq!(code, 0, "{rel}: {err}");
        assert!(
            out.contains("<Rettelse ") || out.contains("<Tilbagekaldelse "),
            "{rel}: {out}"
        );
        // canonical v1 cannot say it: refused, never written without it
        let (code, out, err) = convert("canonical-v2", "canonical", rel);
        assert_eq!(code, 1, "{rel} to canonical: {out}");
        assert!(out.is_empty());
        let p: Value = serde_json::from_str(&err).unwrap();
        assert_eq!(p["type"], "urn:jxg:problem:cannot-carry", "{rel}: {p}");
    }
    // a v1 message is written in the version asked for
    let (code, out, err) = convert(
        "canonical",
        "canonical-v2",
        "canonical/valid/verdict.issued.json",
    );
    assert_eq!(code, 0, "{err}");
    let mut want = read("canonical/valid/verdict.issued.json");
    want["schema"] = Value::from("jxg.canonical/v2");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), want);
}
