//! A store that survives its disk failing. sled keeps the first I/O error it meets (a full disk,
//! a read-only file system) and refuses every operation after it, for the life of the handle.
//! [`Reopening`] wraps the sled engine: when an operation fails it checks the store with a small
//! durable write, and when that fails too it lets go of the handle and opens the store again
//! from what is on disk, once a second, until a probe succeeds. Meanwhile every operation
//! fails as unavailable (the API answers 503 with Retry-After); what was acknowledged was on
//! disk before its acknowledgement, so the reopened store holds it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use serde_json::Value;
use uuid::Uuid;

use jxg_core::audit::Entry;
use jxg_core::store::{
    Batch, Class, Cursor, DeliveryRow, Engine, EngineState, FlushStats, IdemRow, Listed, Located,
    MessageRec, StoreError,
};

use crate::SledEngine;

type Opener = Box<dyn Fn() -> Result<SledEngine, StoreError> + Send + Sync>;

/// The sled engine, opened again after its disk failed.
pub struct Reopening {
    inner: Arc<Shared>,
}

struct Shared {
    open: Opener,
    current: ArcSwapOption<SledEngine>,
    /// Set while a recovery runs.
    recovering: AtomicBool,
    /// Serialises the decision to recover.
    deciding: Mutex<()>,
    /// Engines opened so far: the writer reads the store's state again when it changes.
    opened: AtomicU64,
    /// Leases outlive an engine opened again.
    leases: jxg_core::store::LocalLeases,
    /// Flushes of the engines let go of.
    flushes: Mutex<FlushStats>,
}

impl Reopening {
    /// Opens the store with `open`, which is called again for each reopening.
    pub fn open(open: Opener) -> Result<Self, StoreError> {
        let store = open()?;
        Ok(Self {
            inner: Arc::new(Shared {
                open,
                current: ArcSwapOption::from_pointee(store),
                recovering: AtomicBool::new(false),
                deciding: Mutex::new(()),
                opened: AtomicU64::new(1),
                leases: Default::default(),
                flushes: Mutex::new(FlushStats::default()),
            }),
        })
    }

    fn get(&self) -> Result<Arc<SledEngine>, StoreError> {
        self.inner.current.load_full().ok_or_else(|| {
            StoreError::Unavailable("the store is being opened again after a disk failure".into())
        })
    }

    /// `f` on the engine open now, its result watched.
    async fn on<T>(
        &self,
        f: impl AsyncFnOnce(Arc<SledEngine>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let r = match self.get() {
            Ok(s) => f(s).await,
            Err(e) => Err(e),
        };
        self.watch(r)
    }

    /// Passes `r` on; an unavailable store starts a check and, if it fails, a recovery.
    fn watch<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(_)) = &r {
            Shared::check(&self.inner);
        }
        r
    }
}

impl Shared {
    fn check(this: &Arc<Self>) {
        let Ok(_deciding) = this.deciding.try_lock() else {
            return;
        };
        if this.recovering.load(Ordering::SeqCst) {
            return;
        }
        let Some(store) = this.current.load_full() else {
            return;
        };
        if store.probe().is_ok() {
            return;
        }
        this.recovering.store(true, Ordering::SeqCst);
        tracing::error!("the store cannot write; refusing work and opening it again");
        let shared = this.clone();
        drop(store);
        let spawned = std::thread::Builder::new()
            .name("jxg-store-reopen".into())
            .spawn(move || shared.recover());
        if spawned.is_err() {
            this.recovering.store(false, Ordering::SeqCst);
        }
    }

    fn recover(&self) {
        let old = self.current.swap(None);
        // operations in flight finish with the old handle; then it is let go of, so that its
        // file lock and commit thread go with it
        if let Some(old) = old {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let stats = old.flush_stats();
            let mut total = self.flushes.lock().unwrap_or_else(|e| e.into_inner());
            total.flushes += stats.flushes;
            total.waiters += stats.waiters;
            drop(old);
        }
        let mut attempts = 0u64;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            attempts += 1;
            match (self.open)().and_then(|s| s.probe().map(|_| s)) {
                Ok(store) => {
                    self.opened.fetch_add(1, Ordering::SeqCst);
                    self.current.store(Some(Arc::new(store)));
                    self.recovering.store(false, Ordering::SeqCst);
                    tracing::warn!(attempts, "the store is writable again; taking work");
                    return;
                }
                Err(e) => {
                    if attempts == 1 || attempts.is_multiple_of(60) {
                        tracing::error!(error = %e, attempts, "the store cannot be opened for writing yet");
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Engine for Reopening {
    async fn state(&self) -> Result<EngineState, StoreError> {
        self.on(async |s| s.state().await).await
    }

    async fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.on(async |s| s.write(batch).await).await
    }

    async fn message(&self, id: &Uuid) -> Result<Option<MessageRec>, StoreError> {
        self.on(async |s| s.message(id).await).await
    }

    async fn messages(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        self.on(async |s| s.messages(after, limit).await).await
    }

    async fn idempotency(&self, sender: &str, key: &str) -> Result<Option<IdemRow>, StoreError> {
        self.on(async |s| s.idempotency(sender, key).await).await
    }

    async fn case(&self, case: &str) -> Result<Vec<Uuid>, StoreError> {
        self.on(async |s| s.case(case).await).await
    }

    async fn delivery(&self, recipient: &str, seq: u64) -> Result<Option<DeliveryRow>, StoreError> {
        self.on(async |s| s.delivery(recipient, seq).await).await
    }

    async fn deliveries(
        &self,
        class: Class,
        recipient: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Located>, StoreError> {
        self.on(async |s| s.deliveries(class, recipient, after, limit).await)
            .await
    }

    async fn audit(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.on(async |s| s.audit(from_seq, limit).await).await
    }

    async fn audit_of_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError> {
        self.on(async |s| s.audit_of_subject(subject).await).await
    }

    async fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.on(async |s| s.checkpoints().await).await
    }

    async fn signing_keys(&self) -> Result<Vec<Value>, StoreError> {
        self.on(async |s| s.signing_keys().await).await
    }

    async fn lease(
        &self,
        recipient: &str,
        seqs: &[u64],
        holder: &str,
        period: std::time::Duration,
    ) -> Result<Vec<u64>, StoreError> {
        Ok(self.inner.leases.lease(recipient, seqs, holder, period))
    }

    async fn leased(&self, recipient: &str) -> Result<Vec<(u64, String)>, StoreError> {
        Ok(self.inner.leases.leased(recipient))
    }

    async fn release(
        &self,
        recipient: &str,
        seq: u64,
        holder: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.leases.release(recipient, seq, holder);
        Ok(())
    }

    fn flush_stats(&self) -> FlushStats {
        let mut total = *self.inner.flushes.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(s) = self.get() {
            let now = s.flush_stats();
            total.flushes += now.flushes;
            total.waiters += now.waiters;
        }
        total
    }

    fn ready(&self) -> Result<(), StoreError> {
        self.get().map(|_| ())
    }

    fn generation(&self) -> u64 {
        self.inner.opened.load(Ordering::SeqCst)
    }
}
