//! Runs `policies/decisions.toml` against the shipped policies with the real engine, and fails
//! when a shipped policy, profile or rule decides no row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jxg_core::policy::{Policies, Sources};
use jxg_schema::Message;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    message: String,
    #[serde(default)]
    set: BTreeMap<String, Value>,
    #[serde(default)]
    set_from: BTreeMap<String, String>,
    action: String,
    authority: String,
    #[serde(default)]
    clearances: Vec<String>,
    decision: String,
    by: Vec<String>,
    #[serde(default)]
    present: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    removed: BTreeMap<String, String>,
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn sample(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/canonical/valid")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn set(v: &mut Value, pointer: &str, to: Value) {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is not in the sample")) = to;
}

const AUTHORITIES: [&str; 4] = ["police", "prosecution", "courts", "prison"];

fn load(clearances: &[String], who: &str) -> Policies {
    let authorities = AUTHORITIES
        .iter()
        .map(|a| {
            let c = if *a == who {
                clearances.to_vec()
            } else {
                vec![]
            };
            (a.to_string(), c)
        })
        .collect();
    Policies::load(&Sources::read_dir(&policies_dir()).unwrap(), &authorities)
        .unwrap_or_else(|e| panic!("the shipped policies load: {e:?}"))
}

#[test]
fn every_row_of_the_decision_table_holds_and_every_shipped_rule_decides_a_row() {
    let text = std::fs::read_to_string(policies_dir().join("decisions.toml")).unwrap();
    let table: Table = toml::from_str(&text).unwrap();
    assert!(table.case.len() >= 20, "a table of the shipped rules");
    let mut deciding = BTreeSet::new();
    let mut failures = Vec::new();
    for (n, c) in table.case.iter().enumerate() {
        let row = format!(
            "case {} ({} {} {})",
            n + 1,
            c.message,
            c.action,
            c.authority
        );
        let policies = load(&c.clearances, &c.authority);
        let mut v = sample(&c.message);
        for (pointer, value) in &c.set {
            set(&mut v, pointer, value.clone());
        }
        for (pointer, other) in &c.set_from {
            let value = sample(other).pointer(pointer).unwrap().clone();
            set(&mut v, pointer, value);
        }
        let m: Message = serde_json::from_value(v).unwrap_or_else(|e| panic!("{row}: {e}"));
        // the sender: the message's own, else whoever may send it
        let sender = m.sender.clone().unwrap_or_else(|| {
            AUTHORITIES
                .iter()
                .find(|a| policies.may_send(a, &m).is_ok())
                .unwrap()
                .to_string()
        });
        let (allowed, by) = match c.action.as_str() {
            "send" => match policies.may_send(&c.authority, &m) {
                Ok(v) => (true, v.policies),
                Err(r) => (false, vec![r.rule]),
            },
            "receive" => match policies.may_receive(&c.authority, &sender, &m) {
                Ok(v) => (true, v.policies),
                Err(r) => (false, vec![r.rule]),
            },
            "correct" => match policies.may_correct(&c.authority, &sender, &m) {
                Ok(v) => (true, v.policies),
                Err(r) => (false, vec![r.rule]),
            },
            other => panic!("{row}: unknown action {other}"),
        };
        let by: Vec<String> = by
            .iter()
            .flat_map(|s| s.split(", ").map(String::from))
            .collect();
        deciding.extend(by.iter().cloned());
        let decision = if allowed { "permit" } else { "deny" };
        if decision != c.decision || by != c.by {
            failures.push(format!(
                "{row}: expected {} by {:?}, got {decision} by {by:?}",
                c.decision, c.by
            ));
            continue;
        }
        if !allowed || c.action != "receive" {
            continue;
        }
        let view = match policies.minimise(&c.authority, &m) {
            Ok(v) => v,
            Err(r) => {
                failures.push(format!("{row}: minimising failed: {r:?}"));
                continue;
            }
        };
        deciding.extend(view.removed.iter().map(|r| r.rule.clone()));
        let seen = serde_json::to_value(&view.message).unwrap();
        for p in &c.present {
            if seen.pointer(p).is_none() {
                failures.push(format!("{row}: {p} should be present"));
            }
        }
        for p in &c.absent {
            if seen.pointer(p).is_some() {
                failures.push(format!("{row}: {p} should be absent"));
            }
        }
        for (path, rule) in &c.removed {
            if !view
                .removed
                .iter()
                .any(|r| &r.path == path && &r.rule == rule)
            {
                failures.push(format!(
                    "{row}: {path} should be removed by {rule}; removed: {:?}",
                    view.removed
                ));
            }
        }
        // every removal is expected: nothing disappears that the table does not name
        for r in &view.removed {
            if !c.removed.contains_key(&r.path) {
                failures.push(format!(
                    "{row}: unexpected removal {} by {}",
                    r.path, r.rule
                ));
            }
        }
    }
    let shipped: BTreeSet<String> = load(&[], "").ids().into_iter().collect();
    let undecided: Vec<&String> = shipped.difference(&deciding).collect();
    assert!(
        failures.is_empty(),
        "{} failing row(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        undecided.is_empty(),
        "shipped policies or rules that decide no row of the table: {undecided:?}"
    );
}
