//! Signed checkpoints of the audit chain: one for every 1,000th entry, and one for the newest
//! entry whenever 60 seconds have passed with entries since the last checkpoint (and at shutdown).

use std::time::{Duration, Instant};

use super::{CHECKPOINT_EVERY, CHECKPOINT_SECONDS};
use crate::signing::Signer;
use crate::store::{Store, StoreError};

/// Where checkpointing stands.
#[derive(Debug, Default)]
pub struct Checkpointer {
    last_seq: u64,
    last_at: Option<Instant>,
}

impl Checkpointer {
    pub async fn new(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            last_seq: store.checkpoints().await?.last().map_or(0, |c| c.0),
            last_at: None,
        })
    }

    async fn sign(&mut self, store: &Store, signer: &Signer, seq: u64) -> Result<(), StoreError> {
        let Some(e) = store.audit_entries(seq, 1).await?.into_iter().next() else {
            return Ok(());
        };
        if e.seq != seq {
            return Ok(());
        }
        let jws = signer
            .checkpoint(seq, &e.hash, &super::now())
            .map_err(|e| StoreError::Unavailable(format!("signing a checkpoint: {e}")))?;
        store.put_checkpoint(seq, &jws).await?;
        self.last_seq = seq;
        self.last_at = Some(Instant::now());
        Ok(())
    }

    /// Writes whatever checkpoints are due; `force` checkpoints the newest entry now.
    pub async fn run(
        &mut self,
        store: &Store,
        signer: &Signer,
        force: bool,
    ) -> Result<(), StoreError> {
        let newest = store.audit_head().next_seq - 1;
        let mut next = (self.last_seq / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY;
        while next <= newest {
            self.sign(store, signer, next).await?;
            next += CHECKPOINT_EVERY;
        }
        let stale = self
            .last_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(CHECKPOINT_SECONDS));
        if newest > self.last_seq && (force || stale) {
            self.sign(store, signer, newest).await?;
        }
        Ok(())
    }
}
