//! A store written by the release before layout v2 (`tests/data/stores/v1`) opens with this one:
//! it is migrated, its audit chain verifies across the migration, and exactly its waiting
//! deliveries are delivered, once; a migration killed midway is finished by the next start.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use jxg_tests::*;
use serde_json::Value;

/// The fixture's message ids, in the order its README lists them.
fn fixture_ids() -> Vec<String> {
    let v: Value = serde_json::from_slice(&sample("stores/v1/ids.json")).unwrap();
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

/// A home holding a copy of the v1 store, the courts and the prison pushed to webhooks that
/// take everything (so that a dead or delivered entry sent again would be seen).
fn v1_home() -> (Home, Webhook, Webhook) {
    let home = Home::new();
    let courts = Webhook::start(&home, Mode::Ok);
    let prison = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &courts.url);
    home.push_to("prison", &prison.url);
    let copied = Command::new("cp")
        .arg("-a")
        .arg(samples_dir().join("stores/v1/data"))
        .arg(home.path().join("data"))
        .status()
        .unwrap();
    assert!(copied.success());
    (home, courts, prison)
}

/// The v1 trees are still there: the migration did not finish.
fn v1_trees_left(home: &Home) -> bool {
    let db = sled::open(home.path().join("data")).unwrap();
    let left = db.tree_names().iter().any(|n| n.as_ref() == b"messages");
    drop(db);
    left
}

/// After the migration: each message's recipients as the gateway reports them, what the pull
/// recipients take (exactly the waiting entries, once), nothing pushed again, idempotency keys
/// kept, the dead letter still dead, and the log verifying after a stop.
async fn delivers_exactly_the_waiting_entries(home: &Home, courts: &Webhook, prison: &Webhook) {
    let ids = fixture_ids();
    let mut gw = home.start();
    let senders = ["police", "police", "police", "prosecution", "courts"];
    let status = |who: &'static str, id: String| {
        let c = client_for(home, who);
        let url = gw.url(&format!("/v1/messages/{id}"));
        async move { get_json(&c, &url).await }
    };
    let mut waiting: Vec<(String, String)> = Vec::new();
    for (id, who) in ids.iter().zip(senders) {
        let s = status(who, id.clone()).await;
        for r in s["recipients"].as_array().unwrap() {
            let (recipient, state) = (
                r["recipient"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            );
            if state == "queued" {
                waiting.push((recipient.to_string(), id.clone()));
            }
        }
    }
    let states = |id: &str, who| {
        let s = status(who, id.to_string());
        async move {
            let s = s.await;
            s["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["recipient"].as_str().unwrap().to_string(),
                        r["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // as the fixture's README says
    assert_eq!(
        states(&ids[0], "police").await,
        vec![("prosecution".to_string(), "delivered".to_string())]
    );
    assert!(
        states(&ids[3], "prosecution")
            .await
            .contains(&("courts".into(), "dead".into()))
    );
    assert!(
        states(&ids[4], "courts")
            .await
            .contains(&("prison".into(), "delivered".into()))
    );
    let expected: BTreeSet<(String, String)> = [
        ("prosecution".to_string(), ids[1].clone()),
        ("prosecution".to_string(), ids[2].clone()),
        ("prosecution".to_string(), ids[4].clone()),
    ]
    .into_iter()
    .chain(waiting.iter().filter(|(r, _)| r != "prosecution").cloned())
    .collect();
    assert_eq!(waiting.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // each pull recipient takes exactly its waiting entries, once
    let mut got = BTreeSet::new();
    for who in ["police", "prosecution"] {
        for id in drain_inbox(&client_for(home, who), &gw).await {
            assert!(
                got.insert((who.to_string(), id.clone())),
                "{who} got {id} twice"
            );
        }
        assert!(drain_inbox(&client_for(home, who), &gw).await.is_empty());
    }
    assert_eq!(got, expected);
    // nothing delivered or dead is pushed again
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(courts.attempts(), 0, "a dead letter was sent again");
    assert_eq!(prison.attempts(), 0, "a delivered copy was sent again");
    // the idempotency keys came along: the same report again is the first answer
    let r = post_json(
        &client_for(home, "police"),
        &gw,
        "/police/v1/dokumenter",
        police_report(1, "FIX"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["jxg-duplicate"], "true");
    assert_eq!(r.json::<Value>().await.unwrap()["id"], ids[1].as_str());
    // new work is accepted after the old
    let r = post_json(
        &client_for(home, "police"),
        &gw,
        "/police/v1/dokumenter",
        police_report(7, "AFTER"),
    )
    .await;
    let new = accepted_id(r).await;
    assert_eq!(
        drain_inbox(&client_for(home, "prosecution"), &gw).await,
        vec![new]
    );
    assert!(gw.terminate().success());
    let (code, out, err) = jxg(home, &["audit", "verify", "--config", "gateway.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let entries: u64 = out
        .strip_prefix("ok: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        entries > 38,
        "the v1 log's 38 entries and what came after: {out}"
    );
    assert!(
        out.contains("(seq 1.."),
        "the log still starts at the first entry: {out}"
    );
}

#[tokio::test]
async fn a_v1_store_is_migrated_at_start_verifies_and_delivers_exactly_what_waited() {
    let (home, courts, prison) = v1_home();
    assert!(v1_trees_left(&home));
    delivers_exactly_the_waiting_entries(&home, &courts, &prison).await;
    assert!(
        !v1_trees_left(&home),
        "the v1 trees are gone after the migration"
    );
}

/// Starts `jxg store migrate` one message per durable batch, reads its first line of progress
/// and kills it (SIGKILL) there, between two batches.
fn migrate_and_kill(home: &Home) -> String {
    let mut child = Command::new(jxg_bin())
        .current_dir(home.path())
        .args([
            "store",
            "migrate",
            "--config",
            "gateway.toml",
            "--batch",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(v1_trees_left(home), "killed before the migration finished");
    first
}

#[tokio::test]
async fn a_migration_killed_midway_is_finished_by_the_next_start() {
    let (home, courts, prison) = v1_home();
    assert_eq!(migrate_and_kill(&home), "messages: 1 of 5");
    // the next run goes on from its mark instead of starting over
    let resumed = migrate_and_kill(&home);
    assert_ne!(resumed, "messages: 1 of 5");
    assert!(
        resumed.starts_with("messages: ") || resumed.starts_with("audit entries: "),
        "{resumed}"
    );
    // and the gateway's start finishes it
    delivers_exactly_the_waiting_entries(&home, &courts, &prison).await;
    assert!(!v1_trees_left(&home));
}
