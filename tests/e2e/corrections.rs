//! Corrections and withdrawals (canonical v2) over the real gateway: who is told what, in which
//! format, and what is refused.

use jxg_schema::schema::{Form, check};
use jxg_tests::*;
use serde_json::{Value, json};

/// The story's verdict (unsuspended imprisonment) as the courts submit it.
fn verdict(source: &str) -> Value {
    submission("canonical/valid/verdict.issued.json", source)
}

/// The same verdict with day fines instead: a sentence the prison does not enforce.
fn day_fines(mut v: Value) -> Value {
    v["body"]["sentence"] = json!({
        "kind": "day_fines",
        "suspended": false,
        "conditions": [],
        "day_fines": {"count": 20, "rate": {"minor": 50000, "currency": "DKK"}}
    });
    v
}

/// `m` as a v2 correction of the courts' document `replaced`.
fn correcting(mut m: Value, replaced: &str, reason: &str) -> Value {
    m["schema"] = json!("jxg.canonical/v2");
    m["replaces"] = json!({"source_document_id": replaced, "reason": reason});
    m
}

async fn post(c: &reqwest::Client, gw: &Gateway, m: &Value) -> reqwest::Response {
    post_json(c, gw, "/v1/messages", m.to_string()).await
}

/// Each recipient of a message as its sender sees it: (status, copy).
async fn recipients(
    c: &reqwest::Client,
    gw: &Gateway,
    id: &str,
) -> std::collections::BTreeMap<String, (String, String)> {
    let s = get_json(c, &gw.url(&format!("/v1/messages/{id}"))).await;
    let copies = by_recipient(&s, "copy");
    by_recipient(&s, "status")
        .into_iter()
        .map(|(r, status)| (r.to_string(), (status.to_string(), copies[r].to_string())))
        .collect()
}

/// What the prison's inbox holds, each item's content parsed, its signature checked and the
/// content checked against the canonical schema of the version it names.
async fn prison_inbox(home: &Home, gw: &Gateway) -> Vec<(Value, Value)> {
    let prison = client_for(home, "prison");
    let keys = jwks(&prison, gw).await;
    let mut out = vec![];
    for item in inbox(&prison, gw).await {
        assert_eq!(item["format"], "canonical-v2");
        let content = item["content"].as_str().unwrap();
        verify_detached(
            item["signature"].as_str().unwrap(),
            content.as_bytes(),
            &keys,
        )
        .unwrap();
        let doc: Value = serde_json::from_str(content).unwrap();
        assert_eq!(doc["schema"], "jxg.canonical/v2");
        let faults = check(Form::Stored, &doc);
        assert!(faults.is_empty(), "{faults}: {doc}");
        ack(&prison, gw, item["id"].as_str().unwrap()).await;
        out.push((item, doc));
    }
    out
}

/// The records of a flat record set, without their CRLF, as text.
fn records(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\r\n")
        .filter(|r| !r.is_empty())
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_verdict_corrected_to_day_fines_reaches_police_and_prosecution_as_corrections_and_is_withdrawn_from_the_prison()
 {
    let (home, prosecution_queue, (inq, outq, rejq)) = broker_home("corrections").await;
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let police = client_for(&home, "police");
    let keys = jwks(&courts, &gw).await;
    let original = accepted_id(post(&courts, &gw, &verdict("DOM-C-1")).await).await;
    let got = prison_inbox(&home, &gw).await;
    assert_eq!(got.len(), 1, "imprisonment is enforced: the prison gets it");
    assert_eq!(got[0].1["id"], original.as_str());
    assert!(got[0].1.get("replaces").is_none());
    let first = prosecution_queue.next(&outq).await;
    assert_eq!(first.message_id.as_deref(), Some(original.as_str()));
    let police_got = inbox(&police, &gw).await;
    assert_eq!(police_got.len(), 1);
    ack(&police, &gw, police_got[0]["id"].as_str().unwrap()).await;

    let correction = correcting(day_fines(verdict("DOM-C-2")), "DOM-C-1", "decision-changed");
    let r = post(&courts, &gw, &correction).await;
    let corrected = accepted_id(r).await;
    let told = recipients(&courts, &gw, &corrected).await;
    assert_eq!(
        told["prison"],
        ("queued".to_string(), "withdrawal".to_string()),
        "{told:?}"
    );
    assert_eq!(told["police"].1, "message", "{told:?}");
    assert_eq!(told["prosecution"].1, "message", "{told:?}");

    // the prison may no longer hold the verdict: a withdrawal for erasure, nothing of the verdict
    let got = prison_inbox(&home, &gw).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let w = &got[0].1;
    assert_eq!(w["type"], "message.withdrawn");
    assert_eq!(w["id"], corrected.as_str());
    assert_eq!(w["body"]["message_id"], original.as_str());
    assert_eq!(w["body"]["source_document_id"], "DOM-C-1");
    assert_eq!(w["body"]["reason"], "erasure");
    assert_eq!(w["correlation_id"], correction["correlation_id"]);
    assert!(
        w["body"].get("sentence").is_none(),
        "a withdrawal carries no body of the verdict"
    );
    assert_eq!(
        got[0].0["type"], "message.withdrawn",
        "the inbox says what the item is"
    );

    // the police: a DOM that says which DOM it replaces, with the day fines
    let items = inbox(&police, &gw).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let content = items[0]["content"].as_str().unwrap();
    verify_detached(
        items[0]["signature"].as_str().unwrap(),
        content.as_bytes(),
        &keys,
    )
    .unwrap();
    let dom: Value = serde_json::from_str(content).unwrap();
    assert_eq!(dom["dokumenttype"], "DOM");
    assert_eq!(dom["dokumentid"], corrected.as_str());
    assert_eq!(
        dom["rettelse"],
        json!({"erstatter": original, "aarsag": "AENDRET_AFGOERELSE"})
    );
    assert_eq!(dom["straf"]["art"], "DAGBOEDER");
    ack(&police, &gw, items[0]["id"].as_str().unwrap()).await;

    // the prosecution, over the broker: a DOMA whose RT record names the DOMA it replaces
    let doma = prosecution_queue.next(&outq).await;
    assert_eq!(doma.message_id.as_deref(), Some(corrected.as_str()));
    verify_detached(&doma.headers["jxg-signature"], &doma.body, &keys).unwrap();
    let recs = records(&doma.body);
    assert!(recs[0].starts_with("HDDOMA"), "{recs:?}");
    assert!(recs[1].starts_with(&format!("RT{original}")), "{recs:?}");
    assert_eq!(&recs[1][42..46], "AEND");

    // the defendant's subject access: every disclosure of the verdict, and that it was later
    // corrected, with what each recipient was given and when it took it (the broker's confirm
    // of the prosecution's copy may come a moment after the copy itself)
    for _ in 0..200 {
        if recipients(&courts, &gw, &corrected).await["prosecution"].0 == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let auditor = client_for(&home, "auditor");
    let cpr = correction["body"]["defendant"]["cpr"].as_str().unwrap();
    let r = auditor
        .post(gw.admin_url("/admin/v1/audit/subject-access"))
        .json(&json!({"cpr": cpr}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let access: Value = r.json().await.unwrap();
    let of_original: Vec<&Value> = access["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["message_id"] == original.as_str())
        .collect();
    let to: std::collections::BTreeSet<&str> = of_original
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["police", "prison", "prosecution"].into(), "{access}");
    for d in &of_original {
        let later = &d["later"];
        assert_eq!(later["act"], "corrected", "{d}");
        assert_eq!(later["by"], corrected.as_str(), "{d}");
        let mine = &later["to_recipient"];
        assert_eq!(mine["recipient"], d["recipient"], "{d}");
        let want = if d["recipient"] == "prison" {
            "withdrawal"
        } else {
            "message"
        };
        assert_eq!(mine["copy"], want, "{d}");
        assert_eq!(mine["status"], "delivered", "{d}");
        if d["recipient"] != "prosecution" {
            assert!(
                mine["acked_at"].as_i64().is_some(),
                "a pull recipient acknowledged it: {d}"
            );
        }
    }

    // the same correction again is its first answer
    let again = post(&courts, &gw, &correction).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["jxg-duplicate"], "true");

    // the original was replaced: only the latest version may be corrected, and it is named
    let p = problem(
        post(
            &courts,
            &gw,
            &correcting(verdict("DOM-C-3"), "DOM-C-1", "wrong-data"),
        )
        .await,
        409,
        "a correction of a replaced message",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains(&corrected),
        "names the correction that replaced it: {p}"
    );

    // another authority may not correct the courts' verdict
    let prosecution = client_for(&home, "prosecution");
    let mut theirs = verdict("AM-C-1");
    theirs.as_object_mut().unwrap().remove("sender");
    theirs["schema"] = json!("jxg.canonical/v2");
    theirs["replaces"] = json!({"message_id": corrected, "reason": "wrong-data"});
    let p = problem(
        post(&prosecution, &gw, &theirs).await,
        403,
        "another authority's",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("default-deny"),
        "names the deciding policy: {p}"
    );

    // a correction of nothing the courts sent, and one of another type, name their field
    problem(
        post(
            &courts,
            &gw,
            &correcting(verdict("DOM-C-4"), "DOM-NONE", "wrong-data"),
        )
        .await,
        409,
        "a correction of an unknown document",
    )
    .await;
    let mut other_type = correcting(
        submission("canonical/valid/hearing.scheduled.json", "DOM-C-5"),
        "DOM-C-2",
        "wrong-data",
    );
    other_type["correlation_id"] = correction["correlation_id"].clone();
    other_type["case"] = correction["case"].clone();
    let p = problem(post(&courts, &gw, &other_type).await, 422, "another type").await;
    assert_eq!(problem_paths(&p), ["type"], "{p}");

    // a withdrawal of the correction goes to those that hold it: the police and the prosecution
    let withdrawal = json!({
        "schema": "jxg.canonical/v2",
        "type": "message.withdrawn",
        "source_document_id": "DOM-C-6",
        "occurred_at": "2026-06-16T10:00:00Z",
        "purpose": correction["purpose"],
        "classification": correction["classification"],
        "case": correction["case"],
        "correlation_id": correction["correlation_id"],
        "body": {"source_document_id": "DOM-C-2", "reason": "sent-in-error"}
    });
    let withdrawn = accepted_id(post(&courts, &gw, &withdrawal).await).await;
    let told = recipients(&courts, &gw, &withdrawn).await;
    assert!(
        !told.contains_key("prison"),
        "it no longer holds the verdict: {told:?}"
    );
    assert_eq!(told["police"].1, "withdrawal", "{told:?}");
    assert_eq!(told["prosecution"].1, "withdrawal", "{told:?}");
    let items = inbox(&police, &gw).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let tilbage: Value = serde_json::from_str(items[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(tilbage["dokumenttype"], "TILBAGEKALDELSE");
    assert_eq!(
        tilbage["tilbagekaldelse"],
        json!({"dokumentid": corrected, "aarsag": "SENDT_VED_FEJL"})
    );
    assert!(tilbage.get("personer").is_none());
    let tilb = prosecution_queue.next(&outq).await;
    assert_eq!(tilb.message_id.as_deref(), Some(withdrawn.as_str()));
    let recs = records(&tilb.body);
    assert_eq!(recs.len(), 3, "HD, TB, TR: {recs:?}");
    assert!(recs[0].starts_with("HDTILB"));
    assert!(recs[1].starts_with(&format!("TB{corrected}")));
    assert_eq!(&recs[1][42..46], "FEJL");

    let mut twice = withdrawal.clone();
    twice["source_document_id"] = json!("DOM-C-7");
    let p = problem(post(&courts, &gw, &twice).await, 409, "a withdrawn message").await;
    assert!(p["detail"].as_str().unwrap().contains(&withdrawn), "{p}");
    // a withdrawal in v1 does not exist
    let mut v1 = withdrawal.clone();
    v1["schema"] = json!("jxg.canonical/v1");
    v1["source_document_id"] = json!("DOM-C-8");
    problem(post(&courts, &gw, &v1).await, 422, "a v1 withdrawal").await;
    assert_audit_verifies(&home, &gw).await;
    drop(gw);
    prosecution_queue.delete(&[&inq, &outq, &rejq]).await;
}

#[tokio::test]
async fn a_v1_canonical_recipient_is_flagged_for_what_v1_cannot_say() {
    // on this topology the prosecution pulls canonical v1 from its inbox
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let prosecution = client_for(&home, "prosecution");
    accepted_id(post(&courts, &gw, &verdict("DOM-F-1")).await).await;
    // the prosecution took the verdict: it holds it, and must be told
    let items = inbox(&prosecution, &gw).await;
    assert_eq!(items.len(), 1);
    ack(&prosecution, &gw, items[0]["id"].as_str().unwrap()).await;
    let correction = correcting(verdict("DOM-F-2"), "DOM-F-1", "clerical-error");
    let corrected = accepted_id(post(&courts, &gw, &correction).await).await;
    let s = get_json(&courts, &gw.url(&format!("/v1/messages/{corrected}"))).await;
    let flagged: Vec<&Value> = s["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "flagged")
        .collect();
    assert_eq!(flagged.len(), 1, "{s}");
    assert_eq!(flagged[0]["recipient"], "prosecution");
    assert!(
        flagged[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("canonical cannot carry a correction"),
        "{s}"
    );
    // it is given nothing it could take for a new verdict beside the old one
    let items = inbox(&prosecution, &gw).await;
    assert!(items.is_empty(), "no second verdict: {items:?}");

    // the operators' list of open rectifications shows it, with its age, until it is done
    let operator = client_for(&home, "operator");
    let open = get_json(&operator, &gw.admin_url("/admin/v1/rectifications")).await;
    let items = open["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{open}");
    let r = &items[0];
    assert_eq!(r["id"], corrected.as_str());
    assert_eq!(r["kind"], "correction");
    assert_eq!(r["reason"], "clerical-error");
    assert_eq!(r["open"], true);
    assert!(r["age_seconds"].as_i64().unwrap() >= 0);
    let by = by_recipient(r, "copy");
    assert_eq!(by["prosecution"], "flagged", "{r}");
    assert_eq!(by["prison"], "message", "{r}");
    assert_eq!(by["police"], "message", "{r}");
    let text = open.to_string();
    for secret in personal_data() {
        assert!(
            !text.contains(&secret),
            "no personal data in the list: {secret}"
        );
    }
    let r = operator
        .get(gw.admin_url("/admin/v1/rectifications?state=closed"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem_paths(&problem(r, 422, "a state it does not know").await),
        ["state"]
    );
    let (_, s) = metrics(&home, &gw).await;
    assert_eq!(
        sum(
            &s,
            "jxg_rectifications_total",
            &[("kind", "correction"), ("told", "flagged")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &s,
            "jxg_rectifications_total",
            &[("kind", "correction"), ("told", "correction")]
        ),
        2.0,
        "the police and the prison"
    );

    // an operator who told the prosecution by other means says so: done with it, audited
    let notify = async |who: &reqwest::Client, id: &str, body: String| {
        who.post(gw.admin_url(&format!("/admin/v1/rectifications/{id}/notified")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    };
    let prosecution_told = json!({"recipient": "prosecution"}).to_string();
    let r = notify(&operator, &corrected, prosecution_told.clone()).await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    assert_eq!(by_recipient(&r, "status")["prosecution"], "notified", "{r}");
    assert_eq!(
        r["open"], true,
        "the police and the prison have not taken theirs: {r}"
    );
    // again: nothing changes, and it is not audited twice
    assert_eq!(
        notify(&operator, &corrected, prosecution_told.clone())
            .await
            .status(),
        200
    );
    // what it cannot confirm
    let r = notify(
        &operator,
        &corrected,
        json!({"recipient": "prison"}).to_string(),
    )
    .await;
    problem(r, 409, "a recipient told through the gateway").await;
    // whatever was typed is not repeated back (a CPR number pasted by mistake)
    let typed = json!({"recipient": "0104909995"}).to_string();
    let p = problem(
        notify(&operator, &corrected, typed).await,
        409,
        "no such recipient",
    )
    .await;
    assert!(!p.to_string().contains("0104909995"), "{p}");
    let r = notify(&operator, &corrected, "{\"recipient\": 1}".into()).await;
    assert_eq!(
        problem_paths(&problem(r, 422, "a body it cannot read").await),
        ["recipient"]
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    let r = notify(&operator, &unknown, prosecution_told.clone()).await;
    problem(r, 404, "no such rectification").await;
    let auditor = client_for(&home, "auditor");
    let r = notify(&auditor, &corrected, prosecution_told.clone()).await;
    problem(r, 403, "an auditor").await;
    // once the others have theirs it is no longer open
    drain_inbox(&client_for(&home, "police"), &gw).await;
    drain_inbox(&client_for(&home, "prison"), &gw).await;
    let open = get_json(&operator, &gw.admin_url("/admin/v1/rectifications")).await;
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");
    let all = get_json(
        &operator,
        &gw.admin_url("/admin/v1/rectifications?state=all"),
    )
    .await;
    assert_eq!(all["items"][0]["open"], false, "{all}");
    let audit = get_json(&auditor, &gw.admin_url("/admin/v1/audit?limit=1000")).await;
    let notified: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "notified")
        .collect();
    assert_eq!(notified.len(), 1, "{audit}");
    assert_eq!(notified[0]["recipient"], "prosecution");
    assert_eq!(notified[0]["actor"], "admin:operator");
    assert_audit_verifies(&home, &gw).await;
}

#[tokio::test]
async fn a_day_fine_verdict_corrected_to_imprisonment_reaches_the_prison_as_a_new_message() {
    let home = Home::new();
    let gw = home.start();
    let courts = client_for(&home, "courts");
    let original = accepted_id(post(&courts, &gw, &day_fines(verdict("DOM-N-1"))).await).await;
    let told = recipients(&courts, &gw, &original).await;
    assert!(
        !told.contains_key("prison"),
        "day fines are not enforced by the prison: {told:?}"
    );
    assert!(prison_inbox(&home, &gw).await.is_empty());

    let correction = correcting(verdict("DOM-N-2"), "DOM-N-1", "wrong-data");
    let corrected = accepted_id(post(&courts, &gw, &correction).await).await;
    let told = recipients(&courts, &gw, &corrected).await;
    assert_eq!(
        told["prison"],
        ("queued".to_string(), "message".to_string()),
        "{told:?}"
    );
    assert_eq!(told["police"].1, "message", "{told:?}");
    let got = prison_inbox(&home, &gw).await;
    assert_eq!(got.len(), 1);
    let m = &got[0].1;
    assert_eq!(m["id"], corrected.as_str());
    assert_eq!(m["type"], "verdict.issued");
    assert_eq!(m["body"]["sentence"]["kind"], "imprisonment");
    assert!(
        m.get("replaces").is_none(),
        "the prison never had the day-fine verdict: it gets the verdict as new, {m}"
    );
    assert_audit_verifies(&home, &gw).await;
}

/// A `TILB` record set of the prosecution withdrawing its document `withdrawn`, in the case
/// of the record set `of` (its HD's references).
fn tilb(of: &[u8], own_id: &str, withdrawn: &str, reason: &str) -> Vec<u8> {
    let mut hd = of[..128].to_vec();
    hd[2..6].copy_from_slice(b"TILB");
    hd[79..119].fill(b' ');
    hd[79..79 + own_id.len()].copy_from_slice(own_id.as_bytes());
    let mut tb = vec![b' '; 128];
    tb[..2].copy_from_slice(b"TB");
    tb[2..2 + withdrawn.len()].copy_from_slice(withdrawn.as_bytes());
    tb[42..46].copy_from_slice(reason.as_bytes());
    let mut tr = vec![b' '; 128];
    tr[..8].copy_from_slice(b"TR000003");
    [hd, tb, tr].join(&b"\r\n"[..])
}

/// `n` items of an inbox, waiting for them (bounded).
async fn inbox_of(c: &reqwest::Client, gw: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let items = inbox(c, gw).await;
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} items: {:?}", inbox(c, gw).await);
}

#[tokio::test]
async fn police_json_court_xml_and_flat_records_correct_and_withdraw_in_their_own_forms() {
    let (home, queue, (inq, outq, rejq)) = broker_home("legacy-corrections").await;
    let gw = home.start();
    let police = client_for(&home, "police");
    let courts = client_for(&home, "courts");

    // the police correct a report of theirs, naming it by their own document id
    let report: Value = serde_json::from_slice(&sample("police/valid/anmeldelse-1.json")).unwrap();
    let first =
        accepted_id(post_json(&police, &gw, "/police/v1/dokumenter", report.to_string()).await)
            .await;
    assert_eq!(
        queue.next(&outq).await.message_id.as_deref(),
        Some(first.as_str())
    );
    let mut corrected = report.clone();
    corrected["dokumentid"] = json!("POL-2026-0012418");
    corrected["rettelse"] =
        json!({"erstatter": report["dokumentid"], "aarsag": "FORKERTE_OPLYSNINGER"});
    let second =
        accepted_id(post_json(&police, &gw, "/police/v1/dokumenter", corrected.to_string()).await)
            .await;
    let anml = queue.next(&outq).await;
    assert_eq!(anml.message_id.as_deref(), Some(second.as_str()));
    let recs = records(&anml.body);
    assert!(recs[0].starts_with("HDANML"), "{recs:?}");
    assert!(recs[1].starts_with(&format!("RT{first}")), "{recs:?}");
    assert_eq!(&recs[1][42..46], "OPLY");

    // the prosecution withdraws an indictment over the broker, naming its own message id
    let tilt = sample("prosecution/valid/tilt-1.flat");
    queue.publish(&inq, &tilt, "ANK-2026-004711-001").await;
    let items = inbox_of(&courts, &gw, 1).await;
    let indictment = items[0]["id"].as_str().unwrap().to_string();
    ack(&courts, &gw, &indictment).await;
    let items = inbox_of(&police, &gw, 1).await;
    ack(&police, &gw, items[0]["id"].as_str().unwrap()).await;
    queue
        .publish(
            &inq,
            &tilb(&tilt, "ANK-2026-004711-002", "ANK-2026-004711-001", "FEJL"),
            "ANK-2026-004711-002",
        )
        .await;
    let items = inbox_of(&courts, &gw, 1).await;
    let xml = items[0]["content"].as_str().unwrap();
    assert!(xml.contains("<Tilbagekaldelse "), "{xml}");
    assert!(
        xml.contains(&format!(
            "<Tilbagekaldt dokumentid=\"{indictment}\" årsag=\"sendt-ved-fejl\"/>"
        )),
        "{xml}"
    );
    assert!(!xml.contains("<Person"), "{xml}");
    ack(&courts, &gw, items[0]["id"].as_str().unwrap()).await;
    let items = inbox_of(&police, &gw, 1).await;
    let doc: Value = serde_json::from_str(items[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(doc["dokumenttype"], "TILBAGEKALDELSE");
    assert_eq!(doc["tilbagekaldelse"]["dokumentid"], indictment.as_str());
    ack(&police, &gw, items[0]["id"].as_str().unwrap()).await;
    assert_eq!(queue.depth(&rejq).await, 0, "nothing was refused");

    // the courts withdraw a verdict in XML
    let dom = sample("court/valid/dom-2-utf8.xml");
    let r = courts
        .post(gw.url("/courts/v1/dokumenter"))
        .header("Content-Type", "application/xml")
        .body(dom)
        .send()
        .await
        .unwrap();
    let verdict = accepted_id(r).await;
    let items = inbox_of(&police, &gw, 1).await;
    ack(&police, &gw, items[0]["id"].as_str().unwrap()).await;
    let _ = queue.next(&outq).await;
    let withdrawal = r#"<?xml version="1.0" encoding="UTF-8"?>
<Tilbagekaldelse xmlns="urn:dk:domstol:straffesag:2" version="2.3" dokumentid="DOM-2026-001094">
  <Sag>
    <Sagsnummer>SS-871/2026-ODE</Sagsnummer>
    <Ret kode="ODE">Retten i Odense</Ret>
    <PolitiJournalnummer>1465-22140-00118-26</PolitiJournalnummer>
    <Anklagenummer>AM-2026-005530</Anklagenummer>
  </Sag>
  <Tidspunkt>2026-10-28T09:00:00+01:00</Tidspunkt>
  <Tilbagekaldt dokumentid="DOM-2026-001093" årsag="forkert-person"/>
</Tilbagekaldelse>"#;
    let r = courts
        .post(gw.url("/courts/v1/dokumenter"))
        .header("Content-Type", "application/xml")
        .body(withdrawal)
        .send()
        .await
        .unwrap();
    let withdrawn = accepted_id(r).await;
    let items = inbox_of(&police, &gw, 1).await;
    let doc: Value = serde_json::from_str(items[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(doc["dokumentid"], withdrawn.as_str());
    assert_eq!(
        doc["tilbagekaldelse"],
        json!({"dokumentid": verdict, "aarsag": "FORKERT_PERSON"})
    );
    let tilb = queue.next(&outq).await;
    assert_eq!(tilb.message_id.as_deref(), Some(withdrawn.as_str()));
    let tb = &records(&tilb.body)[1];
    assert_eq!(
        (tb[2..42].trim(), &tb[42..46]),
        (verdict.as_str(), "PERS"),
        "{tb}"
    );
    assert_audit_verifies(&home, &gw).await;
    drop(gw);
    queue.delete(&[&inq, &outq, &rejq]).await;
}

/// The police's withdrawal of their document `of`, in the case of `anholdelse-1.json`.
fn tilbagekaldelse(own_id: &str, of: &str, journal: &str) -> String {
    json!({
        "dokumenttype": "TILBAGEKALDELSE",
        "dokumentid": own_id,
        "journalnr": journal,
        "anklagenr": null,
        "rettens_sagsnr": null,
        "oprettet": "19-07-2026 08:00",
        "tilbagekaldelse": {"dokumentid": of, "aarsag": "FORKERT_PERSON"}
    })
    .to_string()
}

#[tokio::test]
async fn an_arrest_withdrawn_before_the_courts_took_it_is_never_offered_to_them_and_after_it_is_withdrawn_from_them()
 {
    let home = Home::new();
    let gw = home.start();
    let police = client_for(&home, "police");
    let courts = client_for(&home, "courts");
    let operator = client_for(&home, "operator");
    let journal = "1469-71120-00347-26";

    // before: the courts have not taken it; they are never offered it, only the withdrawal
    let first = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            with_dokumentid("police/valid/anholdelse-1.json", "POL-W-1"),
        )
        .await,
    )
    .await;
    let withdrawn = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            tilbagekaldelse("POL-W-2", "POL-W-1", journal),
        )
        .await,
    )
    .await;
    let meta = get_json(
        &operator,
        &gw.admin_url(&format!("/admin/v1/messages/{first}")),
    )
    .await;
    let courts_row = |meta: &Value| {
        meta["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["recipient"] == "courts")
            .cloned()
            .unwrap()
    };
    assert_eq!(courts_row(&meta)["status"], "superseded", "{meta}");
    let items = inbox(&courts, &gw).await;
    assert_eq!(items.len(), 1, "only the withdrawal: {items:?}");
    let xml = items[0]["content"].as_str().unwrap();
    assert!(xml.contains("<Tilbagekaldelse "), "{xml}");
    assert!(
        xml.contains(&format!(
            "<Tilbagekaldt dokumentid=\"{first}\" årsag=\"forkert-person\"/>"
        )),
        "{xml}"
    );
    assert_eq!(items[0]["id"], withdrawn.as_str());
    ack(&courts, &gw, &withdrawn).await;

    // after: the courts took the arrest; they get the withdrawal after it
    let second = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            with_dokumentid("police/valid/anholdelse-1.json", "POL-W-3"),
        )
        .await,
    )
    .await;
    let items = inbox(&courts, &gw).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], second.as_str());
    ack(&courts, &gw, &second).await;
    let later = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            tilbagekaldelse("POL-W-4", "POL-W-3", journal),
        )
        .await,
    )
    .await;
    let items = inbox(&courts, &gw).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], later.as_str());
    assert!(
        items[0]["content"]
            .as_str()
            .unwrap()
            .contains(&format!("dokumentid=\"{second}\""))
    );
    let meta = get_json(
        &operator,
        &gw.admin_url(&format!("/admin/v1/messages/{second}")),
    )
    .await;
    assert_eq!(courts_row(&meta)["status"], "delivered", "{meta}");
    assert_audit_verifies(&home, &gw).await;
}
