//! Migration of a store of layout v1 (the first release's: one sled tree per kind of record,
//! JSON values, every copy's body base64 inside its outbox entry) to layout v2.
//!
//! It runs when the store is opened (or with `jxg store migrate`, which says how far it got).
//! It copies in batches, each written with a mark saying what it copied last, so a migration
//! that is killed goes on from its mark at the next start; nothing is removed from the v1 trees
//! until everything is copied. The order: messages (with their idempotency keys, case rows and
//! every copy's delivery state: waiting, delivered or dead, as v1 had it), then the audit log
//! entry by entry as it was (seq, time, hashes: the chain verifies across the migration), then
//! checkpoints and signing keys; then the v1 trees are dropped.

use std::collections::BTreeMap;

use jxg_core::audit::Entry;
use jxg_core::store::{
    Batch, BodyKey, Class, CopyRec, Counts, DeliveryRow, DeliveryState, IdemRow, Op, OutboxEntry,
    StoreError, StoredMessage, copy_rec, message_rec,
};

use crate::{LAYOUT, SledEngine, dec, enc, io};
use serde::{Deserialize, Serialize};

/// The trees of layout v1.
const V1_TREES: [&str; 10] = [
    "messages",
    "idempotency",
    "outbox",
    "pending",
    "by_message",
    "cases",
    "audit",
    "audit_subjects",
    "checkpoints",
    "keys",
];

const MARK_KEY: &[u8] = b"Zmigrating";
/// Messages copied per batch (four times as many audit entries).
pub const CHUNK: usize = 256;

/// Where a migration stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    /// 0: messages, 1: audit entries, 2: checkpoints and keys copied, v1 trees not yet dropped.
    phase: u8,
    /// The last v1 key copied in this phase.
    after: Vec<u8>,
    /// Records copied so far (all phases).
    copied: u64,
}

/// How far a migration got, as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub phase: &'static str,
    /// Records of this phase copied, and how many the phase has.
    pub done: u64,
    pub total: u64,
}

fn json<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(format!("v1 {what}: {e}")))
}

/// Whether `engine`'s database still holds v1 data to migrate.
pub fn pending(engine: &SledEngine) -> Result<bool, StoreError> {
    let names = engine.db.tree_names();
    Ok(names
        .iter()
        .any(|n| n.as_ref() == b"messages" || n.as_ref() == b"audit"))
}

/// Migrates whatever v1 data the database holds, reporting each batch to `progress`.
pub fn from_v1(
    engine: &SledEngine,
    chunk: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), StoreError> {
    let chunk = chunk.max(1);
    if !pending(engine)? {
        return Ok(());
    }
    let tree = |n: &str| engine.db.open_tree(n).map_err(io);
    let mut mark: Mark = match engine.tree.get(MARK_KEY).map_err(io)? {
        Some(v) => dec("migration mark", &v)?,
        None => Mark::default(),
    };
    let mut counts: BTreeMap<String, Counts> = match engine.tree.get(b"Zcounts").map_err(io)? {
        Some(v) => dec("counts", &v)?,
        None => BTreeMap::new(),
    };
    let mut next_seq = match engine.tree.get(b"Zseq").map_err(io)? {
        Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
        None => 1,
    };
    let after = |t: &sled::Tree, a: &[u8]| {
        if a.is_empty() {
            t.iter()
        } else {
            t.range((
                std::ops::Bound::Excluded(a.to_vec()),
                std::ops::Bound::Unbounded,
            ))
        }
    };
    let write = |ops: Vec<Op>, next_seq: u64, counts: &BTreeMap<String, Counts>, mark: &Mark| {
        let batch = Batch {
            ops,
            next_seq,
            counts: counts.clone(),
        };
        engine.keys.apply(&batch)?;
        let mut rows = engine.rows(&batch)?;
        rows.insert(MARK_KEY, enc(mark));
        engine.tree.apply_batch(rows).map_err(io)?;
        engine.flush_now()
    };

    if mark.phase == 0 {
        let (messages, outbox, by_message) =
            (tree("messages")?, tree("outbox")?, tree("by_message")?);
        let total = messages.len() as u64;
        let mut done_count = if mark.after.is_empty() {
            0
        } else {
            messages.range(..=mark.after.clone()).count() as u64
        };
        loop {
            let mut ops = Vec::new();
            let mut last = None;
            for kv in after(&messages, &mark.after).take(chunk) {
                let (k, v) = kv.map_err(io)?;
                let m: StoredMessage = json("message", &v)?;
                // sealed from here on, as every record of layout v2
                let key = BodyKey::generate();
                let mut copies = Vec::new();
                let mut rows = Vec::new();
                for kv in by_message.scan_prefix(m.id.as_bytes()) {
                    let (_, okey) = kv.map_err(io)?;
                    let Some(raw) = outbox.get(&okey).map_err(io)? else {
                        continue;
                    };
                    let e: OutboxEntry = json("outbox entry", &raw)?;
                    let (copy, row) = split(&e, &key)?;
                    copies.push(copy);
                    rows.push((e.recipient.clone(), e.seq, row));
                }
                for (recipient, _, row) in &rows {
                    let c = counts.entry(recipient.clone()).or_default();
                    match Class::of(row.state) {
                        Class::Waiting => c.waiting += 1,
                        Class::Dead => c.dead += 1,
                        Class::Delivered => {}
                    }
                }
                next_seq = next_seq.max(m.seq + 1);
                ops.push(Op::PutIdempotency {
                    sender: m.sender.clone(),
                    key: m.source_document_id.clone(),
                    row: IdemRow {
                        message_id: m.id,
                        body_sha256: m.body_sha256.clone(),
                    },
                });
                ops.push(Op::PutCase {
                    case: m.correlation_id.clone(),
                    seq: m.seq,
                    message_id: m.id,
                });
                for (recipient, seq, row) in rows {
                    ops.push(Op::PutDelivery {
                        recipient,
                        seq,
                        row,
                        // the target holds no row of it yet
                        was: None,
                    });
                }
                ops.push(Op::PutMessage(Box::new(message_rec(&m, copies, Some(key)))));
                last = Some(k.to_vec());
                done_count += 1;
            }
            let Some(last) = last else { break };
            mark.after = last;
            mark.copied += 1;
            write(ops, next_seq, &counts, &mark)?;
            progress(Progress {
                phase: "messages",
                done: done_count,
                total,
            });
        }
        mark = Mark {
            phase: 1,
            after: vec![],
            copied: mark.copied,
        };
        write(vec![], next_seq, &counts, &mark)?;
    }

    if mark.phase == 1 {
        let audit = tree("audit")?;
        let total = audit.len() as u64;
        let mut done = 0u64;
        loop {
            let mut entries = Vec::new();
            let mut last = None;
            for kv in after(&audit, &mark.after).take(chunk * 4) {
                let (k, v) = kv.map_err(io)?;
                let e: Entry = json("audit entry", &v).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "the v1 audit entry stored at {} is unreadable ({e}); the store cannot \
                         be migrated without it",
                        u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]))
                    ))
                })?;
                entries.push(e);
                last = Some(k.to_vec());
            }
            let Some(last) = last else { break };
            done += entries.len() as u64;
            mark.after = last;
            write(vec![Op::Audit(entries)], next_seq, &counts, &mark)?;
            progress(Progress {
                phase: "audit entries",
                done,
                total,
            });
        }
        let mut ops = Vec::new();
        for kv in tree("checkpoints")?.iter() {
            let (k, v) = kv.map_err(io)?;
            ops.push(Op::PutCheckpoint {
                seq: u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])),
                jws: String::from_utf8_lossy(&v).into_owned(),
            });
        }
        for kv in tree("keys")?.iter() {
            let (k, v) = kv.map_err(io)?;
            ops.push(Op::PutSigningKey {
                kid: String::from_utf8_lossy(&k).into_owned(),
                record: json("signing key", &v)?,
            });
        }
        mark = Mark {
            phase: 2,
            after: vec![],
            copied: mark.copied,
        };
        write(ops, next_seq, &counts, &mark)?;
    }

    // everything is copied: the v1 trees go, then the mark
    for name in V1_TREES {
        engine.db.drop_tree(name).map_err(io)?;
    }
    engine
        .tree
        .insert(b"Zlayout", &LAYOUT.to_be_bytes())
        .map_err(io)?;
    engine.tree.remove(MARK_KEY).map_err(io)?;
    engine.flush_now()?;
    progress(Progress {
        phase: "done",
        done: mark.copied,
        total: mark.copied,
    });
    Ok(())
}

/// A v1 outbox entry as a v2 copy and delivery row.
fn split(e: &OutboxEntry, key: &BodyKey) -> Result<(CopyRec, DeliveryRow), StoreError> {
    let mut state = e.state;
    // an acknowledged entry of a release that recorded only the ack time
    if e.acked_at.is_some() && !state.is_final() {
        state = DeliveryState::Delivered;
    }
    Ok((
        copy_rec(e, &e.content, Some(key)),
        DeliveryRow {
            message_id: e.message_id,
            case: e.correlation_id.clone(),
            received_at: e.received_at.clone(),
            state,
            attempts: e.attempts,
            next_attempt_at_ms: e.next_attempt_at_ms,
            last_error: e.last_error.clone(),
            delivered_at: e.delivered_at,
            acked_at: e.acked_at,
        },
    ))
}
