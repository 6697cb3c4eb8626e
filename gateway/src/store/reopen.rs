//! A store that survives its disk failing. sled keeps the first I/O error it meets (a full disk,
//! a read-only file system) and refuses every operation after it, for the life of the handle.
//! [`Reopening`] wraps the sled store: when an operation fails it checks the store with a small
//! durable write, and when that fails too it lets go of the handle and opens the store again
//! from what is on disk, once a second, until a probe succeeds. Meanwhile every operation
//! fails as unavailable (the API answers 503 with Retry-After); what was acknowledged was on
//! disk before its acknowledgement, so the reopened store holds it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use super::*;

type Opener = Box<dyn Fn() -> Result<SledStore, StoreError> + Send + Sync>;

/// The sled store, opened again after its disk failed.
pub struct Reopening {
    inner: Arc<Shared>,
}

struct Shared {
    open: Opener,
    current: ArcSwapOption<SledStore>,
    /// Set while a recovery runs.
    recovering: AtomicBool,
    /// One signal for every store opened, so that long polls waiting on it see new entries.
    signal: Arc<Notify>,
    /// Serialises the decision to recover.
    deciding: Mutex<()>,
    /// The audit chain's head as last read, answered while the store is being opened again.
    head: Mutex<Option<crate::audit::Head>>,
}

impl Reopening {
    /// Opens the store with `open`, which is called again for each reopening.
    pub fn open(open: Opener) -> Result<Self, StoreError> {
        let signal = Arc::new(Notify::new());
        let store = open()?.with_signal(signal.clone());
        Ok(Self {
            inner: Arc::new(Shared {
                open,
                current: ArcSwapOption::from_pointee(store),
                recovering: AtomicBool::new(false),
                signal,
                deciding: Mutex::new(()),
                head: Mutex::new(None),
            }),
        })
    }

    fn get(&self) -> Result<Arc<SledStore>, StoreError> {
        self.inner.current.load_full().ok_or_else(|| {
            StoreError::Unavailable("the store is being opened again after a disk failure".into())
        })
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
            drop(old);
        }
        let mut attempts = 0u64;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            attempts += 1;
            match (self.open)().and_then(|s| s.probe().map(|_| s)) {
                Ok(store) => {
                    self.current
                        .store(Some(Arc::new(store.with_signal(self.signal.clone()))));
                    self.recovering.store(false, Ordering::SeqCst);
                    self.signal.notify_waiters();
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

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                let r = self.get().and_then(|s| s.$name($($arg),*));
                self.watch(r)
            }
        )*
    };
}

impl Store for Reopening {
    delegate! {
        fn next_seq(&self) -> Result<u64, StoreError>;
        fn idempotency(&self, sender: &str, key: &str) -> Result<Option<(IdempotencyRecord, Value)>, StoreError>;
        fn accept(&self, a: Acceptance) -> Result<AcceptOutcome, StoreError>;
        fn message(&self, id: &Uuid) -> Result<Option<StoredMessage>, StoreError>;
        fn deliveries(&self, id: &Uuid) -> Result<Vec<OutboxEntry>, StoreError>;
        fn take_inbox(&self, recipient: &str, limit: usize, visibility: Duration) -> Result<Vec<OutboxEntry>, StoreError>;
        fn heads(&self, recipient: &str, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
        fn record_delivery(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
        fn ack(&self, recipient: &str, id: &Uuid, at: i64) -> Result<Option<AckOutcome>, StoreError>;
        fn pending_count(&self) -> Result<usize, StoreError>;
        fn outbox_depth(&self, recipient: &str) -> Result<(usize, Option<String>), StoreError>;
        fn case_messages(&self, correlation_id: &str) -> Result<Vec<StoredMessage>, StoreError>;
        fn audit(&self, records: Vec<crate::audit::Record>) -> Result<(), StoreError>;
        fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<crate::audit::Entry>, StoreError>;
        fn audit_by_subject(&self, subject: &str) -> Result<Vec<crate::audit::Entry>, StoreError>;
        fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError>;
        fn put_checkpoint(&self, seq: u64, jws: &str) -> Result<(), StoreError>;
        fn verify_audit(&self, keys: &[josekit::jwk::Jwk]) -> Result<Result<crate::audit::verify::Report, crate::audit::verify::Bad>, StoreError>;
        fn signing_keys(&self) -> Result<Vec<Value>, StoreError>;
        fn put_signing_key(&self, kid: &str, record: &Value) -> Result<(), StoreError>;
        fn messages_after(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<StoredMessage>, StoreError>;
        fn entries_in_state(&self, state: DeliveryState, after: Option<Vec<u8>>, limit: usize) -> Result<Vec<(Vec<u8>, OutboxEntry)>, StoreError>;
        fn purge(&self, now: i64, body_days: u32, audit_days: u32) -> Result<Purged, StoreError>;
        fn requeue(&self, entry: &OutboxEntry, audit: Vec<crate::audit::Record>) -> Result<(), StoreError>;
    }

    fn durable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let store = match self.get() {
            Ok(s) => s,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let wait = store.durable();
        let inner = self.inner.clone();
        Box::pin(async move {
            let r = wait.await;
            if let Err(StoreError::Unavailable(_)) = &r {
                Shared::check(&inner);
            }
            r
        })
    }

    fn inbox_signal(&self) -> Arc<Notify> {
        self.inner.signal.clone()
    }

    fn flush_stats(&self) -> FlushStats {
        self.get().map(|s| s.flush_stats()).unwrap_or_default()
    }

    fn commit_queue(&self) -> usize {
        self.get().map(|s| s.commit_queue()).unwrap_or(0)
    }

    fn audit_head(&self) -> crate::audit::Head {
        let mut last = self.inner.head.lock().unwrap_or_else(|e| e.into_inner());
        match self.get() {
            Ok(s) => last.insert(s.audit_head()).clone(),
            Err(_) => last.clone().unwrap_or_default(),
        }
    }
}
