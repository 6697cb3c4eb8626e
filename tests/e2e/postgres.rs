//! The gateway on PostgreSQL (`store.engine = "postgres"`): the real binary serves the sample
//! story from a database of the test's own, keeps everything across a restart, verifies its audit
//! log online and offline, and refuses a second process writing the same store.

use jxg_tests::postgres::Database;
use jxg_tests::*;

fn on(home: &Home, db: &Database) {
    home.edit_config(|t| {
        t.replacen(
            "[store]\n",
            &format!("[store]\nengine = \"postgres\"\nurl = \"{}\"\n", db.url()),
            1,
        )
    });
}

#[tokio::test]
async fn the_gateway_on_postgres_serves_the_story_keeps_it_across_a_restart_and_has_one_writer() {
    let db = Database::create("gateway").await;
    let home = Home::new();
    on(&home, &db);
    let mut gw = home.start();
    let ids = play_story(&home, &gw).await;
    assert_eq!(ids.len(), 5);
    assert_audit_verifies(&home, &gw).await;
    // a record of a few kilobytes stays in its table's page: nothing went to the TOAST table
    let rows = db
        .execute(
            "SELECT (SELECT count(*) FROM jxg_messages WHERE octet_length(record) > 2100), \
             pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'jxg_messages'",
        )
        .await;
    let (long, toasted): (i64, i64) = (rows[0].get(0), rows[0].get(1));
    assert!(long > 0, "the story has records past the TOAST threshold");
    assert_eq!(
        toasted, 0,
        "{long} records of over 2 KB, {toasted} bytes out of line"
    );

    // a second gateway of the same node name on the same database is refused, saying why
    let other = Home::new();
    on(&other, &db);
    let refused = Gateway::spawn(
        &jxg_bin(),
        &["serve", "--config", "gateway.toml"],
        other.path(),
        &[],
        true,
    );
    let why = refused
        .err()
        .expect("a second writer of the store is refused");
    assert!(why.contains("already runs on this database"), "{why}");
    // and so is an offline command while the gateway serves
    let (code, _, err) = jxg(&home, &["audit", "verify", "--config", "gateway.toml"]);
    assert_ne!(code, 0);
    assert!(err.contains("already runs on this database"), "{err}");

    gw.stop_cleanly();
    let (code, out, err) = jxg(&home, &["audit", "verify", "--config", "gateway.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    // everything is still there after a restart: the messages, their deliveries, the log
    let gw = home.start();
    let listed = get_json(
        &client_for(&home, "operator"),
        &gw.admin_url("/admin/v1/messages"),
    )
    .await;
    let listed: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    for who in ["police", "prosecution", "courts", "prison"] {
        assert!(
            inbox(&client_for(&home, who), &gw).await.is_empty(),
            "{who} took everything before the restart"
        );
    }
    // new work goes on where the sequence left off
    let r = post_json(
        &client_for(&home, "police"),
        &gw,
        "/police/v1/dokumenter",
        police_report(9, "PG"),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert_audit_verifies(&home, &gw).await;
}

#[tokio::test]
async fn a_sled_store_copied_to_postgres_verifies_and_delivers_exactly_what_was_pending() {
    let home = Home::new();
    let mut gw = home.start();
    let police = client_for(&home, "police");
    let courts = client_for(&home, "courts");
    let mut ids = Vec::new();
    for n in 0..3 {
        let r = post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            police_report(n, "COPY"),
        )
        .await;
        ids.push(accepted_id(r).await);
    }
    for n in 0..2 {
        let r = courts
            .post(gw.url("/courts/v1/dokumenter"))
            .header("Content-Type", "application/xml; charset=ISO-8859-1")
            .body(court_verdict(300 + n))
            .send()
            .await
            .unwrap();
        ids.push(accepted_id(r).await);
    }
    // the police and the prison service take theirs; the prosecution's wait
    let mut taken = drain_inbox(&police, &gw).await;
    taken.extend(drain_inbox(&client_for(&home, "prison"), &gw).await);
    assert!(!taken.is_empty());
    gw.stop_cleanly();

    let db = Database::create("copy").await;
    let (code, out, err) = jxg(
        &home,
        &["store", "copy", "--from", "data", "--to", &db.url()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("done: 5 messages"), "{out}");
    // a second copy into the same database is refused: the target is no longer empty
    let (code, _, err) = jxg(
        &home,
        &["store", "copy", "--from", "data", "--to", &db.url()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("already holds a store"), "{err}");

    on(&home, &db);
    let (code, out, err) = jxg(&home, &["audit", "verify", "--config", "gateway.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let gw = home.start();
    let mut pending = drain_inbox(&client_for(&home, "prosecution"), &gw).await;
    pending.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(pending, want, "exactly the pending ones, once each");
    for who in ["police", "prison"] {
        assert!(
            inbox(&client_for(&home, who), &gw).await.is_empty(),
            "{who} got again what it had taken"
        );
    }
    assert_audit_verifies(&home, &gw).await;
}

/// A submission's answer: status, Retry-After, the id of a 202.
type Answer = (u16, Option<String>, Option<String>);

/// The database's primary crashes under load and its synchronous standby is promoted: the
/// gateway reconnects through its multi-host URL, every submission meanwhile gets 202 or 503
/// with Retry-After, and nothing that got a 202 is lost.
#[tokio::test]
async fn a_database_failover_under_load_loses_nothing_acknowledged() {
    use jxg_tests::postgres::Cluster;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let primary = Cluster::primary();
    let standby = Cluster::standby_of(&primary);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !primary.standby_in_sync().await {
        assert!(
            Instant::now() < deadline,
            "the standby never came into sync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    primary.execute("postgres", "CREATE DATABASE jxg").await;
    let home = Home::new();
    let url = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/jxg?target_session_attrs=read-write",
        primary.port, standby.port
    );
    home.edit_config(|t| {
        t.replacen(
            "[store]\n",
            &format!(
                "[store]\nengine = \"postgres\"\nurl = \"{url}\"\ndatabase_timeout_ms = 2000\n"
            ),
            1,
        )
    });
    let gw = home.start();
    // submissions go on all along; each answer is recorded
    let answers: Arc<Mutex<Vec<Answer>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let submitter = {
        let (police, url, answers, stop) = (
            client_for(&home, "police"),
            gw.url("/police/v1/dokumenter"),
            answers.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, retry, body) = submit_report(&police, &url, n, "FAILOVER").await;
                let id = body["id"].as_str().map(String::from);
                answers.lock().unwrap().push((status, retry, id));
                // a refused one is sent again, as its sender would
                if status == 202 {
                    n += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let accepted = |answers: &Mutex<Vec<Answer>>| {
        answers
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.0 == 202)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted(&answers) < 30 {
        assert!(
            Instant::now() < deadline,
            "{} accepted before the crash",
            accepted(&answers)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    primary.crash();
    standby.promote();
    let before = accepted(&answers);
    let deadline = Instant::now() + Duration::from_secs(90);
    while accepted(&answers) < before + 30 {
        if Instant::now() >= deadline {
            let log = gw.log.lock().unwrap();
            let errors: Vec<&String> = log
                .iter()
                .filter(|l| {
                    l.contains("ERROR") && !l.contains("the store is closed") || l.contains("panic")
                })
                .collect();
            panic!(
                "no recovery: {} accepted, {} answers; the gateway's last errors: {:#?}",
                accepted(&answers),
                answers.lock().unwrap().len(),
                &errors[errors.len().saturating_sub(8)..]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    submitter.await.unwrap();
    let answers = answers.lock().unwrap().clone();
    for (status, retry, _) in &answers {
        assert!(
            *status == 202 || (*status == 503 && retry.is_some()),
            "an answer other than 202 or 503 with Retry-After: {status}"
        );
    }
    let refused = answers.iter().filter(|a| a.0 == 503).count();
    eprintln!(
        "{} answers, {refused} of them 503 during the switch",
        answers.len()
    );
    // every 202 is on the promoted standby: the prosecution gets each, once
    let mut want: Vec<String> = answers.iter().filter_map(|a| a.2.clone()).collect();
    want.sort();
    want.dedup();
    let mut got = drain_inbox(&client_for(&home, "prosecution"), &gw).await;
    got.sort();
    assert_eq!(got, want, "everything acknowledged, once");
    assert_audit_verifies(&home, &gw).await;
}
