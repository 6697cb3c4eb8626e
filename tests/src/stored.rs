//! A stopped gateway's store, read (and, for the tamper tests, changed) through the engine seam
//! as the gateway itself would: never by its engine's keys.

use std::sync::Arc;

use jxg_gateway::audit::Entry;
use jxg_gateway::store::{Batch, Class, DeliveryRow, Engine, MessageRec, Op, SledEngine};

use crate::Home;

/// The engine of `home`'s store (the gateway must be stopped).
pub fn engine(home: &Home) -> Arc<SledEngine> {
    Arc::new(SledEngine::open(&home.path().join("data"), 16).unwrap())
}

/// Every audit entry, in order.
pub async fn audit_log(home: &Home) -> Vec<Entry> {
    engine(home).audit(0, usize::MAX).await.unwrap()
}

/// Rewrites the audit log as `f` leaves it, bypassing the chaining (entries keep the hashes
/// they had): how the tamper tests change, cut or reorder it.
pub async fn rewrite_audit(home: &Home, f: impl FnOnce(&mut Vec<Entry>)) {
    let e = engine(home);
    let state = e.state().await.unwrap();
    let mut entries = e.audit(0, usize::MAX).await.unwrap();
    f(&mut entries);
    e.write(Batch {
        ops: vec![Op::RemoveAuditThrough(u64::MAX), Op::Audit(entries)],
        next_seq: state.next_seq,
        counts: Default::default(),
    })
    .await
    .unwrap();
}

/// The seqs of the signed checkpoints, and their compact JWS.
pub async fn checkpoints(home: &Home) -> Vec<(u64, String)> {
    engine(home).checkpoints().await.unwrap()
}

/// Every stored message (every record must be readable).
pub async fn messages(home: &Home) -> Vec<MessageRec> {
    engine(home)
        .messages(None, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.expect("every stored message is readable"))
        .collect()
}

/// Every delivery row of `class`.
pub async fn deliveries(home: &Home, class: Class) -> Vec<DeliveryRow> {
    engine(home)
        .deliveries(class, None, None, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, _, row)| row)
        .collect()
}

/// Overwrites the stored record of message `id` with bytes that are no record (what a bad
/// sector or a botched restore leaves). This is below the seam, by the sled layout's key (`M`
/// and the id's 16 bytes): a record that does not decode cannot be written through it.
pub fn damage_message(home: &Home, id: &str) {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let db = sled::Config::new()
        .path(home.path().join("data"))
        .open()
        .unwrap();
    let tree = db.open_tree("v2").unwrap();
    let mut key = vec![b'M'];
    key.extend_from_slice(id.as_bytes());
    assert!(tree.get(&key).unwrap().is_some(), "{id} is stored");
    tree.insert(key, &b"\xff\xfe not a message record"[..])
        .unwrap();
    db.flush().unwrap();
}
