//! The embedded engine: sled 0.34, layout v2, behind the Store seam (`jxg_core::store::Engine`).
//!
//! # Layout
//! One tree, `v2`; every key starts with a byte that says what the row is. Values are postcard
//! (compact binary) unless said otherwise — message records and audit runs are postcard
//! compressed with LZ4 (block format, its length first); `seq` is a u64, big-endian, so rows sort
//! in order.
//!
//! | key | value |
//! | --- | --- |
//! | `M` message id (16 bytes) | [`MessageRec`]: metadata, the canonical body once, every recipient's copy and signature |
//! | `I` sender `\0` source document id | [`IdemRow`] |
//! | `C` case `\0` seq | message id |
//! | `W` recipient `\0` seq | [`DeliveryRow`] of a waiting delivery (queued or retrying) |
//! | `F` recipient `\0` seq | [`DeliveryRow`] of a delivered one |
//! | `X` recipient `\0` seq | [`DeliveryRow`] of a dead letter |
//! | `A` first seq | a run of audit entries written together (binary hashes) |
//! | `S` subject `\0` first seq | the seqs of one run's entries naming the subject |
//! | `P` seq | compact JWS of the checkpoint of that audit entry |
//! | `K` kid | public JWK record (JSON) |
//! | `Zlayout`, `Zseq`, `Zcounts` | layout version (2), the next message seq, the counts per recipient |
//!
//! The bodies a message record holds are sealed under a key of its message
//! (`jxg_core::store::seal`), which is not in the tree: the file `body-keys` beside it keeps it
//! (the `keys` module), where destroying it overwrites it.
//!
//! An acceptance is one `M` row, one `I`, one `C`, one `W` per recipient, one `A` run and an `S`
//! row per person: a handful of rows in one `apply_batch`, where an ack or an attempt rewrites
//! one small delivery row and never a body.
//!
//! # Durability
//! [`Engine::write`] applies its batch with `Tree::apply_batch` (atomic: after a crash all of it
//! or none of it is there) and then flushes. sled's own flush ends its log writes with
//! `sync_file_range` on Linux, which neither records the file's new length and blocks nor empties
//! the device's write cache, and writes large values to files under `blobs/` with no sync at all
//! (sled issue #1452). So each flush also syncs the blob files written since the last one and
//! their folder, and `fdatasync`s the log; only then does `write` return. Stores of layout v1
//! are migrated when opened (the `migrate` module).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use jxg_core::audit::{Entry, Head, Record};
use jxg_core::store::{
    Batch, Class, Counts, Cursor, DeliveryRow, Engine, EngineState, FlushStats, IdemRow, Listed,
    Located, MessageRec, Op, Store, StoreError, Unreadable,
};

mod keys;
mod migrate;
mod reopen;

pub use migrate::{CHUNK, Progress as MigrationProgress};
pub use reopen::Reopening;

/// Makes everything written so far durable (the engine's fsync).
pub trait Flush: Send + Sync + 'static {
    fn flush(&self) -> Result<(), StoreError>;
}

pub(crate) const LAYOUT: u32 = 2;

pub(crate) fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("records serialise")
}

pub(crate) fn dec<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(b).map_err(|e| corrupt(what, e))
}

/// A record's value compressed (LZ4 block, its length first): message records and audit runs are
/// mostly text, and sled writes them whole into its log, again with each rewrite of their leaf.
pub(crate) fn pack<T: Serialize>(v: &T) -> Vec<u8> {
    lz4_flex::compress_prepend_size(&enc(v))
}

pub(crate) fn unpack<T: serde::de::DeserializeOwned>(
    what: &str,
    b: &[u8],
) -> Result<T, StoreError> {
    let raw = lz4_flex::decompress_size_prepended(b).map_err(|e| corrupt(what, e))?;
    dec(what, &raw)
}

fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

fn seq_key(tag: u8, name: &str, seq: u64) -> Vec<u8> {
    let mut k = key(tag, &[name.as_bytes(), &[]]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn message_key(id: &Uuid) -> Vec<u8> {
    key(b'M', &[id.as_bytes()])
}
pub(crate) fn idem_key(sender: &str, k: &str) -> Vec<u8> {
    key(b'I', &[sender.as_bytes(), k.as_bytes()])
}
pub(crate) fn case_key(case: &str, seq: u64) -> Vec<u8> {
    seq_key(b'C', case, seq)
}
fn class_tag(c: Class) -> u8 {
    match c {
        Class::Waiting => b'W',
        Class::Delivered => b'F',
        Class::Dead => b'X',
    }
}
pub(crate) fn delivery_key(c: Class, recipient: &str, seq: u64) -> Vec<u8> {
    seq_key(class_tag(c), recipient, seq)
}
fn audit_key(first: u64) -> Vec<u8> {
    let mut k = vec![b'A'];
    k.extend_from_slice(&first.to_be_bytes());
    k
}
fn checkpoint_key(seq: u64) -> Vec<u8> {
    let mut k = vec![b'P'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
const LAYOUT_KEY: &[u8] = b"Zlayout";
const SEQ_KEY: &[u8] = b"Zseq";
const COUNTS_KEY: &[u8] = b"Zcounts";

fn be(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[8 - n..].copy_from_slice(&b[b.len() - n..]);
    u64::from_be_bytes(a)
}

/// An audit entry as stored: its hashes as 32 bytes instead of 64 hex digits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuditBin {
    seq: u64,
    at: String,
    record: Record,
    #[serde(with = "serde_bytes")]
    prev: Vec<u8>,
    #[serde(with = "serde_bytes")]
    hash: Vec<u8>,
}

/// A hash as stored: 32 bytes where it is one this gateway wrote (64 lowercase hex digits), else
/// the text as it is, so that verification names it.
enum HashBin<'a> {
    Bin([u8; 32]),
    Raw(&'a [u8]),
}

impl<'a> HashBin<'a> {
    fn of(s: &'a str) -> Self {
        let b = s.as_bytes();
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        if b.len() == 64 {
            for (o, p) in out.iter_mut().zip(b.chunks_exact(2)) {
                match (digit(p[0]), digit(p[1])) {
                    (Some(h), Some(l)) => *o = h << 4 | l,
                    _ => return Self::Raw(b),
                }
            }
            Self::Bin(out)
        } else {
            Self::Raw(b)
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Bin(b) => b,
            Self::Raw(b) => b,
        }
    }
}

/// An audit entry as it is written: [`AuditBin`]'s encoding, borrowed from the entry.
#[derive(Serialize)]
struct AuditBinRef<'a> {
    seq: u64,
    at: &'a str,
    record: &'a Record,
    #[serde(with = "serde_bytes")]
    prev: &'a [u8],
    #[serde(with = "serde_bytes")]
    hash: &'a [u8],
}

/// The audit run of `entries` as stored, packed.
fn pack_run(entries: &[Entry]) -> Vec<u8> {
    let hashes: Vec<(HashBin, HashBin)> = entries
        .iter()
        .map(|e| (HashBin::of(&e.prev), HashBin::of(&e.hash)))
        .collect();
    let run: Vec<AuditBinRef> = entries
        .iter()
        .zip(&hashes)
        .map(|(e, (prev, hash))| AuditBinRef {
            seq: e.seq,
            at: &e.at,
            record: &e.record,
            prev: prev.bytes(),
            hash: hash.bytes(),
        })
        .collect();
    pack(&run)
}

fn rehex(b: &[u8]) -> String {
    if b.len() == 32 {
        jxg_core::audit::hex(b)
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

impl From<AuditBin> for Entry {
    fn from(b: AuditBin) -> Self {
        Entry {
            seq: b.seq,
            at: b.at,
            record: b.record,
            prev: rehex(&b.prev),
            hash: rehex(&b.hash),
        }
    }
}

/// A flush that is durable (see the module docs).
struct SledFlush {
    db: sled::Db,
    log: std::fs::File,
    blobs: std::path::PathBuf,
    /// Blob files already synced.
    synced: Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl SledFlush {
    fn new(db: sled::Db, path: &Path) -> Result<Self, StoreError> {
        let log = std::fs::File::open(path.join("db"))
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.join("db").display())))?;
        Ok(Self {
            db,
            log,
            blobs: path.join("blobs"),
            synced: Mutex::new(Default::default()),
        })
    }

    fn sync_blobs(&self) -> std::io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = std::collections::HashSet::new();
        let mut new = false;
        for e in std::fs::read_dir(&self.blobs)? {
            let name = e?.file_name();
            if !synced.contains(&name) {
                std::fs::File::open(self.blobs.join(&name))?.sync_data()?;
                new = true;
            }
            present.insert(name);
        }
        if new {
            std::fs::File::open(&self.blobs)?.sync_all()?;
        }
        // blobs sled has collected are forgotten
        *synced = present;
        Ok(())
    }
}

impl Flush for SledFlush {
    fn flush(&self) -> Result<(), StoreError> {
        let failed = |e: std::io::Error| StoreError::Unavailable(format!("flush: {e}"));
        self.sync_blobs().map_err(failed)?;
        self.db.flush().map_err(io)?;
        self.log.sync_data().map_err(failed)
    }
}

/// Wraps the engine's flush (tests observe or hold flushes with it).
pub type WrapFlush = dyn Fn(Arc<dyn Flush>) -> Arc<dyn Flush>;

/// sled behind the [`Engine`] seam.
pub struct SledEngine {
    pub(crate) db: sled::Db,
    pub(crate) tree: sled::Tree,
    flush: Arc<dyn Flush>,
    /// The counts as last written (a write sends only the changed recipients').
    counts: Mutex<BTreeMap<String, Counts>>,
    flushes: AtomicU64,
    batches: AtomicU64,
    /// Leases are this process's: it is the store's one writer.
    leases: jxg_core::store::LocalLeases,
    pub(crate) keys: keys::BodyKeys,
}

impl SledEngine {
    /// Opens (or creates) the store in `path` with a page cache of `cache_mb` MiB, migrating a
    /// store of layout v1.
    pub fn open(path: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        Self::open_with(path, cache_mb, None)
    }

    /// Opens the store with a different flush (tests observe or hold flushes with it).
    pub fn open_with(
        path: &Path,
        cache_mb: u64,
        wrap: Option<&WrapFlush>,
    ) -> Result<Self, StoreError> {
        Self::open_full(path, cache_mb, wrap, true, migrate::CHUNK, &mut |p| {
            tracing::info!(
                phase = p.phase,
                done = p.done,
                total = p.total,
                "migrating the store to layout v2"
            );
        })
    }

    /// Opens the store with neither its log nor its body keys ever synced: the commit path's
    /// own cost, for its benchmark. Nothing written through it is durable.
    pub fn open_unsynced(path: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        struct Unsynced;
        impl Flush for Unsynced {
            fn flush(&self) -> Result<(), StoreError> {
                Ok(())
            }
        }
        let wrap = |_: Arc<dyn Flush>| Arc::new(Unsynced) as Arc<dyn Flush>;
        Self::open_full(
            path,
            cache_mb,
            Some(&wrap),
            false,
            migrate::CHUNK,
            &mut |_| {},
        )
    }

    /// Opens the store, telling `progress` how a migration from layout v1 goes.
    pub fn open_migrating(
        path: &Path,
        cache_mb: u64,
        chunk: usize,
        progress: &mut dyn FnMut(MigrationProgress),
    ) -> Result<Self, StoreError> {
        Self::open_full(path, cache_mb, None, true, chunk, progress)
    }

    fn open_full(
        path: &Path,
        cache_mb: u64,
        wrap: Option<&WrapFlush>,
        synced: bool,
        chunk: usize,
        progress: &mut dyn FnMut(MigrationProgress),
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb * 1024 * 1024)
            // durability comes from explicit flushes, not a timer
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(io)?;
        let keys = keys::BodyKeys::open(path, synced)?;
        // sled fsyncs its files but not the folders that name them: without this, a store
        // created moments before a crash (or a file system turning read-only) can lose its
        // folder entries, and with them everything acknowledged
        for dir in [Some(path), path.parent()].into_iter().flatten() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let base: Arc<dyn Flush> = Arc::new(SledFlush::new(db.clone(), path)?);
        let flush = match wrap {
            Some(w) => w(base),
            None => base,
        };
        let tree = db.open_tree("v2").map_err(io)?;
        let engine = Self {
            db,
            tree,
            flush,
            counts: Mutex::new(BTreeMap::new()),
            flushes: AtomicU64::new(0),
            leases: Default::default(),
            batches: AtomicU64::new(0),
            keys,
        };
        migrate::from_v1(&engine, chunk, progress)?;
        if engine.tree.get(LAYOUT_KEY).map_err(io)?.is_none() {
            engine
                .tree
                .insert(LAYOUT_KEY, &LAYOUT.to_be_bytes())
                .map_err(io)?;
            engine.flush_now()?;
        }
        let counts = match engine.tree.get(COUNTS_KEY).map_err(io)? {
            Some(v) => dec("counts", &v)?,
            None => BTreeMap::new(),
        };
        *engine.counts.lock().unwrap_or_else(|e| e.into_inner()) = counts;
        Ok(engine)
    }

    /// A message record with its body key.
    fn record(&self, v: &[u8]) -> Result<MessageRec, StoreError> {
        let mut m: MessageRec = unpack("message", v)?;
        m.key = self.keys.get(m.seq)?;
        Ok(m)
    }

    /// A small durable write: whether the store can write to its disk now.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.db
            .insert(
                "probe",
                &chrono::Utc::now().timestamp_micros().to_be_bytes(),
            )
            .map_err(io)?;
        self.db.flush().map(|_| ()).map_err(io)
    }

    pub(crate) fn flush_now(&self) -> Result<(), StoreError> {
        self.flush.flush()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The rows of `batch`, as one sled batch.
    pub(crate) fn rows(&self, batch: &Batch) -> Result<sled::Batch, StoreError> {
        let mut b = sled::Batch::default();
        for op in &batch.ops {
            match op {
                Op::PutMessage(m) => b.insert(message_key(&m.id), pack(m.as_ref())),
                Op::RemoveMessage {
                    id,
                    seq,
                    sender,
                    source_document_id,
                    case,
                    recipients,
                } => {
                    b.remove(message_key(id));
                    b.remove(idem_key(sender, source_document_id));
                    // what acted on it (a correction or a withdrawal) is kept no longer than it
                    b.remove(idem_key(jxg_core::store::REVISION_KEYS, &id.to_string()));
                    b.remove(case_key(case, *seq));
                    for r in recipients {
                        for c in [Class::Waiting, Class::Delivered, Class::Dead] {
                            b.remove(delivery_key(c, r, *seq));
                        }
                    }
                }
                Op::PutIdempotency { sender, key, row } => {
                    b.insert(idem_key(sender, key), enc(row))
                }
                Op::PutCase {
                    case,
                    seq,
                    message_id,
                } => b.insert(case_key(case, *seq), message_id.as_bytes().to_vec()),
                Op::PutDelivery {
                    recipient,
                    seq,
                    row,
                    was,
                } => {
                    let class = Class::of(row.state);
                    if let Some(was) = was.filter(|w| *w != class) {
                        b.remove(delivery_key(was, recipient, *seq));
                    }
                    b.insert(delivery_key(class, recipient, *seq), enc(row));
                }
                Op::Audit(entries) => {
                    let Some(first) = entries.first() else {
                        continue;
                    };
                    b.insert(audit_key(first.seq), pack_run(entries));
                    let mut by_subject: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
                    for e in entries {
                        for s in &e.record.subjects {
                            by_subject
                                .entry(s.as_str())
                                .or_default()
                                .extend_from_slice(&e.seq.to_be_bytes());
                        }
                    }
                    for (s, seqs) in by_subject {
                        b.insert(seq_key(b'S', s, first.seq), seqs);
                    }
                }
                Op::RemoveAuditThrough(last) => {
                    for kv in self.tree.range(audit_key(0)..=audit_key(*last)) {
                        let (k, v) = kv.map_err(io)?;
                        b.remove(k);
                        let run: Vec<AuditBin> = unpack("audit run", &v)?;
                        let rest: Vec<AuditBin> =
                            run.into_iter().filter(|e| e.seq > *last).collect();
                        if let Some(f) = rest.first() {
                            b.insert(audit_key(f.seq), pack(&rest));
                        }
                    }
                }
                Op::PutCheckpoint { seq, jws } => {
                    b.insert(checkpoint_key(*seq), jws.as_bytes().to_vec())
                }
                Op::PutSigningKey { kid, record } => b.insert(
                    key(b'K', &[kid.as_bytes()]),
                    serde_json::to_vec(record).expect("JSON serialises"),
                ),
            }
        }
        b.insert(SEQ_KEY, &batch.next_seq.to_be_bytes());
        if !batch.counts.is_empty() {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            for (r, c) in &batch.counts {
                counts.insert(r.clone(), *c);
            }
            b.insert(COUNTS_KEY, enc(&*counts));
        }
        Ok(b)
    }

    fn head(&self) -> Result<Head, StoreError> {
        let last = self
            .tree
            .range(audit_key(0)..=audit_key(u64::MAX))
            .next_back()
            .transpose()
            .map_err(io)?;
        let Some((_, v)) = last else {
            return Ok(Head::default());
        };
        let run: Vec<AuditBin> = unpack("audit run", &v)?;
        Ok(match run.last() {
            Some(e) => Head {
                next_seq: e.seq + 1,
                last_hash: rehex(&e.hash),
            },
            None => Head::default(),
        })
    }

    /// Up to `limit` audit entries from `from_seq` on.
    pub(crate) fn audit_from(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        // the run that holds from_seq starts at or before it
        let start = self
            .tree
            .range(audit_key(0)..=audit_key(from_seq))
            .next_back()
            .transpose()
            .map_err(io)?
            .map(|(k, _)| k.to_vec())
            .unwrap_or_else(|| audit_key(from_seq));
        let mut out = Vec::new();
        for kv in self.tree.range(start..=audit_key(u64::MAX)) {
            let (_, v) = kv.map_err(io)?;
            let run: Vec<AuditBin> = unpack("audit run", &v)?;
            for e in run {
                if e.seq >= from_seq {
                    out.push(Entry::from(e));
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn scan<T>(
        &self,
        prefix: Vec<u8>,
        after: Option<&Cursor>,
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let iter = match after {
            Some(c) if c.0.starts_with(&prefix) => self.tree.range((
                std::ops::Bound::Excluded(c.0.clone()),
                std::ops::Bound::Unbounded,
            )),
            _ => self.tree.range(prefix.clone()..),
        };
        let mut out = Vec::new();
        for kv in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(io)?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(f(&k, &v)?);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Engine for SledEngine {
    async fn state(&self) -> Result<EngineState, StoreError> {
        let next_seq = match self.tree.get(SEQ_KEY).map_err(io)? {
            Some(v) => be(&v),
            None => 1,
        };
        Ok(EngineState {
            next_seq,
            head: self.head()?,
            counts: self
                .counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        })
    }

    async fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.keys.apply(&batch)?;
        let rows = self.rows(&batch)?;
        self.tree.apply_batch(rows).map_err(io)?;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.flush_now()
    }

    async fn message(&self, id: &Uuid) -> Result<Option<MessageRec>, StoreError> {
        self.tree
            .get(message_key(id))
            .map_err(io)?
            .map(|v| self.record(&v))
            .transpose()
    }

    async fn messages(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let after = after.map(|a| Cursor(message_key(&a)));
        self.scan(vec![b'M'], after.as_ref(), limit, |k, v| {
            match self.record(v) {
                Err(e) if e.is_transient() => Err(e),
                r => Ok(r.map_err(|e| Unreadable {
                    id: Uuid::from_slice(&k[1..]).unwrap_or_default(),
                    error: e.to_string(),
                })),
            }
        })
    }

    async fn idempotency(&self, sender: &str, k: &str) -> Result<Option<IdemRow>, StoreError> {
        self.tree
            .get(idem_key(sender, k))
            .map_err(io)?
            .map(|v| dec("idempotency key", &v))
            .transpose()
    }

    async fn case(&self, case: &str) -> Result<Vec<Uuid>, StoreError> {
        self.scan(
            key(b'C', &[case.as_bytes(), &[]]),
            None,
            usize::MAX,
            |_, v| Uuid::from_slice(v).map_err(|e| corrupt("case row", e)),
        )
    }

    async fn delivery(&self, recipient: &str, seq: u64) -> Result<Option<DeliveryRow>, StoreError> {
        for c in [Class::Waiting, Class::Delivered, Class::Dead] {
            if let Some(v) = self.tree.get(delivery_key(c, recipient, seq)).map_err(io)? {
                return dec("delivery row", &v).map(Some);
            }
        }
        Ok(None)
    }

    async fn deliveries(
        &self,
        class: Class,
        recipient: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Located>, StoreError> {
        let prefix = match recipient {
            Some(r) => key(class_tag(class), &[r.as_bytes(), &[]]),
            None => vec![class_tag(class)],
        };
        self.scan(prefix, after, limit, |k, v| {
            let body = &k[1..];
            let cut = body.len().saturating_sub(9);
            let recipient = String::from_utf8_lossy(&body[..cut]).into_owned();
            Ok((
                Cursor(k.to_vec()),
                recipient,
                be(&body[cut + 1..]),
                dec("delivery row", v)?,
            ))
        })
    }

    async fn audit(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.audit_from(from_seq, limit)
    }

    async fn audit_of_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError> {
        let rows = self.scan(
            key(b'S', &[subject.as_bytes(), &[]]),
            None,
            usize::MAX,
            |k, v| Ok((be(&k[k.len() - 8..]), v.to_vec())),
        )?;
        let mut out = Vec::new();
        for (first, seqs) in rows {
            let wanted: Vec<u64> = seqs.chunks_exact(8).map(be).collect();
            match self.tree.get(audit_key(first)).map_err(io)? {
                Some(v) => {
                    let run: Vec<AuditBin> = unpack("audit run", &v)?;
                    out.extend(
                        run.into_iter()
                            .filter(|e| wanted.contains(&e.seq))
                            .map(Entry::from),
                    );
                }
                // a run the audit retention cut short starts later now; entries it removed
                // are gone and their index rows are skipped
                None => {
                    for seq in wanted {
                        out.extend(
                            self.audit_from(seq, 1)?
                                .into_iter()
                                .filter(|e| e.seq == seq),
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    async fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.scan(vec![b'P'], None, usize::MAX, |k, v| {
            Ok((be(&k[1..]), String::from_utf8_lossy(v).into_owned()))
        })
    }

    async fn signing_keys(&self) -> Result<Vec<Value>, StoreError> {
        self.scan(vec![b'K'], None, usize::MAX, |_, v| {
            serde_json::from_slice(v).map_err(|e| corrupt("signing key", e))
        })
    }

    async fn lease(
        &self,
        recipient: &str,
        seqs: &[u64],
        holder: &str,
        period: std::time::Duration,
    ) -> Result<Vec<u64>, StoreError> {
        Ok(self.leases.lease(recipient, seqs, holder, period))
    }

    async fn leased(&self, recipient: &str) -> Result<Vec<(u64, String)>, StoreError> {
        Ok(self.leases.leased(recipient))
    }

    async fn release(
        &self,
        recipient: &str,
        seq: u64,
        holder: Option<&str>,
    ) -> Result<(), StoreError> {
        self.leases.release(recipient, seq, holder);
        Ok(())
    }

    fn flush_stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            waiters: self.batches.load(Ordering::Relaxed),
        }
    }
}

/// Opens the sled store in `path`, migrating a store of layout v1, with a writer batching as
/// `tuning` says.
pub async fn open_sled(
    path: &std::path::Path,
    cache_mb: u64,
    tuning: jxg_core::store::CommitTuning,
) -> Result<Store, StoreError> {
    let engine = SledEngine::open(path, cache_mb)?;
    Store::open(Arc::new(engine), tuning).await
}

/// Migrates the sled store in `path` from layout v1, telling `progress` how far it got.
/// `chunk` messages (and four times as many audit entries) per batch.
pub fn migrate_sled(
    path: &std::path::Path,
    cache_mb: u64,
    chunk: usize,
    progress: &mut dyn FnMut(MigrationProgress),
) -> Result<(), StoreError> {
    SledEngine::open_migrating(path, cache_mb, chunk, progress).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_this_gateway_wrote_is_kept_as_32_bytes_and_anything_else_as_its_text() {
        let hash = jxg_core::audit::hex(&[0xab; 32]);
        let bin = HashBin::of(&hash);
        assert!(matches!(bin, HashBin::Bin(_)));
        assert_eq!(bin.bytes(), &[0xab; 32]);
        assert_eq!(rehex(bin.bytes()), hash);
        for text in [
            hash.to_uppercase(),
            hash[..62].to_string(),
            format!("{}zz", &hash[..62]),
        ] {
            let bin = HashBin::of(&text);
            assert!(matches!(bin, HashBin::Raw(_)), "{text}");
            assert_eq!(rehex(bin.bytes()), text);
        }
    }
}
