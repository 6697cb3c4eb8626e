//! Limits under abuse: slow request heads and bodies, too many connections from one holder,
//! oversized bodies per route, JSON nested too deep or with an overlong string. Each holds for
//! the one who passes it while another authority goes on unaffected.

use std::time::Duration;

use futures_util::StreamExt;

use jxg_tests::*;
use serde_json::Value;

fn connect(home: &Home, gw: &Gateway, who: &str) -> Result<TlsConn, String> {
    let (cert, key) = home.cert(who);
    TlsConn::open(&gw.authority, &home.ca_pem(), (&cert, &key))
}

fn with(home: &Home, section: &str, lines: &str) {
    home.edit_config(|t| {
        t.replacen(
            &format!("[{section}]\n"),
            &format!("[{section}]\n{lines}\n"),
            1,
        )
    });
}

async fn unaffected(home: &Home, gw: &Gateway) {
    let mut m: Value =
        serde_json::from_slice(&sample("canonical/valid/custody.admitted.json")).unwrap();
    m["source_document_id"] = Value::from(format!("OMS-LIMITS-{}", uuid::Uuid::now_v7().simple()));
    let r = post_json(
        &client_for(home, "prison"),
        gw,
        "/v1/messages",
        m.to_string(),
    )
    .await;
    assert_eq!(
        r.status(),
        202,
        "another authority was affected: {}",
        r.text().await.unwrap()
    );
}

#[tokio::test]
async fn a_slow_request_head_or_body_is_cut_off_and_others_go_on() {
    let home = Home::new();
    with(&home, "listeners", "header_read_ms = 1000");
    with(&home, "limits", "body_read_seconds = 1");
    let gw = home.start();
    // a head that never ends
    let mut loris = connect(&home, &gw, "police").unwrap();
    loris
        .send(b"GET /v1/inbox HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .unwrap();
    // a body that stops after its first byte
    let mut trickle = connect(&home, &gw, "police").unwrap();
    trickle
        .send(b"POST /police/v1/dokumenter HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        .unwrap();
    unaffected(&home, &gw).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(loris.response(), Ok(408), "the slow head was not cut off");
    assert_eq!(trickle.response(), Ok(408), "the slow body was not cut off");
    assert!(
        trickle.get("/v1/inbox").is_err(),
        "the connection of a timed-out body stayed open"
    );
    unaffected(&home, &gw).await;
}

#[tokio::test]
async fn connections_over_a_holders_limit_get_429_and_others_connect() {
    let home = Home::new();
    with(&home, "limits", "connections_per_peer = 2");
    let gw = home.start();
    let mut first = connect(&home, &gw, "police").unwrap();
    let mut second = connect(&home, &gw, "police").unwrap();
    assert_eq!(first.get("/v1/inbox"), Ok(200));
    assert_eq!(second.get("/v1/inbox"), Ok(200));
    let mut third = connect(&home, &gw, "police").unwrap();
    assert_eq!(third.get("/v1/inbox"), Ok(429));
    assert!(
        third.get("/v1/inbox").is_err(),
        "the connection over the limit stayed open"
    );
    // another authority has connections of its own
    let mut prison = [
        connect(&home, &gw, "prison").unwrap(),
        connect(&home, &gw, "prison").unwrap(),
    ];
    for c in &mut prison {
        assert_eq!(c.get("/v1/inbox"), Ok(200));
    }
    // a closed connection frees its place
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let mut c = connect(&home, &gw, "police").unwrap();
        if c.get("/v1/inbox") == Ok(200) {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        again.is_some(),
        "a closed connection did not free its place"
    );
    assert_eq!(second.get("/v1/inbox"), Ok(200));
}

#[tokio::test]
async fn a_route_of_its_own_size_limit_refuses_over_it_and_the_others_keep_theirs() {
    let home = Home::new();
    home.edit_config(|t| {
        t.replace(
            "[store]\n",
            "[limits.body_bytes_per_route]\n\"/police/v1/dokumenter\" = 1000\n\n[store]\n",
        )
    });
    let gw = home.start();
    let report = police_report(1, "ROUTE-LIMIT");
    assert!(report.len() > 1000);
    let r = post_json(
        &client_for(&home, "police"),
        &gw,
        "/police/v1/dokumenter",
        report,
    )
    .await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("1000 bytes"),
        "{body}"
    );
    // the courts' verdict, larger still, is within the general limit
    let verdict = court_verdict(1);
    assert!(verdict.len() > 1000);
    let r = client_for(&home, "courts")
        .post(gw.url("/courts/v1/dokumenter"))
        .header("Content-Type", "application/xml; charset=ISO-8859-1")
        .body(verdict)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    unaffected(&home, &gw).await;
}

#[tokio::test]
async fn json_nested_too_deep_or_with_an_overlong_string_is_refused_naming_where() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    // nesting past the default 32, inside a document that is otherwise a report
    let mut v: Value = serde_json::from_slice(&police_report(2, "DEEP")).unwrap();
    let mut deep = Value::from(1);
    for _ in 0..40 {
        deep = Value::Array(vec![deep]);
    }
    v["bilag"] = deep;
    let r = post_json(&police, &gw, "/police/v1/dokumenter", v.to_string()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:jxg:problem:json-limit", "{body}");
    let at = body["errors"][0]["path"].as_str().unwrap();
    assert!(at.starts_with("/bilag/0/0/"), "{body}");
    // the object, `bilag` and its arrays: 32 levels, where the 33rd opened
    assert_eq!(at.matches('/').count(), 32, "{body}");
    // a string past the default 65,536 bytes, named by its pointer and never shown
    let mut v: Value = serde_json::from_slice(&police_report(3, "LONG")).unwrap();
    let secret = "A".repeat(70_000);
    v["gerningssted"] = Value::from(secret.clone());
    let r = post_json(&police, &gw, "/police/v1/dokumenter", v.to_string()).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["errors"][0]["path"], "/gerningssted", "{body}");
    assert!(!text.contains("AAAAAAAA"));
    // the canonical route holds the same limits
    let mut m: Value =
        serde_json::from_slice(&sample("canonical/valid/custody.admitted.json")).unwrap();
    m["note"] = Value::from(secret);
    let r = post_json(
        &client_for(&home, "prison"),
        &gw,
        "/v1/messages",
        m.to_string(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["path"], "/note", "{body}");
    // and a document within them is accepted
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(4, "FINE"),
    )
    .await;
    assert_eq!(r.status(), 202);
    unaffected(&home, &gw).await;
}

#[tokio::test]
async fn ten_thousand_requests_over_the_rate_limit_cost_no_store_write_each_and_are_summarised() {
    let home = Home::new();
    home.delivery(&[("refusal_summary_seconds", "1")]);
    // the police may send one document, and then practically nothing
    home.edit_config(|t| {
        t.replacen(
            "id = \"police\"\n",
            "id = \"police\"\nrate_per_second = 0.001\nburst = 1\n",
            1,
        )
    });
    let gw = home.start();
    let police = client_for(&home, "police");
    let first = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(1, "FLOOD"),
    )
    .await;
    assert_eq!(first.status(), 202);
    // let the acceptance's own writes (and its checkpoint) settle before counting
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes =
        |s: &prometheus_parse::Scrape| sum(s, "jxg_store_flush_duration_seconds_count", &[]);
    let before = writes(&metrics(&home, &gw).await.1);
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(0..10_000)
        .map(|n| {
            let (police, gw) = (&police, &gw);
            async move {
                post_json(
                    police,
                    gw,
                    "/police/v1/dokumenter",
                    police_report(n + 2, "FLOOD"),
                )
                .await
                .status()
                .as_u16()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 9_990, "{refused} of 10000 got 429");
    // the summaries of the flood come at the configured rate
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seconds = started.elapsed().as_secs_f64().ceil();
    let writes = writes(&metrics(&home, &gw).await.1) - before;
    // a summary and its checkpoint per second (and whatever the rest of the gateway writes
    // meanwhile) — not one write per refusal
    assert!(
        writes <= 4.0 * seconds + 10.0,
        "{writes} store writes in {seconds} s for {refused} refusals"
    );
    unaffected(&home, &gw).await;
    let mut gw = gw;
    assert!(gw.terminate().success());
    // every refusal is in the log, in a bounded number of summaries
    let summaries: Vec<_> = stored::audit_log(&home)
        .await
        .into_iter()
        .filter(|e| {
            e.record.actor == "police"
                && e.record
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.contains(" × 429 POST /police/v1/dokumenter"))
        })
        .collect();
    let counted: usize = summaries
        .iter()
        .map(|e| {
            let d = e.record.detail.as_deref().unwrap();
            d[..d.find(' ').unwrap()].parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(counted, refused, "every refusal is counted once");
    assert!(
        summaries.len() as f64 <= seconds + 2.0,
        "{} summaries in {seconds} s",
        summaries.len()
    );
    for e in &summaries {
        let d = e.record.detail.as_deref().unwrap();
        assert!(d.contains(", from ") && d.contains(" to "), "{d}");
    }
}
