//! Group commit: one thread runs the flushes; every writer waiting when a flush starts is
//! covered by it, so N concurrent requests cost about one fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::StoreError;

/// Makes everything written so far durable (`sled::Db::flush`, which fsyncs).
pub trait Flush: Send + Sync + 'static {
    fn flush(&self) -> Result<(), StoreError>;
}

/// Counts of flushes and of writers they covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub flushes: u64,
    pub waiters: u64,
}

type Waiter = oneshot::Sender<Result<(), StoreError>>;

#[derive(Clone)]
pub(super) struct GroupCommit {
    tx: mpsc::Sender<Waiter>,
    flushes: Arc<AtomicU64>,
    waiters: Arc<AtomicU64>,
}

impl GroupCommit {
    pub(super) fn start(flush: Arc<dyn Flush>) -> Self {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flushes = Arc::new(AtomicU64::new(0));
        let waiters = Arc::new(AtomicU64::new(0));
        let (f, w) = (flushes.clone(), waiters.clone());
        std::thread::Builder::new()
            .name("jxg-group-commit".into())
            .spawn(move || {
                // ends when every sender (the store) is dropped
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let started = std::time::Instant::now();
                    let result = flush.flush();
                    let m = crate::telemetry::metrics();
                    m.flush_seconds.record(started.elapsed().as_secs_f64(), &[]);
                    m.flush_batch.record(batch.len() as u64, &[]);
                    f.fetch_add(1, Ordering::Relaxed);
                    w.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    for waiter in batch {
                        let _ = waiter.send(result.clone());
                    }
                }
            })
            .expect("the group-commit thread starts");
        Self {
            tx,
            flushes,
            waiters,
        }
    }

    /// A future that resolves after a flush that began after this call.
    pub(super) fn wait(&self) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::SendError(tx)) = self.tx.send(tx) {
            let _ = tx.send(Err(StoreError::Unavailable("the store is closed".into())));
        }
        rx
    }

    pub(super) fn stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            waiters: self.waiters.load(Ordering::Relaxed),
        }
    }
}
