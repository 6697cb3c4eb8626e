//! Mutual TLS: who may connect, and that a certificate decides the sender.

use jxg_gateway::certs::{self, Validity};
use jxg_tests::*;
use serde_json::Value;

async fn status(c: &reqwest::Client, url: &str) -> Result<u16, String> {
    c.get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn connections_without_a_valid_certificate_of_the_sector_ca_are_refused() {
    let home = Home::new();
    let gw = home.start();
    let url = gw.url("/v1/inbox");
    // the control: a registered authority gets in
    assert_eq!(status(&client_for(&home, "police"), &url).await, Ok(200));
    // no certificate
    let none = client(&home.ca_pem(), None);
    assert!(
        !matches!(status(&none, &url).await, Ok(200)),
        "no client certificate got in"
    );
    // a certificate from another CA
    let other = certs::new_ca("another CA", Validity::days(30)).unwrap();
    let stranger = certs::issue(
        &other.cert_pem,
        &other.key_pem,
        "police",
        "urn:jxg:authority:police",
        false,
        Validity::days(30),
    )
    .unwrap();
    let c = client(
        &home.ca_pem(),
        Some((&stranger.cert_pem, &stranger.key_pem)),
    );
    assert!(
        !matches!(status(&c, &url).await, Ok(200)),
        "a foreign CA's certificate got in"
    );
    // an expired certificate of the right CA
    let (ca, ca_key) = home.cert("ca");
    let now = time::OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - time::Duration::days(30),
        not_after: now - time::Duration::days(1),
    };
    let old = certs::issue(
        &ca,
        &ca_key,
        "police",
        "urn:jxg:authority:police",
        false,
        expired,
    )
    .unwrap();
    let c = client(&home.ca_pem(), Some((&old.cert_pem, &old.key_pem)));
    assert!(
        !matches!(status(&c, &url).await, Ok(200)),
        "an expired certificate got in"
    );
    // a valid certificate that maps to no registered authority
    let unknown = certs::issue(
        &ca,
        &ca_key,
        "x",
        "urn:jxg:authority:tax",
        false,
        Validity::days(30),
    )
    .unwrap();
    let c = client(&home.ca_pem(), Some((&unknown.cert_pem, &unknown.key_pem)));
    assert_eq!(status(&c, &url).await, Ok(403));
}

#[tokio::test]
async fn a_certificate_of_one_authority_cannot_send_as_another() {
    let home = Home::new();
    let gw = home.start();
    let prison = client_for(&home, "prison");
    let mut m: Value =
        serde_json::from_slice(&sample("canonical/valid/custody.released.json")).unwrap();
    m["sender"] = Value::from("police");
    let r = post_json(&prison, &gw, "/v1/messages", m.to_string()).await;
    assert_eq!(r.status(), 403);
    // the police certificate cannot post the prison's message either (sender omitted)
    let police = client_for(&home, "police");
    let r = post_json(
        &police,
        &gw,
        "/v1/messages",
        sample("canonical/valid/custody.released.json"),
    )
    .await;
    assert_eq!(r.status(), 403);
    // and a police document posted with the prison's certificate is the prison's, so refused
    let r = post_json(
        &prison,
        &gw,
        "/police/v1/dokumenter",
        sample("police/valid/anmeldelse-1.json"),
    )
    .await;
    assert_eq!(r.status(), 403);
    let prosecution = client_for(&home, "prosecution");
    let items: Value = prosecution
        .get(gw.url("/v1/inbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(items["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_sender_signed_message_needs_a_signature_of_the_senders_registered_key() {
    let home = Home::new();
    let key = certs::new_signing_key().unwrap();
    let signer = jxg_gateway::signing::Signer::from_pem(key.as_bytes()).unwrap();
    std::fs::write(
        home.path().join("prison-jwks.json"),
        signer.jwks().to_string(),
    )
    .unwrap();
    home.edit_config(|t| {
        t.replace(
            "certificate = \"urn:jxg:authority:prison\"",
            "certificate = \"urn:jxg:authority:prison\"\njwks = \"prison-jwks.json\"",
        )
    });
    let gw = home.start();
    let sign = |pem: &str, kid: &str, payload: &[u8]| {
        let mut h = josekit::jws::JwsHeader::new();
        h.set_key_id(kid);
        let s = josekit::jws::ES256.signer_from_pem(pem).unwrap();
        josekit::jws::serialize_compact(payload, &h, &s).unwrap()
    };
    let message = sample("canonical/valid/custody.admitted.json");
    let jws = sign(&key, signer.kid(), &message);
    let prison = client_for(&home, "prison");
    let post = |c: &reqwest::Client, body: String| {
        c.post(gw.url("/v1/messages"))
            .header("Content-Type", "application/jose")
            .body(body)
            .send()
    };
    // a signature of another key, even under the registered kid, and a tampered one are refused
    let stranger = certs::new_signing_key().unwrap();
    assert_eq!(
        post(&prison, sign(&stranger, signer.kid(), &message))
            .await
            .unwrap()
            .status(),
        403
    );
    let mut tampered = jws.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(post(&prison, tampered).await.unwrap().status(), 403);
    assert_eq!(
        post(&prison, "not a jws".into()).await.unwrap().status(),
        400
    );
    // the real one is accepted, once
    let r = post(&prison, jws.clone()).await.unwrap();
    assert_eq!(r.status(), 202);
    let again = post(&prison, jws).await.unwrap();
    assert_eq!(again.status(), 200);
    let police = client_for(&home, "police");
    let items = inbox(&police, &gw).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["type"], "custody.admitted");
    // an authority without registered keys cannot send signed messages
    let r = post(&police, "a.b.c".into()).await.unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn an_authority_over_its_rate_limit_gets_429_and_the_others_are_unaffected() {
    let home = Home::new();
    home.edit_config(|t| {
        t.replace(
            "certificate = \"urn:jxg:authority:police\"",
            "certificate = \"urn:jxg:authority:police\"\nrate_per_second = 0.05\nburst = 3",
        )
    });
    let gw = home.start();
    let police = client_for(&home, "police");
    for _ in 0..3 {
        assert_eq!(
            police
                .get(gw.url("/v1/inbox"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let r = police.get(gw.url("/v1/inbox")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // another authority's bucket is its own
    let prison = client_for(&home, "prison");
    for _ in 0..10 {
        assert_eq!(
            prison
                .get(gw.url("/v1/inbox"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}
