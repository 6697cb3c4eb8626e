//! Corrections and withdrawals (canonical v2) over the real gateway: who is told what, in which
//! format, and what is refused.

use jxg_schema::schema::{Form, check};
use jxg_tests::*;
use serde_json::{Value, json};

/// The story's verdict (unsuspended imprisonment) as the courts submit it.
fn verdict(source: &str) -> Value {
    submission("canonical/valid/verdict.issued.json", source)
}

/// The same verdict with day fines instead: a sentence the prison does not enforce.
fn day_fines(mut v: Value) -> Value {
    v["body"]["sentence"] = json!({
        "kind": "day_fines",
        "suspended": false,
        "conditions": [],
        "day_fines": {"count": 20, "rate": {"minor": 50000, "currency": "DKK"}}
    });
    v
}

/// `m` as a v2 correction of the courts' document `replaced`.
fn correcting(mut m: Value, replaced: &str, reason: &str) -> Value {
    m["schema"] = json!("jxg.canonical/v2");
    m["replaces"] = json!({"source_document_id": replaced, "reason": reason});
    m
}

async fn post(c: &reqwest::Client, gw: &Gateway, m: &Value) -> reqwest::Response {
    post_json(c, gw, "/v1/messages", m.to_string()).await
}

/// Each recipient of a message as its sender sees it: (status, copy).
async fn recipients(
    c: &reqwest::Client,
    gw: &Gateway,
    id: &str,
) -> std::collections::BTreeMap<String, (String, String)> {
    let s = get_json(c, &gw.url(&format!("/v1/messages/{id}"))).await;
    s["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap().to_string(),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["copy"].as_str().unwrap_or("-").to_string(),
                ),
            )
        })
        .collect()
}

/// What the prison's inbox holds, each item's content parsed, its signature checked and the
/// content checked against the canonical schema of the version it names.
async fn prison_inbox(home: &Home, gw: &Gateway) -> Vec<(Value, Value)> {
    let prison = client_for(home, "prison");
    let keys = jwks(&prison, gw).await;
    let mut out = vec![];
    for item in inbox(&prison, gw).await {
        assert_eq!(item["format"], "canonical-v2");
        let content = item["content"].as_str().unwrap();
        verify_detached(
            item["signature"].as_str().unwrap(),
            content.as_bytes(),
            &keys,
        )
        .unwrap();
        let doc: Value = serde_json::from_str(content).unwrap();
        assert_eq!(doc["schema"], "jxg.canonical/v2");
        let faults = check(Form::Stored, &doc);
        assert!(faults.is_empty(), "{faults}: {doc}");
        ack(&prison, gw, item["id"].as_str().unwrap()).await;
        out.push((item, doc));
    }
    out
}

#[tokio::test]
async fn a_verdict_corrected_to_day_fines_is_withdrawn_from_the_prison_and_flagged_where_a_format_cannot_say_it()
 {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let original = accepted_id(post(&courts, &gw, &verdict("DOM-C-1")).await).await;
    let got = prison_inbox(&home, &gw).await;
    assert_eq!(got.len(), 1, "imprisonment is enforced: the prison gets it");
    assert_eq!(got[0].1["id"], original.as_str());
    assert!(got[0].1.get("replaces").is_none());

    let correction = correcting(day_fines(verdict("DOM-C-2")), "DOM-C-1", "decision-changed");
    let r = post(&courts, &gw, &correction).await;
    let corrected = accepted_id(r).await;
    let told = recipients(&courts, &gw, &corrected).await;
    assert_eq!(
        told["prison"],
        ("queued".to_string(), "withdrawal".to_string()),
        "{told:?}"
    );
    // neither police JSON nor the flat records can say "this replaces that" yet: an operator
    // is asked to tell them, and nothing is sent that would leave them holding both versions
    assert_eq!(told["police"].0, "flagged", "{told:?}");
    assert_eq!(told["prosecution"].0, "flagged", "{told:?}");

    let got = prison_inbox(&home, &gw).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let w = &got[0].1;
    assert_eq!(w["type"], "message.withdrawn");
    assert_eq!(w["id"], corrected.as_str());
    assert_eq!(w["body"]["message_id"], original.as_str());
    assert_eq!(w["body"]["source_document_id"], "DOM-C-1");
    assert_eq!(w["body"]["reason"], "erasure");
    assert_eq!(w["correlation_id"], correction["correlation_id"]);
    assert!(
        w["body"].get("sentence").is_none(),
        "a withdrawal carries no body of the verdict"
    );

    // the same correction again is its first answer
    let again = post(&courts, &gw, &correction).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["jxg-duplicate"], "true");

    // the original was replaced: only the latest version may be corrected, and it is named
    let p = problem(
        post(
            &courts,
            &gw,
            &correcting(verdict("DOM-C-3"), "DOM-C-1", "wrong-data"),
        )
        .await,
        409,
        "a correction of a replaced message",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains(&corrected),
        "names the correction that replaced it: {p}"
    );

    // another authority may not correct the courts' verdict
    let prosecution = client_for(&home, "prosecution");
    let mut theirs = verdict("AM-C-1");
    theirs.as_object_mut().unwrap().remove("sender");
    theirs["schema"] = json!("jxg.canonical/v2");
    theirs["replaces"] = json!({"message_id": corrected, "reason": "wrong-data"});
    let p = problem(
        post(&prosecution, &gw, &theirs).await,
        403,
        "another authority's",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("default-deny"),
        "names the deciding policy: {p}"
    );

    // a correction of nothing the courts sent, and one of another type, name their field
    problem(
        post(
            &courts,
            &gw,
            &correcting(verdict("DOM-C-4"), "DOM-NONE", "wrong-data"),
        )
        .await,
        409,
        "a correction of an unknown document",
    )
    .await;
    let mut other_type = correcting(
        submission("canonical/valid/hearing.scheduled.json", "DOM-C-5"),
        "DOM-C-2",
        "wrong-data",
    );
    other_type["correlation_id"] = correction["correlation_id"].clone();
    other_type["case"] = correction["case"].clone();
    let p = problem(post(&courts, &gw, &other_type).await, 422, "another type").await;
    assert_eq!(problem_paths(&p), ["type"], "{p}");

    // a withdrawal of the correction; then nothing more may be done with it
    let withdrawal = json!({
        "schema": "jxg.canonical/v2",
        "type": "message.withdrawn",
        "source_document_id": "DOM-C-6",
        "occurred_at": "2026-06-16T10:00:00Z",
        "purpose": correction["purpose"],
        "classification": correction["classification"],
        "case": correction["case"],
        "correlation_id": correction["correlation_id"],
        "body": {"source_document_id": "DOM-C-2", "reason": "sent-in-error"}
    });
    let withdrawn = accepted_id(post(&courts, &gw, &withdrawal).await).await;
    let told = recipients(&courts, &gw, &withdrawn).await;
    // the prison no longer holds the verdict; the police and the prosecution still hold the
    // first version (they could not be told of the second) and cannot be told of this either
    assert!(!told.contains_key("prison"), "{told:?}");
    assert_eq!(told["police"].0, "flagged", "{told:?}");
    assert_eq!(told["prosecution"].0, "flagged", "{told:?}");
    let mut twice = withdrawal.clone();
    twice["source_document_id"] = json!("DOM-C-7");
    let p = problem(post(&courts, &gw, &twice).await, 409, "a withdrawn message").await;
    assert!(p["detail"].as_str().unwrap().contains(&withdrawn), "{p}");
    // a withdrawal in v1 does not exist
    let mut v1 = withdrawal.clone();
    v1["schema"] = json!("jxg.canonical/v1");
    v1["source_document_id"] = json!("DOM-C-8");
    problem(post(&courts, &gw, &v1).await, 422, "a v1 withdrawal").await;
    assert_audit_verifies(&home, &gw).await;
}

#[tokio::test]
async fn a_day_fine_verdict_corrected_to_imprisonment_reaches_the_prison_as_a_new_message() {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let original = accepted_id(post(&courts, &gw, &day_fines(verdict("DOM-N-1"))).await).await;
    let told = recipients(&courts, &gw, &original).await;
    assert!(
        !told.contains_key("prison"),
        "day fines are not enforced by the prison: {told:?}"
    );
    assert!(prison_inbox(&home, &gw).await.is_empty());

    let correction = correcting(verdict("DOM-N-2"), "DOM-N-1", "wrong-data");
    let corrected = accepted_id(post(&courts, &gw, &correction).await).await;
    let told = recipients(&courts, &gw, &corrected).await;
    assert_eq!(
        told["prison"],
        ("queued".to_string(), "message".to_string()),
        "{told:?}"
    );
    assert_eq!(told["police"].0, "flagged", "{told:?}");
    let got = prison_inbox(&home, &gw).await;
    assert_eq!(got.len(), 1);
    let m = &got[0].1;
    assert_eq!(m["id"], corrected.as_str());
    assert_eq!(m["type"], "verdict.issued");
    assert_eq!(m["body"]["sentence"]["kind"], "imprisonment");
    assert!(
        m.get("replaces").is_none(),
        "the prison never had the day-fine verdict: it gets the verdict as new, {m}"
    );
    assert_audit_verifies(&home, &gw).await;
}
