//! The tests that change the shared broker (a restart, a memory alarm), taking turns: after a
//! restart every accepted message is delivered, once per `message_id`, and nothing that got a
//! 202 is lost.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jxg_tests::*;
use serde_json::Value;

mod alarm;
mod kill;

/// The tests of this binary restart the shared broker; they take turns.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl is installed with RabbitMQ");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Publishes until the broker confirms, reconnecting while it is away.
async fn publish_confirmed(
    client: &Arc<tokio::sync::Mutex<Option<Prosecution>>>,
    queue: &str,
    body: &[u8],
    id: &str,
) {
    for _ in 0..600 {
        let mut slot = client.lock().await;
        if slot.is_none() {
            match lapin::Connection::connect(BROKER_URL, lapin::ConnectionProperties::default())
                .await
            {
                Ok(conn) => {
                    let Ok(channel) = conn.create_channel().await else {
                        continue;
                    };
                    if channel
                        .confirm_select(lapin::options::ConfirmSelectOptions::default())
                        .await
                        .is_err()
                    {
                        continue;
                    }
                    *slot = Some(Prosecution { conn, channel });
                }
                Err(_) => {
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let p = slot.as_ref().unwrap();
        let props = lapin::BasicProperties::default()
            .with_content_type("text/x-jxg-flat".into())
            .with_content_encoding("ISO-8859-1".into())
            .with_message_id(id.into())
            .with_delivery_mode(2);
        let sent = p
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                props,
            )
            .await;
        let confirmed = match sent {
            Ok(c) => matches!(c.await, Ok(c) if c.is_ack()),
            Err(_) => false,
        };
        if confirmed {
            return;
        }
        *slot = None;
        drop(slot);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{id} was never confirmed");
}

#[tokio::test]
async fn a_broker_restart_while_messages_flow_both_ways_loses_and_duplicates_nothing() {
    let _broker = BROKER.lock().await;
    let home = Home::with_broker("restart");
    home.delivery(&[
        ("retry_base_ms", "100"),
        ("retry_cap_ms", "1000"),
        ("max_attempts", "10000"),
        ("breaker_failures", "10000"),
    ]);
    let (inq, outq, rejq) = home.queues();
    let setup = Prosecution::connect().await;
    setup.declare(&[&inq, &outq, &rejq]).await;
    let gw = home.start();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));

    // police reports flow out to the prosecution queue
    let police = client_for(&home, "police");
    let url = gw.url("/police/v1/dokumenter");
    let a = accepted.clone();
    let reports = tokio::spawn(async move {
        for n in 0..30u32 {
            let mut v: Value =
                serde_json::from_slice(&sample("police/valid/anmeldelse-1.json")).unwrap();
            v["dokumentid"] = Value::from(format!("RESTART-{n}"));
            v["journalnr"] = Value::from(format!("1470-76543-{:05}-26", 500 + n));
            let r = police
                .post(&url)
                .header("Content-Type", "application/json")
                .body(v.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202, "the store does not depend on the broker");
            let id = r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            a.lock().unwrap().push(id);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    // indictments flow in from the prosecution system
    let client = Arc::new(tokio::sync::Mutex::new(None));
    let c = client.clone();
    let q = inq.clone();
    let indictments = tokio::spawn(async move {
        for n in 0..20u32 {
            let (body, id) = tilt(n, "RESTART");
            publish_confirmed(&c, &q, &body, &id).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"]))
        .await
        .unwrap();
    // while the broker is away the gateway says so, and keeps accepting what it can store
    let operator = client_for(&home, "operator");
    let mut down = None;
    for _ in 0..50 {
        let r = operator.get(gw.admin_url("/readyz")).send().await.unwrap();
        if r.status() == 503 {
            down = Some(r.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down = down.expect("/readyz never reported the broker down");
    assert!(down.contains("broker"), "{down}");
    // messages keep coming while it is away
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::spawn_blocking(|| {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    })
    .await
    .unwrap();
    reports.await.unwrap();
    indictments.await.unwrap();
    let mut up = false;
    for _ in 0..100 {
        if operator
            .get(gw.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "/readyz never reported the broker back");
    let accepted: BTreeSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    assert_eq!(accepted.len(), 30);

    // outbound: every 202 reaches the prosecution queue; counted by message_id
    let consumer = Prosecution::connect().await;
    let mut seen = BTreeSet::new();
    let mut raw = 0;
    for _ in 0..600 {
        while let Some(m) = consumer.take(&outq).await {
            raw += 1;
            seen.insert(m.message_id.unwrap());
        }
        if seen.len() >= accepted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, accepted,
        "every accepted report arrived, under its own message_id"
    );
    assert!(raw >= seen.len());

    // inbound: each confirmed indictment became exactly one message for the courts
    // a take hides what it returns for the visibility timeout, so every poll's items count
    let courts = client_for(&home, "courts");
    let mut ids = BTreeSet::new();
    for _ in 0..600 {
        ids.extend(
            inbox(&courts, &gw)
                .await
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        if ids.len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // redeliveries after the restart have had time to arrive; none may add a message
    tokio::time::sleep(Duration::from_secs(1)).await;
    ids.extend(
        inbox(&courts, &gw)
            .await
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string()),
    );
    assert_eq!(
        ids.len(),
        20,
        "twenty indictments, twenty messages for the courts"
    );
    assert_eq!(consumer.depth(&rejq).await, 0);
    drop(gw);
    consumer.delete(&[&inq, &outq, &rejq]).await;
}
