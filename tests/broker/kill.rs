//! SIGKILL at random points under mixed load: police REST, court XML, prosecution AMQP in both
//! directions and pushes to a webhook in flight, the gateway killed and restarted 20 times and
//! the broker stopped and started once in the middle. Afterwards every acknowledged message has
//! reached every recipient, under one id per document, and the audit chain verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jxg_tests::*;
use serde_json::Value;

use super::{publish_confirmed, rabbitmqctl};

const KILLS: usize = 20;

/// A small deterministic generator, seeded from the clock and printed, so a failing run can be
/// repeated.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Submits one document until it is acknowledged (202, or 200 for a document the gateway
/// already holds); a connection the kill cut leaves the outcome open, so it is sent again.
async fn until_acknowledged(
    c: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "never acknowledged");
        let sent = c
            .post(url)
            .header("Content-Type", content_type)
            .timeout(Duration::from_secs(10))
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 202 || r.status() == 200 => {
                if let Ok(v) = r.json::<Value>().await {
                    return v["id"].as_str().unwrap().to_string();
                }
            }
            Ok(r) => assert!(
                r.status() == 503 || r.status() == 429,
                "{url}: {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn twenty_sigkills_under_mixed_load_and_a_broker_restart_lose_and_duplicate_nothing() {
    let _broker = super::BROKER.lock().await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut rng = Lcg(seed);
    let home = Home::with_broker("kill");
    let (authority, admin) = (free_port(), free_port());
    home.edit_config(|t| {
        t.replacen("127.0.0.1:0", &format!("127.0.0.1:{authority}"), 1)
            .replacen("127.0.0.1:0", &format!("127.0.0.1:{admin}"), 1)
    });
    let hook = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "50"),
        ("retry_cap_ms", "500"),
        ("max_attempts", "10000"),
        ("breaker_failures", "10000"),
    ]);
    let (inq, outq, rejq) = home.queues();
    let setup = Prosecution::connect().await;
    setup.declare(&[&inq, &outq, &rejq]).await;
    let mut gw = home.start();
    let url = |p: &str| format!("https://127.0.0.1:{authority}{p}");

    let stop = Arc::new(AtomicBool::new(false));
    // acknowledged message ids, by sender
    let acked: Arc<Mutex<BTreeMap<&'static str, Vec<String>>>> = Default::default();
    let mut load = Vec::new();
    for (who, path, content_type) in [
        ("police", "/police/v1/dokumenter", "application/json"),
        (
            "courts",
            "/courts/v1/dokumenter",
            "application/xml; charset=ISO-8859-1",
        ),
    ] {
        let (c, stop, acked, url) = (
            client_for(&home, who),
            stop.clone(),
            acked.clone(),
            url(path),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let body = match who {
                    "police" => police_report(70_000 + n, "KILLMIX"),
                    _ => court_verdict(n),
                };
                let id = until_acknowledged(&c, &url, content_type, body).await;
                acked.lock().unwrap().entry(who).or_default().push(id);
                n += 1;
            }
        }));
    }
    // indictments published by the prosecution system, each confirmed by the broker
    let published = Arc::new(Mutex::new(0u32));
    let (stop2, p2, q) = (stop.clone(), published.clone(), inq.clone());
    load.push(tokio::spawn(async move {
        let client = Arc::new(tokio::sync::Mutex::new(None));
        let mut n = 0;
        while !stop2.load(Ordering::SeqCst) {
            let (body, id) = tilt(1000 + n, "RESTART");
            publish_confirmed(&client, &q, &body, &id).await;
            *p2.lock().unwrap() += 1;
            n += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));

    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
        gw.kill();
        if k == KILLS / 2 {
            // the broker goes away too, and comes back while the gateway is down and up again
            tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"]))
                .await
                .unwrap();
            gw = home.start();
            tokio::time::sleep(Duration::from_millis(500 + rng.below(1000))).await;
            tokio::task::spawn_blocking(|| {
                rabbitmqctl(&["start_app"]);
                rabbitmqctl(&["await_startup"]);
            })
            .await
            .unwrap();
        } else {
            gw = home.start();
        }
    }
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let published = *published.lock().unwrap();
    eprintln!(
        "acknowledged: police {}, courts {}, indictments published {published}",
        acked["police"].len(),
        acked["courts"].len()
    );
    assert!(acked["police"].len() >= KILLS && acked["courts"].len() >= KILLS);

    // who must get each acknowledged message, from the gateway's own status
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (who, ids) in &acked {
        let c = client_for(&home, who);
        for id in ids {
            let s: Value = loop {
                let r = c
                    .get(url(&format!("/v1/messages/{id}")))
                    .send()
                    .await
                    .unwrap();
                // the status reads count against the sender's rate limit
                if r.status() == 429 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                assert_eq!(r.status(), 200, "status of {id}");
                break r.json().await.unwrap();
            };
            for r in s["recipients"].as_array().unwrap() {
                assert_ne!(r["status"], "dead", "{s}");
                if r["status"] != "skipped" {
                    expected
                        .entry(r["recipient"].as_str().unwrap().to_string())
                        .or_default()
                        .insert(id.clone());
                }
            }
        }
    }
    // what each recipient got: the queue, the webhook, the inboxes; until nothing is missing
    let consumer = Prosecution::connect().await;
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        while let Some(m) = consumer.take(&outq).await {
            *copies.entry("prosecution".into()).or_default() += 1;
            got.entry("prosecution".into())
                .or_default()
                .insert(m.message_id.unwrap());
        }
        let pushed: BTreeSet<String> = hook.delivered().into_iter().map(|r| r.message_id).collect();
        got.insert("courts".into(), pushed);
        for who in ["police", "prison"] {
            let ids = drain_inbox(&client_for(&home, who), &gw).await;
            got.entry(who.into()).or_default().extend(ids);
        }
        let missing: Vec<(&String, usize)> = expected
            .iter()
            .map(|(r, ids)| {
                (
                    r,
                    ids.difference(got.get(r).unwrap_or(&BTreeSet::new()))
                        .count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let courts_from_indictments = got["courts"].len();
        if missing.is_empty() && courts_from_indictments >= published as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still missing per recipient: {missing:?}; courts have {courts_from_indictments} of {published} indictments"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // redeliveries after the last restart have had time to arrive
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Some(m) = consumer.take(&outq).await {
        got.get_mut("prosecution")
            .unwrap()
            .insert(m.message_id.unwrap());
    }
    // zero lost: every acknowledged message at every recipient it was routed to
    for (r, ids) in &expected {
        let missing: Vec<_> = ids.difference(&got[r]).collect();
        assert!(missing.is_empty(), "{r} lacks {missing:?}");
    }
    // zero duplicates under another id: the prosecution's queue holds exactly the messages
    // routed to it, and the courts exactly one message per indictment
    assert_eq!(
        got["prosecution"], expected["prosecution"],
        "an extra id at the prosecution"
    );
    assert_eq!(
        got["courts"].len(),
        published as usize,
        "{} messages at the courts for {published} indictments",
        got["courts"].len()
    );
    assert_eq!(consumer.depth(&rejq).await, 0, "an indictment was rejected");
    // the audit chain verifies across every kill
    assert_audit_verifies(&home, &gw).await;
    eprintln!(
        "delivered: {:?}; prosecution copies read {:?}",
        got.iter()
            .map(|(r, ids)| (r, ids.len()))
            .collect::<Vec<_>>(),
        copies
    );
    drop(gw);
    consumer.delete(&[&inq, &outq, &rejq]).await;
}
