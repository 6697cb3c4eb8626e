//! Strict reading over HTTP: whatever a format does not define is refused with its path as
//! problem+json, never echoed, and nothing of the document is stored. The police, court and
//! prosecution samples of each rule run in those formats' manifest tests; these are the canonical
//! ones, and a repeated member name that would change what the policy sees.

use jxg_tests::*;
use serde_json::Value;

const SECRETS: &[&str] = &["0104909995", "Jens Peter", "Hansen", "B-114"];

#[tokio::test]
async fn canonical_submissions_that_repeat_a_name_or_add_a_member_are_refused_with_its_pointer() {
    let home = Home::new();
    let gw = home.start();
    let prison = client_for(&home, "prison");
    let manifest: Value =
        serde_json::from_slice(&sample("canonical/invalid/manifest.json")).unwrap();
    let entries = manifest.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let r = post_json(
            &prison,
            &gw,
            "/v1/messages",
            sample(&format!("canonical/invalid/{file}")),
        )
        .await;
        let p = problem(r, e["status"].as_u64().unwrap(), file).await;
        let got = problem_paths(&p);
        for want in e["paths"].as_array().unwrap() {
            assert!(got.contains(&want.as_str().unwrap()), "{file}: {p}");
        }
        let text = p.to_string();
        for secret in SECRETS {
            assert!(!text.contains(secret), "{file}: {text}");
        }
    }
    // the valid submission they were made from is still new: nothing of them was stored
    let r = post_json(
        &prison,
        &gw,
        "/v1/messages",
        sample("canonical/valid/custody.admitted.json"),
    )
    .await;
    assert_eq!(r.status(), 202);
    for who in ["police", "prosecution"] {
        let items = inbox(&client_for(&home, who), &gw).await;
        assert_eq!(items.len(), 1, "{who} got only the valid admission");
    }
}

#[tokio::test]
async fn a_protected_address_cannot_be_opened_by_repeating_its_flag() {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    // the victim's address is protected; a second `beskyttet` would read as "N" to a reader that
    // keeps the last value, and the address would go to the prosecution
    let body = String::from_utf8(sample("police/valid/anmeldelse-1.json"))
        .unwrap()
        .replacen(
            "\"beskyttet\": \"J\"",
            "\"beskyttet\": \"J\", \"beskyttet\": \"N\"",
            1,
        );
    let r = post_json(&police, &gw, "/police/v1/dokumenter", body).await;
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["path"], "/personer/1/beskyttet", "{p}");
    assert!(!p.to_string().contains("Jægersborggade"), "{p}");
    assert!(
        inbox(&client_for(&home, "prosecution"), &gw)
            .await
            .is_empty()
    );
}
