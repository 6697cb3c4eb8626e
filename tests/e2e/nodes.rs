//! Several gateway nodes on one PostgreSQL database (`store.engine = "postgres"`, a
//! `store.node` each): any node accepts, an idempotency key holds across nodes, and a node
//! killed at random loses nothing it acknowledged — its deliveries are taken over by the others
//! once its leases expire.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jxg_tests::nodes::Nodes;
use jxg_tests::postgres::Database;
use jxg_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Every message the admin API lists (paged): id → its metadata.
async fn listed(home: &Home, gw: &Gateway) -> BTreeMap<String, Value> {
    let operator = client_for(home, "operator");
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => gw.admin_url(&format!("/admin/v1/messages?limit=500&cursor={c}")),
            None => gw.admin_url("/admin/v1/messages?limit=500"),
        };
        let page = get_json(&operator, &url).await;
        for m in page["items"].as_array().unwrap() {
            out.insert(m["id"].as_str().unwrap().to_string(), m.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_document_posted_to_two_nodes_at_once_is_one_message_and_the_second_answer_is_the_firsts_receipt()
 {
    let db = Database::create("nodes_idem").await;
    let home = Home::new();
    let mut nodes = Nodes::new(&home, &db.url(), 2);
    nodes.start_all();
    let police = client_for(&home, "police");
    let (a, b) = (
        nodes.node(0).url("/police/v1/dokumenter"),
        nodes.node(1).url("/police/v1/dokumenter"),
    );
    let mut ids = BTreeSet::new();
    for n in 0..100 {
        let (x, y) = tokio::join!(
            submit_report(&police, &a, n, "TWICE"),
            submit_report(&police, &b, n, "TWICE")
        );
        assert!(
            matches!(x.0, 200 | 202) && matches!(y.0, 200 | 202),
            "document {n}: answers {} and {}",
            x.0,
            y.0
        );
        assert!(
            x.0 == 202 || y.0 == 202,
            "document {n}: neither node accepted it ({} and {})",
            x.0,
            y.0
        );
        assert_eq!(
            x.2["id"], y.2["id"],
            "document {n}: both answers name one message"
        );
        assert_eq!(
            x.2["received_at"], y.2["received_at"],
            "document {n}: the second answer is the first's receipt"
        );
        ids.insert(x.2["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 100);
    let all = listed(&home, nodes.node(1)).await;
    assert_eq!(
        all.keys().cloned().collect::<BTreeSet<_>>(),
        ids,
        "one message per document, whichever node listed them"
    );
    // the prosecution, polling either node, sees one inbox holding each once
    let prosecution = client_for(&home, "prosecution");
    let mut got = drain_inbox(&prosecution, nodes.node(0)).await;
    got.extend(drain_inbox(&prosecution, nodes.node(1)).await);
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique, ids);
    assert_eq!(got.len(), ids.len(), "no entry offered by both nodes");
    assert_audit_verifies(&home, nodes.node(0)).await;

    // each node says who it is, on /readyz and in its metrics
    let operator = client_for(&home, "operator");
    let ready = get_json(&operator, &nodes.node(1).admin_url("/readyz")).await;
    assert_eq!(
        (ready["status"].as_str(), ready["node"].as_str()),
        (Some("ready"), Some("gw-2"))
    );
    let (_, scrape) = metrics(&home, nodes.node(1)).await;
    assert_eq!(sum(&scrape, "jxg_node", &[("node", "gw-2")]), 1.0);
    // a node whose lock session ends (a database that dropped it) is not ready until it has
    // taken its lock again, which its next write does
    let ended = db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND classid = 1786275694 AND objsubid = 2 AND objid = hashtext('gw-2')::oid \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
    assert_eq!(ended.len(), 1, "gw-2 held its lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = operator
            .get(nodes.node(1).admin_url("/readyz"))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            let body: Value = r.json().await.unwrap();
            assert!(
                body["reasons"].to_string().contains("this node's lock"),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gw-2 stayed ready without its lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, _) = submit_report(&police, &b, 1000, "TWICE").await;
    assert_eq!(status, 202, "the write takes the lock again");
    let ready = get_json(&operator, &nodes.node(1).admin_url("/readyz")).await;
    assert_eq!(ready["status"], "ready");
    nodes.terminate_all();
}

/// What a sender was given: (sender, document) → message id.
type Given = Arc<Mutex<BTreeMap<(String, String), String>>>;

/// Sends documents made by `make(n)` to random running nodes until `stop`, each again (to any
/// node) until it is acknowledged, as a sender does; what it was given goes into `given`.
fn submitter(
    home: &Home,
    sender: &'static str,
    nodes: Arc<Mutex<Vec<Option<String>>>>,
    given: Given,
    stop: Arc<AtomicBool>,
    seed: u64,
    send: impl Fn(&reqwest::Client, &str, usize) -> reqwest::RequestBuilder + Send + 'static,
) -> tokio::task::JoinHandle<usize> {
    let client = client_for(home, sender);
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let live: Vec<String> = nodes.lock().unwrap().iter().flatten().cloned().collect();
            if live.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let base = &live[rng.random_range(0..live.len())];
            let answer = match send(&client, base, n).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.json::<Value>().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            };
            match answer {
                (202 | 200, body) => {
                    let id = body["id"].as_str().expect("an answer names its id");
                    given
                        .lock()
                        .unwrap()
                        .insert((sender.to_string(), n.to_string()), id.to_string());
                    n += 1;
                }
                // a node killed under the request, or one still starting: sent again
                (0 | 503, _) => tokio::time::sleep(Duration::from_millis(20)).await,
                (status, body) => panic!("{sender} document {n}: {status} {body}"),
            }
        }
        n
    })
}

#[tokio::test]
async fn nodes_killed_at_random_lose_nothing_acknowledged_and_every_recipient_gets_everything_once()
{
    let seed: u64 = std::env::var("JXG_NODES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("node-loss seed {seed} (JXG_NODES_SEED={seed} replays the kills)");
    let mut rng = StdRng::seed_from_u64(seed);
    let db = Database::create("nodes_loss").await;
    let (home, p, (inq, outq, _)) = broker_home("nodes").await;
    let hook = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "50"),
        ("retry_cap_ms", "500"),
        ("request_timeout_seconds", "2"),
        ("breaker_cooldown_ms", "200"),
        ("inbox_visibility_seconds", "4"),
    ]);
    home.edit_config(|t| t.replacen("[store]\n", "[store]\nlease_seconds = 4\n", 1));
    let mut nodes = Nodes::new(&home, &db.url(), 3);
    nodes.start_all();
    let urls: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(
        nodes
            .live()
            .iter()
            .map(|g| Some(g.url("")))
            .collect::<Vec<_>>(),
    ));
    let given: Given = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let police = submitter(
        &home,
        "police",
        urls.clone(),
        given.clone(),
        stop.clone(),
        seed ^ 1,
        |c, base, n| {
            c.post(format!("{base}/police/v1/dokumenter"))
                .header("Content-Type", "application/json")
                .body(police_report(n, "LOSS"))
        },
    );
    let courts = submitter(
        &home,
        "courts",
        urls.clone(),
        given.clone(),
        stop.clone(),
        seed ^ 2,
        |c, base, n| {
            c.post(format!("{base}/courts/v1/dokumenter"))
                .header("Content-Type", "application/xml; charset=ISO-8859-1")
                .body(court_verdict(7000 + n))
        },
    );
    // the prosecution's documents come over the queue, which every node consumes
    let mut tilts = Vec::new();
    let kills = 20;
    for k in 0..kills {
        for _ in 0..3 {
            let (bytes, id) = tilt(tilts.len() as u32, "LOSS");
            p.publish(&inq, &bytes, &id).await;
            tilts.push(id);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        let victim = rng.random_range(0..3);
        nodes.kill(victim);
        urls.lock().unwrap()[victim] = None;
        eprintln!("kill {k}: gw-{}", victim + 1);
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        let url = nodes.start(victim).url("");
        urls.lock().unwrap()[victim] = Some(url);
    }
    stop.store(true, Ordering::SeqCst);
    let (sent_police, sent_courts) = (police.await.unwrap(), courts.await.unwrap());
    let given = given.lock().unwrap().clone();
    eprintln!(
        "{sent_police} police reports, {sent_courts} verdicts and {} indictments acknowledged",
        tilts.len()
    );
    assert!(sent_police > 0 && sent_courts > 0);

    // every acknowledged document is one message, and every message was given to its sender
    // (or came over the queue)
    let gw = nodes.node(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let all = loop {
        let all = listed(&home, gw).await;
        let from_queue = all
            .values()
            .filter(|m| m["sender"] == "prosecution")
            .count();
        if from_queue >= tilts.len() || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut by_document: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (id, m) in &all {
        by_document
            .entry((
                m["sender"].as_str().unwrap().to_string(),
                m["source_document_id"].as_str().unwrap().to_string(),
            ))
            .or_default()
            .push(id.clone());
    }
    for (doc, ids) in &by_document {
        assert_eq!(ids.len(), 1, "{doc:?} is one message, not {ids:?}");
    }
    let given_ids: BTreeSet<&String> = given.values().collect();
    for (id, m) in &all {
        let sender = m["sender"].as_str().unwrap();
        if sender != "prosecution" {
            assert!(
                given_ids.contains(id),
                "message {id} of {sender} was never given to its sender"
            );
        }
    }
    for id in &given_ids {
        assert!(all.contains_key(*id), "acknowledged {id} is lost");
    }
    assert_eq!(
        all.values()
            .filter(|m| m["sender"] == "prosecution")
            .count(),
        tilts.len(),
        "every indictment on the queue is one message"
    );

    // every recipient a message's status names gets it, under its id, and nothing else
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, m) in &all {
        for r in m["recipients"].as_array().unwrap() {
            if r["status"] != "skipped" {
                want.entry(r["recipient"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for who in ["police", "prison"] {
        // polled on every node in turn: one inbox
        let c = client_for(&home, who);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mine = got.entry(who.to_string()).or_default();
        let mut i = 0;
        while mine.len() < want.get(who).map_or(0, |w| w.len()) && Instant::now() < deadline {
            mine.extend(drain_inbox(&c, nodes.node(i % 3)).await);
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let courts_want = want.get("courts").cloned().unwrap_or_default();
    let prosecution_want = want.get("prosecution").cloned().unwrap_or_default();
    let mut out_queue = BTreeSet::new();
    loop {
        while let Some(t) = p.take(&outq).await {
            out_queue.insert(t.message_id.unwrap_or_default());
        }
        let hooked: BTreeSet<String> = hook
            .delivered()
            .into_iter()
            .filter(|r| r.status == 200)
            .map(|r| r.message_id)
            .collect();
        if (hooked.is_superset(&courts_want) && out_queue.is_superset(&prosecution_want))
            || Instant::now() > deadline
        {
            got.insert("courts".into(), hooked);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    got.insert("prosecution".into(), out_queue);
    for who in ["police", "prison", "courts", "prosecution"] {
        let (w, g) = (
            want.get(who).cloned().unwrap_or_default(),
            got.get(who).cloned().unwrap_or_default(),
        );
        let missing: Vec<_> = w.difference(&g).collect();
        let unknown: Vec<_> = g.difference(&w).collect();
        assert!(missing.is_empty(), "{who} never got {missing:?}");
        assert!(
            unknown.is_empty(),
            "{who} holds ids no sender was given: {unknown:?}"
        );
    }
    assert_audit_verifies(&home, nodes.node(1)).await;
    nodes.terminate_all();
}
