//! Group commit: one thread runs the flushes; every writer waiting when a flush starts is
//! covered by it, so N concurrent requests cost about one fsync. A batch starts with the first
//! waiter and takes every waiter already queued, then, when a window is set, the ones that arrive
//! within it, up to a maximum count; one fsync then covers the batch and only then is any of its
//! writers answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// How flushes are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitTuning {
    /// How long a batch waits after its first writer for more (zero: flush at once).
    pub window: Duration,
    /// The most writers one flush covers; later ones wait for the next.
    pub max_batch: usize,
}

impl Default for CommitTuning {
    fn default() -> Self {
        Self {
            window: Duration::ZERO,
            max_batch: 1024,
        }
    }
}

#[derive(Clone)]
pub(super) struct GroupCommit {
    tx: mpsc::Sender<Waiter>,
    flushes: Arc<AtomicU64>,
    waiters: Arc<AtomicU64>,
    /// Writers waiting for a flush (queued or in the flush running now).
    queued: Arc<AtomicUsize>,
}

impl GroupCommit {
    pub(super) fn start(flush: Arc<dyn Flush>, tuning: CommitTuning) -> Self {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flushes = Arc::new(AtomicU64::new(0));
        let waiters = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let (f, w, q) = (flushes.clone(), waiters.clone(), queued.clone());
        let max_batch = tuning.max_batch.max(1);
        std::thread::Builder::new()
            .name("jxg-group-commit".into())
            .spawn(move || {
                // ends when every sender (the store) is dropped
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter().take(max_batch - 1));
                    let deadline = Instant::now() + tuning.window;
                    while batch.len() < max_batch {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match rx.recv_timeout(left) {
                            Ok(w) => batch.push(w),
                            Err(_) => break,
                        }
                    }
                    let started = Instant::now();
                    let result = flush.flush();
                    let m = crate::telemetry::metrics();
                    m.flush_seconds.record(started.elapsed().as_secs_f64(), &[]);
                    m.flush_batch.record(batch.len() as u64, &[]);
                    f.fetch_add(1, Ordering::Relaxed);
                    w.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    q.fetch_sub(batch.len(), Ordering::Relaxed);
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
            queued,
        }
    }

    /// A future that resolves after a flush that began after this call.
    pub(super) fn wait(&self) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::SendError(tx)) = self.tx.send(tx) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Err(StoreError::Unavailable("the store is closed".into())));
        }
        rx
    }

    /// Writers waiting for a flush now.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub(super) fn stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            waiters: self.waiters.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

    use super::*;

    /// Counts flushes and the writers each covered; holds them while the gate is shut.
    #[derive(Default)]
    struct Counting {
        shut: Mutex<bool>,
        cv: Condvar,
        flushes: AtomicU64,
    }

    impl Flush for Counting {
        fn flush(&self) -> Result<(), StoreError> {
            let mut shut = self.shut.lock().unwrap();
            while *shut {
                shut = self.cv.wait(shut).unwrap();
            }
            self.flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl Counting {
        fn set_shut(&self, shut: bool) {
            *self.shut.lock().unwrap() = shut;
            self.cv.notify_all();
        }
    }

    fn wait_all(rxs: Vec<oneshot::Receiver<Result<(), StoreError>>>) {
        for rx in rxs {
            rx.blocking_recv().unwrap().unwrap();
        }
    }

    #[test]
    fn a_flush_covers_at_most_max_batch_writers_and_the_queue_counts_the_rest() {
        let f = Arc::new(Counting::default());
        let gc = GroupCommit::start(
            f.clone(),
            CommitTuning {
                window: Duration::ZERO,
                max_batch: 2,
            },
        );
        f.set_shut(true);
        let first = gc.wait();
        // the first flush is held; these queue behind it
        std::thread::sleep(Duration::from_millis(50));
        let rest: Vec<_> = (0..5).map(|_| gc.wait()).collect();
        assert_eq!(gc.queued(), 6);
        f.set_shut(false);
        wait_all(vec![first]);
        wait_all(rest);
        // 1 for the first writer, then 2 + 2 + 1
        assert_eq!(f.flushes.load(Ordering::SeqCst), 4);
        assert_eq!(gc.queued(), 0);
        assert_eq!(gc.stats().waiters, 6);
    }

    #[test]
    fn writers_within_the_window_share_one_flush() {
        let f = Arc::new(Counting::default());
        let gc = GroupCommit::start(
            f.clone(),
            CommitTuning {
                window: Duration::from_secs(2),
                max_batch: 3,
            },
        );
        // three writers arriving one after another inside the window: one flush
        let mut rxs = vec![gc.wait()];
        std::thread::sleep(Duration::from_millis(20));
        rxs.push(gc.wait());
        std::thread::sleep(Duration::from_millis(20));
        rxs.push(gc.wait());
        wait_all(rxs);
        assert_eq!(f.flushes.load(Ordering::SeqCst), 1);
    }
}
