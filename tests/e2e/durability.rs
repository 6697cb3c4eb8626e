//! Nothing acknowledged is lost: a 202 leaves only after the fsync that covers it, and a
//! SIGKILL under load loses and duplicates nothing that got one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use jxg_gateway::config::Config;
use jxg_gateway::store::{Flush, SledEngine, Store, StoreError};
use jxg_tests::*;
use serde_json::Value;

#[tokio::test]
async fn sigkill_under_concurrent_load_loses_and_duplicates_nothing_acknowledged() {
    let home = Home::new();
    let mut gw = home.start();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let c = client_for(&home, "police");
        let url = gw.url("/police/v1/dokumenter");
        let (accepted, count) = (accepted.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let n = t * 1000 + i;
                let r = c
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(police_report(n, "KILL"))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 202 => {
                        let v: Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => return,
                        };
                        accepted
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => return, // the gateway died
                }
            }
        }));
    }
    // kill while the senders are mid-flight
    while count.load(Ordering::SeqCst) < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 150);
    let gw = home.start();
    let got = drain_inbox(&client_for(&home, "prosecution"), &gw).await;
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "an inbox item was offered twice after acknowledgement"
    );
    for id in &accepted {
        assert!(unique.contains(id), "message {id} got a 202 and was lost");
    }
}

/// A flush that waits for the test to open a gate, and counts.
struct GatedFlush {
    inner: Arc<dyn Flush>,
    open: Mutex<bool>,
    cv: Condvar,
    started: AtomicU64,
    done: AtomicU64,
}

impl Flush for GatedFlush {
    fn flush(&self) -> Result<(), StoreError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        drop(open);
        let r = self.inner.flush();
        self.done.fetch_add(1, Ordering::SeqCst);
        r
    }
}

impl GatedFlush {
    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.cv.notify_all();
    }
}

/// An in-process gateway (the real app over real TLS, on free ports) whose store flushes through
/// a gate the test holds; returns the gate, the authority port and the police client.
async fn gated_gateway(
    home: &Home,
    edit: impl FnOnce(&mut Config),
) -> (Arc<GatedFlush>, u16, reqwest::Client) {
    let mut config = Config::load(&home.path().join("gateway.toml")).unwrap();
    edit(&mut config);
    let gate: Arc<Mutex<Option<Arc<GatedFlush>>>> = Arc::new(Mutex::new(None));
    let store_path = home.path().join("data");
    let g = gate.clone();
    let engine = Arc::new(
        SledEngine::open_with(
            &store_path,
            16,
            Some(&move |inner| {
                let f = Arc::new(GatedFlush {
                    inner,
                    open: Mutex::new(true),
                    cv: Condvar::new(),
                    started: AtomicU64::new(0),
                    done: AtomicU64::new(0),
                });
                *g.lock().unwrap() = Some(f.clone());
                f as Arc<dyn Flush>
            }),
        )
        .unwrap(),
    );
    let store = Arc::new(Store::open(engine, config.store.tuning()).await.unwrap());
    let gate = gate.lock().unwrap().clone().unwrap();
    let port = free_port();
    let admin = free_port();
    config.listeners.authority = format!("127.0.0.1:{port}").parse().unwrap();
    config.listeners.admin = format!("127.0.0.1:{admin}").parse().unwrap();
    std::thread::spawn(move || {
        let work = jxg_gateway::server::work_runtime().unwrap();
        let handle = work.handle().clone();
        actix_web::rt::System::new()
            .block_on(jxg_gateway::server::serve(config, store, handle))
            .unwrap();
    });
    let police = client_for(home, "police");
    for _ in 0..200 {
        if police
            .get(format!("https://127.0.0.1:{port}/v1/inbox"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (gate, port, police)
}

#[tokio::test]
async fn no_202_leaves_before_the_flush_that_covers_it_and_concurrent_commits_share_flushes() {
    let home = Home::new();
    let (gate, port, police) = gated_gateway(&home, |_| {}).await;
    let url = format!("https://127.0.0.1:{port}/police/v1/dokumenter");

    gate.set(false);
    let before = gate.done.load(Ordering::SeqCst);
    let send = |n: usize| {
        let (c, u) = (police.clone(), url.clone());
        tokio::spawn(async move {
            c.post(u)
                .header("Content-Type", "application/json")
                .body(police_report(n, "GATE"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let mut pending: Vec<_> = (0..20).map(send).collect();
    // every request is written and waiting on a flush that has not finished: none may answer
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        gate.started.load(Ordering::SeqCst) > 0,
        "a flush must have been asked for"
    );
    for p in &pending {
        assert!(!p.is_finished(), "a 202 left before its flush finished");
    }
    gate.set(true);
    for p in pending.drain(..) {
        assert_eq!(p.await.unwrap(), 202);
    }
    let flushes = gate.done.load(Ordering::SeqCst) - before;
    assert!(
        (1..=3).contains(&flushes),
        "20 concurrent commits took {flushes} flushes"
    );
}

#[tokio::test]
async fn when_the_disk_falls_behind_new_submissions_get_503_and_nothing_accepted_is_lost() {
    let home = Home::new();
    let (gate, port, police) = gated_gateway(&home, |c| c.store.commit_queue_max = 4).await;
    let url = format!("https://127.0.0.1:{port}/police/v1/dokumenter");
    let post = |n: usize| {
        let (c, u) = (police.clone(), url.clone());
        async move {
            c.post(u)
                .header("Content-Type", "application/json")
                .body(police_report(n, "BEHIND"))
                .send()
                .await
                .unwrap()
        }
    };
    // the disk stalls: four writers wait for their flush, which is the most the store may owe
    gate.set(false);
    let waiting: Vec<_> = (0..4).map(|n| tokio::spawn(post(n))).collect();
    for _ in 0..100 {
        if gate.started.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // a fifth is refused at once, with a problem naming the reason and when to come back
    let r = tokio::time::timeout(Duration::from_secs(20), post(4))
        .await
        .expect("a submission waited behind the stalled disk instead of being refused");
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:jxg:problem:store-behind");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was accepted")
    );
    for w in &waiting {
        assert!(!w.is_finished(), "a writer was answered before its flush");
    }
    // the disk catches up: the four waiting get their 202, and the refused one is taken as new
    gate.set(true);
    for w in waiting {
        assert_eq!(w.await.unwrap().status(), 202);
    }
    let r = post(4).await;
    assert_eq!(
        r.status(),
        202,
        "the refused document was not accepted on retry"
    );
    assert!(r.headers().get("jxg-duplicate").is_none());
    // every accepted document reaches the recipient once; the refusal left nothing behind
    let prosecution = client_for(&home, "prosecution");
    let mut ids = HashSet::new();
    for _ in 0..50 {
        let r: Value = prosecution
            .get(format!("https://127.0.0.1:{port}/v1/inbox?limit=500"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for i in r["items"].as_array().unwrap() {
            let id = i["id"].as_str().unwrap().to_string();
            prosecution
                .post(format!("https://127.0.0.1:{port}/v1/inbox/{id}/ack"))
                .send()
                .await
                .unwrap();
            ids.insert(id);
        }
        if ids.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids.len(), 5, "accepted documents: {ids:?}");
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_what_was_accepted() {
    let home = Home::new();
    let mut gw = home.start();
    let police = client_for(&home, "police");
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(1, "TERM"),
    )
    .await;
    assert_eq!(r.status(), 202);
    let status = gw.terminate();
    assert!(status.success(), "exit status {status:?}");
    let gw = home.start();
    let got = drain_inbox(&client_for(&home, "prosecution"), &gw).await;
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn during_shutdown_new_requests_get_503_while_requests_in_flight_finish() {
    let home = Home::new();
    let mut gw = home.start();
    let prosecution = client_for(&home, "prosecution");
    let police = client_for(&home, "police");
    // a long poll is a request in flight
    let url = gw.url("/v1/inbox?wait=4");
    let poll = tokio::spawn(async move {
        prosecution
            .get(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    gw.signal_term();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = post_json(
        &police,
        &gw,
        "/police/v1/dokumenter",
        police_report(1, "LATE"),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("Retry-After"));
    assert_eq!(
        poll.await.unwrap().unwrap(),
        200,
        "the request in flight finished"
    );
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // and what was refused was not stored
    let gw = home.start();
    assert!(
        drain_inbox(&client_for(&home, "prosecution"), &gw)
            .await
            .is_empty()
    );
}
