//! The security policies through the real gateway: who receives what, what each recipient sees
//! (signed as minimised), refusals at ingest, and reloads under load.

use jxg_tests::*;
use serde_json::{Value, json};

const VICTIMS_ADDRESS: &str = "borggade 40";
const WITNESS_ADDRESS: &str = "Stefansgade 5";

/// The courts' hearing sample for a defendant in custody, naming the report's suspect, victim
/// (protected address) and witness.
fn hearing_with_victim_and_witness(id: &str) -> Value {
    let mut h = submission("canonical/valid/hearing.scheduled.json", id);
    let report: Value =
        serde_json::from_slice(&sample("canonical/valid/offence.reported.json")).unwrap();
    h["body"]["persons"] = report["body"]["persons"].clone();
    h["body"]["defendant_in_custody"] = Value::Bool(true);
    h
}

async fn post_canonical(c: &reqwest::Client, gw: &Gateway, m: &Value) -> reqwest::Response {
    post_json(c, gw, "/v1/messages", serde_json::to_vec(m).unwrap()).await
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

#[tokio::test]
async fn a_hearing_reaches_the_prison_with_the_defendant_only_and_the_others_without_the_protected_address()
 {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let keys = jwks(&courts, &gw).await;
    let r = post_canonical(&courts, &gw, &hearing_with_victim_and_witness("H-1")).await;
    let id = accepted_id(r).await;

    // prison: the defendant only, no address; the signature covers exactly these bytes
    let prison = inbox(&client_for(&home, "prison"), &gw).await;
    assert_eq!(prison.len(), 1);
    let content = prison[0]["content"].as_str().unwrap();
    let header = verify_detached(
        prison[0]["signature"].as_str().unwrap(),
        content.as_bytes(),
        &keys,
    )
    .unwrap();
    assert_eq!(header["jxg_recipient"], "prison");
    let got: Value = serde_json::from_str(content).unwrap();
    let persons = got["body"]["persons"].as_array().unwrap();
    assert_eq!(persons.len(), 1, "{persons:?}");
    assert_eq!(persons[0]["role"], "suspect");
    assert!(persons[0].get("address").is_none());
    for absent in [VICTIMS_ADDRESS, WITNESS_ADDRESS, "Thygesen", "stergaard"] {
        assert!(!content.contains(absent), "prison got {absent}");
    }
    // the unminimised bytes do not verify against the prison's signature
    let mut full: Value = got.clone();
    full["body"]["persons"] = hearing_with_victim_and_witness("H-1")["body"]["persons"].clone();
    assert!(
        verify_detached(
            prison[0]["signature"].as_str().unwrap(),
            &serde_json::to_vec(&full).unwrap(),
            &keys
        )
        .is_err()
    );

    // prosecution (canonical) and police (police-json): all three, without the protected address
    let prosecution = inbox(&client_for(&home, "prosecution"), &gw).await;
    let got: Value = serde_json::from_str(prosecution[0]["content"].as_str().unwrap()).unwrap();
    let persons = got["body"]["persons"].as_array().unwrap();
    assert_eq!(persons.len(), 3);
    assert!(persons[1].get("address").is_none(), "the victim's address");
    assert!(persons[2].get("address").is_some(), "the witness's address");
    let police = inbox(&client_for(&home, "police"), &gw).await;
    let content = police[0]["content"].as_str().unwrap();
    verify_detached(
        police[0]["signature"].as_str().unwrap(),
        content.as_bytes(),
        &keys,
    )
    .unwrap();
    assert!(content.contains("Thygesen") && content.contains(WITNESS_ADDRESS));
    assert!(!content.contains(VICTIMS_ADDRESS), "{content}");

    // the sender sees per recipient what was removed and by which rule (places only)
    let s = status(&courts, &gw, &id).await;
    let prison = s["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipient"] == "prison")
        .unwrap();
    let removed: Vec<(&str, &str)> = prison["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap(), r["rule"].as_str().unwrap()))
        .collect();
    assert!(removed.contains(&("/body/persons/1", "no-victims-or-witnesses-to-prison")));
    assert!(removed.contains(&("/body/persons/2", "no-victims-or-witnesses-to-prison")));
    assert!(!s.to_string().contains("stergaard"), "no personal data");
}

#[tokio::test]
async fn an_indictments_narrative_reaches_the_courts_but_not_the_police() {
    let home = Home::new();
    let gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let m = submission("canonical/valid/indictment.filed.json", "T-1");
    let narrative = m["body"]["narrative"].as_str().unwrap().to_string();
    let fragment: String = narrative.chars().take(24).collect();
    accepted_id(post_canonical(&prosecution, &gw, &m).await).await;
    let courts = inbox(&client_for(&home, "courts"), &gw).await;
    assert_eq!(courts[0]["format"], "court-xml");
    assert!(
        courts[0]["content"].as_str().unwrap().contains(&fragment),
        "the courts get the narrative"
    );
    let police = inbox(&client_for(&home, "police"), &gw).await;
    assert_eq!(police[0]["format"], "police-json");
    assert!(!police[0]["content"].as_str().unwrap().contains(&fragment));
}

#[tokio::test]
async fn only_verdicts_that_must_be_enforced_reach_the_prison() {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let mut fine = submission("canonical/valid/verdict.issued.json", "V-fine");
    fine["body"]["sentence"] = json!({"kind": "fine", "suspended": false, "conditions": [],
                                      "fine": {"minor": 500000, "currency": "DKK"}});
    let mut suspended = submission("canonical/valid/verdict.issued-suspended.json", "V-susp");
    suspended["body"]["sentence"]["conditions"] = json!([]);
    let prison_sentence = submission("canonical/valid/verdict.issued.json", "V-prison");
    for m in [&fine, &suspended, &prison_sentence] {
        accepted_id(post_canonical(&courts, &gw, m).await).await;
    }
    let prison = client_for(&home, "prison");
    let items = inbox(&prison, &gw).await;
    assert_eq!(items.len(), 1, "only the prison sentence: {items:?}");
    let got: Value = serde_json::from_str(items[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(got["source_document_id"], "V-prison");
    ack(&prison, &gw, items[0]["id"].as_str().unwrap()).await;
    assert!(inbox(&prison, &gw).await.is_empty());
    // the police receive all three
    let police = client_for(&home, "police");
    let mut n = 0;
    for _ in 0..3 {
        for item in inbox(&police, &gw).await {
            ack(&police, &gw, item["id"].as_str().unwrap()).await;
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_message_no_recipient_may_receive_is_refused_with_403_and_the_policy() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let mut m = submission("canonical/valid/offence.reported.json", "S-1");
    m["classification"] = Value::from("secret");
    let r = post_canonical(&police, &gw, &m).await;
    assert_eq!(r.status(), 403);
    let p: Value = r.json().await.unwrap();
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("prosecution") && detail.contains("secret-needs-clearance"),
        "{detail}"
    );
    // nothing was stored: the same document id with another classification is new, not a 409
    m["classification"] = Value::from("confidential");
    assert_eq!(post_canonical(&police, &gw, &m).await.status(), 202);
    // a purpose the route does not have is refused for the sender, with the policy
    let mut m = submission("canonical/valid/offence.reported.json", "S-2");
    m["purpose"] = Value::from("criminal-record");
    let r = post_canonical(&police, &gw, &m).await;
    assert_eq!(r.status(), 403);
    let p: Value = r.json().await.unwrap();
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("no-exchange-for-criminal-record")
    );
}

fn operator(home: &Home) -> reqwest::Client {
    client_for(home, "operator")
}

async fn loaded(home: &Home, gw: &Gateway) -> Value {
    let r = operator(home)
        .get(gw.admin_url("/admin/v1/policies"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn reload(home: &Home, gw: &Gateway) -> reqwest::Response {
    operator(home)
        .post(gw.admin_url("/admin/v1/policies/reload"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_broken_reload_keeps_the_old_set_and_a_good_one_changes_the_next_decision() {
    let home = Home::new();
    let gw = home.start();
    let before = loaded(&home, &gw).await;
    assert!(
        before["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "prison-verdicts-only-when-enforced")
    );
    // only operators
    for who in ["police", "auditor"] {
        let r = client_for(&home, who)
            .post(gw.admin_url("/admin/v1/policies/reload"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{who}");
    }

    let extra = home.path().join("policies/local.cedar");
    std::fs::write(
        &extra,
        "@id(\"no-hearings-to-police\")\n\
         forbid (principal == Authority::\"police\", action == Action::\"receive\", resource)\n\
         when { resource.type == MessageType::\"hearing.scheduled\" && resource.urgent };\n",
    )
    .unwrap();
    let r = reload(&home, &gw).await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["path"], "local.cedar:3", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("urgent")
    );
    assert_eq!(loaded(&home, &gw).await["digest"], before["digest"]);

    // the old set still decides: the police get the hearing
    let courts = client_for(&home, "courts");
    let police = client_for(&home, "police");
    let r = post_canonical(&courts, &gw, &hearing_with_victim_and_witness("H-a")).await;
    accepted_id(r).await;
    let items = inbox(&police, &gw).await;
    assert_eq!(items.len(), 1);
    ack(&police, &gw, items[0]["id"].as_str().unwrap()).await;

    std::fs::write(
        &extra,
        "@id(\"no-hearings-to-police\")\n\
         forbid (principal == Authority::\"police\", action == Action::\"receive\", resource)\n\
         when { resource.type == MessageType::\"hearing.scheduled\" };\n",
    )
    .unwrap();
    let r = reload(&home, &gw).await;
    assert_eq!(r.status(), 200);
    let swapped: Value = r.json().await.unwrap();
    assert_eq!(swapped["previous_digest"], before["digest"]);
    assert_eq!(swapped["changed"], true);
    assert_eq!(loaded(&home, &gw).await["digest"], swapped["digest"]);

    let id =
        accepted_id(post_canonical(&courts, &gw, &hearing_with_victim_and_witness("H-b")).await)
            .await;
    assert!(
        inbox(&police, &gw).await.is_empty(),
        "refused by the new set"
    );
    let s = status(&courts, &gw, &id).await;
    let skipped = s["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipient"] == "police")
        .unwrap();
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["policy"], "no-hearings-to-police");
}

#[tokio::test]
async fn concurrent_reloads_under_load_lose_no_message() {
    const MESSAGES: usize = 60;
    let home = Home::new();
    let gw = home.start();
    let extra = home.path().join("policies/local.cedar");
    let police = client_for(&home, "police");
    let senders = (0..MESSAGES).map(|i| {
        let police = police.clone();
        let url = gw.url("/police/v1/dokumenter");
        async move {
            police
                .post(url)
                .header("Content-Type", "application/json")
                .body(with_dokumentid(
                    "police/valid/anmeldelse-1.json",
                    &format!("RELOAD-{i}"),
                ))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    // reloads alternate between two valid sets while the documents go in
    let reloads = async {
        let mut ok = 0;
        for i in 0..12 {
            if i % 2 == 0 {
                std::fs::write(
                    &extra,
                    "@id(\"nothing-to-the-police-for-the-record\")\n\
                     forbid (principal == Authority::\"police\", action, resource)\n\
                     when { resource.purpose == Purpose::\"criminal-record\" };\n",
                )
                .unwrap();
            } else {
                std::fs::remove_file(&extra).unwrap();
            }
            let r = reload(&home, &gw).await;
            assert_eq!(r.status(), 200);
            ok += 1;
        }
        ok
    };
    let (statuses, reloaded) = tokio::join!(futures_util::future::join_all(senders), reloads);
    assert_eq!(reloaded, 12);
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    // every accepted report reaches the prosecution exactly once
    let prosecution = client_for(&home, "prosecution");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..(MESSAGES * 3) {
        let items = inbox(&prosecution, &gw).await;
        if items.is_empty() && seen.len() == MESSAGES {
            break;
        }
        for item in items {
            let m: Value = serde_json::from_str(item["content"].as_str().unwrap()).unwrap();
            assert!(
                seen.insert(m["source_document_id"].as_str().unwrap().to_string()),
                "delivered twice"
            );
            ack(&prosecution, &gw, item["id"].as_str().unwrap()).await;
        }
    }
    assert_eq!(seen.len(), MESSAGES);
}
