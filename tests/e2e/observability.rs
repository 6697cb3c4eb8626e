//! Traces, metrics and the case timeline: one trace from the police system's POST through the
//! gateway's stages to the courts' webhook and the prosecution's queue, exported to a real
//! OTLP/HTTP receiver; `/metrics` counts what the test sent; the sample case's timeline; and no
//! personal data in any span, metric or log line.

use std::time::Duration;

use jxg_tests::*;
use serde_json::Value;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn env(otlp: &OtlpReceiver) -> Vec<(&'static str, String)> {
    otlp.env()
}

/// Asserts that no text holds a CPR number, name or address of the samples.
fn assert_no_personal_data<'a>(what: &str, texts: impl IntoIterator<Item = &'a str>) {
    let secrets = personal_data();
    for t in texts {
        for s in &secrets {
            assert!(!t.contains(s.as_str()), "{what} holds {s:?}: {t}");
        }
    }
}

#[tokio::test]
async fn one_trace_follows_an_arrest_from_the_police_post_to_the_courts_webhook_and_the_queue() {
    let otlp = OtlpReceiver::start();
    let (home, p, (inq, outq, rejq)) = broker_home("otel").await;
    let hook = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &hook.url);
    let vars = env(&otlp);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut gw = home.start_with_env(&vars);
    let police = client_for(&home, "police");
    let r = police
        .post(gw.url("/police/v1/dokumenter"))
        .header("Content-Type", "application/json")
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .body(sample("police/valid/anholdelse-1.json"))
        .send()
        .await
        .unwrap();
    let id = accepted_id(r).await;

    // the courts' webhook and the prosecution's queue see the same trace, under the gateway's
    // delivery spans
    hook.wait_until("the Anholdelse", |h| h.delivered().len() == 1)
        .await;
    let webhook_tp = hook.delivered()[0]
        .traceparent
        .clone()
        .expect("traceparent");
    let parts: Vec<&str> = webhook_tp.split('-').collect();
    assert_eq!(parts[1], TRACE, "{webhook_tp}");
    assert_ne!(
        parts[2], CALLER_SPAN,
        "the gateway's own span is the parent"
    );
    let published = p.next(&outq).await;
    let amqp_tp = published.headers["traceparent"].clone();
    assert_eq!(amqp_tp.split('-').nth(1), Some(TRACE), "{amqp_tp}");

    // the exported spans: the ingest under the caller's span, every stage under the ingest,
    // one delivery span per recipient, each the parent the recipient saw
    let mut spans = Vec::new();
    for _ in 0..300 {
        spans = otlp.trace(TRACE);
        if spans.iter().filter(|s| s.name == "deliver").count() >= 2
            && spans.iter().any(|s| s.name == "store")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let ingest = spans
        .iter()
        .find(|s| s.name == "ingest police-json")
        .unwrap_or_else(|| panic!("no ingest span in {names:?}"));
    assert_eq!(ingest.parent_span_id, CALLER_SPAN);
    let attr = |s: &SeenSpan, k: &str| {
        s.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr(ingest, "message_id").as_deref(), Some(id.as_str()));
    assert_eq!(attr(ingest, "authority").as_deref(), Some("police"));
    assert_eq!(attr(ingest, "case").map(|c| c.len()), Some(16));
    for stage in [
        "decode",
        "validate",
        "authorize",
        "route",
        "minimise",
        "encode",
        "sign",
        "store",
    ] {
        assert!(
            spans
                .iter()
                .any(|s| s.name == stage && s.parent_span_id == ingest.span_id),
            "no {stage} span under the ingest: {names:?}"
        );
    }
    let deliveries: Vec<&SeenSpan> = spans.iter().filter(|s| s.name == "deliver").collect();
    assert_eq!(deliveries.len(), 2, "{names:?}");
    for d in &deliveries {
        assert_eq!(d.parent_span_id, ingest.span_id);
    }
    let to = |r: &str| {
        deliveries
            .iter()
            .find(|d| attr(d, "recipient").as_deref() == Some(r))
            .unwrap_or_else(|| panic!("no delivery span for {r}"))
            .span_id
            .clone()
    };
    assert_eq!(parts[2], to("courts"));
    assert_eq!(amqp_tp.split('-').nth(2), Some(to("prosecution").as_str()));

    // the log lines of the request carry the trace and message ids
    let log = gw.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.contains(TRACE) && l.contains(&id) && l.contains("\"accepted\"")),
        "no log line with the trace and message ids"
    );

    // metrics reach the receiver too
    for _ in 0..100 {
        if otlp
            .metric_text
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.contains("jxg_messages_accepted"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exported = otlp.metric_text.lock().unwrap().clone();
    assert!(
        exported
            .iter()
            .any(|t| t.contains("jxg_messages_accepted") && t.contains("jxg_stage_duration")),
        "no metrics exported over OTLP"
    );

    // no personal data in any span name, attribute, exported metric or log line
    let all = otlp.spans.lock().unwrap().clone();
    assert!(all.len() >= 11, "{} spans", all.len());
    assert_no_personal_data(
        "a span",
        all.iter()
            .flat_map(|s| {
                std::iter::once(s.name.as_str()).chain(s.attributes.iter().map(|(_, v)| v.as_str()))
            })
            .collect::<Vec<_>>(),
    );
    assert_no_personal_data("an OTLP metric", exported.iter().map(String::as_str));
    assert!(gw.terminate().success());
    let log = gw.log.lock().unwrap().clone();
    assert_no_personal_data("a log line", log.iter().map(String::as_str));
    drop(gw);
    p.delete(&[&inq, &outq, &rejq]).await;
}

#[tokio::test]
async fn metrics_count_what_was_sent_accepted_refused_and_delivered() {
    let home = Home::new();
    let hook = Webhook::start(&home, Mode::Ok);
    home.push_to("courts", &hook.url);
    let gw = home.start();
    let ids = play_story(&home, &gw).await;
    assert_eq!(ids.len(), 5);
    // refused documents, each counted with its status
    let police = client_for(&home, "police");
    let manifest: Value = serde_json::from_slice(&sample("police/invalid/manifest.json")).unwrap();
    let mut refused = std::collections::BTreeMap::<u16, f64>::new();
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
        *refused.entry(r.status().as_u16()).or_default() += 1.0;
    }
    let sent_refused: f64 = refused.values().sum();
    assert!(sent_refused >= 5.0);
    hook.wait_until("the indictment at the courts", |h| h.delivered().len() == 1)
        .await;

    // what each recipient has taken, from the admin API
    let operator = client_for(&home, "operator");
    let listed: Value = operator
        .get(gw.admin_url("/admin/v1/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut taken = std::collections::BTreeMap::<String, f64>::new();
    for m in listed["items"].as_array().unwrap() {
        for r in m["recipients"].as_array().unwrap() {
            if !r["delivered_at"].is_null() || !r["acked_at"].is_null() {
                *taken
                    .entry(r["recipient"].as_str().unwrap().into())
                    .or_default() += 1.0;
            }
        }
    }
    assert_eq!(taken.get("courts"), Some(&1.0), "{taken:?}");

    let (text, s) = metrics(&home, &gw).await;
    assert_eq!(sum(&s, "jxg_messages_accepted_total", &[]), 5.0, "{text}");
    for (authority, n) in [
        ("police", 1.0),
        ("prosecution", 1.0),
        ("courts", 1.0),
        ("prison", 2.0),
    ] {
        assert_eq!(
            sum(
                &s,
                "jxg_messages_accepted_total",
                &[("authority", authority)]
            ),
            n,
            "{authority}"
        );
    }
    assert_eq!(
        sum(
            &s,
            "jxg_messages_accepted_total",
            &[("format", "court-xml"), ("type", "verdict.issued")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &s,
            "jxg_messages_rejected_total",
            &[("authority", "police")]
        ),
        sent_refused
    );
    for (status, n) in &refused {
        assert_eq!(
            sum(
                &s,
                "jxg_messages_rejected_total",
                &[("authority", "police"), ("status", &status.to_string())]
            ),
            *n,
            "status {status}"
        );
    }
    for (recipient, n) in &taken {
        assert_eq!(
            sum(
                &s,
                "jxg_messages_delivered_total",
                &[("recipient", recipient)]
            ),
            *n,
            "{recipient}: {text}"
        );
    }
    assert_eq!(
        sum(
            &s,
            "jxg_delivery_attempts_total",
            &[("recipient", "courts"), ("outcome", "delivered")]
        ),
        1.0
    );
    assert_eq!(sum(&s, "jxg_dead_letters_total", &[]), 0.0);
    // nothing waits any more
    assert_eq!(sum(&s, "jxg_outbox_depth", &[]), 0.0, "{text}");
    // every accepted message was routed and stored once; decoding also ran for the refused
    let count = |stage: &str| sum(&s, "jxg_stage_duration_seconds_count", &[("stage", stage)]);
    assert_eq!(count("route"), 5.0, "{text}");
    assert_eq!(count("store"), 5.0);
    assert!(count("decode") > 5.0 && count("decode") >= count("validate"));
    assert!(count("validate") >= 5.0);
    assert!(sum(&s, "jxg_store_flush_duration_seconds_count", &[]) >= 5.0);
    assert!(sum(&s, "jxg_policy_decisions_total", &[("effect", "permit")]) >= 5.0);
    // the case's stretches: report → indictment → verdict → admission, one sample each
    for (from, to) in [
        ("offence.reported", "indictment.filed"),
        ("indictment.filed", "verdict.issued"),
        ("verdict.issued", "custody.admitted"),
    ] {
        assert_eq!(
            sum(
                &s,
                "jxg_case_stage_duration_seconds_count",
                &[("from", from), ("to", to)]
            ),
            1.0,
            "{from} → {to}"
        );
    }
    assert_no_personal_data("/metrics", [text.as_str()]);
}

#[tokio::test]
async fn the_sample_case_timeline_lists_its_messages_in_order_with_their_times() {
    let home = Home::new();
    let gw = home.start();
    let before = chrono_now();
    let ids = play_story(&home, &gw).await;
    let after = chrono_now();
    let operator = client_for(&home, "operator");
    let r = operator
        .get(gw.admin_url("/admin/v1/cases/1470-76543-00012-26/timeline"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let messages = t["messages"].as_array().unwrap();
    let got: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids);
    let types: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "offence.reported",
            "indictment.filed",
            "verdict.issued",
            "custody.admitted",
            "custody.released"
        ]
    );
    let senders: Vec<&str> = messages
        .iter()
        .map(|m| m["sender"].as_str().unwrap())
        .collect();
    assert_eq!(
        senders,
        ["police", "prosecution", "courts", "prison", "prison"]
    );
    let secs = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp()
    };
    let mut last = before;
    let mut accepted = Vec::new();
    for (m, id) in messages.iter().zip(&ids) {
        let at = secs(&m["accepted_at"]);
        assert!(at >= last && at <= after, "{m}");
        last = at;
        accepted.push(at);
        // the same recipients and times as the message's own metadata
        let meta: Value = operator
            .get(gw.admin_url(&format!("/admin/v1/messages/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(secs(&meta["received_at"]), at);
        let want: Vec<(String, Value)> = meta["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let when = if r["delivered_at"].is_null() {
                    r["acked_at"].clone()
                } else {
                    r["delivered_at"].clone()
                };
                (r["recipient"].as_str().unwrap().to_string(), when)
            })
            .collect();
        let have: Vec<(String, Value)> = m["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["recipient"].as_str().unwrap().to_string(),
                    r["delivered_at"].clone(),
                )
            })
            .collect();
        assert_eq!(have, want, "{id}");
        assert!(!have.is_empty());
        for (who, when) in &have {
            // the story took and acknowledged everything it was sent
            let when = secs(when);
            assert!(when >= at && when <= chrono_now(), "{id} to {who}");
        }
    }
    let stages = t["stages"].as_array().unwrap();
    let stage = |from: &str| {
        stages
            .iter()
            .find(|s| s["from"] == from)
            .unwrap_or_else(|| panic!("no stage from {from}: {t}"))["seconds"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(stage("offence.reported"), accepted[1] - accepted[0]);
    assert_eq!(stage("indictment.filed"), accepted[2] - accepted[1]);
    assert_eq!(stage("verdict.issued"), accepted[3] - accepted[2]);
    // no personal data in the timeline; an unknown case is 404
    assert_no_personal_data("the timeline", [t.to_string().as_str()]);
    let r = operator
        .get(gw.admin_url("/admin/v1/cases/no-such-case/timeline"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

fn chrono_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn certificates_near_their_end_are_warned_about_and_their_time_left_is_a_metric() {
    // the development certificates are valid for years: no warning with the default 30 days
    let home = Home::new();
    let gw = home.start();
    let (_, s) = metrics(&home, &gw).await;
    for name in ["server", "ca"] {
        let left = sum(
            &s,
            "jxg_certificate_expiry_seconds",
            &[("certificate", name)],
        );
        assert!(left > 30.0 * 86_400.0, "{name}: {left} s left");
    }
    let warned = |gw: &Gateway| {
        gw.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("a configured certificate expires soon"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(warned(&gw).is_empty(), "{:?}", warned(&gw));
    drop(gw);
    // warned about both when the warning starts further out than their end
    home.edit_config(|c| c.replace("[tls]\n", "[tls]\nexpiry_warning_days = 1000000\n"));
    let gw = home.start();
    let lines = warned(&gw);
    for name in ["server", "ca"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("\"certificate\":\"{name}\""))
                    && l.contains("\"level\":\"WARN\"")
                    && l.contains("days_left")),
            "no warning for {name}: {lines:?}"
        );
    }
}
