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

/// Every stored message.
pub async fn messages(home: &Home) -> Vec<MessageRec> {
    engine(home).messages(None, usize::MAX).await.unwrap()
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
