//! The admin API: roles on every route, subject access after the story, replay of a dead
//! letter under the policies in force, key rotation that keeps earlier signatures verifiable.

use jxg_tests::*;
use serde_json::{Value, json};

async fn call(
    c: &reqwest::Client,
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let url = gw.admin_url(path);
    let r = match method {
        "GET" => c.get(url),
        _ => c.post(url),
    };
    let r = match body {
        Some(b) => r
            .header("Content-Type", "application/json")
            .body(b.to_string()),
        None => r,
    };
    r.send().await.unwrap()
}

#[tokio::test]
async fn every_admin_route_answers_only_its_role() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        sample("police/valid/anmeldelse-1.json"),
    )
    .await;
    let id = accepted_id(r).await;
    let cpr = json!({"cpr": "0104909995"});
    // (method, path, body, role that may, status it gets)
    let routes: Vec<(&str, String, Option<Value>, &str, u16)> = vec![
        ("GET", "/admin/v1/messages".into(), None, "operator", 200),
        (
            "GET",
            format!("/admin/v1/messages/{id}"),
            None,
            "operator",
            200,
        ),
        (
            "POST",
            format!("/admin/v1/messages/{id}/replay?recipient=prosecution"),
            None,
            "operator",
            200,
        ),
        (
            "GET",
            "/admin/v1/dead-letters".into(),
            None,
            "operator",
            200,
        ),
        (
            "GET",
            "/admin/v1/rectifications".into(),
            None,
            "operator",
            200,
        ),
        (
            "POST",
            format!("/admin/v1/rectifications/{id}/notified"),
            Some(json!({"recipient": "courts"})),
            "operator",
            // the message is no correction
            404,
        ),
        (
            "GET",
            "/admin/v1/cases/1470-76543-00012-26/timeline".into(),
            None,
            "operator",
            200,
        ),
        ("GET", "/admin/v1/authorities".into(), None, "operator", 200),
        ("GET", "/admin/v1/routes".into(), None, "operator", 200),
        ("GET", "/admin/v1/policies".into(), None, "operator", 200),
        (
            "POST",
            "/admin/v1/policies/reload".into(),
            None,
            "operator",
            200,
        ),
        ("GET", "/admin/v1/keys".into(), None, "operator", 200),
        (
            "POST",
            "/admin/v1/keys/rotate".into(),
            None,
            "operator",
            200,
        ),
        ("GET", "/admin/v1/audit".into(), None, "auditor", 200),
        (
            "POST",
            "/admin/v1/audit/subject-access".into(),
            Some(cpr),
            "auditor",
            200,
        ),
        ("GET", "/admin/v1/audit/verify".into(), None, "auditor", 200),
        (
            "POST",
            "/admin/v1/audit/verifications".into(),
            None,
            "auditor",
            202,
        ),
        (
            "GET",
            format!("/admin/v1/policies/explain?message_id={id}&recipient=prosecution"),
            None,
            "operator",
            200,
        ),
    ];
    let clients = [
        ("operator", client_for(&home, "operator")),
        ("auditor", client_for(&home, "auditor")),
        ("police", police.clone()),
    ];
    for (method, path, body, role, status) in &routes {
        for (who, c) in &clients {
            let r = call(c, &gw, method, path, body.clone()).await;
            let got = r.status().as_u16();
            let text = r.text().await.unwrap();
            if who == role {
                assert_eq!(got, *status, "{who} {method} {path}: {text}");
            } else {
                assert_eq!(got, 403, "{who} {method} {path}: {text}");
                assert!(text.contains(role), "the 403 names the role: {text}");
            }
        }
    }
    // the console's first reads answer either admin role, and no authority
    for path in ["/admin/v1/session", "/admin/v1/overview"] {
        for (who, c) in &clients {
            let got = call(c, &gw, "GET", path, None).await.status().as_u16();
            let want = if *who == "police" { 403 } else { 200 };
            assert_eq!(got, want, "{who} GET {path}");
        }
    }
    // operators never see bodies or subjects
    let r = call(
        &clients[0].1,
        &gw,
        "GET",
        &format!("/admin/v1/messages/{id}"),
        None,
    )
    .await;
    let text = r.text().await.unwrap();
    for secret in ["Hansen", "0104909995", "subjects", "narrative", "content"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // the operator's reads are in the audit log as consultations
    let r = call(&clients[1].1, &gw, "GET", "/admin/v1/audit?limit=500", None).await;
    let log: Value = r.json().await.unwrap();
    let consulted: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "consulted" && e["actor"] == "admin:operator")
        .collect();
    assert!(consulted.len() >= 3, "{consulted:?}");
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "replayed" && e["actor"] == "admin:operator")
    );
}

#[tokio::test]
async fn a_subject_access_request_lists_every_disclosure_of_the_defendant_and_is_itself_audited() {
    let home = Home::new();
    let gw = home.start();
    let ids = play_story(&home, &gw).await;
    let auditor = client_for(&home, "auditor");
    let r = call(
        &auditor,
        &gw,
        "POST",
        "/admin/v1/audit/subject-access",
        Some(json!({"cpr": "0104909995"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("0104909995"),
        "the answer holds the pseudonym only"
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    let subject = answer["subject"].as_str().unwrap().to_string();
    let disclosures = answer["disclosures"].as_array().unwrap();
    // every copy of the story's messages about him was taken by its recipient
    let mut pairs: Vec<(String, String)> = disclosures
        .iter()
        .map(|d| {
            assert!(d["at"].as_str().unwrap().ends_with('Z'));
            (
                d["message_id"].as_str().unwrap().to_string(),
                d["recipient"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    let expected = [
        (0, "prosecution"),
        (1, "courts"),
        (1, "police"),
        (2, "prosecution"),
        (2, "police"),
        (2, "prison"),
        (3, "police"),
        (3, "prosecution"),
        (4, "police"),
        (4, "prosecution"),
    ];
    for (i, who) in expected {
        assert!(
            pairs.contains(&(ids[i].clone(), who.to_string())),
            "no disclosure of message {i} to {who}: {pairs:?}"
        );
    }
    assert_eq!(pairs.len(), expected.len(), "{pairs:?}");
    // what was removed for whom, by which rule, is part of the answer
    assert!(
        answer["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "minimised"
                && e["recipient"] == "prison"
                && e["rule"] == "prison-sees-persons-hearings-custody-sentences")
    );
    // a bad number names the field
    let r = call(
        &auditor,
        &gw,
        "POST",
        "/admin/v1/audit/subject-access",
        Some(json!({"cpr": "3204909995"})),
    )
    .await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["path"], "cpr");
    // the query is in the log as the auditor's consultation about that subject
    let log: Value = call(&auditor, &gw, "GET", "/admin/v1/audit?limit=500", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "consulted"
                && e["actor"] == "admin:auditor"
                && e["subjects"][0] == subject.as_str())
    );
    let verified: Value = call(&auditor, &gw, "GET", "/admin/v1/audit/verify", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["status"], "ok", "{verified}");
}

#[tokio::test]
async fn a_replayed_dead_letter_is_decided_again_and_delivered_once() {
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::Always(500));
    home.push_to("courts", &hook.url);
    home.delivery(&[
        ("retry_base_ms", "20"),
        ("retry_cap_ms", "50"),
        ("max_attempts", "2"),
        ("breaker_failures", "100"),
    ]);
    let gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let m = submission("canonical/valid/indictment.filed.json", "ANK-REPLAY-1");
    let id = accepted_id(post_json(&prosecution, &gw, "/v1/messages", m.to_string()).await).await;
    let operator = client_for(&home, "operator");
    let mut dead = Value::Null;
    for _ in 0..200 {
        dead = call(&operator, &gw, "GET", "/admin/v1/dead-letters", None)
            .await
            .json()
            .await
            .unwrap();
        if !dead["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(dead["items"][0]["message_id"], id.as_str(), "{dead}");
    assert_eq!(dead["items"][0]["last_error"], "HTTP 500");
    hook.set(Mode::Ok);
    let r = call(
        &operator,
        &gw,
        "POST",
        &format!("/admin/v1/messages/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["recipients"][0]["outcome"], "queued", "{out}");
    hook.wait_until("the replayed copy", |h| {
        h.delivered()
            .iter()
            .any(|r| r.message_id == id && r.status == 200)
    })
    .await;
    // nothing left to replay
    let r = call(
        &operator,
        &gw,
        "POST",
        &format!("/admin/v1/messages/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    let auditor = client_for(&home, "auditor");
    // the recipient has the copy before the gateway has recorded its answer: the log is read
    // until it holds the delivery, for at most ten seconds
    let mut events: Vec<String> = Vec::new();
    for _ in 0..200 {
        let log: Value = call(
            &auditor,
            &gw,
            "GET",
            &format!("/admin/v1/audit?message_id={id}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        events = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["recipient"] == "courts")
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect();
        if events.iter().any(|e| e == "delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    for want in [
        "decided",
        "queued",
        "delivery_failed",
        "dead_lettered",
        "replayed",
        "delivered",
    ] {
        assert!(events.contains(&want), "{want} missing from {events:?}");
    }
}

#[tokio::test]
async fn after_a_key_rotation_earlier_signatures_and_checkpoints_still_verify() {
    let home = Home::new();
    let gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let police = client_for(&home, "police");
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        sample("police/valid/anmeldelse-1.json"),
    )
    .await;
    accepted_id(r).await;
    // let the checkpointer sign with the first key
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let operator = client_for(&home, "operator");
    let r = call(&operator, &gw, "POST", "/admin/v1/keys/rotate", None).await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    assert_ne!(rotated["previous"], rotated["current"]);
    let keys = jwks(&police, &gw).await;
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&rotated["previous"].as_str().unwrap()),
        "{kids:?}"
    );
    assert!(
        kids.contains(&rotated["current"].as_str().unwrap()),
        "{kids:?}"
    );
    // the copy signed before the rotation verifies against the published keys
    let items = inbox(&prosecution, &gw).await;
    let header = verify_detached(
        items[0]["signature"].as_str().unwrap(),
        items[0]["content"].as_str().unwrap().as_bytes(),
        &keys,
    )
    .unwrap();
    assert_eq!(header["kid"], rotated["previous"]);
    // and the next message is signed with the new key
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        with_dokumentid("police/valid/anmeldelse-1.json", "ROTATED-1"),
    )
    .await;
    let receipt: Value = r.json().await.unwrap();
    let (_, h) = verify_compact(receipt["receipt"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(h["kid"], rotated["current"]);
    let mut gw = gw;
    assert!(gw.terminate().success());
    // the log, checkpointed under both keys, verifies offline
    let (code, out, err) = jxg(&home, &["audit", "verify", "--config", "gateway.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let kids: std::collections::BTreeSet<String> = jxg_tests::stored::checkpoints(&home)
        .await
        .into_iter()
        .map(|(_, jws)| {
            let h = jws.split('.').next().unwrap().to_string();
            use base64::Engine;
            let h: Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(h)
                    .unwrap(),
            )
            .unwrap();
            h["kid"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(kids.len(), 2, "checkpoints under both keys: {kids:?}");
}

#[tokio::test]
async fn the_authorities_show_their_backlog_as_the_store_counts_it() {
    let home = Home::new();
    let mut gw = home.start();
    let operator = client_for(&home, "operator");
    let backlog = |v: &Value, who: &str| {
        let a = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == who)
            .unwrap()
            .clone();
        (
            a["waiting"].as_u64().unwrap(),
            a["dead"].as_u64().unwrap(),
            a["oldest_waiting"].clone(),
        )
    };
    let v: Value = call(&operator, &gw, "GET", "/admin/v1/authorities", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(backlog(&v, "prosecution"), (0, 0, Value::Null));
    let police = client_for(&home, "police");
    for n in 0..3 {
        let r = post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            police_report(n, "COUNT"),
        )
        .await;
        accepted_id(r).await;
    }
    let v: Value = call(&operator, &gw, "GET", "/admin/v1/authorities", None)
        .await
        .json()
        .await
        .unwrap();
    let (waiting, dead, oldest) = backlog(&v, "prosecution");
    assert_eq!((waiting, dead), (3, 0), "{v}");
    assert!(oldest.is_string(), "{v}");
    // taken and acknowledged: nothing waits; and the counts survive a restart
    let prosecution = client_for(&home, "prosecution");
    assert_eq!(drain_inbox(&prosecution, &gw).await.len(), 3);
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(9, "COUNT"),
    )
    .await;
    accepted_id(r).await;
    assert!(gw.terminate().success());
    let gw = home.start();
    let v: Value = call(&operator, &gw, "GET", "/admin/v1/authorities", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(backlog(&v, "prosecution").0, 1, "{v}");
}

/// Over a store of 100,000 messages, an audit verification and a message listing run while
/// `/healthz` and `/readyz` go on answering: the long reads run off the listener's workers and
/// page in bounded steps.
#[tokio::test]
async fn health_checks_answer_while_a_verify_and_a_listing_run_over_100000_messages() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let home = Home::new();
    // the fill and both reads go through the page cache: at the default 16 MiB they take a
    // quarter longer, and what the test asserts does not depend on it
    home.edit_config(|t| {
        let edited = t.replace("cache_mb = 16", "cache_mb = 64");
        assert_ne!(edited, t, "gateway.toml no longer sets cache_mb = 16");
        edited
    });
    let samples = samples_dir();
    let (code, _, err) = jxg_tools(
        &home,
        &[
            "bench-fill",
            "--config",
            "gateway.toml",
            "--samples",
            samples.to_str().unwrap(),
            "--count",
            "100000",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let gw = home.start();
    let (auditor, operator) = (client_for(&home, "auditor"), client_for(&home, "operator"));
    let done = Arc::new(AtomicBool::new(false));
    let verify = {
        let (auditor, url, done) = (
            auditor.clone(),
            gw.admin_url("/admin/v1/audit/verify"),
            done.clone(),
        );
        tokio::spawn(async move {
            // half a million entries take their time on a debug build and a busy machine: the
            // test is about what answers meanwhile, so this one request may take longer than a
            // client's usual minute
            let r = auditor
                .get(url)
                .timeout(std::time::Duration::from_secs(240))
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            done.store(true, Ordering::SeqCst);
            body
        })
    };
    // a listing whose filter matches nothing walks the whole store, a bounded page at a time
    let listing = {
        let (operator, gw_url) = (operator.clone(), gw.admin_url("/admin/v1/messages"));
        tokio::spawn(async move {
            let mut pages = 0;
            let mut cursor: Option<String> = None;
            loop {
                let url = match &cursor {
                    Some(c) => format!("{gw_url}?type=verdict.issued&cursor={c}"),
                    None => format!("{gw_url}?type=verdict.issued"),
                };
                let page = get_json(&operator, &url).await;
                assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{page}");
                pages += 1;
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => return pages,
                }
            }
        })
    };
    // health checks, one after another, until the verification has answered
    let mut answered_meanwhile = 0;
    while !done.load(Ordering::SeqCst) {
        for path in ["/healthz", "/readyz"] {
            let r = operator.get(gw.admin_url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
        if !done.load(Ordering::SeqCst) {
            answered_meanwhile += 1;
        }
    }
    let report = verify.await.unwrap();
    assert_eq!(report["status"], "ok", "{report}");
    assert!(
        report["report"]["entries"].as_u64().unwrap() >= 500_000,
        "{report}"
    );
    assert!(
        answered_meanwhile >= 3,
        "only {answered_meanwhile} health checks answered while the verification ran"
    );
    let pages = listing.await.unwrap();
    assert!(
        pages >= 20,
        "100,000 messages in pages of at most 5000 examined: {pages}"
    );
}

/// A browser's state-changing request must come from the admin listener's own origin and carry
/// the session's token; a client that is not a browser (no Origin, no Sec-Fetch-Site) needs none.
#[tokio::test]
async fn a_browsers_post_needs_its_own_origin_and_the_session_token() {
    let home = Home::new();
    let gw = home.start();
    let operator = client_for(&home, "operator");
    let own = format!("https://{}", gw.admin);
    let session: Value = call(&operator, &gw, "GET", "/admin/v1/session", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["role"], "operator", "{session}");
    let token = session["csrf_token"].as_str().unwrap().to_string();
    let reload = |origin: Option<&str>, site: Option<&str>, token: Option<&str>| {
        let mut r = operator.post(gw.admin_url("/admin/v1/policies/reload"));
        if let Some(o) = origin {
            r = r.header("Origin", o);
        }
        if let Some(s) = site {
            r = r.header("Sec-Fetch-Site", s);
        }
        if let Some(t) = token {
            r = r.header("X-CSRF-Token", t);
        }
        async move { r.send().await.unwrap() }
    };
    let refused = [
        (
            Some("https://evil.example"),
            Some("cross-site"),
            Some(token.as_str()),
        ),
        (Some("https://evil.example"), None, Some(token.as_str())),
        (Some(own.as_str()), Some("same-origin"), None),
        (
            Some(own.as_str()),
            Some("same-origin"),
            Some("bm90IHRoZSB0b2tlbg"),
        ),
        (None, Some("same-site"), Some(token.as_str())),
        (Some("null"), None, Some(token.as_str())),
    ];
    for (origin, site, t) in refused {
        let r = reload(origin, site, t).await;
        let p = problem(r, 403, "a cross-site request").await;
        assert_eq!(p["type"], "urn:jxg:problem:cross-site-request", "{p}");
    }
    // the auditor's token is not the operator's
    let auditor: Value = call(
        &client_for(&home, "auditor"),
        &gw,
        "GET",
        "/admin/v1/session",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(auditor["csrf_token"], session["csrf_token"]);
    let r = reload(
        Some(&own),
        Some("same-origin"),
        auditor["csrf_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = reload(Some(&own), Some("same-origin"), Some(&token)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = reload(None, None, None).await;
    assert_eq!(r.status(), 200, "a client that is not a browser");
}
