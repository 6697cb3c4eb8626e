//! A withdrawal for erasure over the real gateway: the original's bodies cannot be read back
//! afterwards by someone holding the store's files and every key the gateway holds, however
//! the gateway itself reads bodies, and nothing else is disturbed.

use std::path::Path;

use jxg_gateway::store::{BodyKey, Engine, Store, seal};
use jxg_tests::*;
use serde_json::{Value, json};

/// Names no sample uses: where either turns up, a body of its message is readable.
const ERASED_NAME: &str = "Zephyrine Quistgaard-Vold";
const KEPT_NAME: &str = "Oktavian Brøndsted-Hyl";

fn arrest(dokumentid: &str, name: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&with_dokumentid(
        "police/valid/anholdelse-1.json",
        dokumentid,
    ))
    .unwrap();
    v["personer"][0]["efternavn"] = json!(name);
    serde_json::to_vec(&v).unwrap()
}

fn withdrawal(own_id: &str, of: &str) -> String {
    json!({
        "dokumenttype": "TILBAGEKALDELSE",
        "dokumentid": own_id,
        "journalnr": "1469-71120-00347-26",
        "anklagenr": null,
        "rettens_sagsnr": null,
        "oprettet": "19-07-2026 08:00",
        "tilbagekaldelse": {"dokumentid": of, "aarsag": "SLETNING"}
    })
    .to_string()
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// What an attacker holding the stopped gateway's home (its store's files, its body keys,
/// its signing and TLS keys) finds of `name` in message `id`, trying every way the gateway
/// reads bodies; and the message's sealed bodies and key as they are now.
struct Found {
    places: Vec<String>,
    /// (place in the record, sealed bytes)
    sealed: Vec<(String, Vec<u8>)>,
    key: Option<BodyKey>,
}

/// Which of `sealed` (place in the record, bytes) open with any 32 bytes as the key of the
/// body-keys file or of any small file of `home` (the certificates and keys, the configuration).
fn opened_by_files(home: &Home, id: &uuid::Uuid, sealed: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in files(home.path()) {
        if bytes.len() > 1 << 16 && !path.ends_with("body-keys") {
            continue;
        }
        for w in bytes.windows(BodyKey::LEN) {
            let Some(k) = BodyKey::from_bytes(w) else {
                continue;
            };
            for (place, s) in sealed {
                if seal::open(Some(&k), id, place, s).is_ok() {
                    out.push(format!("its {place} opened by {}", path.display()));
                }
            }
        }
    }
    out
}

async fn find(home: &Home, id: &str, name: &str) -> Found {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let needle = name.as_bytes();
    let mut places = Vec::new();
    let engine = stored::engine(home);
    let rec = engine
        .message(&id)
        .await
        .unwrap()
        .expect("its metadata stays");
    let mut sealed = vec![("canonical".to_string(), rec.canonical.clone())];
    sealed.extend(
        rec.copies
            .iter()
            .map(|c| (format!("copy:{}", c.recipient), c.content.clone())),
    );
    sealed.retain(|(_, b)| seal::is_sealed(b));
    let key = rec.key.clone();
    let store = Store::open(engine, Default::default()).await.unwrap();
    // as the gateway reads a message, its copies, a listing, a case
    let m = store.message(&id).await.unwrap().unwrap();
    if holds(m.canonical.as_bytes(), needle) {
        places.push("the stored message".into());
    }
    for e in store.deliveries(&id).await.unwrap() {
        if holds(&e.content, needle) {
            places.push(format!("{}'s copy", e.recipient));
        }
    }
    for m in store.messages_after(None, usize::MAX).await.unwrap() {
        if m.id == id && holds(m.canonical.as_bytes(), needle) {
            places.push("the listing".into());
        }
    }
    for m in store.case_messages(&m.correlation_id).await.unwrap() {
        if m.id == id && holds(m.canonical.as_bytes(), needle) {
            places.push("the case".into());
        }
    }
    store.close().await;
    // the files as they are: every byte, and with every 32 bytes of every file as the key
    for (path, bytes) in files(home.path()) {
        if holds(&bytes, needle) {
            places.push(format!("{} in the clear", path.display()));
        }
    }
    places.extend(opened_by_files(home, &id, &sealed));
    Found {
        places,
        sealed,
        key,
    }
}

#[tokio::test]
async fn a_withdrawal_for_erasure_leaves_nothing_of_the_original_readable_with_every_key_the_gateway_holds()
 {
    let home = Home::new();
    let mut gw = home.start();
    let police = client_for(&home, "police");
    let courts = client_for(&home, "courts");
    let erased = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            arrest("POL-E-1", ERASED_NAME),
        )
        .await,
    )
    .await;
    let kept = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            arrest("POL-E-2", KEPT_NAME),
        )
        .await,
    )
    .await;
    gw.stop_cleanly();

    // before: the gateway's reads find the body, and nothing in the files holds it in the clear
    let before = find(&home, &erased, ERASED_NAME).await;
    assert!(
        before.places.iter().any(|p| p == "the stored message")
            && before.places.iter().any(|p| p == "courts's copy"),
        "{:?}",
        before.places
    );
    assert!(
        !before.places.iter().any(|p| p.contains("in the clear")),
        "{:?}",
        before.places
    );
    // and with the key file's bytes, whoever holds the files opens the sealed bodies
    assert!(
        before
            .places
            .iter()
            .any(|p| p.contains("opened by") && p.contains("body-keys")),
        "{:?}",
        before.places
    );
    let old_key = before.key.clone().expect("a message has its key");
    assert!(!before.sealed.is_empty());

    let gw = home.start();
    let withdrawn = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            withdrawal("POL-E-3", "POL-E-1"),
        )
        .await,
    )
    .await;
    // the courts never took the original: they are offered the other arrest and the
    // withdrawal (one case: in order), and nothing of the original
    let mut ids = Vec::new();
    loop {
        let items = inbox(&courts, &gw).await;
        if items.is_empty() {
            break;
        }
        for i in items {
            assert!(!i["content"].as_str().unwrap().contains(ERASED_NAME), "{i}");
            let id = i["id"].as_str().unwrap().to_string();
            ack(&courts, &gw, &id).await;
            ids.push(id);
        }
    }
    assert_eq!(ids, [kept.clone(), withdrawn.clone()]);
    let operator = client_for(&home, "operator");
    let r = operator
        .post(gw.admin_url(&format!("/admin/v1/messages/{erased}/replay")))
        .send()
        .await
        .unwrap();
    problem(r, 410, "replay of an erased message").await;
    let meta = get_json(
        &operator,
        &gw.admin_url(&format!("/admin/v1/messages/{erased}")),
    )
    .await;
    assert_eq!(meta["body_purged"], true, "{meta}");
    assert_audit_verifies(&home, &gw).await;
    let mut gw = gw;
    gw.stop_cleanly();

    // after: nothing, however it is read; the destroyed key is in no file; the sealed bodies
    // the files held before (an engine's log keeps old values) open with nothing there
    let after = find(&home, &erased, ERASED_NAME).await;
    assert!(after.places.is_empty(), "{:?}", after.places);
    assert!(after.key.is_none());
    for (path, bytes) in files(home.path()) {
        assert!(
            !holds(&bytes, old_key.as_bytes()),
            "the destroyed key is in {}",
            path.display()
        );
    }
    let id = uuid::Uuid::parse_str(&erased).unwrap();
    let opened = opened_by_files(&home, &id, &before.sealed);
    assert!(opened.is_empty(), "{opened:?}");
    // the other arrest is as it was
    let other = find(&home, &kept, KEPT_NAME).await;
    assert!(
        other.places.iter().any(|p| p == "the stored message"),
        "{:?}",
        other.places
    );
    // the audit log says what happened, and verifies offline too
    let log = stored::audit_log(&home).await;
    assert!(
        log.iter().any(|e| e.record.event.as_str() == "erased"
            && e.record.message_id.map(|i| i.to_string()) == Some(erased.clone())),
        "no erasure audited"
    );
    let (code, out, err) = jxg(&home, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}
