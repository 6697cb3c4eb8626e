//! The audit log after the sample story: `jxg audit verify` passes on what the gateway wrote and
//! names the first bad `seq` of a log that was changed, cut or reordered.

use jxg_tests::*;
use serde_json::Value;

/// A home whose stopped gateway has played the story.
async fn after_the_story() -> Home {
    let home = Home::new();
    let mut gw = home.start();
    play_story(&home, &gw).await;
    assert!(gw.terminate().success());
    home
}

fn verify(home: &Home) -> (i32, String) {
    let (code, out, err) = jxg(home, &["audit", "verify", "--config", "gateway.toml"]);
    (code, format!("{out}{err}"))
}

/// Opens the stopped gateway's store for tampering.
fn audit_tree(home: &Home) -> (sled::Db, sled::Tree) {
    let db = sled::open(home.path().join("data")).unwrap();
    let t = db.open_tree("audit").unwrap();
    (db, t)
}

fn seqs(t: &sled::Tree) -> Vec<u64> {
    t.iter()
        .map(|kv| u64::from_be_bytes(kv.unwrap().0.as_ref().try_into().unwrap()))
        .collect()
}

fn bad_seq(out: &str) -> u64 {
    let rest = out
        .strip_prefix("bad: seq ")
        .unwrap_or_else(|| panic!("not a failure: {out}"));
    rest.split(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_story_verifies_and_a_flipped_byte_fails_at_its_entry() {
    let home = after_the_story().await;
    let (code, out) = verify(&home);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    let (db, t) = audit_tree(&home);
    let all = seqs(&t);
    assert!(
        all.len() > 40,
        "every operation of the story is audited: {}",
        all.len()
    );
    let victim = all[all.len() / 2];
    let key = victim.to_be_bytes();
    let mut bytes = t.get(key).unwrap().unwrap().to_vec();
    // one byte of the time stamp, so that the entry stays readable JSON
    let at = bytes.windows(6).position(|w| w == b"\"at\":\"").unwrap() + 6;
    bytes[at + 3] = if bytes[at + 3] == b'6' { b'7' } else { b'6' };
    t.insert(key, bytes).unwrap();
    db.flush().unwrap();
    drop((t, db));
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), victim, "{out}");
}

#[tokio::test]
async fn a_deleted_entry_fails_at_its_seq() {
    let home = after_the_story().await;
    let (db, t) = audit_tree(&home);
    let victim = seqs(&t)[7];
    t.remove(victim.to_be_bytes()).unwrap();
    db.flush().unwrap();
    drop((t, db));
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), victim, "{out}");
}

#[tokio::test]
async fn two_swapped_entries_fail_at_the_first() {
    let home = after_the_story().await;
    let (db, t) = audit_tree(&home);
    let all = seqs(&t);
    let (a, b) = (all[10], all[11]);
    let va = t.get(a.to_be_bytes()).unwrap().unwrap();
    let vb = t.get(b.to_be_bytes()).unwrap().unwrap();
    t.insert(a.to_be_bytes(), vb).unwrap();
    t.insert(b.to_be_bytes(), va).unwrap();
    db.flush().unwrap();
    drop((t, db));
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), a, "{out}");
}

#[tokio::test]
async fn a_tail_cut_back_past_a_checkpoint_fails_at_the_first_missing_entry() {
    let home = after_the_story().await;
    let (db, t) = audit_tree(&home);
    let checkpoints: Vec<u64> = db
        .open_tree("checkpoints")
        .unwrap()
        .iter()
        .map(|kv| u64::from_be_bytes(kv.unwrap().0.as_ref().try_into().unwrap()))
        .collect();
    let last_checkpoint = *checkpoints.last().expect("a checkpoint at shutdown");
    assert_eq!(
        last_checkpoint,
        *seqs(&t).last().unwrap(),
        "the stop checkpoints the head"
    );
    // cut the last three entries
    let all = seqs(&t);
    let cut = all[all.len() - 3];
    for s in &all[all.len() - 3..] {
        t.remove(s.to_be_bytes()).unwrap();
    }
    db.flush().unwrap();
    drop((t, db));
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), cut, "{out}");
}

#[tokio::test]
async fn every_operation_of_the_story_is_in_the_log_without_a_cpr_number_or_name() {
    let home = after_the_story().await;
    let (db, t) = audit_tree(&home);
    let entries: Vec<Value> = t
        .iter()
        .map(|kv| serde_json::from_slice(&kv.unwrap().1).unwrap())
        .collect();
    drop((t, db));
    let count = |event: &str| entries.iter().filter(|e| e["event"] == event).count();
    assert_eq!(count("received"), 5);
    assert!(count("decided") >= 10);
    assert!(count("minimised") >= 1);
    assert_eq!(count("signed"), count("queued"));
    assert_eq!(count("acked"), count("queued"), "every copy was taken");
    let text = serde_json::to_string(&entries).unwrap();
    for secret in [
        "0104909995",
        "010490-9995",
        "0108629996",
        "Hansen",
        "Østergaard",
        "Nørrebrogade",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    // the defendant's entries carry a pseudonym, the same everywhere
    let received = entries.iter().find(|e| e["event"] == "received").unwrap();
    assert!(!received["subjects"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn past_retention_bodies_go_then_metadata_and_old_audit_and_the_log_still_verifies() {
    let home = after_the_story().await;
    let in_days = |d: i64| {
        (std::time::SystemTime::now() + std::time::Duration::from_secs((d * 86_400) as u64))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let rfc3339 = |secs: u64| {
        time::OffsetDateTime::from_unix_timestamp(secs as i64)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // inside the body retention nothing goes
    let (code, out, err) = jxg(
        &home,
        &["retention", "purge", "--at", &rfc3339(in_days(89))],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("purged 0 bodies, 0 messages"), "{out}");
    // past it, every body goes and the metadata stays
    let (code, out, err) = jxg(
        &home,
        &["retention", "purge", "--at", &rfc3339(in_days(91))],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("purged 5 bodies, 0 messages"), "{out}");
    {
        let db = sled::open(home.path().join("data")).unwrap();
        let messages: Vec<Value> = db
            .open_tree("messages")
            .unwrap()
            .iter()
            .map(|kv| serde_json::from_slice(&kv.unwrap().1).unwrap())
            .collect();
        assert_eq!(messages.len(), 5);
        assert!(
            messages
                .iter()
                .all(|m| m["canonical"] == "" && m["message_type"].is_string())
        );
        let outbox: Vec<Value> = db
            .open_tree("outbox")
            .unwrap()
            .iter()
            .map(|kv| serde_json::from_slice(&kv.unwrap().1).unwrap())
            .collect();
        assert!(!outbox.is_empty());
        assert!(
            outbox
                .iter()
                .all(|e| e["content_b64"] == "" && e["state"] == "delivered")
        );
        let purged = db
            .open_tree("audit")
            .unwrap()
            .iter()
            .filter(|kv| {
                serde_json::from_slice::<Value>(&kv.as_ref().unwrap().1).unwrap()["event"]
                    == "purged"
            })
            .count();
        assert_eq!(purged, 5, "each purge is audited");
    }
    let (code, out) = verify(&home);
    assert_eq!(code, 0, "{out}");
    // past the audit retention the metadata goes, and the log is cut at a checkpoint
    let (code, out, err) = jxg(
        &home,
        &["retention", "purge", "--at", &rfc3339(in_days(6 * 366))],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("5 messages' metadata"), "{out}");
    let (code, out) = verify(&home);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("(seq 1.."),
        "the log now starts after the cut: {out}"
    );
}
