//! RabbitMQ's memory alarm: the broker blocks every publishing connection. The gateway sees it
//! (`connection.blocked`), fails each prosecution attempt within its bound naming it, reports it
//! on `/readyz`, keeps serving every other authority, and once the alarm clears delivers every
//! report exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use jxg_tests::*;

use super::{BROKER, rabbitmqctl};

/// The broker's memory alarm, switched on for as long as this lives; the watermark it had is
/// put back when it is dropped, whatever happened meanwhile (a failed assertion included).
struct MemoryAlarm {
    before: Vec<String>,
}

impl MemoryAlarm {
    fn on() -> Self {
        let out = Command::new("rabbitmqctl")
            .args(["eval", "vm_memory_monitor:get_vm_memory_high_watermark()."])
            .output()
            .expect("rabbitmqctl is installed with RabbitMQ");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // `0.4`, or `{absolute,1073741824}`
        let before = match text.strip_prefix("{absolute,") {
            Some(rest) => vec![
                "absolute".to_string(),
                rest.trim_end_matches('}').to_string(),
            ],
            None => {
                assert!(text.parse::<f64>().is_ok(), "the watermark: {text}");
                vec![text]
            }
        };
        let alarm = Self { before };
        rabbitmqctl(&["set_vm_memory_high_watermark", "absolute", "1"]);
        alarm
    }
}

impl Drop for MemoryAlarm {
    fn drop(&mut self) {
        let mut args = vec!["set_vm_memory_high_watermark"];
        args.extend(self.before.iter().map(String::as_str));
        let ok = Command::new("rabbitmqctl")
            .args(&args)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not put the broker's memory watermark back: rabbitmqctl {args:?}");
        }
    }
}

#[tokio::test]
async fn under_the_brokers_memory_alarm_the_gateway_says_so_serves_everyone_else_and_loses_nothing()
{
    let _broker = BROKER.lock().await;
    let home = Home::with_broker("alarm");
    home.delivery(&[
        ("request_timeout_seconds", "2"),
        ("operation_timeout_ms", "1000"),
        ("retry_base_ms", "200"),
        ("retry_cap_ms", "1000"),
        ("max_attempts", "10000"),
        ("breaker_failures", "10000"),
    ]);
    let (inq, outq, rejq) = home.queues();
    let setup = Prosecution::connect().await;
    setup.declare(&[&inq, &outq, &rejq]).await;
    let gw = home.start();
    let police = client_for(&home, "police");
    let report = |n: usize| police_report(n, "ALARM");
    // a first report goes out: the gateway's publishing connection is made and has published
    let first =
        accepted_id(post_json(&police, &gw, "/police/v1/dokumenter", report(0)).await).await;
    let consumer = Prosecution::connect().await;
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    out.insert(consumer.next(&outq).await.message_id.unwrap(), 1);
    assert!(out.contains_key(&first));

    let alarm = MemoryAlarm::on();
    // reports are still accepted: the store does not depend on the broker
    let mut reports = vec![first];
    for n in 1..=5 {
        let r = post_json(&police, &gw, "/police/v1/dokumenter", report(n)).await;
        assert_eq!(r.status(), 202);
        reports.push(accepted_id(r).await);
    }
    // each attempt ends within its bound with an error naming the blocked broker
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states = delivery_states(&home, &gw, "police", &reports[1..]).await;
        let tried = states["prosecution"]
            .iter()
            .all(|(status, attempts, error)| {
                status == "retrying" && *attempts >= 2 && error.contains("blocks publishing")
            });
        if tried {
            break;
        }
        assert!(Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // /readyz names it, and so do the metrics
    let operator = client_for(&home, "operator");
    let r = operator.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let why = r.text().await.unwrap();
    assert!(why.contains("broker: blocks publishing"), "{why}");
    assert_eq!(
        sum(&metrics(&home, &gw).await.1, "jxg_broker_blocked", &[]),
        1.0
    );
    // a verdict posted meanwhile reaches the prison service and the police
    let courts = client_for(&home, "courts");
    let verdict = accepted_id(
        courts
            .post(gw.url("/courts/v1/dokumenter"))
            .header("Content-Type", "application/xml; charset=ISO-8859-1")
            .body(court_verdict(7))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for who in ["prison", "police"] {
        let c = client_for(&home, who);
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(drain_inbox(&c, &gw).await);
            if got.contains(&verdict) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(got.contains(&verdict), "{who}: {got:?}");
    }

    drop(alarm);
    // once the alarm is cleared, every report (and the verdict) reaches the queue exactly once
    let mut expected: BTreeSet<String> = reports.iter().cloned().collect();
    expected.insert(verdict);
    let deadline = Instant::now() + Duration::from_secs(90);
    while out.keys().cloned().collect::<BTreeSet<_>>() != expected {
        assert!(Instant::now() < deadline, "{out:?}, want {expected:?}");
        match consumer.take(&outq).await {
            Some(m) => *out.entry(m.message_id.unwrap()).or_default() += 1,
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // and nothing comes a second time
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Some(m) = consumer.take(&outq).await {
        *out.entry(m.message_id.unwrap()).or_default() += 1;
    }
    assert!(out.values().all(|n| *n == 1), "{out:?}");
    let r = operator.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    drop(gw);
    setup.delete(&[&inq, &outq, &rejq]).await;
}
