//! Faults under the store: its disk full or read-only. Ingest answers 503 with Retry-After,
//! nothing acknowledged is lost, and the gateway takes work again once the disk does.
//!
//! The store lives on a tmpfs of its own, mounted by the test (which needs root, as in CI and
//! on the development machine), so that the fault is the kernel's own ENOSPC or EROFS.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jxg_tests::*;
use serde_json::Value;

/// A tmpfs mounted for one test, unmounted when dropped.
/// The mount point, inside a folder removed after it.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"],
            &path,
        );
        Self(path, dir)
    }
}

fn mount(args: &[&str], path: &Path) {
    let out = Command::new("mount").args(args).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?} failed (these tests need root to mount a tmpfs): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // the last bytes that fit
    while f.write_all(&block[..512]).is_ok() {}
}

/// Submits documents while the disk cannot take them: once the store has met the broken disk
/// each answer is 503 with Retry-After and a problem, none is a 202; then the disk is given back
/// and every refused document is accepted on retry; at the end the recipient has exactly every
/// accepted document (a 202 before the store met the disk included).
async fn refuse_then_recover(disk: &Path, break_disk: impl FnOnce(), restore: impl FnOnce()) {
    let home = Home::new();
    let store = disk.join("store");
    home.edit_config(|t| {
        t.replace(
            "path = \"data\"",
            &format!("path = \"{}\"", store.display()),
        )
    });
    let gw = home.start();
    let police = client_for(&home, "police");
    let mut accepted = Vec::new();
    for n in 0..5 {
        let (status, _, body) =
            submit_report(&police, &gw.url("/police/v1/dokumenter"), n, "FAULT").await;
        assert_eq!(status, 202, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_string());
    }
    break_disk();
    let mut refused = Vec::new();
    let mut other = Vec::new();
    for n in 5..25 {
        let (status, retry, body) =
            submit_report(&police, &gw.url("/police/v1/dokumenter"), n, "FAULT").await;
        match status {
            // until the store meets the broken disk, a write may still land where the engine
            // had room set aside (sled preallocates its log): a 202 then is kept, and counted
            202 if refused.is_empty() => {
                accepted.push(body["id"].as_str().unwrap().to_string());
            }
            503 => {
                assert!(retry.is_some(), "503 without Retry-After: {body}");
                assert_eq!(body["status"], 503, "{body}");
                assert!(
                    body["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("urn:jxg:problem:")),
                    "{body}"
                );
                refused.push(n);
            }
            _ => other.push((n, status, body)),
        }
    }
    assert!(
        other.is_empty(),
        "answers other than 503 once the store had met the broken disk: {other:?}"
    );
    assert!(!refused.is_empty(), "the broken disk was never noticed");
    // not ready meanwhile, with the store named as the reason
    let operator = client_for(&home, "operator");
    let ready = operator.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("store"));
    restore();
    // the gateway takes work again; every refused document is accepted on retry
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in refused {
        loop {
            let (status, _, body) =
                submit_report(&police, &gw.url("/police/v1/dokumenter"), n, "FAULT").await;
            if status == 202 {
                accepted.push(body["id"].as_str().unwrap().to_string());
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(
                Instant::now() < deadline,
                "not accepted after the disk came back: {body}\n{}",
                gw.log
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains("store"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert_eq!(
        operator
            .get(gw.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        gw.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("the store is writable again")),
        "the recovery was not logged"
    );
    assert!(
        gw.log
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains("panicked")),
        "the gateway panicked"
    );
    // nothing acknowledged is lost, nothing twice
    let mut got = drain_inbox(&client_for(&home, "prosecution"), &gw).await;
    got.sort();
    accepted.sort();
    assert_eq!(got, accepted);
    // and the audit chain verifies
    assert_audit_verifies(&home, &gw).await;
}

#[tokio::test]
async fn when_the_stores_disk_is_full_ingest_answers_503_and_recovers_with_nothing_lost() {
    let disk = Tmpfs::mount(48);
    let filler = disk.0.join("filler");
    refuse_then_recover(
        &disk.0,
        || fill(&filler),
        || std::fs::remove_file(&filler).unwrap(),
    )
    .await;
}

/// An ext4 file system on a loop device, mounted with `errors=remount-ro`, unmounted when
/// dropped.
struct Ext4 {
    image: PathBuf,
    at: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ext4 {
    fn mount(megabytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (image, at) = (dir.path().join("disk.img"), dir.path().join("disk"));
        std::fs::create_dir(&at).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(megabytes << 20)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        let me = Self {
            image,
            at,
            _dir: dir,
        };
        me.attach();
        me
    }
    fn attach(&self) {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap(),
                self.at.to_str().unwrap(),
            ],
        );
    }
    /// The kernel's own reaction to a file-system error: the mount turns read-only at once.
    fn fail(&self) {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let device = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == self.at.to_str())
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .trim_start_matches("/dev/")
            .to_string();
        std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "1").unwrap();
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn when_the_stores_disk_turns_read_only_ingest_answers_503_and_recovers_with_nothing_lost() {
    let disk = Ext4::mount(64);
    refuse_then_recover(
        &disk.at,
        || disk.fail(),
        || {
            // an emergency read-only ext4 comes back only through unmount, check and mount:
            // possible once the gateway has let go of the store's files
            let deadline = Instant::now() + Duration::from_secs(30);
            while !Command::new("umount")
                .arg(&disk.at)
                .status()
                .unwrap()
                .success()
            {
                assert!(
                    Instant::now() < deadline,
                    "the gateway kept the store's files open"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            let fsck = Command::new("e2fsck")
                .args(["-f", "-y"])
                .arg(&disk.image)
                .output()
                .unwrap();
            assert!(
                fsck.status.code().is_some_and(|c| c <= 1),
                "e2fsck: {fsck:?}"
            );
            disk.attach();
        },
    )
    .await;
}

/// Court verdicts of their own cases; each goes to the prosecution, the prison service and the
/// police. Returns their ids.
async fn verdicts(home: &Home, gw: &Gateway, n: usize) -> Vec<String> {
    let courts = client_for(home, "courts");
    let mut ids = Vec::new();
    for i in 0..n {
        let r = courts
            .post(gw.url("/courts/v1/dokumenter"))
            .header("Content-Type", "application/xml; charset=ISO-8859-1")
            .body(court_verdict(i))
            .send()
            .await
            .unwrap();
        ids.push(accepted_id(r).await);
    }
    ids
}

#[tokio::test]
async fn a_hanging_and_a_resetting_recipient_hold_up_no_one_and_end_dead_lettered() {
    let home = Home::new();
    let hanging = Webhook::start(&home, Mode::Hang);
    let resetting = Resetter::start();
    home.push_to("police", &hanging.url);
    home.push_to("prison", &resetting.url);
    home.delivery(&[
        ("retry_base_ms", "50"),
        ("retry_cap_ms", "200"),
        ("max_attempts", "3"),
        ("request_timeout_seconds", "1"),
        ("breaker_failures", "10000"),
    ]);
    let gw = home.start();
    let ids = verdicts(&home, &gw, 10).await;
    // the prosecution gets every verdict while the other two are still failing
    let prosecution = client_for(&home, "prosecution");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "the prosecution got {} of {}",
            got.len(),
            ids.len()
        );
        got.extend(drain_inbox(&prosecution, &gw).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(got, expected);
    let early = delivery_states(&home, &gw, "courts", &ids).await;
    assert!(
        early["police"]
            .iter()
            .chain(&early["prison"])
            .any(|(s, ..)| s != "dead"),
        "the failing recipients were done before the healthy one: {early:?}"
    );
    // the hanging and the resetting recipient are retried, then dead-lettered
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let now = delivery_states(&home, &gw, "courts", &ids).await;
        if now["police"]
            .iter()
            .chain(&now["prison"])
            .all(|(s, ..)| s == "dead")
        {
            break now;
        }
        assert!(Instant::now() < deadline, "not dead-lettered: {now:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (recipient, cause) in [("police", "no answer within"), ("prison", "")] {
        for (_, attempts, error) in &last[recipient] {
            assert_eq!(*attempts, 3, "{recipient}: {error}");
            assert!(
                !error.is_empty() && error.contains(cause),
                "{recipient}: {error}"
            );
        }
    }
    assert!(
        resetting
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 30
    );
    let dead = get_json(
        &client_for(&home, "operator"),
        &gw.admin_url("/admin/v1/dead-letters"),
    )
    .await;
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(20), "{dead}");
}

#[tokio::test]
async fn a_slow_recipient_gets_everything_once_and_holds_up_no_one() {
    let home = Home::new();
    let slow = Webhook::start(&home, Mode::Slow(1500));
    let quick = Webhook::start(&home, Mode::Ok);
    home.push_to("police", &slow.url);
    home.push_to("prison", &quick.url);
    home.delivery(&[("request_timeout_seconds", "5"), ("retry_base_ms", "50")]);
    let gw = home.start();
    let ids = verdicts(&home, &gw, 6).await;
    // the quick recipient has everything before the slow one could have half
    quick
        .wait_until("the quick recipient has every verdict", |w| {
            w.delivered().len() >= ids.len()
        })
        .await;
    assert!(
        slow.delivered().len() < ids.len(),
        "the slow recipient was not slow"
    );
    slow.wait_until("the slow recipient has every verdict", |w| {
        w.delivered().len() >= ids.len()
    })
    .await;
    let once: BTreeSet<String> = slow.delivered().into_iter().map(|r| r.message_id).collect();
    assert_eq!(once.len(), ids.len());
    assert_eq!(
        slow.delivered().len(),
        ids.len(),
        "a slow answer was taken for a failure"
    );
    let states = delivery_states(&home, &gw, "courts", &ids).await;
    assert!(
        states["police"]
            .iter()
            .all(|(s, a, _)| s == "delivered" && *a == 1),
        "{states:?}"
    );
}

/// A "broker" that accepts TCP connections and never says a word; it holds every connection
/// until dropped.
struct MuteBroker {
    port: u16,
    _held: std::thread::JoinHandle<()>,
}

impl MuteBroker {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::thread::spawn(move || {
            let mut open = Vec::new();
            for s in listener.incoming().map_while(Result::ok) {
                open.push(s);
            }
        });
        Self { port, _held: held }
    }
}

#[tokio::test]
async fn a_broker_that_accepts_tcp_and_never_speaks_costs_bounded_attempts_and_no_one_else() {
    let mute = MuteBroker::start();
    let home = Home::with_broker("mute");
    home.delivery(&[
        (
            "url",
            &format!("\"amqp://guest:guest@127.0.0.1:{}/%2f\"", mute.port),
        ),
        ("operation_timeout_ms", "1000"),
        ("request_timeout_seconds", "2"),
        ("retry_base_ms", "100"),
        ("retry_cap_ms", "300"),
        ("max_attempts", "3"),
        ("breaker_failures", "100"),
    ]);
    // the gateway starts although its broker never answers
    let gw = home.start();
    let operator = client_for(&home, "operator");
    let r = operator.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let why = r.text().await.unwrap();
    assert!(why.contains("broker"), "{why}");
    // everyone else is served: a police report is accepted, a verdict reaches its pull inboxes
    let police = client_for(&home, "police");
    let report = accepted_id(
        post_json(
            &police,
            &gw,
            "/police/v1/dokumenter",
            police_report(1, "MUTE"),
        )
        .await,
    )
    .await;
    let verdict = verdicts(&home, &gw, 1).await.remove(0);
    for who in ["prison", "police"] {
        let c = client_for(&home, who);
        let mut got = Vec::new();
        for _ in 0..100 {
            got = drain_inbox(&c, &gw).await;
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(got.contains(&verdict), "{who}: {got:?}");
    }
    // each attempt to the prosecution ends, naming the broker, until the report is dead-lettered
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = loop {
        let now = delivery_states(&home, &gw, "police", std::slice::from_ref(&report)).await;
        if now["prosecution"].iter().all(|(s, ..)| s == "dead") {
            break now;
        }
        assert!(Instant::now() < deadline, "never dead-lettered: {now:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (_, attempts, error) = &last["prosecution"][0];
    assert_eq!(*attempts, 3, "{error}");
    assert!(
        error.contains("the broker did not answer the connection within 1000 ms"),
        "{error}"
    );
}

#[tokio::test]
async fn a_message_the_consumer_cannot_accept_goes_aside_after_its_deliveries_and_the_next_is_accepted()
 {
    let disk = Tmpfs::mount(48);
    let (home, p, (inq, outq, rejq)) = broker_home("poison").await;
    let store = disk.0.join("store");
    home.edit_config(|t| {
        t.replace(
            "path = \"data\"",
            &format!("path = \"{}\"", store.display()),
        )
    });
    home.delivery(&[("max_deliveries", "3")]);
    let gw = home.start();
    // the store cannot take anything: each delivery of the indictment is handed back
    let filler = disk.0.join("filler");
    fill(&filler);
    let (body, poison) = tilt(1, "POISON");
    p.publish(&inq, &body, &poison).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let aside = loop {
        if let Some(m) = p.take(&rejq).await {
            break m;
        }
        assert!(Instant::now() < deadline, "never set aside");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(aside.message_id.as_deref(), Some(poison.as_str()));
    assert_eq!(aside.body, body, "set aside as it came");
    assert_eq!(aside.headers["x-jxg-status"], "503");
    assert!(
        aside.headers["x-jxg-error"].contains("not accepted in 3 deliveries"),
        "{:?}",
        aside.headers
    );
    // the consumer goes on: once the store takes work again, the next one is accepted
    std::fs::remove_file(&filler).unwrap();
    let (body, next) = tilt(2, "POISON");
    p.publish(&inq, &body, &next).await;
    let courts = client_for(&home, "courts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // the inbox answers 503 until the store has come back
        let r = courts.get(gw.url("/v1/inbox")).send().await.unwrap();
        if r.status() == 200 {
            let items = r.json::<Value>().await.unwrap()["items"].clone();
            if items.as_array().is_some_and(|i| !i.is_empty()) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the next indictment was not accepted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(p.depth(&inq).await, 0);
    assert_eq!(p.depth(&rejq).await, 0, "set aside once");
    drop(gw);
    p.delete(&[&inq, &outq, &rejq]).await;
}
