//! The audit log after the sample story: `jxg audit verify` passes on what the gateway wrote and
//! names the first bad `seq` of a log that was changed, cut or reordered.

use jxg_tests::stored;
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

fn seqs(entries: &[jxg_gateway::audit::Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
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
    let all = seqs(&stored::audit_log(&home).await);
    assert!(
        all.len() > 40,
        "every operation of the story is audited: {}",
        all.len()
    );
    let victim = all[all.len() / 2];
    // one digit of the time stamp, so that the entry stays readable
    stored::rewrite_audit(&home, |entries| {
        let e = entries.iter_mut().find(|e| e.seq == victim).unwrap();
        let mut at = e.at.clone().into_bytes();
        at[3] = if at[3] == b'6' { b'7' } else { b'6' };
        e.at = String::from_utf8(at).unwrap();
    })
    .await;
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), victim, "{out}");
}

#[tokio::test]
async fn a_deleted_entry_fails_at_its_seq() {
    let home = after_the_story().await;
    let victim = seqs(&stored::audit_log(&home).await)[7];
    stored::rewrite_audit(&home, |entries| entries.retain(|e| e.seq != victim)).await;
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), victim, "{out}");
}

#[tokio::test]
async fn two_swapped_entries_fail_at_the_first() {
    let home = after_the_story().await;
    let all = seqs(&stored::audit_log(&home).await);
    let (a, _b) = (all[10], all[11]);
    stored::rewrite_audit(&home, |entries| entries.swap(10, 11)).await;
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), a, "{out}");
}

#[tokio::test]
async fn a_tail_cut_back_past_a_checkpoint_fails_at_the_first_missing_entry() {
    let home = after_the_story().await;
    let checkpoints: Vec<u64> = stored::checkpoints(&home)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    let last_checkpoint = *checkpoints.last().expect("a checkpoint at shutdown");
    let all = seqs(&stored::audit_log(&home).await);
    assert_eq!(
        last_checkpoint,
        *all.last().unwrap(),
        "the stop checkpoints the head"
    );
    // cut the last three entries
    let cut = all[all.len() - 3];
    stored::rewrite_audit(&home, |entries| entries.truncate(entries.len() - 3)).await;
    let (code, out) = verify(&home);
    assert_eq!(code, 1, "{out}");
    assert_eq!(bad_seq(&out), cut, "{out}");
}

#[tokio::test]
async fn every_operation_of_the_story_is_in_the_log_without_a_cpr_number_or_name() {
    let home = after_the_story().await;
    let entries: Vec<Value> = stored::audit_log(&home)
        .await
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
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
        let messages = stored::messages(&home).await;
        assert_eq!(messages.len(), 5);
        assert!(
            messages
                .iter()
                .all(|m| m.canonical.is_empty() && !m.message_type.is_empty())
        );
        // every copy's body went with it, and every delivery had ended
        let copies: Vec<_> = messages.iter().flat_map(|m| &m.copies).collect();
        assert!(!copies.is_empty());
        assert!(copies.iter().all(|c| c.content.is_empty()));
        use jxg_gateway::store::{Class, DeliveryState};
        let delivered = stored::deliveries(&home, Class::Delivered).await;
        assert_eq!(delivered.len(), copies.len());
        assert!(
            delivered
                .iter()
                .all(|d| d.state == DeliveryState::Delivered)
        );
        assert!(stored::deliveries(&home, Class::Waiting).await.is_empty());
        let purged = stored::audit_log(&home)
            .await
            .iter()
            .filter(|e| e.record.event == jxg_gateway::audit::Event::Purged)
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
