//! The PostgreSQL engine, behind the Store seam (`jxg_core::store::Engine`).
//!
//! # Layout
//! The schema is versioned in `migrations/` and applied when the engine opens (refinery keeps
//! what it applied in `refinery_schema_history`). One row per record: a message record, an
//! idempotency key, a case row, a delivery row per recipient (its class — waiting, delivered,
//! dead — a column with an index, so a listing of one class reads only its rows), a run of audit
//! entries per batch (the entries it appended) with an index row per subject and run,
//! checkpoints, signing keys, the counts per recipient and the next sequence number. Message
//! records and delivery rows are the seam's records in postcard; audit entries their JSON form
//! (the hash is over it). A message record or a run up to a page (8160 bytes) stays in its
//! table's page; a larger one is compressed by the server (lz4 where it has it) and moved out of
//! line.
//!
//! # Durability
//! [`Engine::write`] applies its batch in one transaction, its statements pipelined, and returns
//! once the commit has returned: with `synchronous_commit` on (PostgreSQL's default, which the
//! engine checks when it opens) the commit is on disk — and on a synchronous standby, where one
//! is configured — before the writer answers anyone.
//!
//! # Bounds
//! Every call has a bound (`store.database_timeout_ms`): taking a connection from the pool,
//! making one, and each read or write. A database that stops answering costs that long and a
//! transient error (`503` for a submission). A write whose commit did not answer in time may or
//! may not have committed: the engine then counts a new generation, so that the writer reads the
//! sequence counter, the audit head and the counts again before its next batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Pool, PoolConfig, Runtime, Timeouts};
use serde_json::Value;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use jxg_core::audit::{Entry, Head};
use jxg_core::store::{
    Batch, Class, Counts, Cursor, DeliveryRow, Engine, EngineState, FlushStats, IdemRow, Listed,
    Located, MessageRec, Op, StoreError, Turn, Unreadable,
};

/// The advisory lock key of the store's write turn (`jxg` in ASCII), taken per transaction.
const STORE_LOCK: i64 = 0x006a_7867;
/// The first key of a node's session lock (`jxgn`); the second is its name's hash.
const NODE_LOCK: i32 = 0x6a78_676e;
/// The channel of hints between nodes.
const HINTS: &str = "jxg_waiting";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// How the engine reaches its database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A libpq URL (`postgresql://jxg@127.0.0.1:5432/jxg`; several hosts allowed, with
    /// `target_session_attrs=read-write`).
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// The bound of every call to the database.
    pub timeout: Duration,
    /// This node's name, unique among the nodes sharing the database: it holds its leases
    /// under it, and a second process of the same name is refused.
    pub node: String,
}

/// The PostgreSQL engine.
pub struct PgEngine {
    pool: Pool,
    timeout: Duration,
    generation: AtomicU64,
    commits: AtomicU64,
    batches: AtomicU64,
    /// Whether the last call reached the database (for `/readyz`, without a query).
    reachable: AtomicBool,
    /// The session that holds this node's advisory lock (one process per node name) and
    /// listens for other nodes' hints.
    lock: tokio::sync::Mutex<tokio_postgres::Client>,
    lock_lost: AtomicBool,
    options: PgOptions,
    /// The transaction holding the store's write turn, between [`Engine::turn`] and the
    /// write (or abandon) that ends it.
    turn: tokio::sync::Mutex<Option<deadpool_postgres::Object>>,
    /// Other nodes' hints (`NOTIFY jxg_waiting, recipient`).
    hints: tokio::sync::broadcast::Sender<String>,
}

impl std::fmt::Debug for PgEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEngine")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("the database, {what}: {e}"))
}

/// An error with what caused it (a driver's "db error" says what the server said only there).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn class_code(c: Class) -> i16 {
    match c {
        Class::Waiting => 0,
        Class::Delivered => 1,
        Class::Dead => 2,
    }
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("records serialise")
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The rows of one table that a run of a batch's changes writes, the last change of a key
/// winning (as if they were written one after another).
#[derive(Default)]
struct Rows {
    messages: BTreeMap<Uuid, (i64, Vec<u8>)>,
    idempotency: BTreeMap<(String, String), (Uuid, String)>,
    cases: BTreeMap<(String, i64), Uuid>,
    deliveries: BTreeMap<(String, i64), (i16, Vec<u8>)>,
    /// Runs of the audit log: first and last sequence number, the entries' JSON forms.
    runs: Vec<(i64, i64, Vec<String>)>,
    /// Per subject and run (its first sequence number), the entries naming the subject.
    subjects: BTreeMap<(String, i64), Vec<i64>>,
    checkpoints: BTreeMap<i64, String>,
    keys: BTreeMap<String, String>,
    /// Each message's body key as written: none destroys it.
    body_keys: BTreeMap<Uuid, Option<Vec<u8>>>,
}

impl Rows {
    fn is_empty(&self) -> bool {
        self.body_keys.is_empty()
            && self.messages.is_empty()
            && self.idempotency.is_empty()
            && self.cases.is_empty()
            && self.deliveries.is_empty()
            && self.runs.is_empty()
            && self.subjects.is_empty()
            && self.checkpoints.is_empty()
            && self.keys.is_empty()
    }

    /// One multi-row statement per table (`UNNEST` of arrays), whatever the number of rows.
    fn flush(&mut self, out: &mut Vec<(&'static str, Params)>) {
        let rows = std::mem::take(self);
        if !rows.messages.is_empty() {
            let (ids, rest): (Vec<Uuid>, Vec<(i64, Vec<u8>)>) = rows.messages.into_iter().unzip();
            let (seqs, records): (Vec<i64>, Vec<Vec<u8>>) = rest.into_iter().unzip();
            out.push((
                "INSERT INTO jxg_messages (id, seq, record) \
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bytea[]) \
                 ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, record = EXCLUDED.record",
                vec![Box::new(ids), Box::new(seqs), Box::new(records)],
            ));
        }
        if !rows.body_keys.is_empty() {
            let (mut kept, mut keys, mut gone) = (vec![], vec![], vec![]);
            for (id, key) in rows.body_keys {
                match key {
                    Some(k) => {
                        kept.push(id);
                        keys.push(k);
                    }
                    None => gone.push(id),
                }
            }
            if !kept.is_empty() {
                out.push((
                    "INSERT INTO jxg_body_keys (id, key) \
                     SELECT * FROM UNNEST($1::uuid[], $2::bytea[]) \
                     ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key",
                    vec![Box::new(kept), Box::new(keys)],
                ));
            }
            if !gone.is_empty() {
                out.push((
                    "DELETE FROM jxg_body_keys WHERE id = ANY($1)",
                    vec![Box::new(gone)],
                ));
            }
        }
        if !rows.idempotency.is_empty() {
            let (mut senders, mut keys, mut ids, mut sums) = (vec![], vec![], vec![], vec![]);
            for ((sender, key), (id, sum)) in rows.idempotency {
                senders.push(sender);
                keys.push(key);
                ids.push(id);
                sums.push(sum);
            }
            out.push((
                "INSERT INTO jxg_idempotency (sender, key, message_id, body_sha256) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[]) \
                 ON CONFLICT (sender, key) DO UPDATE SET message_id = EXCLUDED.message_id, \
                 body_sha256 = EXCLUDED.body_sha256",
                vec![
                    Box::new(senders),
                    Box::new(keys),
                    Box::new(ids),
                    Box::new(sums),
                ],
            ));
        }
        if !rows.cases.is_empty() {
            let (mut cases, mut seqs, mut ids) = (vec![], vec![], vec![]);
            for ((case, seq), id) in rows.cases {
                cases.push(case);
                seqs.push(seq);
                ids.push(id);
            }
            out.push((
                "INSERT INTO jxg_cases (case_id, seq, message_id) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::uuid[]) \
                 ON CONFLICT (case_id, seq) DO UPDATE SET message_id = EXCLUDED.message_id",
                vec![Box::new(cases), Box::new(seqs), Box::new(ids)],
            ));
        }
        if !rows.deliveries.is_empty() {
            let (mut recipients, mut seqs, mut classes, mut data) =
                (vec![], vec![], vec![], vec![]);
            for ((recipient, seq), (class, row)) in rows.deliveries {
                recipients.push(recipient);
                seqs.push(seq);
                classes.push(class);
                data.push(row);
            }
            out.push((
                "INSERT INTO jxg_deliveries (recipient, seq, class, row) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::int2[], $4::bytea[]) \
                 ON CONFLICT (recipient, seq) DO UPDATE SET class = EXCLUDED.class, \
                 row = EXCLUDED.row",
                vec![
                    Box::new(recipients),
                    Box::new(seqs),
                    Box::new(classes),
                    Box::new(data),
                ],
            ));
        }
        // a batch appends one run, as a rule: a statement each
        for (first, last, entries) in rows.runs {
            out.push((
                "INSERT INTO jxg_audit_runs (first_seq, last_seq, entries) VALUES ($1, $2, $3)",
                vec![Box::new(first), Box::new(last), Box::new(entries)],
            ));
        }
        if !rows.subjects.is_empty() {
            let (mut subjects, mut firsts, mut seqs) = (vec![], vec![], vec![]);
            for ((subject, first), list) in rows.subjects {
                subjects.push(subject);
                firsts.push(first);
                // arrays of arrays must be of one length: each list goes as text
                seqs.push(
                    list.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            out.push((
                "INSERT INTO jxg_audit_run_subjects (subject, first_seq, seqs) \
                 SELECT s, f, string_to_array(q, ',')::bigint[] \
                 FROM UNNEST($1::text[], $2::bigint[], $3::text[]) AS u(s, f, q) \
                 ON CONFLICT DO NOTHING",
                vec![Box::new(subjects), Box::new(firsts), Box::new(seqs)],
            ));
        }
        if !rows.checkpoints.is_empty() {
            let (seqs, jws): (Vec<i64>, Vec<String>) = rows.checkpoints.into_iter().unzip();
            out.push((
                "INSERT INTO jxg_checkpoints (seq, jws) SELECT * FROM UNNEST($1::bigint[], $2::text[]) \
                 ON CONFLICT (seq) DO UPDATE SET jws = EXCLUDED.jws",
                vec![Box::new(seqs), Box::new(jws)],
            ));
        }
        if !rows.keys.is_empty() {
            let (kids, records): (Vec<String>, Vec<String>) = rows.keys.into_iter().unzip();
            out.push((
                "INSERT INTO jxg_signing_keys (kid, record) SELECT * FROM UNNEST($1::text[], $2::text[]) \
                 ON CONFLICT (kid) DO UPDATE SET record = EXCLUDED.record",
                vec![Box::new(kids), Box::new(records)],
            ));
        }
    }
}

/// The statements of a batch: its changes as a few multi-row statements, one per table, with a
/// removal applied in its place between what comes before and after it.
fn statements(batch: &Batch) -> Vec<(&'static str, Params)> {
    let mut out = Vec::new();
    let mut rows = Rows::default();
    for op in &batch.ops {
        match op {
            Op::PutMessage(m) => {
                rows.messages
                    .insert(m.id, (seq_param(m.seq), enc(m.as_ref())));
                rows.body_keys
                    .insert(m.id, m.key.as_ref().map(|k| k.as_bytes().to_vec()));
            }
            Op::PutIdempotency { sender, key, row } => {
                rows.idempotency.insert(
                    (sender.clone(), key.clone()),
                    (row.message_id, row.body_sha256.clone()),
                );
            }
            Op::PutCase {
                case,
                seq,
                message_id,
            } => {
                rows.cases
                    .insert((case.clone(), seq_param(*seq)), *message_id);
            }
            Op::PutDelivery {
                recipient,
                seq,
                row,
                ..
            } => {
                rows.deliveries.insert(
                    (recipient.clone(), seq_param(*seq)),
                    (class_code(Class::of(row.state)), enc(row)),
                );
            }
            Op::Audit(entries) => {
                for e in entries {
                    let seq = seq_param(e.seq);
                    // a run holds consecutive entries; one that does not follow starts another
                    let follows =
                        matches!(rows.runs.last(), Some((_, last, _)) if *last + 1 == seq);
                    if !follows {
                        rows.runs.push((seq, seq, Vec::new()));
                    }
                    let run = rows.runs.last_mut().expect("a run was just made");
                    run.1 = seq;
                    run.2
                        .push(serde_json::to_string(e).expect("entries serialise"));
                    let first = run.0;
                    for s in &e.record.subjects {
                        let list = rows.subjects.entry((s.clone(), first)).or_default();
                        if list.last() != Some(&seq) {
                            list.push(seq);
                        }
                    }
                }
            }
            Op::PutCheckpoint { seq, jws } => {
                rows.checkpoints.insert(seq_param(*seq), jws.clone());
            }
            Op::PutSigningKey { kid, record } => {
                rows.keys.insert(kid.clone(), record.to_string());
            }
            Op::RemoveMessage {
                id,
                seq,
                sender,
                source_document_id,
                case,
                recipients,
            } => {
                rows.flush(&mut out);
                out.push((
                    "DELETE FROM jxg_messages WHERE id = $1",
                    vec![Box::new(*id)],
                ));
                out.push((
                    "DELETE FROM jxg_body_keys WHERE id = $1",
                    vec![Box::new(*id)],
                ));
                out.push((
                    "DELETE FROM jxg_idempotency WHERE sender = $1 AND key = $2",
                    vec![
                        Box::new(sender.clone()),
                        Box::new(source_document_id.clone()),
                    ],
                ));
                // what acted on it (a correction or a withdrawal) is kept no longer than it
                out.push((
                    "DELETE FROM jxg_idempotency WHERE sender = $1 AND key = $2",
                    vec![
                        Box::new(jxg_core::store::REVISION_KEYS.to_string()),
                        Box::new(id.to_string()),
                    ],
                ));
                out.push((
                    "DELETE FROM jxg_cases WHERE case_id = $1 AND seq = $2",
                    vec![Box::new(case.clone()), Box::new(seq_param(*seq))],
                ));
                out.push((
                    "DELETE FROM jxg_deliveries WHERE recipient = ANY($1) AND seq = $2",
                    vec![Box::new(recipients.clone()), Box::new(seq_param(*seq))],
                ));
            }
            Op::RemoveAuditThrough(last) => {
                rows.flush(&mut out);
                // whole runs go; the run that holds `last` loses its entries up to it
                let last = seq_param(*last);
                for sql in [
                    "DELETE FROM jxg_audit_runs WHERE last_seq <= $1",
                    "UPDATE jxg_audit_runs SET entries = entries[($1 - first_seq + 2)::int:], \
                     first_seq = $1 + 1 WHERE first_seq <= $1",
                    "DELETE FROM jxg_audit_run_subjects \
                     WHERE first_seq <= $1 AND seqs[array_upper(seqs, 1)] <= $1",
                    "UPDATE jxg_audit_run_subjects \
                     SET seqs = ARRAY(SELECT q FROM unnest(seqs) AS q WHERE q > $1 ORDER BY q), \
                     first_seq = $1 + 1 WHERE first_seq <= $1",
                ] {
                    out.push((sql, vec![Box::new(last)]));
                }
            }
        }
    }
    if !rows.is_empty() {
        rows.flush(&mut out);
    }
    out.push((
        "INSERT INTO jxg_state (one, next_seq) VALUES (true, $1) \
         ON CONFLICT (one) DO UPDATE SET next_seq = EXCLUDED.next_seq",
        vec![Box::new(seq_param(batch.next_seq))],
    ));
    if !batch.counts.is_empty() {
        let (mut recipients, mut waiting, mut dead) = (vec![], vec![], vec![]);
        for (r, c) in &batch.counts {
            recipients.push(r.clone());
            waiting.push(seq_param(c.waiting));
            dead.push(seq_param(c.dead));
        }
        out.push((
            "INSERT INTO jxg_counts (recipient, waiting, dead) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT (recipient) DO UPDATE SET waiting = EXCLUDED.waiting, dead = EXCLUDED.dead",
            vec![Box::new(recipients), Box::new(waiting), Box::new(dead)],
        ));
    }
    out
}

/// A delivery listing's cursor: the recipient's bytes, a zero byte, the seq big-endian.
fn cursor(recipient: &str, seq: u64) -> Cursor {
    let mut c = recipient.as_bytes().to_vec();
    c.push(0);
    c.extend_from_slice(&seq.to_be_bytes());
    Cursor(c)
}

fn uncursor(c: &Cursor) -> Result<(String, u64), StoreError> {
    let bad = || StoreError::Corrupt("not a cursor of this engine".into());
    let cut = c.0.len().checked_sub(9).ok_or_else(bad)?;
    let recipient = String::from_utf8(c.0[..cut].to_vec()).map_err(|_| bad())?;
    let seq: [u8; 8] = c.0[cut + 1..].try_into().map_err(|_| bad())?;
    Ok((recipient, u64::from_be_bytes(seq)))
}

impl PgEngine {
    /// Connects, checks that commits are synchronous, and applies the migrations not yet applied.
    pub async fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let mut cfg = deadpool_postgres::Config::new();
        cfg.url = Some(options.url.clone());
        let timeouts = Timeouts {
            wait: Some(options.timeout),
            create: Some(options.timeout),
            recycle: Some(options.timeout),
        };
        cfg.pool = Some(PoolConfig {
            max_size: options.pool_size.max(1),
            timeouts,
            ..Default::default()
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| unavailable("its URL", e))?;
        let hints = tokio::sync::broadcast::channel(1024).0;
        let lock = Self::lock(options, &hints).await?;
        let engine = Self {
            turn: tokio::sync::Mutex::new(None),
            hints,
            lock: tokio::sync::Mutex::new(lock),
            lock_lost: AtomicBool::new(false),
            options: options.clone(),
            pool,
            timeout: options.timeout,
            generation: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            reachable: AtomicBool::new(false),
        };
        let mut client = engine.client().await?;
        let sync = engine
            .bounded(
                "reading synchronous_commit",
                client.query_one("SHOW synchronous_commit", &[]),
            )
            .await?;
        let sync: String = sync.get(0);
        if sync == "off" {
            return Err(StoreError::Unavailable(format!(
                "the database commits asynchronously (synchronous_commit = {sync}): a commit \
                 could be lost after it was acknowledged"
            )));
        }
        let runner = embedded::migrations::runner();
        engine
            .bounded("applying its migrations", runner.run_async(&mut **client))
            .await?;
        engine.reachable.store(true, Ordering::SeqCst);
        Ok(engine)
    }

    /// A session of its own that takes this node's advisory lock and holds it while the engine
    /// lives (a second process under the same node name would take the same leases, so it is
    /// refused), and listens there for other nodes' hints.
    async fn lock(
        options: &PgOptions,
        hints: &tokio::sync::broadcast::Sender<String>,
    ) -> Result<tokio_postgres::Client, StoreError> {
        let connect = tokio_postgres::connect(&options.url, NoTls);
        let (client, mut conn) = match tokio::time::timeout(options.timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(unavailable("a connection", chain(&e))),
            Err(_) => {
                return Err(unavailable(
                    "a connection",
                    format!("no answer within {} ms", options.timeout.as_millis()),
                ));
            }
        };
        let hints = hints.clone();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = futures_util::StreamExt::next(&mut messages).await {
                match m {
                    Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                        let _ = hints.send(n.payload().to_string());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %chain(&e), "the node's lock session ended");
                        return;
                    }
                }
            }
        });
        // a session that just ended (a process stopped a moment ago) lets go of the lock as the
        // server notices: that, and only that, is waited out, for at most the bound. Each try
        // has the whole bound to answer, so a slow last try is not taken for a dead database.
        let grace = tokio::time::Instant::now() + options.timeout;
        let taken = loop {
            let taken = tokio::time::timeout(
                options.timeout,
                client.query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))",
                    &[&NODE_LOCK, &options.node],
                ),
            )
            .await
            .map_err(|_| {
                unavailable(
                    "the node's lock",
                    format!("no answer within {} ms", options.timeout.as_millis()),
                )
            })?
            .map_err(|e| unavailable("the node's lock", chain(&e)))?
            .get::<_, bool>(0);
            if taken || tokio::time::Instant::now() >= grace {
                break taken;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if !taken {
            return Err(StoreError::Unavailable(format!(
                "node {:?} already runs on this database (a gateway, or a jxg command, with \
                 this store.node); every node sharing a database needs a name of its own",
                options.node
            )));
        }
        tokio::time::timeout(
            options.timeout,
            client.batch_execute(&format!("LISTEN {HINTS}")),
        )
        .await
        .map_err(|_| unavailable("listening for hints", "no answer"))?
        .map_err(|e| unavailable("listening for hints", chain(&e)))?;
        Ok(client)
    }

    /// `fut` within the engine's bound; its failure is the database's being unavailable.
    async fn bounded<T, E: std::error::Error + 'static>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError> {
        let r = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(what, chain(&e))),
            Err(_) => Err(unavailable(
                what,
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
        };
        self.reachable.store(r.is_ok(), Ordering::SeqCst);
        r
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.bounded("a connection", self.pool.get()).await
    }

    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        self.bounded(what, async {
            let stmt = client.prepare_cached(sql).await?;
            client.query(&stmt, params).await
        })
        .await
    }

    /// Opens a transaction on `client` holding the store's write turn: other nodes' turns
    /// wait for its commit. The server itself ends a turn that waits or idles too long, so a
    /// node that stops answering does not hold the others back past the bound. In the same
    /// round trip, once the turn is held, it reads the state and the stored rows of `keys`.
    async fn open_turn(
        &self,
        client: &deadpool_postgres::Object,
        keys: &[(String, String)],
    ) -> Result<Turn, StoreError> {
        let ms = self.timeout.as_millis();
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = '{ms}ms'; \
             SET LOCAL idle_in_transaction_session_timeout = '{}ms'",
            ms * 2
        );
        let (senders, names): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
        let (state, idem) = self
            .bounded("the store's write turn", async {
                // prepared before (from the connection's cache after its first turn), so that
                // the turn's statements go out together
                let lock = client.prepare_cached(TURN_LOCK).await?;
                let state = client.prepare_cached(STATE).await?;
                let idem = client.prepare_cached(IDEMPOTENCY_OF).await?;
                // in order, pipelined on the one connection: the server reads the state and
                // the keys once the lock is held
                let (_, _, state, idem) = futures_util::future::try_join4(
                    client.batch_execute(&begin),
                    client.execute(&lock, &[&STORE_LOCK]),
                    client.query_one(&state, &[]),
                    client.query(&idem, &[&senders, &names]),
                )
                .await?;
                Ok::<_, tokio_postgres::Error>((state, idem))
            })
            .await?;
        Ok(Turn {
            state: state_of(&state)?,
            idempotency: by_place(keys.len(), &idem, idem_row)?,
        })
    }

    /// Writes `batch` in the turn `client` holds and commits it; with the commit's answer
    /// comes the oldest waiting delivery of each of `oldest_of`, read just after it.
    async fn write_batch(
        &self,
        client: &deadpool_postgres::Object,
        batch: &Batch,
        oldest_of: &[String],
    ) -> Result<Vec<Option<DeliveryRow>>, StoreError> {
        let statements = statements(batch);
        let mut prepared = Vec::with_capacity(statements.len());
        for (sql, _) in &statements {
            prepared.push(
                client
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| unavailable("preparing a write", chain(&e)))?,
            );
        }
        let hint = client
            .prepare_cached(HINT)
            .await
            .map_err(|e| unavailable("preparing a write", chain(&e)))?;
        let oldest = client
            .prepare_cached(OLDEST_WAITING)
            .await
            .map_err(|e| unavailable("preparing a write", chain(&e)))?;
        // the other nodes learn which recipients' waiting entries changed (a hint only)
        let touched: Vec<&str> = batch.counts.keys().map(String::as_str).collect();
        // in order, pipelined on the one connection with the hint and the commit: one round
        // trip. A statement that fails aborts the transaction, whose COMMIT then rolls back,
        // and its error is the answer.
        let runs = statements.iter().zip(&prepared).map(|((_, params), stmt)| {
            let params: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            async move { client.execute(stmt, &params).await }
        });
        let hint = async {
            if touched.is_empty() {
                Ok(0)
            } else {
                client.execute(&hint, &[&HINTS, &touched]).await
            }
        };
        // after the commit, in the same round trip: outside the turn, so that the other nodes
        // need not wait for it, and never the write's failure
        let waiting = class_code(Class::Waiting);
        let read = async {
            if oldest_of.is_empty() {
                return Ok(Vec::new());
            }
            let rows = client.query(&oldest, &[&oldest_of, &waiting]).await;
            rows.map_err(|e| unavailable("the oldest waiting deliveries", chain(&e)))
        };
        let (written, read) = futures_util::future::join(
            futures_util::future::try_join3(
                futures_util::future::try_join_all(runs),
                hint,
                client.batch_execute("COMMIT"),
            ),
            read,
        )
        .await;
        written.map_err(|e| unavailable("a write", chain(&e)))?;
        let rows = read.unwrap_or_default();
        let found = by_place(oldest_of.len(), &rows, |r, _| {
            delivery_row(r.get::<_, &[u8]>(1))
        });
        // a row that cannot be read reads as none, as a failed read does
        Ok(found.unwrap_or_else(|_| vec![None; oldest_of.len()]))
    }

    /// The state as `client` sees it, in one round trip.
    async fn state_on(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<EngineState, StoreError> {
        let row = self
            .bounded("the store's state", client.query_one(STATE, &[]))
            .await?;
        state_of(&row)
    }
}

/// The store's state in one row: the next sequence number, the audit chain's last entry and
/// the counts per recipient.
const STATE: &str = "SELECT (SELECT next_seq FROM jxg_state), \
     (SELECT entries[array_upper(entries, 1)] FROM jxg_audit_runs \
      ORDER BY first_seq DESC LIMIT 1), \
     ARRAY(SELECT recipient FROM jxg_counts ORDER BY recipient), \
     ARRAY(SELECT waiting FROM jxg_counts ORDER BY recipient), \
     ARRAY(SELECT dead FROM jxg_counts ORDER BY recipient)";

/// The oldest waiting delivery of each recipient in an array ($1, the class code of waiting
/// $2), with its place in it (from 1), each by the index of classes.
const OLDEST_WAITING: &str = "SELECT k.n, d.row \
     FROM UNNEST($1::text[]) WITH ORDINALITY AS k(recipient, n) \
     CROSS JOIN LATERAL (SELECT row FROM jxg_deliveries \
      WHERE class = $2 AND recipient = k.recipient ORDER BY seq LIMIT 1) d";

/// The store's write turn, held until the transaction ends.
const TURN_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";

/// A hint to the other nodes per recipient named in an array.
const HINT: &str = "SELECT pg_notify($1, r) FROM unnest($2::text[]) r";

/// The stored rows of idempotency keys given as two arrays (senders, keys), each with its
/// place in them (from 1). Each key is looked up on its own (`LATERAL`), by the primary key:
/// as a join, a plan made while the table was small (a prepared statement keeps its plan
/// until the table is analysed) hashes the keys and scans the whole table in every turn. The
/// `LIMIT` keeps the planner from turning the lookup back into that join. Public for the test
/// that reads its plan.
pub const IDEMPOTENCY_OF: &str = "SELECT k.n, i.message_id, i.body_sha256 \
     FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS k(sender, key, n) \
     CROSS JOIN LATERAL (SELECT message_id, body_sha256 FROM jxg_idempotency \
      WHERE sender = k.sender AND key = k.key LIMIT 1) i";

/// A page of messages after an id, each with its body key. The key is looked up per message:
/// as a join, the plan merges the whole key table from its start up to the page, so that paging
/// through the store costs the square of its size. Public for the test that reads its plan.
pub const MESSAGES_AFTER: &str = "SELECT m.id, m.record, k.key FROM jxg_messages m \
     LEFT JOIN LATERAL (SELECT key FROM jxg_body_keys WHERE id = m.id LIMIT 1) k ON true \
     WHERE m.id > $1 ORDER BY m.id LIMIT $2";

/// The answer of a lookup of `n` keys whose rows start with the key's place (from 1, `WITH
/// ORDINALITY`), in the keys' order: `None` for a key with no row. `read` makes a row's value
/// from the row and its place (from 0).
fn by_place<T: Clone>(
    n: usize,
    rows: &[tokio_postgres::Row],
    read: impl Fn(&tokio_postgres::Row, usize) -> Result<T, StoreError>,
) -> Result<Vec<Option<T>>, StoreError> {
    let mut out = vec![None; n];
    for r in rows {
        let place: i64 = r.get(0);
        if let Some(i) = usize::try_from(place - 1).ok().filter(|i| *i < n) {
            out[i] = Some(read(r, i)?);
        }
    }
    Ok(out)
}

/// A row of [`IDEMPOTENCY_OF`].
fn idem_row(r: &tokio_postgres::Row, _: usize) -> Result<IdemRow, StoreError> {
    Ok(IdemRow {
        message_id: r.get(1),
        body_sha256: r.get(2),
    })
}

/// The answer of [`STATE`].
fn state_of(row: &tokio_postgres::Row) -> Result<EngineState, StoreError> {
    let next_seq = row.get::<_, Option<i64>>(0).map_or(1, |s| s.max(1) as u64);
    let head = match row.get::<_, Option<String>>(1) {
        Some(text) => {
            let e = entry(&text)?;
            Head {
                next_seq: e.seq + 1,
                last_hash: e.hash,
            }
        }
        None => Head::default(),
    };
    let (names, waiting, dead): (Vec<String>, Vec<i64>, Vec<i64>) =
        (row.get(2), row.get(3), row.get(4));
    let counts = names
        .into_iter()
        .zip(waiting.into_iter().zip(dead))
        .map(|(r, (w, d))| {
            (
                r,
                Counts {
                    waiting: w.max(0) as u64,
                    dead: d.max(0) as u64,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();
    Ok(EngineState {
        next_seq,
        head,
        counts,
    })
}

/// A message record (postcard) with its body key, where it has one.
fn message(id: Uuid, bytes: &[u8], key: Option<&[u8]>) -> Result<MessageRec, StoreError> {
    let mut m: MessageRec =
        postcard::from_bytes(bytes).map_err(|e| corrupt(&format!("message {id}"), e))?;
    m.key = key.and_then(jxg_core::store::BodyKey::from_bytes);
    Ok(m)
}

fn delivery_row(bytes: &[u8]) -> Result<DeliveryRow, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| corrupt("a delivery row", e))
}

fn entry(text: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("an audit entry", e))
}

#[async_trait::async_trait]
impl Engine for PgEngine {
    async fn state(&self) -> Result<EngineState, StoreError> {
        let client = self.client().await?;
        self.state_on(&client).await
    }

    async fn turn(&self, keys: &[(String, String)]) -> Result<Option<Turn>, StoreError> {
        let mut slot = self.turn.lock().await;
        if let Some(old) = slot.take() {
            // a turn never ended (its writer failed between): it is given up
            drop(deadpool_postgres::Object::take(old));
        }
        let client = self.client().await?;
        match self.open_turn(&client, keys).await {
            Ok(turn) => {
                *slot = Some(client);
                Ok(Some(turn))
            }
            Err(e) => {
                // the connection is closed, not recycled: the server rolls back what it held
                drop(deadpool_postgres::Object::take(client));
                Err(e)
            }
        }
    }

    async fn abandon(&self) {
        if let Some(client) = self.turn.lock().await.take() {
            if self
                .bounded("giving up a turn", client.batch_execute("ROLLBACK"))
                .await
                .is_err()
            {
                drop(deadpool_postgres::Object::take(client));
            }
        }
    }

    async fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.write_then_oldest(batch, &[]).await.map(drop)
    }

    async fn write_then_oldest(
        &self,
        batch: Batch,
        recipients: &[String],
    ) -> Result<Vec<Option<DeliveryRow>>, StoreError> {
        {
            let mut lock = self.lock.lock().await;
            if lock.is_closed() {
                // the node's lock session ended: taken again, the batch (decided in its turn)
                // is written; should another process now run under this node's name, this one
                // writes nothing more
                self.lock_lost.store(true, Ordering::SeqCst);
                match Self::lock(&self.options, &self.hints).await {
                    Ok(l) => {
                        *lock = l;
                        self.lock_lost.store(false, Ordering::SeqCst);
                    }
                    Err(e) => {
                        drop(lock);
                        self.abandon().await;
                        return Err(e);
                    }
                }
            }
        }
        let turn = self.turn.lock().await.take();
        let client = match turn {
            Some(c) => c,
            None => {
                // a write without a turn (a copy into the store) takes one of its own
                let c = self.client().await?;
                if let Err(e) = self.open_turn(&c, &[]).await {
                    drop(deadpool_postgres::Object::take(c));
                    return Err(e);
                }
                c
            }
        };
        let written = self.write_batch(&client, &batch, recipients);
        let r = match tokio::time::timeout(self.timeout, written).await {
            Ok(r) => r,
            Err(_) => Err(unavailable(
                "a write",
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
        };
        if r.is_err() {
            // whatever the transaction held is rolled back with its connection
            drop(deadpool_postgres::Object::take(client));
        }
        match &r {
            Ok(_) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.batches.fetch_add(1, Ordering::Relaxed);
                self.reachable.store(true, Ordering::SeqCst);
            }
            Err(_) => {
                // it may have committed: the writer reads the state again before its next batch
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.reachable.store(false, Ordering::SeqCst);
            }
        }
        r
    }

    async fn message(&self, id: &Uuid) -> Result<Option<MessageRec>, StoreError> {
        let rows = self
            .query(
                "a message",
                "SELECT m.record, k.key FROM jxg_messages m \
                 LEFT JOIN jxg_body_keys k ON k.id = m.id WHERE m.id = $1",
                &[id],
            )
            .await?;
        rows.first()
            .map(|r| message(*id, r.get::<_, &[u8]>(0), r.get(1)))
            .transpose()
    }

    async fn messages_of(&self, ids: &[Uuid]) -> Result<Vec<Option<MessageRec>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // each looked up on its own by the primary key (see IDEMPOTENCY_OF)
        let rows = self
            .query(
                "messages",
                "SELECT k.n, m.record, b.key \
                 FROM UNNEST($1::uuid[]) WITH ORDINALITY AS k(id, n) \
                 CROSS JOIN LATERAL (SELECT record FROM jxg_messages WHERE id = k.id LIMIT 1) m \
                 LEFT JOIN LATERAL (SELECT key FROM jxg_body_keys WHERE id = k.id LIMIT 1) b \
                 ON true",
                &[&ids],
            )
            .await?;
        by_place(ids.len(), &rows, |r, i| {
            message(ids[i], r.get::<_, &[u8]>(1), r.get(2))
        })
    }

    async fn messages(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let after = after.unwrap_or(Uuid::nil());
        let rows = self
            .query("messages", MESSAGES_AFTER, &[&after, &limit_param(limit)])
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                message(id, r.get::<_, &[u8]>(1), r.get(2)).map_err(|e| Unreadable {
                    id,
                    error: e.to_string(),
                })
            })
            .collect())
    }

    async fn idempotency(&self, sender: &str, key: &str) -> Result<Option<IdemRow>, StoreError> {
        let rows = self
            .query(
                "an idempotency key",
                "SELECT message_id, body_sha256 FROM jxg_idempotency WHERE sender = $1 AND key = $2",
                &[&sender, &key],
            )
            .await?;
        Ok(rows.first().map(|r| IdemRow {
            message_id: r.get(0),
            body_sha256: r.get(1),
        }))
    }

    async fn idempotency_of(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<Option<IdemRow>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (senders, names): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
        let rows = self
            .query("idempotency keys", IDEMPOTENCY_OF, &[&senders, &names])
            .await?;
        by_place(keys.len(), &rows, idem_row)
    }

    async fn case(&self, case: &str) -> Result<Vec<Uuid>, StoreError> {
        let rows = self
            .query(
                "a case",
                "SELECT message_id FROM jxg_cases WHERE case_id = $1 ORDER BY seq",
                &[&case],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn delivery(&self, recipient: &str, seq: u64) -> Result<Option<DeliveryRow>, StoreError> {
        let rows = self
            .query(
                "a delivery",
                "SELECT row FROM jxg_deliveries WHERE recipient = $1 AND seq = $2",
                &[&recipient, &seq_param(seq)],
            )
            .await?;
        rows.first()
            .map(|r| delivery_row(r.get::<_, &[u8]>(0)))
            .transpose()
    }

    async fn deliveries_of(
        &self,
        keys: &[(String, u64)],
    ) -> Result<Vec<Option<DeliveryRow>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let recipients: Vec<&str> = keys.iter().map(|(r, _)| r.as_str()).collect();
        let seqs: Vec<i64> = keys.iter().map(|(_, s)| seq_param(*s)).collect();
        let rows = self
            .query(
                "deliveries",
                "SELECT k.n, d.row \
                 FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS k(recipient, seq, n) \
                 CROSS JOIN LATERAL (SELECT row FROM jxg_deliveries \
                  WHERE recipient = k.recipient AND seq = k.seq LIMIT 1) d",
                &[&recipients, &seqs],
            )
            .await?;
        by_place(keys.len(), &rows, |r, _| delivery_row(r.get::<_, &[u8]>(1)))
    }

    async fn deliveries(
        &self,
        class: Class,
        recipient: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Located>, StoreError> {
        // the rows past the cursor; without one, past ("", -1): every row
        let (from_r, from_s) = match after {
            Some(c) => {
                let (r, s) = uncursor(c)?;
                (r, seq_param(s))
            }
            None => (String::new(), -1),
        };
        let class = class_code(class);
        let limit = limit_param(limit);
        let rows = match recipient {
            Some(r) => {
                self.query(
                    "deliveries",
                    "SELECT recipient, seq, row FROM jxg_deliveries \
                     WHERE class = $1 AND recipient = $2 AND (recipient, seq) > ($3::text, $4::bigint) \
                     ORDER BY recipient, seq LIMIT $5",
                    &[&class, &r, &from_r, &from_s, &limit],
                )
                .await?
            }
            None => {
                self.query(
                    "deliveries",
                    "SELECT recipient, seq, row FROM jxg_deliveries \
                     WHERE class = $1 AND (recipient, seq) > ($2::text, $3::bigint) \
                     ORDER BY recipient, seq LIMIT $4",
                    &[&class, &from_r, &from_s, &limit],
                )
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                let (recipient, seq): (String, i64) = (r.get(0), r.get(1));
                let seq = seq.max(0) as u64;
                Ok((
                    cursor(&recipient, seq),
                    recipient,
                    seq,
                    delivery_row(r.get::<_, &[u8]>(2))?,
                ))
            })
            .collect()
    }

    async fn audit(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        // the run holding the first entry at or after from_seq, up to the run holding the entry
        // `limit` places after it (sequence numbers are consecutive from the oldest entry kept)
        let rows = self
            .query(
                "the audit log",
                "WITH lo AS (SELECT GREATEST($1::bigint, \
                   (SELECT min(first_seq) FROM jxg_audit_runs)) AS s) \
                 SELECT r.first_seq, r.entries FROM jxg_audit_runs r \
                 WHERE r.first_seq >= (SELECT max(first_seq) FROM jxg_audit_runs, lo \
                                       WHERE first_seq <= lo.s) \
                   AND r.first_seq < (SELECT s FROM lo) + $2::bigint \
                 ORDER BY r.first_seq",
                &[&seq_param(from_seq), &limit_param(limit.min(1 << 40))],
            )
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            // a run's entries are consecutive: those before from_seq are not read
            let first = r.get::<_, i64>(0).max(0) as u64;
            let skip = usize::try_from(from_seq.saturating_sub(first)).unwrap_or(usize::MAX);
            for text in r.get::<_, Vec<&str>>(1).into_iter().skip(skip) {
                if out.len() == limit {
                    return Ok(out);
                }
                out.push(entry(text)?);
            }
        }
        Ok(out)
    }

    async fn audit_of_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError> {
        let rows = self
            .query(
                "a subject's audit entries",
                "SELECT r.first_seq, r.entries, s.seqs FROM jxg_audit_run_subjects s \
                 JOIN jxg_audit_runs r ON r.first_seq = s.first_seq \
                 WHERE s.subject = $1 ORDER BY s.first_seq",
                &[&subject],
            )
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let (first, entries, seqs) = (
                r.get::<_, i64>(0),
                r.get::<_, Vec<&str>>(1),
                r.get::<_, Vec<i64>>(2),
            );
            for seq in seqs {
                let text = usize::try_from(seq - first)
                    .ok()
                    .and_then(|i| entries.get(i))
                    .ok_or_else(|| corrupt("an audit run", "a subject names an entry it lacks"))?;
                let e = entry(text)?;
                if e.seq != seq.max(0) as u64 {
                    return Err(corrupt("an audit run", "its entries are not consecutive"));
                }
                out.push(e);
            }
        }
        Ok(out)
    }

    async fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let rows = self
            .query(
                "the checkpoints",
                "SELECT seq, jws FROM jxg_checkpoints ORDER BY seq",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0).max(0) as u64, r.get(1)))
            .collect())
    }

    async fn signing_keys(&self) -> Result<Vec<Value>, StoreError> {
        let rows = self
            .query(
                "the signing keys",
                "SELECT record FROM jxg_signing_keys ORDER BY kid",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| corrupt("a signing key", e))
            })
            .collect()
    }

    async fn lease(
        &self,
        recipient: &str,
        seqs: &[u64],
        holder: &str,
        period: Duration,
    ) -> Result<Vec<u64>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = seqs.iter().map(|s| seq_param(*s)).collect();
        // one statement: a row another holder's unexpired lease keeps is not updated, so two
        // nodes asking at once get each entry once between them
        let rows = self
            .query(
                "a lease",
                "INSERT INTO jxg_leases (recipient, seq, holder, until) \
                 SELECT $1, s, $3, clock_timestamp() + make_interval(secs => $4) \
                 FROM unnest($2::bigint[]) s \
                 ON CONFLICT (recipient, seq) DO UPDATE \
                 SET holder = EXCLUDED.holder, until = EXCLUDED.until \
                 WHERE jxg_leases.until < clock_timestamp() OR jxg_leases.holder = EXCLUDED.holder \
                 RETURNING seq",
                &[&recipient, &seqs, &holder, &period.as_secs_f64()],
            )
            .await?;
        let mut granted: Vec<u64> = rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect();
        granted.sort_unstable();
        Ok(granted)
    }

    async fn leased(&self, recipient: &str) -> Result<Vec<(u64, String)>, StoreError> {
        let rows = self
            .query(
                "the leases",
                "SELECT seq, holder FROM jxg_leases \
                 WHERE recipient = $1 AND until >= clock_timestamp() ORDER BY seq",
                &[&recipient],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, String>(1)))
            .collect())
    }

    async fn release(
        &self,
        recipient: &str,
        seq: u64,
        holder: Option<&str>,
    ) -> Result<(), StoreError> {
        self.query(
            "ending a lease",
            "DELETE FROM jxg_leases WHERE recipient = $1 AND seq = $2 \
             AND ($3::text IS NULL OR holder = $3)",
            &[&recipient, &seq_param(seq), &holder],
        )
        .await?;
        Ok(())
    }

    fn hints(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.hints.subscribe())
    }

    fn flush_stats(&self) -> FlushStats {
        FlushStats {
            flushes: self.commits.load(Ordering::Relaxed),
            waiters: self.batches.load(Ordering::Relaxed),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn ready(&self) -> Result<(), StoreError> {
        let lost = match self.lock.try_lock() {
            Ok(lock) => lock.is_closed(),
            Err(_) => self.lock_lost.load(Ordering::SeqCst),
        };
        if lost {
            return Err(StoreError::Unavailable(
                "the session holding this node's lock has ended".into(),
            ));
        }
        if self.reachable.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the database did not answer the last call".into(),
            ))
        }
    }
}
