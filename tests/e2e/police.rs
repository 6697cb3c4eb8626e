//! The police path: every sample through the real gateway, into every recipient's inbox.

use jxg_tests::*;
use serde_json::Value;

async fn post_police(c: &reqwest::Client, gw: &Gateway, body: Vec<u8>) -> reqwest::Response {
    post_json(c, gw, "/police/v1/dokumenter", body).await
}

#[tokio::test]
async fn valid_police_documents_reach_every_recipient_signed_in_its_format() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let keys = jwks(&police, &gw).await;
    let cases = [
        (
            "police/valid/anmeldelse-1.json",
            "canonical/valid/offence.reported.json",
            vec!["prosecution"],
        ),
        (
            "police/valid/sigtelse-1.json",
            "canonical/valid/person.charged.json",
            vec!["prosecution"],
        ),
        (
            "police/valid/anholdelse-1.json",
            "canonical/valid/person.arrested.json",
            vec!["prosecution", "courts"],
        ),
    ];
    for (doc, canonical, recipients) in cases {
        let body = sample(doc);
        let r = post_police(&police, &gw, body.clone()).await;
        assert_eq!(r.status(), 202, "{doc}");
        let answer: Value = r.json().await.unwrap();
        let id = answer["id"].as_str().unwrap().to_string();
        let (claims, header) = verify_compact(answer["receipt"].as_str().unwrap(), &keys).unwrap();
        assert_eq!(header["typ"], "jxg-receipt+jwt");
        let claims: Value = serde_json::from_slice(&claims).unwrap();
        assert_eq!(claims["id"], id.as_str());
        assert_eq!(claims["sender"], "police");
        use base64::Engine;
        use sha2::Digest;
        let digest =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&body));
        assert_eq!(claims["body_sha256"], digest.as_str());
        let expected: Value = serde_json::from_slice(&sample(canonical)).unwrap();
        for recipient in recipients {
            let c = client_for(&home, recipient);
            let items = inbox(&c, &gw).await;
            let item = items
                .iter()
                .find(|i| i["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{doc} not in {recipient}'s inbox"));
            let format = if recipient == "courts" {
                "court-xml"
            } else {
                "canonical"
            };
            assert_eq!(item["format"], format);
            let content = item["content"].as_str().unwrap();
            let h = verify_detached(
                item["signature"].as_str().unwrap(),
                content.as_bytes(),
                &keys,
            )
            .unwrap();
            assert_eq!(h["typ"], "jxg+jws");
            assert_eq!(h["jxg_recipient"], recipient);
            assert_eq!(h["jxg_id"], id.as_str());
            // read back through the recipient's format, as the recipient would
            let md = jxg_schema::MasterData::embedded();
            let adapter = jxg_adapters::registry::get(format).unwrap();
            let read = adapter
                .decode(
                    content.as_bytes(),
                    &jxg_adapters::Context { master_data: &md },
                )
                .unwrap_or_else(|e| panic!("{doc} → {recipient}: {e}"));
            let delivered = read.to_json();
            assert_eq!(delivered["case"], expected["case"], "{doc}");
            let carried_id = if format == "canonical" {
                delivered["id"].clone()
            } else {
                delivered["source_document_id"].clone()
            };
            assert_eq!(carried_id, id.as_str());
            // the protected address never leaves the gateway; the narrative goes to prosecution
            if doc.ends_with("anmeldelse-1.json") {
                assert_eq!(
                    delivered["body"]["narrative"],
                    expected["body"]["narrative"]
                );
                assert!(delivered["body"]["persons"][1].get("address").is_none());
                let mut e = expected["body"].clone();
                e["persons"][1].as_object_mut().unwrap().remove("address");
                assert_eq!(delivered["body"], e);
            } else {
                assert_eq!(delivered["body"], expected["body"], "{doc} → {recipient}");
            }
            // a tampered byte fails verification
            let mut tampered = content.as_bytes().to_vec();
            tampered[10] ^= 1;
            assert!(
                verify_detached(item["signature"].as_str().unwrap(), &tampered, &keys).is_err()
            );
            ack(&c, &gw, &id).await;
        }
    }
}

#[tokio::test]
async fn outbound_only_types_are_forbidden_and_invalid_samples_name_their_path() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let r = post_police(&police, &gw, sample("police/valid/dom-1.json")).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let manifest: Value = serde_json::from_slice(&sample("police/invalid/manifest.json")).unwrap();
    for e in manifest.as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let body = sample(&format!("police/invalid/{file}"));
        let r = post_police(&police, &gw, body).await;
        let p = problem(r, e["status"].as_u64().unwrap(), file).await;
        let got = problem_paths(&p);
        let want: Vec<&str> = e["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        for w in &want {
            assert!(got.contains(w), "{file}: want {w} in {got:?}");
        }
        if e["status"] == 422 {
            assert!(
                got.iter().all(|g| want.contains(g)),
                "{file}: unexpected paths {got:?}"
            );
        }
        let text = p.to_string();
        for secret in [
            "310290",
            "290200",
            "Jens Peter",
            "Hansen",
            "Østergaard",
            "Jægersborggade",
        ] {
            assert!(!text.contains(secret), "{file}: {text}");
        }
    }
    // nothing of the refused documents was stored
    let prosecution = client_for(&home, "prosecution");
    assert!(inbox(&prosecution, &gw).await.is_empty());
}

#[tokio::test]
async fn the_prisons_admission_reaches_the_police_as_indsat() {
    let home = Home::new();
    let gw = home.start();
    let prison = client_for(&home, "prison");
    let r = post_json(
        &prison,
        &gw,
        "/v1/messages",
        sample("canonical/valid/custody.admitted.json"),
    )
    .await;
    let id = accepted_id(r).await;
    let police = client_for(&home, "police");
    let keys = jwks(&police, &gw).await;
    let items = inbox(&police, &gw).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["format"], "police-json");
    let content = items[0]["content"].as_str().unwrap();
    verify_detached(
        items[0]["signature"].as_str().unwrap(),
        content.as_bytes(),
        &keys,
    )
    .unwrap();
    let got: Value = serde_json::from_str(content).unwrap();
    let mut want: Value = serde_json::from_slice(&sample("police/valid/indsat-1.json")).unwrap();
    want["dokumentid"] = Value::from(id.clone());
    assert_eq!(got, want);
    // status for the sender: police and prosecution queued; the police's turns delivered on ack
    ack(&police, &gw, &id).await;
    let s: Value = prison
        .get(gw.url(&format!("/v1/messages/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        by_recipient(&s, "status"),
        [("police", "delivered"), ("prosecution", "queued")].into()
    );
    // only the sender sees it
    let other = police
        .get(gw.url(&format!("/v1/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn a_resubmitted_document_gets_its_first_receipt_and_changed_content_409() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let body = sample("police/valid/sigtelse-1.json");
    let first = post_police(&police, &gw, body.clone()).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = post_police(&police, &gw, body.clone()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["JXG-Duplicate"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let mut changed: Value = serde_json::from_slice(&body).unwrap();
    changed["fritekst"] = Value::from("Ændret tekst");
    let r = post_police(&police, &gw, serde_json::to_vec(&changed).unwrap()).await;
    assert_eq!(r.status(), 409);
    let prosecution = client_for(&home, "prosecution");
    assert_eq!(
        inbox(&prosecution, &gw).await.len(),
        1,
        "one message, not two"
    );
}

#[tokio::test]
async fn request_checks_answer_in_the_documented_order() {
    let home = Home::with_limits("body_bytes = 4096");
    let gw = home.start();
    let police = client_for(&home, "police");
    let r = police
        .post(gw.url("/police/v1/dokumenter"))
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let big = vec![b' '; 5000];
    let r = post_json(&police, &gw, "/police/v1/dokumenter", big).await;
    assert_eq!(r.status(), 413);
    let r = police
        .get(gw.url("/police/v1/dokumenter"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = police.get(gw.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // the listener describes itself; the admin listener answers any sector certificate
    let doc: Value = police
        .get(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"].get("/police/v1/dokumenter").is_some());
    let operator = client_for(&home, "operator");
    assert_eq!(
        operator
            .get(gw.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        operator
            .get(gw.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (metrics, _) = metrics(&home, &gw).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("jxg_messages_rejected_total{")
                && l.contains("authority=\"police\"")
                && l.contains("status=\"415\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    assert_eq!(
        operator
            .get(gw.url("/v1/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // a canonical sender may not assign the gateway's fields
    let prison = client_for(&home, "prison");
    let mut m: Value =
        serde_json::from_slice(&sample("canonical/valid/custody.released.json")).unwrap();
    m["id"] = Value::from("01a23aea-e7b8-74c0-9f56-04fc43e2ec2d");
    let r = post_json(&prison, &gw, "/v1/messages", m.to_string()).await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn an_inbox_offers_one_message_per_case_in_order_until_it_is_acknowledged() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let mut ids = Vec::new();
    for n in 1..=3 {
        // three documents of one case, and one of another case
        let r = post_police(
            &police,
            &gw,
            with_dokumentid("police/valid/anmeldelse-1.json", &format!("ORDER-{n}")),
        )
        .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let other = post_police(&police, &gw, sample("police/valid/sigtelse-1.json")).await;
    let other = other.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let prosecution = client_for(&home, "prosecution");
    let offered = |items: Vec<Value>| {
        items
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        offered(inbox(&prosecution, &gw).await),
        [ids[0].clone(), other.clone()]
    );
    // offered and not acknowledged: hidden, and it holds its case back
    assert!(inbox(&prosecution, &gw).await.is_empty());
    ack(&prosecution, &gw, &ids[0]).await;
    ack(&prosecution, &gw, &ids[0]).await; // idempotent
    assert_eq!(offered(inbox(&prosecution, &gw).await), [ids[1].clone()]);
    ack(&prosecution, &gw, &ids[1]).await;
    assert_eq!(offered(inbox(&prosecution, &gw).await), [ids[2].clone()]);
    let r = prosecution
        .post(gw.url("/v1/inbox/01a2226f-21ab-728e-8c78-215d4820ca91/ack"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn an_unacknowledged_item_is_offered_again_after_the_visibility_timeout() {
    let home = Home::with_limits("inbox_visibility_seconds = 1");
    let gw = home.start();
    let police = client_for(&home, "police");
    assert_eq!(
        post_police(&police, &gw, sample("police/valid/sigtelse-1.json"))
            .await
            .status(),
        202
    );
    let prosecution = client_for(&home, "prosecution");
    let first = inbox(&prosecution, &gw).await;
    assert_eq!(first.len(), 1);
    // long-poll: answered when the lease ends, well within the wait
    let again: Value = prosecution
        .get(gw.url("/v1/inbox?wait=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["items"][0]["id"], first[0]["id"]);
}
