use std::collections::BTreeMap;
use std::path::Path;

use jxg_schema::Message;
use serde_json::Value;

use super::*;

fn authorities() -> BTreeMap<String, Vec<String>> {
    ["police", "prosecution", "courts", "prison"]
        .into_iter()
        .map(|a| (a.to_string(), vec![]))
        .collect()
}

fn sample(name: &str) -> Message {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/canonical/valid")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The shipped sources with one file's text changed by `edit`.
fn edited(file: &str, edit: impl Fn(&str) -> String) -> Sources {
    let mut s = Sources::embedded();
    for src in std::iter::once(&mut s.schema)
        .chain(s.policies.iter_mut())
        .chain(std::iter::once(&mut s.disclosure))
    {
        if src.name == file {
            let new = edit(&src.text);
            assert_ne!(new, src.text, "the edit of {file} changed nothing");
            src.text = new;
        }
    }
    s
}

fn errors(s: &Sources) -> Vec<PolicyError> {
    Policies::load(s, &authorities()).expect_err("the set must not load")
}

/// The line of the first occurrence of `needle` in the shipped file.
fn line_in(s: &Sources, file: &str, needle: &str) -> usize {
    let src = std::iter::once(&s.schema)
        .chain(&s.policies)
        .chain(std::iter::once(&s.disclosure))
        .find(|f| f.name == file)
        .unwrap();
    let at = src.text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    src.text[..at].matches('\n').count() + 1
}

#[test]
fn the_shipped_set_loads_and_names_every_policy() {
    let p = Policies::load(&Sources::embedded(), &authorities()).unwrap();
    let ids = p.ids();
    assert!(ids.contains(&"prison-verdicts-only-when-enforced".to_string()));
    assert!(ids.contains(&"protected-address-needs-clearance".to_string()));
    assert_eq!(p.digest.len(), 64);
    assert_eq!(p.digest, Sources::embedded().digest());
}

#[test]
fn an_unknown_attribute_is_an_error_at_its_line() {
    let s = edited("authorization.cedar", |t| {
        t.replace(
            "!principal.clearances.contains(\"secret\")",
            "!principal.clearance.contains(\"secret\")",
        )
    });
    let e = errors(&s);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].file, "authorization.cedar");
    assert_eq!(
        e[0].line,
        line_in(&s, "authorization.cedar", "principal.clearance.")
    );
    assert!(e[0].message.contains("clearance"), "{}", e[0].message);
    assert!(e[0].message.contains("secret-needs-clearance"));
}

#[test]
fn an_unknown_authority_type_or_purpose_is_an_error_at_its_line() {
    let s = edited("authorization.cedar", |t| {
        t.replacen("Authority::\"courts\"", "Authority::\"court\"", 1)
            .replacen(
                "MessageType::\"custody.released\"",
                "MessageType::\"custody.release\"",
                1,
            )
            .replacen(
                "Purpose::\"sentence-enforcement\"",
                "Purpose::\"enforcement\"",
                1,
            )
    });
    let e = errors(&s);
    assert_eq!(e.len(), 3, "{e:?}");
    let find = |what: &str| {
        e.iter()
            .find(|x| x.message.contains(what))
            .unwrap_or_else(|| panic!("no error about {what}: {e:?}"))
    };
    assert_eq!(
        find("court`").line,
        line_in(&s, "authorization.cedar", "Authority::\"court\"")
    );
    assert_eq!(
        find("custody.release").line,
        line_in(&s, "authorization.cedar", "custody.release\"")
    );
    assert_eq!(
        find("enforcement").line,
        line_in(&s, "authorization.cedar", "Purpose::\"enforcement\"")
    );
}

#[test]
fn a_policy_without_an_id_a_duplicate_id_and_a_syntax_error_are_all_reported() {
    let mut s = Sources::embedded();
    s.policies.push(Source {
        name: "extra.cedar".into(),
        text: "permit (principal, action, resource);\n\n\
               @id(\"secret-needs-clearance\")\npermit (principal, action, resource);\n"
            .into(),
    });
    s.policies.push(Source {
        name: "broken.cedar".into(),
        text: "@id(\"x\")\npermit (principal, action, resource)\nwhen { resource.type == };\n"
            .into(),
    });
    let e = errors(&s);
    let got: Vec<(String, usize)> = e.iter().map(|e| (e.file.clone(), e.line)).collect();
    assert!(got.contains(&("extra.cedar".into(), 1)), "{e:?}");
    assert!(got.contains(&("extra.cedar".into(), 3)), "{e:?}");
    assert!(got.contains(&("broken.cedar".into(), 3)), "{e:?}");
    assert!(e.iter().any(|e| e.message.contains("@id")));
    assert!(e.iter().any(|e| e.message.contains("duplicate policy id")));
}

#[test]
fn unknown_paths_types_recipients_and_when_fields_in_disclosure_are_errors_at_their_lines() {
    let s = edited("disclosure.toml", |t| {
        t.replace("\"/isolation\"", "\"/isolated\"")
            .replace("recipient = \"prison\"", "recipient = \"prisons\"")
            .replace("when = { role =", "when = { rolle =")
            .replace(
                "types = [\"offence.reported\", \"indictment.filed\"]",
                "types = [\"offence.reported\", \"indictment.filled\"]",
            )
    });
    let e = errors(&s);
    assert_eq!(e.len(), 4, "{e:?}");
    for (what, needle) in [
        ("/isolated", "\"/isolated\""),
        ("prisons", "recipient = \"prisons\""),
        ("rolle", "when = { rolle"),
        ("indictment.filled", "\"indictment.filled\""),
    ] {
        let x = e.iter().find(|x| x.message.contains(what)).unwrap();
        assert_eq!(x.file, "disclosure.toml");
        assert_eq!(x.line, line_in(&s, "disclosure.toml", needle), "{what}");
    }
}

#[test]
fn a_malformed_disclosure_file_names_its_line() {
    let s = edited("disclosure.toml", |t| {
        t.replacen("\nremove = true", "\nremove = yes", 1)
    });
    let e = errors(&s);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, line_in(&s, "disclosure.toml", "remove = yes\n"));
}

fn with_disclosure(text: &str) -> Policies {
    let mut s = Sources::embedded();
    s.disclosure.text = text.into();
    Policies::load(&s, &authorities()).unwrap()
}

#[test]
fn birth_date_only_replaces_the_cpr_number_by_the_birth_date_it_encodes() {
    let p = with_disclosure(
        r#"
[[rule]]
id = "victims-by-birth-date"
recipients = ["prosecution"]
select = ["/persons/*/cpr"]
when = { role = ["victim"] }
replace = "birth-date-only"

[[profile]]
id = "police-charges"
recipient = "police"
types = ["person.charged"]
see = ["/police_district", "/person/given_name", "/person/family_name", "/person/role",
       "/person/address_protected", "/counts", "/charged_at"]
birth_date_only = ["/person/cpr"]
"#,
    );
    let m = sample("offence.reported.json");
    let view = p.minimise("prosecution", &m).unwrap();
    let persons = serde_json::to_value(&view.message).unwrap()["body"]["persons"].clone();
    let victim = persons
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "victim")
        .unwrap();
    assert!(victim.get("cpr").is_none());
    assert!(victim["birth_date"].as_str().unwrap().len() == 10);
    let before = serde_json::to_value(&m).unwrap()["body"]["persons"].clone();
    let others = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|p| p["role"] != "victim")
            .cloned()
            .collect()
    };
    assert_eq!(others(&persons), others(&before), "only the victim changes");
    assert_eq!(view.removed.len(), 1, "{:?}", view.removed);
    assert_eq!(view.removed[0].action, "birth-date-only");
    assert_eq!(view.removed[0].rule, "victims-by-birth-date");

    let charged = sample("person.charged.json");
    let cpr: jxg_schema::values::Cpr =
        serde_json::to_value(&charged).unwrap()["body"]["person"]["cpr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let view = p.minimise("police", &charged).unwrap();
    let person = serde_json::to_value(&view.message).unwrap()["body"]["person"].clone();
    assert!(person.get("cpr").is_none());
    assert!(person.get("address").is_none(), "not in the profile");
    assert_eq!(person["birth_date"], cpr.birth_date().to_string());
    let rules: Vec<(&str, &str)> = view
        .removed
        .iter()
        .map(|r| (r.path.as_str(), r.action.as_str()))
        .collect();
    assert!(rules.contains(&("/body/person/cpr", "birth-date-only")));
    assert!(rules.contains(&("/body/person/address", "removed")));
}

#[test]
fn a_profile_that_hides_a_required_field_refuses_the_recipient_instead_of_sending_less() {
    let p = with_disclosure(
        r#"
[[profile]]
id = "too-little"
recipient = "prosecution"
types = ["offence.reported"]
see = ["/police_district", "/reported_at", "/counts"]
"#,
    );
    let r = p
        .minimise("prosecution", &sample("offence.reported.json"))
        .unwrap_err();
    assert_eq!(r.rule, "too-little");
    // the place that is missing is named, and nothing of the message
    assert!(
        r.reason.starts_with(
            "what the disclosure rules leave is not a valid message: body: missing field `persons`"
        ),
        "{}",
        r.reason
    );
    assert!(
        !r.reason.contains("Jensen"),
        "no personal data: {}",
        r.reason
    );
}

#[test]
fn a_rule_decides_on_the_body_as_accepted_even_when_a_profile_hides_the_field_it_tests() {
    // the profile hides `role`, which the prison rule tests: the victim must still go
    let p = with_disclosure(
        r#"
[[profile]]
id = "prison-names-only"
recipient = "prison"
types = ["hearing.scheduled"]
see = ["/hearing", "/defendant_in_custody", "/persons/*/given_name", "/persons/*/family_name",
       "/persons/*/birth_date", "/persons/*/cpr", "/persons/*/address_protected", "/persons/*/role"]

[[rule]]
id = "no-victims-or-witnesses-to-prison"
recipients = ["prison"]
select = ["/persons/*"]
when = { role = ["victim", "witness"] }
remove = true
"#,
    );
    let mut m: Value = serde_json::to_value(sample("offence.reported.json")).unwrap();
    let persons = m["body"]["persons"].clone();
    let mut h: Value = serde_json::to_value(sample("hearing.scheduled.json")).unwrap();
    h["body"]["persons"] = persons;
    h["body"]["defendant_in_custody"] = Value::Bool(true);
    m = h;
    let m: Message = serde_json::from_value(m).unwrap();
    let view = p.minimise("prison", &m).unwrap();
    let v = serde_json::to_value(&view.message).unwrap();
    let roles: Vec<&str> = v["body"]["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["suspect"]);
    let paths: Vec<&str> = view.removed.iter().map(|r| r.path.as_str()).collect();
    assert!(paths.contains(&"/body/persons/1"), "{paths:?}");
    assert!(paths.contains(&"/body/persons/2"), "{paths:?}");
}

#[test]
fn a_reload_swaps_a_good_set_and_keeps_the_old_one_when_the_new_one_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    for f in [
        "schema.cedarschema",
        "authorization.cedar",
        "disclosure.toml",
    ] {
        std::fs::copy(shipped.join(f), dir.path().join(f)).unwrap();
    }
    let store = PolicyStore::open(Origin::Dir(dir.path().into()), authorities()).unwrap();
    let before = store.current();
    let m = sample("offence.reported.json");
    assert!(before.may_receive("prosecution", "police", &m).is_ok());

    std::fs::write(
        dir.path().join("broken.cedar"),
        "permit (principal, action, resource",
    )
    .unwrap();
    let e = store.reload().unwrap_err();
    assert_eq!(e[0].file, "broken.cedar");
    assert_eq!(store.current().digest, before.digest, "the old set stays");

    std::fs::write(
        dir.path().join("broken.cedar"),
        "@id(\"no-reports-to-prosecution\")\n\
         forbid (principal == Authority::\"prosecution\", action == Action::\"receive\", resource)\n\
         when { resource.type == MessageType::\"offence.reported\" };\n",
    )
    .unwrap();
    let r = store.reload().unwrap();
    assert!(r.changed);
    assert_eq!(r.previous_digest, before.digest);
    let refusal = store
        .current()
        .may_receive("prosecution", "police", &m)
        .unwrap_err();
    assert_eq!(refusal.rule, "no-reports-to-prosecution");
    // a message that started under the old set still decides under it
    assert!(before.may_receive("prosecution", "police", &m).is_ok());
}

#[test]
fn remembered_decisions_are_told_apart_by_every_fact() {
    let p = Policies::load(&Sources::embedded(), &authorities()).unwrap();
    let enforced = sample("verdict.issued.json");
    let mut not_enforced = sample("verdict.issued-suspended.json");
    if let jxg_schema::Body::VerdictIssued(v) = &mut not_enforced.body {
        v.sentence.conditions.clear();
    }
    let mut secret = enforced.clone();
    secret.classification = jxg_schema::message::Classification::Secret;
    for _ in 0..2 {
        assert!(p.may_receive("prison", "courts", &enforced).is_ok());
        assert_eq!(
            p.may_receive("prison", "courts", &not_enforced)
                .unwrap_err()
                .rule,
            "prison-verdicts-only-when-enforced"
        );
        assert_eq!(
            p.may_receive("prison", "courts", &secret).unwrap_err().rule,
            "secret-needs-clearance"
        );
        assert!(p.may_receive("police", "courts", &enforced).is_ok());
        assert!(p.may_send("courts", &enforced).is_ok());
        assert!(p.may_send("police", &enforced).is_err());
    }
}

#[test]
fn a_minimised_copy_keeps_its_envelope_and_hands_back_the_json_of_what_the_rules_leave() {
    let p = with_disclosure(
        r#"
[[profile]]
id = "prosecution-reports"
recipient = "prosecution"
types = ["offence.reported"]
see = ["/police_district", "/reported_at", "/persons", "/counts"]
"#,
    );
    let m = sample("offence.reported.json");
    let body = m.body.to_json();
    let (view, left) = p.minimise_json("prosecution", &[], &m, &body).unwrap();
    assert!(!view.removed.is_empty());
    // the JSON handed back is exactly the body of the minimised message
    assert_eq!(left.unwrap(), view.message.body.to_json());
    assert_eq!(view.message.id, m.id);
    assert_eq!(view.message.case, m.case);
    assert_eq!(view.message.correlation_id, m.correlation_id);
    // the envelope is untouched, only the body lost what the profile does not show
    let mut whole = serde_json::to_value(&view.message).unwrap();
    let mut original = serde_json::to_value(&m).unwrap();
    whole.as_object_mut().unwrap().remove("body");
    original.as_object_mut().unwrap().remove("body");
    assert_eq!(whole, original);
    // nothing removed: the message itself, and no JSON to reuse
    let all = with_disclosure("");
    let (same, none) = all.minimise_json("prosecution", &[], &m, &body).unwrap();
    assert_eq!(same.message, m);
    assert!(none.is_none());
}
