//! The courts: XML ingress, and push delivery to a real HTTPS webhook with retries, ordering,
//! dead letters and restarts.

use jxg_adapters::Context;
use jxg_schema::MasterData;
use jxg_tests::*;
use serde_json::Value;

async fn post_xml(c: &reqwest::Client, gw: &Gateway, ct: &str, body: Vec<u8>) -> reqwest::Response {
    c.post(gw.url("/courts/v1/dokumenter"))
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post_canonical(c: &reqwest::Client, gw: &Gateway, m: &Value) -> String {
    let r = post_json(c, gw, "/v1/messages", m.to_string()).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn status(c: &reqwest::Client, gw: &Gateway, id: &str) -> Value {
    c.get(gw.url(&format!("/v1/messages/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The sender's view of one recipient, once it reaches `want` (bounded wait).
async fn status_when(c: &reqwest::Client, gw: &Gateway, id: &str, who: &str, want: &str) -> Value {
    for _ in 0..300 {
        let s = status(c, gw, id).await;
        if recipient(&s, who)["status"] == want {
            return recipient(&s, who).clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{id} never reached {want} for {who}: {}",
        status(c, gw, id).await
    );
}

fn recipient<'a>(status: &'a Value, who: &str) -> &'a Value {
    status["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipient"] == who)
        .unwrap()
}

/// An indictment of its own case `n` (journal serial), or of the story case when `n` is `None`.
fn indictment(source: &str, case: Option<u32>) -> Value {
    let mut m = submission("canonical/valid/indictment.filed.json", source);
    if let Some(n) = case {
        let j = format!("1470-76543-{n:05}-26");
        m["case"]["police_journal"] = Value::from(j.clone());
        m["correlation_id"] = Value::from(j);
    }
    m
}

#[tokio::test]
async fn invalid_and_hostile_court_documents_get_their_status_and_nothing_is_stored() {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let manifest: Value = serde_json::from_slice(&sample("court/invalid/manifest.json")).unwrap();
    for e in manifest.as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let r = post_xml(
            &courts,
            &gw,
            e["content_type"].as_str().unwrap(),
            sample(&format!("court/invalid/{file}")),
        )
        .await;
        let p = problem(r, e["status"].as_u64().unwrap(), file).await;
        let text = p.to_string();
        assert!(!text.contains("root:x:0:0"), "{file}: {text}");
        let must = e["must_name"].as_str().unwrap();
        if e["status"] == 422 {
            let path = must.split(' ').next().unwrap();
            assert!(problem_paths(&p).contains(&path), "{file}: {text}");
        } else {
            let key = must.split(" (").next().unwrap().trim_start_matches("the ");
            let key = key.split(' ').next().unwrap().to_lowercase();
            assert!(
                text.to_lowercase().contains(&key),
                "{file}: want {key} in {text}"
            );
        }
    }
    // nothing of them reached anyone
    for who in ["police", "prosecution", "prison"] {
        assert!(
            inbox(&client_for(&home, who), &gw).await.is_empty(),
            "{who}"
        );
    }
    // the charset case is about the request: without a contradicting charset the same bytes go in
    let bytes = sample("court/invalid/charset-mismatch.xml");
    assert_eq!(
        post_xml(
            &courts,
            &gw,
            "application/xml; charset=ISO-8859-1",
            bytes.clone()
        )
        .await
        .status(),
        202
    );
    assert_eq!(
        post_xml(&courts, &gw, "text/plain", bytes).await.status(),
        415
    );
    // no log line holds a byte of /etc/passwd
    assert!(
        gw.log
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains("root:x:0:0"))
    );
}

#[tokio::test]
async fn a_latin1_verdict_reaches_the_prison_as_canonical_and_the_police_as_police_json() {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let r = post_xml(
        &courts,
        &gw,
        "application/xml",
        sample("court/valid/dom-1-latin1.xml"),
    )
    .await;
    let id = accepted_id(r).await;
    let keys = jwks(&courts, &gw).await;
    let mut expected: Value =
        serde_json::from_slice(&sample("canonical/valid/verdict.issued.json")).unwrap();
    // the prison's disclosure profile leaves out where the defendant lives
    expected["body"]["defendant"]
        .as_object_mut()
        .unwrap()
        .remove("address")
        .expect("the sample has an address");

    let prison = inbox(&client_for(&home, "prison"), &gw).await;
    assert_eq!(
        prison.len(),
        1,
        "the sentence must be enforced, so the prison receives it"
    );
    assert_eq!(prison[0]["format"], "canonical-v2");
    let content = prison[0]["content"].as_str().unwrap();
    verify_detached(
        prison[0]["signature"].as_str().unwrap(),
        content.as_bytes(),
        &keys,
    )
    .unwrap();
    let got: Value = serde_json::from_str(content).unwrap();
    assert_eq!(got["body"], expected["body"]);
    assert_eq!(got["case"], expected["case"]);

    let police = inbox(&client_for(&home, "police"), &gw).await;
    assert_eq!(police[0]["format"], "police-json");
    let content = police[0]["content"].as_str().unwrap();
    verify_detached(
        police[0]["signature"].as_str().unwrap(),
        content.as_bytes(),
        &keys,
    )
    .unwrap();
    let got: Value = serde_json::from_str(content).unwrap();
    let mut want: Value = serde_json::from_slice(&sample("police/valid/dom-1.json")).unwrap();
    want["dokumentid"] = Value::from(id);
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_police_arrest_reaches_the_courts_webhook_as_a_signed_anholdelse() {
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &hook.url);
    let gw = home.start();
    let police = client_for(&home, "police");
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = police
        .post(gw.url("/police/v1/dokumenter"))
        .header("Content-Type", "application/json")
        .header("traceparent", trace)
        .body(sample("police/valid/anholdelse-1.json"))
        .send()
        .await
        .unwrap();
    let id = accepted_id(r).await;
    hook.wait_until("the Anholdelse", |h| h.delivered().len() == 1)
        .await;
    let got = hook.delivered().remove(0);
    assert_eq!(got.message_id, id);
    assert_eq!(got.content_type, "application/xml; charset=UTF-8");
    assert_eq!(got.traceparent.as_deref(), Some(trace));
    let keys = jwks(&police, &gw).await;
    let h = verify_detached(&got.signature, &got.body, &keys).unwrap();
    assert_eq!(h["jxg_recipient"], "courts");
    assert_eq!(h["jxg_type"], "person.arrested");
    // the same document as the sample, once decoded
    let md = MasterData::embedded();
    let ctx = Context { master_data: &md };
    let ours = jxg_adapters::court_xml::decode(&got.body, &ctx).unwrap();
    let theirs =
        jxg_adapters::court_xml::decode(&sample("court/valid/anholdelse-1.xml"), &ctx).unwrap();
    assert_eq!(ours.body, theirs.body);
    assert_eq!(ours.case, theirs.case);
    assert_eq!(ours.source_document_id, id);
    // delivered, as the sender sees it
    let c = status_when(&police, &gw, &id, "courts", "delivered").await;
    assert_eq!(c["attempts"].as_u64(), Some(1));
    assert!(c["delivered_at"].is_string());
    // a pushed recipient's inbox stays empty: nothing arrives twice
    assert!(inbox(&client_for(&home, "courts"), &gw).await.is_empty());
}

#[tokio::test]
async fn a_webhook_that_fails_five_times_then_recovers_gets_each_message_once_in_case_order() {
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::FailTimes(5, 503));
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "20"),
        ("retry_cap_ms", "200"),
        ("breaker_cooldown_ms", "100"),
    ]);
    let gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(
            post_canonical(
                &prosecution,
                &gw,
                &indictment(&format!("ANK-2026-004711-00{n}"), None),
            )
            .await,
        );
    }
    hook.wait_until("three deliveries", |h| h.delivered().len() >= 3)
        .await;
    let delivered: Vec<String> = hook
        .delivered()
        .iter()
        .map(|r| r.message_id.clone())
        .collect();
    assert_eq!(delivered, ids, "each once, in the order accepted");
    // the failures all hit the first message: later ones of the case waited behind it
    let reqs = hook.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 8);
    assert!(
        reqs[..6].iter().all(|r| r.message_id == ids[0]),
        "{:?}",
        reqs.iter().map(|r| &r.message_id).collect::<Vec<_>>()
    );
    let c = status_when(&prosecution, &gw, &ids[0], "courts", "delivered").await;
    assert_eq!(c["attempts"].as_u64(), Some(6));
    assert_eq!(c["last_error"], "HTTP 503");
}

#[tokio::test]
async fn a_webhook_that_never_recovers_ends_dead_and_stops_holding_its_case_back() {
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::Always(500));
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "20"),
        ("retry_cap_ms", "100"),
        ("max_attempts", "3"),
        ("breaker_failures", "100"),
    ]);
    let gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let first = post_canonical(&prosecution, &gw, &indictment("ANK-DEAD-1", None)).await;
    let c = status_when(&prosecution, &gw, &first, "courts", "dead").await;
    assert_eq!(c["attempts"].as_u64(), Some(3), "{c}");
    assert_eq!(c["last_error"], "HTTP 500");
    assert_eq!(hook.attempts(), 3);
    // a 4xx is permanent at once; and the dead message no longer holds the case back
    hook.set(Mode::Always(400));
    let second = post_canonical(&prosecution, &gw, &indictment("ANK-DEAD-2", None)).await;
    let c = status_when(&prosecution, &gw, &second, "courts", "dead").await;
    assert_eq!(
        (c["attempts"].as_u64(), c["last_error"].as_str()),
        (Some(1), Some("HTTP 400"))
    );
    hook.set(Mode::Ok);
    let third = post_canonical(&prosecution, &gw, &indictment("ANK-DEAD-3", None)).await;
    hook.wait_until("the third", |h| {
        h.delivered().iter().any(|r| r.message_id == third)
    })
    .await;
}

#[tokio::test]
async fn a_recipient_that_always_fails_costs_the_others_nothing() {
    let home = Home::new();
    let dead = Webhook::start(&home, Mode::Always(503));
    let alive = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &dead.url);
    home.push_to("police", &alive.url);
    home.delivery(&[
        ("retry_base_ms", "20"),
        ("retry_cap_ms", "100"),
        ("breaker_failures", "3"),
        ("breaker_cooldown_ms", "600000"),
        ("concurrency", "2"),
    ]);
    let gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let n = 20;
    for i in 0..n {
        post_canonical(
            &prosecution,
            &gw,
            &indictment(&format!("ANK-LOAD-{i}"), Some(100 + i)),
        )
        .await;
    }
    alive
        .wait_until("every message at the working recipient", |h| {
            h.delivered().len() == n as usize
        })
        .await;
    // counted, not timed: the healthy recipient got all of them, the dead one none, and its
    // breaker kept the attempts on it to the threshold plus what was already in flight
    assert_eq!(alive.delivered().len(), n as usize);
    assert_eq!(
        alive.attempts(),
        n as usize,
        "no retries were needed at the healthy recipient"
    );
    assert!(dead.delivered().is_empty());
    assert!(
        dead.attempts() <= 3 + 2,
        "the breaker stopped the attempts: {}",
        dead.attempts()
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_retries_loses_no_delivery_and_keeps_the_order() {
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::Always(503));
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "20"),
        ("retry_cap_ms", "100"),
        ("max_attempts", "1000"),
        ("breaker_failures", "1000"),
    ]);
    let mut gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(
            post_canonical(
                &prosecution,
                &gw,
                &indictment(&format!("ANK-RESTART-{n}"), None),
            )
            .await,
        );
    }
    hook.wait_until("some failed attempts", |h| h.attempts() >= 4)
        .await;
    gw.kill();
    let before = hook.attempts();
    hook.set(Mode::Ok);
    let gw = home.start();
    hook.wait_until("three deliveries after the restart", |h| {
        h.delivered().len() >= 3
    })
    .await;
    let delivered: Vec<String> = hook
        .delivered()
        .iter()
        .map(|r| r.message_id.clone())
        .collect();
    assert_eq!(delivered, ids);
    let c = status_when(&prosecution, &gw, &ids[0], "courts", "delivered").await;
    assert!(
        c["attempts"].as_u64().unwrap() as usize >= before,
        "the attempt count survived the restart: {c}"
    );
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn hostile_documents_near_the_size_limit_cost_bounded_memory() {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    // warm up: one ordinary document, so the baseline includes a served request
    let ok = post_xml(
        &courts,
        &gw,
        "application/xml",
        sample("court/valid/dom-2-utf8.xml"),
    )
    .await;
    assert_eq!(ok.status(), 202);
    let before = peak_rss_kb(gw.child.id());
    let head = "<?xml version=\"1.0\"?>";
    let ns = "urn:dk:domstol:straffesag:2";
    let mut laughs = String::from("<!DOCTYPE d [<!ENTITY l \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "l".to_string()
        } else {
            format!("l{}", i - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY l{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    laughs.push_str("]>");
    let near_limit = 1_000_000;
    let docs: Vec<(String, u16)> = vec![
        (
            format!(
                "{head}{}{}",
                "<a>".repeat(near_limit / 7),
                "</a>".repeat(near_limit / 7)
            ),
            400,
        ),
        (
            format!(
                "{head}<Dom xmlns=\"{ns}\">{}</Dom>",
                "<e/>".repeat(near_limit / 4 - 20)
            ),
            400,
        ),
        (
            format!(
                "{head}{laughs}<Dom xmlns=\"{ns}\">{}</Dom>",
                "&l9;".repeat(1000)
            ),
            400,
        ),
        (
            format!(
                "{head}<Dom xmlns=\"{ns}\" a=\"{}\"/>",
                "x".repeat(near_limit - 60)
            ),
            400,
        ),
    ];
    for round in 0..5 {
        for (doc, status) in &docs {
            let r = post_xml(&courts, &gw, "application/xml", doc.clone().into_bytes()).await;
            assert_eq!(r.status().as_u16(), *status, "round {round}");
        }
    }
    let after = peak_rss_kb(gw.child.id());
    eprintln!("gateway peak RSS: {before} kB before, {after} kB after the hostile documents");
    // 20 hostile megabyte documents: the peak may grow by the bodies in flight, not by what an
    // expansion or a tree of them would take
    assert!(
        after.saturating_sub(before) < 24 * 1024,
        "peak RSS grew from {before} kB to {after} kB"
    );
    for who in ["police", "prosecution", "prison"] {
        assert!(
            inbox(&client_for(&home, who), &gw)
                .await
                .iter()
                .all(|i| i["type"] == "verdict.issued"),
            "{who}"
        );
    }
}
