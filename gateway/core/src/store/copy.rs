//! A whole store copied from one engine to another through the seam (`jxg store copy`): every
//! message with its idempotency key, case row and delivery rows, the audit log as it is (hashes
//! and all, so that it verifies on the target), the checkpoints, the signing keys, the counts and
//! the sequence counter. The target must be empty; the source must not be written meanwhile.

use super::StoreError;
use super::engine::*;

/// What a copy wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub messages: u64,
    pub deliveries: u64,
    pub audit_entries: u64,
    pub checkpoints: u64,
}

/// Messages (or audit entries) per target write.
const PAGE: usize = 256;

/// Copies everything in `from` to `to`, reporting after each write.
pub async fn copy(
    from: &dyn Engine,
    to: &dyn Engine,
    mut progress: impl FnMut(&Copied),
) -> Result<Copied, StoreError> {
    let target = to.state().await?;
    if target.next_seq > 1
        || !to.messages(None, 1).await?.is_empty()
        || !to.audit(0, 1).await?.is_empty()
    {
        return Err(StoreError::Unavailable(
            "the target already holds a store: a copy goes only into an empty one".into(),
        ));
    }
    let state = from.state().await?;
    let mut done = Copied::default();
    let batch = |ops| Batch {
        ops,
        next_seq: state.next_seq,
        counts: state.counts.clone(),
    };
    let mut after = None;
    loop {
        let page = from.messages(after, PAGE).await?;
        let full = page.len() == PAGE;
        let mut ops = Vec::new();
        for listed in page {
            let m = listed.map_err(|u| {
                StoreError::Corrupt(format!("message {} cannot be read: {}", u.id, u.error))
            })?;
            after = Some(m.id);
            if let Some(row) = from.idempotency(&m.sender, &m.source_document_id).await? {
                ops.push(Op::PutIdempotency {
                    sender: m.sender.clone(),
                    key: m.source_document_id.clone(),
                    row,
                });
            }
            ops.push(Op::PutCase {
                case: m.correlation_id.clone(),
                seq: m.seq,
                message_id: m.id,
            });
            for c in &m.copies {
                if let Some(row) = from.delivery(&c.recipient, m.seq).await? {
                    ops.push(Op::PutDelivery {
                        recipient: c.recipient.clone(),
                        seq: m.seq,
                        row,
                        // the target holds no row of it yet
                        was: None,
                    });
                    done.deliveries += 1;
                }
            }
            ops.push(Op::PutMessage(Box::new(m)));
            done.messages += 1;
        }
        if !ops.is_empty() {
            to.write(batch(ops)).await?;
            progress(&done);
        }
        if !full {
            break;
        }
    }
    let mut from_seq = 0;
    loop {
        let page = from.audit(from_seq, PAGE * 16).await?;
        let Some(last) = page.last() else { break };
        from_seq = last.seq + 1;
        let full = page.len() == PAGE * 16;
        done.audit_entries += page.len() as u64;
        to.write(batch(vec![Op::Audit(page)])).await?;
        progress(&done);
        if !full {
            break;
        }
    }
    let mut ops = Vec::new();
    for (seq, jws) in from.checkpoints().await? {
        ops.push(Op::PutCheckpoint { seq, jws });
        done.checkpoints += 1;
    }
    for record in from.signing_keys().await? {
        let kid = record["jwk"]["kid"]
            .as_str()
            .ok_or_else(|| StoreError::Corrupt("a signing key without its kid".into()))?
            .to_string();
        ops.push(Op::PutSigningKey { kid, record });
    }
    // the last write carries the counts and the sequence counter, whatever came before
    to.write(batch(ops)).await?;
    progress(&done);
    Ok(done)
}
