//! No personal data in logs, spans or metrics: the whole sample story, refused documents and a
//! subject-access request with debug logging and traces exported to a real OTLP receiver, and
//! not one CPR number, name or address of the samples in any log line, span name, span or event
//! attribute, or metric (OTLP or `/metrics`).

use jxg_tests::*;
use serde_json::{Value, json};

#[tokio::test]
async fn the_story_with_debug_logging_and_traces_shows_no_cpr_number_name_or_address() {
    let secrets = personal_data();
    assert!(secrets.len() > 10, "{secrets:?}");
    assert!(secrets.contains(&"0104909995".to_string()));
    let home = Home::new();
    let otlp = OtlpReceiver::start();
    let mut vars = otlp.env();
    vars.push(("RUST_LOG", "debug".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut gw = home.start_with_env(&vars);
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
    let (metrics, _) = metrics(&home, &gw).await;
    assert!(metrics.contains("jxg_messages_rejected_total"));
    // the exporters flush at shutdown
    assert!(gw.terminate().success());
    let spans = otlp.spans.lock().unwrap().clone();
    assert!(spans.len() > 50, "the story's spans: {}", spans.len());
    assert!(spans.iter().any(|s| s.name == "minimise"));
    let exported = otlp.metric_text.lock().unwrap().clone();
    assert!(!exported.is_empty(), "metrics were exported");
    for s in &secrets {
        for span in &spans {
            assert!(!span.name.contains(s.as_str()), "{s:?} in a span name");
            for (k, v) in &span.attributes {
                assert!(!v.contains(s.as_str()), "{s:?} in span attribute {k}: {v}");
            }
        }
        for m in &exported {
            assert!(!m.contains(s.as_str()), "{s:?} in an OTLP metric");
        }
        assert!(!metrics.contains(s.as_str()), "{s:?} in /metrics");
    }
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
