//! No personal data in logs: the whole sample story, refused documents and a subject-access
//! request with debug logging, and not one CPR number, name or address of the samples in any line.

use jxg_tests::*;
use serde_json::{Value, json};

/// Every CPR number (both spellings), name and address in the canonical samples.
fn personal_data() -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("cpr", Value::String(s)) => {
                            out.push(s.clone());
                            out.push(format!("{}-{}", &s[..6], &s[6..]));
                        }
                        ("given_name" | "family_name" | "address", Value::String(s)) => {
                            out.push(s.clone());
                            // the family name alone, and the street of an address
                            out.extend(s.split(',').next().map(String::from));
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    for e in std::fs::read_dir(samples_dir().join("canonical/valid")).unwrap() {
        let v: Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        walk(&v, &mut out);
    }
    out.sort();
    out.dedup();
    out.retain(|s| s.len() >= 4);
    out
}

#[tokio::test]
async fn the_story_with_debug_logging_logs_no_cpr_number_name_or_address() {
    let secrets = personal_data();
    assert!(secrets.len() > 10, "{secrets:?}");
    assert!(secrets.contains(&"0104909995".to_string()));
    let home = Home::new();
    let mut gw = home.start_with_env(&[("RUST_LOG", "debug")]);
    play_story(&home, &gw).await;
    // refused documents: each names its field, and what it held stays out of the log
    let police = client_for(&home, "police");
    let manifest: Value = serde_json::from_slice(&sample("police/invalid/manifest.json")).unwrap();
    for e in manifest.as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let r = post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            sample(&format!("police/invalid/{file}")),
        )
        .await;
        assert!(r.status().is_client_error(), "{file}");
    }
    let r = client_for(&home, "auditor")
        .post(gw.admin_url("/admin/v1/audit/subject-access"))
        .header("Content-Type", "application/json")
        .body(json!({"cpr": "0104909995"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(gw.terminate().success());
    let log = gw.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.contains("\"DEBUG\"") || l.contains("\"level\":\"DEBUG\"")),
        "debug logging was on: {:?}",
        &log[..log.len().min(5)]
    );
    assert!(log.len() > 50, "the story logs: {}", log.len());
    for line in &log {
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "{s:?} in a log line: {line}");
        }
    }
}
