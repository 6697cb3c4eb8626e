//! A stored record that cannot be read (a bad sector, a botched restore) stops nothing else:
//! the delivery workers, the inboxes, the AMQP consumer and retention go on with everything
//! else; the record is reported (a metric, a log line without content, an admin listing) and its
//! deliveries are dead-lettered; a request that needs it gets a 500 that says so, never a 503
//! that invites retrying forever.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use jxg_tests::*;

#[tokio::test]
async fn an_unreadable_record_is_reported_and_everything_else_goes_on() {
    let (home, p, (inq, outq, rejq)) = broker_home("unreadable").await;
    // first, the prosecution's broker is away: its deliveries wait in the store
    home.delivery(&[
        ("url", "\"amqp://guest:guest@127.0.0.1:1/%2f\""),
        ("retry_base_ms", "100"),
        ("retry_cap_ms", "500"),
        ("max_attempts", "10000"),
        ("breaker_failures", "10000"),
    ]);
    let mut gw = home.start();
    let courts = client_for(&home, "courts");
    let mut verdicts = Vec::new();
    for n in 0..3 {
        let r = courts
            .post(gw.url("/courts/v1/dokumenter"))
            .header("Content-Type", "application/xml; charset=ISO-8859-1")
            .body(court_verdict(100 + n))
            .send()
            .await
            .unwrap();
        verdicts.push(accepted_id(r).await);
    }
    let police = client_for(&home, "police");
    let mut reports = Vec::new();
    for n in 0..2 {
        let r = post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            police_report(n, "UNREADABLE"),
        )
        .await;
        reports.push(accepted_id(r).await);
    }
    assert!(gw.terminate().success());
    let (bad_verdict, bad_report) = (verdicts[0].clone(), reports[0].clone());
    stored::damage_message(&home, &bad_verdict);
    stored::damage_message(&home, &bad_report);

    // the broker is back
    home.delivery(&[("url", &format!("\"{BROKER_URL}\""))]);
    let gw = home.start();
    // the inboxes offer everything else, and leave the unreadable one out
    for who in ["prison", "police"] {
        let c = client_for(&home, who);
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !got.contains(&verdicts[1]) || !got.contains(&verdicts[2]) {
            assert!(Instant::now() < deadline, "{who}: {got:?}");
            got.extend(drain_inbox(&c, &gw).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!got.contains(&bad_verdict), "{who}");
    }
    // the prosecution's worker delivers the rest
    let mut out = BTreeSet::new();
    let want: BTreeSet<String> = [&verdicts[1], &verdicts[2], &reports[1]]
        .into_iter()
        .cloned()
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !want.is_subset(&out) {
        assert!(Instant::now() < deadline, "{out:?}");
        match p.take(&outq).await {
            Some(m) => {
                out.insert(m.message_id.unwrap());
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(!out.contains(&bad_verdict) && !out.contains(&bad_report));
    // the AMQP consumer goes on: an indictment is accepted and reaches the courts
    p.publish(
        &inq,
        &sample("prosecution/valid/tilt-1.flat"),
        "ANK-UNREADABLE-1",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while drain_inbox(&courts, &gw).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the indictment never reached the courts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // the records are reported: an admin listing, a metric, a log line without content
    let operator = client_for(&home, "operator");
    let listed = get_json(&operator, &gw.admin_url("/admin/v1/unreadable")).await;
    let ids: BTreeSet<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [bad_verdict.as_str(), bad_report.as_str()].into(),
        "{listed}"
    );
    for i in listed["items"].as_array().unwrap() {
        assert!(
            ["delivery", "inbox", "retention"].contains(&i["found_by"].as_str().unwrap()),
            "{i}"
        );
        assert!(i["error"].as_str().unwrap().contains("message"), "{i}");
    }
    let scrape = metrics(&home, &gw).await.1;
    assert!(sum(&scrape, "jxg_store_unreadable_records_total", &[]) >= 2.0);
    assert!(sum(&scrape, "jxg_dead_letters_total", &[]) >= 2.0);
    let secrets = personal_data();
    let lines: Vec<String> = gw
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("a stored record cannot be read"))
        .cloned()
        .collect();
    assert!(lines.iter().any(|l| l.contains(&bad_verdict)), "{lines:?}");
    for l in &lines {
        for s in &secrets {
            assert!(!l.contains(s.as_str()), "{l}");
        }
    }
    // a request that needs the record is told so: 500, not a 503 to retry forever
    let again = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(0, "UNREADABLE"),
    )
    .await;
    let problem = problem(again, 500, "a duplicate of the unreadable report").await;
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unreadable-record")),
        "{problem}"
    );
    // a new document is accepted as ever
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(5, "UNREADABLE"),
    )
    .await;
    assert_eq!(r.status(), 202);

    // retention skips what it cannot read, says so, and purges the rest
    drain_inbox(&police, &gw).await;
    let mut gw = gw;
    assert!(gw.terminate().success());
    let far = time::OffsetDateTime::now_utc() + time::Duration::days(6 * 366);
    let at = far
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (code, out, err) = jxg(&home, &["retention", "purge", "--at", &at]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("skipped 2 messages"), "{out}");
    let purged: usize = out
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(purged >= 3, "{out}");
    p.delete(&[&inq, &outq, &rejq]).await;
}
