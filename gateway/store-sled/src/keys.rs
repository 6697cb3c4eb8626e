//! The body keys, in a file of their own beside sled's: sled writes a record anew at each
//! change and keeps the old version in its log until it compacts, so a key kept in the tree
//! would outlive its destruction. Here the key of the message of sequence number `seq` has one
//! fixed place, 32 bytes at `seq × 32`, written in place; destroying it overwrites those bytes
//! with zeros (no key is all zeros) and syncs the file before the batch that needed it is
//! written. The file grows by zeros written ahead (for 4,096 keys at a time, synced with its
//! length), so that writing a key changes no metadata and its sync is the data's alone.
//!
//! A key is durable before its record: a crash between leaves a key of a sequence number no
//! record has, which the next message of that number overwrites.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use jxg_core::store::{Batch, BodyKey, Op, StoreError};

/// The file's name in the store's folder.
pub const FILE: &str = "body-keys";

pub(crate) struct BodyKeys {
    file: File,
    /// How far the file is written (zeros past the last key): a key written within it changes
    /// no metadata, so that its sync is the data's alone.
    written: std::sync::atomic::AtomicU64,
    /// Whether a change is synced before the batch that needs it (always, but in the commit
    /// path's benchmark).
    synced: bool,
}

/// How much the file grows by at a time: zeros for this many keys, written and synced once.
const GROWTH: u64 = 4096 * BodyKey::LEN as u64;

fn failed(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{FILE}: {e}"))
}

fn offset(seq: u64) -> Result<u64, StoreError> {
    seq.checked_mul(BodyKey::LEN as u64)
        .ok_or_else(|| StoreError::Corrupt(format!("no place for the key of seq {seq}")))
}

impl BodyKeys {
    pub(crate) fn open(dir: &Path, synced: bool) -> Result<Self, StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(FILE))
            .map_err(failed)?;
        let written = file.metadata().map_err(failed)?.len();
        Ok(Self {
            file,
            written: written.into(),
            synced,
        })
    }

    /// Makes the file hold real (zero) bytes up to past `end`, synced with its new length.
    fn grow_past(&self, end: u64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let mut at = self.written.load(Ordering::SeqCst);
        if end <= at {
            return Ok(());
        }
        let target = end.div_ceil(GROWTH) * GROWTH;
        let zeros = vec![0u8; 64 * 1024];
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], at).map_err(failed)?;
            at += n as u64;
        }
        self.file.sync_all().map_err(failed)?;
        self.written.store(at, Ordering::SeqCst);
        Ok(())
    }

    /// The key of the message of `seq`; none where it was destroyed or never written.
    pub(crate) fn get(&self, seq: u64) -> Result<Option<BodyKey>, StoreError> {
        let mut b = [0u8; BodyKey::LEN];
        match self.file.read_exact_at(&mut b, offset(seq)?) {
            Ok(()) => Ok(BodyKey::from_bytes(&b)),
            // past the end: never written
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// Writes (or destroys) the keys `batch` changes and syncs them: a message written with a
    /// key, its key; one written without (bodies purged or erased) or removed, zeros.
    pub(crate) fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut changed = false;
        for op in &batch.ops {
            let (seq, key) = match op {
                Op::PutMessage(m) => (m.seq, m.key.as_ref().map(|k| *k.as_bytes())),
                Op::RemoveMessage { seq, .. } => (*seq, None),
                _ => continue,
            };
            let at = offset(seq)?;
            let bytes = match key {
                Some(k) => {
                    self.grow_past(at + BodyKey::LEN as u64)?;
                    k
                }
                None => {
                    // nothing to destroy past what was written (a store from before keys)
                    if at >= self.written.load(std::sync::atomic::Ordering::SeqCst) {
                        continue;
                    }
                    [0u8; BodyKey::LEN]
                }
            };
            self.file.write_all_at(&bytes, at).map_err(failed)?;
            changed = true;
        }
        if changed && self.synced {
            self.file.sync_data().map_err(failed)?;
        }
        Ok(())
    }
}
