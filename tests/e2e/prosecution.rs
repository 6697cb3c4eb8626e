//! The prosecution service over the real RabbitMQ: record sets in from its queue, out to its
//! queue, and refused ones to the rejected queue.

use jxg_adapters::Context;
use jxg_schema::MasterData;
use jxg_tests::*;
use serde_json::Value;

async fn inbox_when(c: &reqwest::Client, gw: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let items = inbox(c, gw).await;
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the inbox never held {n} items");
}

async fn drained(p: &Prosecution, queue: &str) {
    for _ in 0..300 {
        if p.depth(queue).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{queue} was never consumed");
}

#[tokio::test]
async fn a_tilt_from_the_queue_reaches_the_courts_and_the_police_once() {
    let (home, p, (inq, outq, rejq)) = broker_home("tilt").await;
    let gw = home.start();
    p.publish(
        &inq,
        &sample("prosecution/valid/tilt-1.flat"),
        "ANK-2026-004711-001",
    )
    .await;

    let courts = client_for(&home, "courts");
    let items = inbox_when(&courts, &gw, 1).await;
    assert_eq!(items[0]["format"], "court-xml");
    let keys = jwks(&courts, &gw).await;
    let xml = items[0]["content"].as_str().unwrap();
    verify_detached(
        items[0]["signature"].as_str().unwrap(),
        xml.as_bytes(),
        &keys,
    )
    .unwrap();
    let md = MasterData::embedded();
    let ctx = Context { master_data: &md };
    let ours = jxg_adapters::court_xml::decode(xml.as_bytes(), &ctx).unwrap();
    let theirs =
        jxg_adapters::court_xml::decode(&sample("court/valid/anklageskrift-1.xml"), &ctx).unwrap();
    assert_eq!(ours.body, theirs.body, "with the narrative as Beskrivelse");
    assert_eq!(ours.case, theirs.case);
    let id = items[0]["id"].as_str().unwrap().to_string();

    let police = client_for(&home, "police");
    let items = inbox_when(&police, &gw, 1).await;
    let got: Value = serde_json::from_str(items[0]["content"].as_str().unwrap()).unwrap();
    let mut want: Value = serde_json::from_slice(&sample("police/valid/tiltale-1.json")).unwrap();
    want["dokumentid"] = Value::from(id.clone());
    assert_eq!(got, want, "the police get it without the narrative");
    drained(&p, &inq).await;
    let r = police
        .post(gw.url(&format!("/v1/inbox/{id}/ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // the same message_id again (a redelivery after a crash between accept and ack): no second message
    p.publish(
        &inq,
        &sample("prosecution/valid/tilt-1.flat"),
        "ANK-2026-004711-001",
    )
    .await;
    drained(&p, &inq).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        inbox(&police, &gw).await.is_empty(),
        "a second canonical message was made"
    );
    assert_eq!(p.depth(&rejq).await, 0);
    // the gateway goes first: it would declare the queues again when it reconnects
    drop(gw);
    p.delete(&[&inq, &outq, &rejq]).await;
}

#[tokio::test]
async fn a_police_report_arrives_on_the_out_queue_as_a_signed_anml() {
    let (home, p, (inq, outq, rejq)) = broker_home("anml").await;
    let gw = home.start();
    let police = client_for(&home, "police");
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = police
        .post(gw.url("/police/v1/dokumenter"))
        .header("Content-Type", "application/json")
        .header("traceparent", trace)
        .body(sample("police/valid/anmeldelse-1.json"))
        .send()
        .await
        .unwrap();
    let id = accepted_id(r).await;
    let m = p.next(&outq).await;
    assert_eq!(m.message_id.as_deref(), Some(id.as_str()));
    assert_eq!(m.correlation_id.as_deref(), Some("1470-76543-00012-26"));
    assert_eq!(m.content_type.as_deref(), Some("text/x-jxg-flat"));
    assert_eq!(m.content_encoding.as_deref(), Some("ISO-8859-1"));
    assert_eq!(
        m.headers.get("traceparent").map(String::as_str),
        Some(trace)
    );
    let keys = jwks(&police, &gw).await;
    let h = verify_detached(&m.headers["jxg-signature"], &m.body, &keys).unwrap();
    assert_eq!(h["jxg_recipient"], "prosecution");
    // three PE and two FO records, neither addresses nor the narrative of an ANML
    let kinds: Vec<&[u8]> = m
        .body
        .split(|b| *b == b'\n')
        .filter(|l| l.len() >= 2)
        .map(|l| &l[..2])
        .collect();
    assert_eq!(
        kinds,
        [&b"HD"[..], b"PE", b"PE", b"PE", b"FO", b"FO", b"TR"]
    );
    let md = MasterData::embedded();
    let back =
        jxg_adapters::prosecution_flat::decode(&m.body, &Context { master_data: &md }).unwrap();
    assert_eq!(back.message_type().as_str(), "offence.reported");
    assert_eq!(back.source_document_id, id);
    // status: delivered when the broker confirmed it
    for _ in 0..100 {
        let s: Value = police
            .get(gw.url(&format!("/v1/messages/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["recipients"][0]["status"] == "delivered" {
            // the gateway goes first: it would declare the queues again when it reconnects
            drop(gw);
            p.delete(&[&inq, &outq, &rejq]).await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never delivered");
}

#[tokio::test]
async fn poison_messages_land_in_the_rejected_queue_once_with_their_reason() {
    let (home, p, (inq, outq, rejq)) = broker_home("poison").await;
    let gw = home.start();
    let manifest: Value =
        serde_json::from_slice(&sample("prosecution/invalid/manifest.json")).unwrap();
    for e in manifest.as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        p.publish(
            &inq,
            &sample(&format!("prosecution/invalid/{file}")),
            &format!("POISON-{file}"),
        )
        .await;
        let m = p.next(&rejq).await;
        assert_eq!(
            m.message_id.as_deref(),
            Some(format!("POISON-{file}").as_str())
        );
        let why = &m.headers["x-jxg-error"];
        let (record, field) = (e["record"].as_u64().unwrap(), e["field"].as_str().unwrap());
        assert!(
            why.contains(&format!("record {record} (")) && why.contains(&format!("field {field}")),
            "{file}: {why}"
        );
        assert_eq!(
            m.headers["x-jxg-status"],
            e["class"].to_string(),
            "{file}: {why}"
        );
        for secret in ["0104909995", "Hansen", "Jens Peter"] {
            assert!(!why.contains(secret), "{file}: {why}");
        }
        assert_eq!(
            m.body,
            sample(&format!("prosecution/invalid/{file}")),
            "the rejected copy is the message as sent"
        );
    }
    drained(&p, &inq).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        p.depth(&rejq).await,
        0,
        "each poison message was answered once"
    );
    assert_eq!(p.depth(&inq).await, 0, "and not redelivered");
    for who in ["courts", "police"] {
        assert!(
            inbox(&client_for(&home, who), &gw).await.is_empty(),
            "{who}"
        );
    }
    // the broker is reported ready
    let op = client_for(&home, "operator");
    assert_eq!(
        op.get(gw.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // the gateway goes first: it would declare the queues again when it reconnects
    drop(gw);
    p.delete(&[&inq, &outq, &rejq]).await;
}

#[tokio::test]
async fn what_the_record_layout_cuts_or_folds_is_recorded_with_the_delivery() {
    let (home, p, (inq, outq, rejq)) = broker_home("fold").await;
    let gw = home.start();
    let police = client_for(&home, "police");
    let mut doc: Value = serde_json::from_slice(&sample("police/valid/sigtelse-1.json")).unwrap();
    doc["personer"][0]["efternavn"] = Value::from("Søndergård-Kjær-Wiśniewska-Łukasiewicz-Kőrösi");
    let r = post_json(&police, &gw, "/police/v1/dokumenter", doc.to_string()).await;
    let id = accepted_id(r).await;
    let m = p.next(&outq).await;
    let pe = m.body.split(|b| *b == b'\n').nth(1).unwrap();
    let family: String = pe[14..49].iter().map(|b| char::from(*b)).collect();
    assert_eq!(family.trim_end(), "Søndergård-Kjær-Wisniewska-Lukasiew");
    let s: Value = police
        .get(gw.url(&format!("/v1/messages/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let notes: Vec<&str> = s["recipients"][0]["alterations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        notes,
        [
            "record 2 (PE) field family name: cut to the field's width",
            "record 2 (PE) field family name: characters outside ISO-8859-1 folded"
        ]
    );
    assert!(
        !s.to_string().contains("Søndergård"),
        "places only, never values"
    );
    // the gateway goes first: it would declare the queues again when it reconnects
    drop(gw);
    p.delete(&[&inq, &outq, &rejq]).await;
}
