//! The Store seam's conformance suite (`jxg_tests::conformance`) against the sled engine, and
//! proof that it finds an engine with one bug in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jxg_gateway::audit::Entry;
use jxg_gateway::store::{
    Batch, Class, Counts, Cursor, DeliveryRow, Engine, EngineState, FlushStats, IdemRow, Listed,
    Located, MessageRec, Op, RETENTION_JOB, SledEngine, Store, StoreError,
};
use jxg_store_postgres::{PgEngine, PgOptions};
use jxg_tests::conformance::{Leases, Opening, Plan, acceptance, leases_hold, run};
use jxg_tests::postgres::Database;
use serde_json::Value;
use uuid::Uuid;

/// Opens the sled engine in `dir`. A restart within one process can find sled's file lock still
/// held for a moment by the threads of the engine just closed (a process that exits lets go of
/// it at once): that, and only that, is waited out, for at most ten seconds.
fn open_sled(dir: &Path) -> SledEngine {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledEngine::open(dir, 16) {
            Ok(e) => return e,
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("the sled engine opens: {e}"),
        }
    }
}

fn sled(dir: &Path) -> Opening {
    let engine: Arc<dyn Engine> = Arc::new(open_sled(dir));
    Box::pin(async move { engine })
}

/// How the tests reach `db` as node `node`: a small pool, a bound of ten seconds.
fn pg_options(db: &Database, node: &str) -> PgOptions {
    PgOptions {
        url: db.url(),
        pool_size: 2,
        timeout: std::time::Duration::from_secs(10),
        node: node.into(),
    }
}

/// Opens the PostgreSQL engine on a database of the sequence's own, made on first use and named
/// after the sequence's folder, so that a restart finds what it wrote.
fn postgres(
    databases: Arc<std::sync::Mutex<BTreeMap<PathBuf, Arc<Database>>>>,
) -> impl Fn(&Path) -> Opening {
    move |dir: &Path| -> Opening {
        let (dir, databases) = (dir.to_path_buf(), databases.clone());
        Box::pin(async move {
            let known = databases.lock().unwrap().get(&dir).cloned();
            let db = match known {
                Some(db) => db,
                None => {
                    let db = Arc::new(Database::create("conformance").await);
                    databases.lock().unwrap().insert(dir, db.clone());
                    db
                }
            };
            let engine = PgEngine::open(&PgOptions {
                pool_size: 4,
                ..pg_options(&db, "conformance")
            })
            .await
            .expect("the PostgreSQL engine opens");
            Arc::new(engine) as Arc<dyn Engine>
        })
    }
}

#[tokio::test]
async fn the_engines_leases_hold_one_holder_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sled(dir.path()).await;
    leases_hold(engine.as_ref())
        .await
        .unwrap_or_else(|e| panic!("sled: {e}"));
    let databases = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let engine = postgres(databases.clone())(dir.path()).await;
    leases_hold(engine.as_ref())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    // the engine lets go of its database before the database is dropped
    drop(engine);
    drop(databases);
}

#[tokio::test]
async fn a_postgres_node_hears_another_nodes_changes_and_a_second_process_of_one_name_is_refused() {
    let db = Database::create("hints").await;
    let options = |node: &str| PgOptions {
        timeout: std::time::Duration::from_secs(5),
        ..pg_options(&db, node)
    };
    let one = PgEngine::open(&options("gw-1")).await.unwrap();
    let two = PgEngine::open(&options("gw-2")).await.unwrap();
    let again = PgEngine::open(&options("gw-1")).await.unwrap_err();
    assert!(
        again.to_string().contains("already runs on this database"),
        "{again}"
    );
    let mut heard = two.hints().expect("the engine gives hints");
    let counts = BTreeMap::from([(
        "alpha".to_string(),
        Counts {
            waiting: 1,
            dead: 0,
        },
    )]);
    one.write(Batch {
        ops: vec![],
        next_seq: 1,
        counts,
    })
    .await
    .unwrap();
    let hint = tokio::time::timeout(std::time::Duration::from_secs(30), heard.recv())
        .await
        .expect("a hint within the bound")
        .unwrap();
    assert_eq!(hint, "alpha");
    // and the write is the other node's to see
    assert_eq!(two.state().await.unwrap().counts["alpha"].waiting, 1);
    // a store-wide job (retention) is one node's at a time
    let hour = std::time::Duration::from_secs(3600);
    let a = Store::open_as(Arc::new(one), Default::default(), "gw-1", hour)
        .await
        .unwrap();
    let b = Store::open_as(Arc::new(two), Default::default(), "gw-2", hour)
        .await
        .unwrap();
    assert!(a.hold_job(RETENTION_JOB, hour).await.unwrap());
    assert!(!b.hold_job(RETENTION_JOB, hour).await.unwrap());
    assert!(
        a.hold_job(RETENTION_JOB, hour).await.unwrap(),
        "renewed by its holder"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn the_sled_engine_conforms() {
    conforms("sled", Plan::from_env(), Leases::Process, sled).await;
}

/// The plan PostgreSQL keeps for a prepared statement (its generic plan) of `sql`, with
/// parameters of `types`, in `db` as it stands, for the arguments `args`.
async fn generic_plan(db: &Database, sql: &str, types: &str, args: &str) -> String {
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE q({types}) AS {sql}"
        ))
        .await
        .unwrap();
    let rows = client
        .query(&format!("EXPLAIN EXECUTE q({args})"), &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_engines_lookups_go_by_index_while_the_tables_have_no_statistics() {
    // what a node's database holds in its first minutes: rows, and no statistics until
    // autovacuum analyses the tables
    let db = Database::create("plans").await;
    let engine = PgEngine::open(&pg_options(&db, "gw-1")).await.unwrap();
    db.execute(
        "INSERT INTO jxg_idempotency SELECT 'police', 'doc-' || g, gen_random_uuid(), md5(g::text) \
         FROM generate_series(1, 300) g",
    )
    .await;
    db.execute(
        "INSERT INTO jxg_messages SELECT gen_random_uuid(), g, '\\x00' FROM generate_series(1, 300) g",
    )
    .await;
    db.execute(
        "INSERT INTO jxg_body_keys SELECT id, decode(repeat('00', 32), 'hex') FROM jxg_messages",
    )
    .await;
    let keys = (
        "text[], text[]",
        "ARRAY['police', 'police'], ARRAY['doc-1', 'doc-2']",
    );
    // the batch's idempotency keys: as a plain join, a scan of the whole table
    let join = generic_plan(
        &db,
        "SELECT k.n, i.message_id FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY \
         AS k(sender, key, n) JOIN jxg_idempotency i ON i.sender = k.sender AND i.key = k.key",
        keys.0,
        keys.1,
    )
    .await;
    assert!(join.contains("Seq Scan on jxg_idempotency"), "{join}");
    let plan = generic_plan(&db, jxg_store_postgres::IDEMPOTENCY_OF, keys.0, keys.1).await;
    assert!(
        plan.contains("Index Scan using jxg_idempotency_pkey") && !plan.contains("Seq Scan"),
        "{plan}"
    );
    // a page of the message listing: as a plain join, the key table from its start
    let page = ("uuid, int8", "'00000000-0000-0000-0000-000000000000', 100");
    let join = generic_plan(
        &db,
        "SELECT m.id, m.record, k.key FROM jxg_messages m LEFT JOIN jxg_body_keys k \
         ON k.id = m.id WHERE m.id > $1 ORDER BY m.id LIMIT $2",
        page.0,
        page.1,
    )
    .await;
    assert!(
        join.contains("Merge") || join.contains("Seq Scan"),
        "{join}"
    );
    let plan = generic_plan(&db, jxg_store_postgres::MESSAGES_AFTER, page.0, page.1).await;
    assert!(
        plan.contains("Index Cond: (id = m.id)")
            && !plan.contains("Merge")
            && !plan.contains("Seq Scan"),
        "{plan}"
    );
    drop(engine);
}

#[tokio::test]
async fn the_postgres_engine_conforms() {
    // each sequence's database is dropped when the test ends, passed or failed
    let databases = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    // half the sequences of sled's: every step's check reads every message again, each read a
    // round trip to the server
    let plan = Plan {
        sequences: Plan::from_env().sequences / 2,
        ..Plan::from_env()
    };
    conforms(
        "PostgreSQL",
        plan,
        Leases::Shared,
        postgres(databases.clone()),
    )
    .await;
    assert_eq!(databases.lock().unwrap().len(), plan.sequences);
}

async fn conforms(name: &str, plan: Plan, leases: Leases, open: impl Fn(&Path) -> Opening) {
    eprintln!(
        "conformance seed {} ({} sequences of {} steps; JXG_CONFORMANCE_SEED=N replays one)",
        plan.seed, plan.sequences, plan.steps
    );
    let coverage = match run(plan, leases, open).await {
        Ok(c) => c,
        Err(e) => panic!("the {name} engine departs from the model: {e}"),
    };
    eprintln!("{coverage:?}");
    for kind in [
        "accepted",
        "duplicate",
        "conflict",
        "acts on",
        "acted on already",
        "superseded",
        "erased",
        "taken",
        "take held back by a lease",
        "acked",
        "attempt failed",
        "attempt delivered",
        "dead-lettered",
        "replayed",
        "purge bodies",
        "purge metadata",
        "purge up to a cut",
        "restart",
    ] {
        assert!(
            coverage.get(kind).is_some_and(|n| *n > 0),
            "the plan never got to {kind}: {coverage:?}"
        );
    }
}

/// One bug, put on purpose into an otherwise working engine.
#[derive(Debug, Clone, Copy)]
enum Bug {
    /// An acknowledgement is not written.
    AckDoesNotStick,
    /// Waiting deliveries are listed newest first.
    NewestFirst,
    /// A write loses its counts.
    CountsLost,
    /// The second write panics.
    SecondWritePanics,
    /// A message written without its body key (erased or purged) keeps the key it had.
    KeyOutlivesBody,
    /// None: the engine as it is, counting the messages it lists.
    None,
}

struct Broken {
    inner: SledEngine,
    bug: Bug,
    writes: std::sync::atomic::AtomicU64,
    /// Messages listed by [`Engine::messages`].
    listed: std::sync::atomic::AtomicU64,
}

impl Broken {
    fn new(dir: &Path, bug: Bug) -> Self {
        Broken {
            inner: open_sled(dir),
            bug,
            writes: Default::default(),
            listed: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl Engine for Broken {
    async fn state(&self) -> Result<EngineState, StoreError> {
        self.inner.state().await
    }
    async fn write(&self, mut batch: Batch) -> Result<(), StoreError> {
        match self.bug {
            Bug::AckDoesNotStick => batch
                .ops
                .retain(|op| !matches!(op, Op::PutDelivery { row, .. } if row.acked_at.is_some())),
            Bug::CountsLost => batch.counts.clear(),
            Bug::SecondWritePanics => {
                if self
                    .writes
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    == 1
                {
                    panic!("the engine's bug");
                }
            }
            Bug::KeyOutlivesBody => {
                for op in &mut batch.ops {
                    if let Op::PutMessage(m) = op
                        && m.key.is_none()
                    {
                        m.key = self.inner.message(&m.id).await?.and_then(|old| old.key);
                    }
                }
            }
            Bug::NewestFirst | Bug::None => {}
        }
        self.inner.write(batch).await
    }
    async fn message(&self, id: &Uuid) -> Result<Option<MessageRec>, StoreError> {
        self.inner.message(id).await
    }
    async fn messages(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let page = self.inner.messages(after, limit).await?;
        self.listed
            .fetch_add(page.len() as u64, std::sync::atomic::Ordering::SeqCst);
        Ok(page)
    }
    async fn idempotency(&self, sender: &str, key: &str) -> Result<Option<IdemRow>, StoreError> {
        self.inner.idempotency(sender, key).await
    }
    async fn case(&self, case: &str) -> Result<Vec<Uuid>, StoreError> {
        self.inner.case(case).await
    }
    async fn delivery(&self, recipient: &str, seq: u64) -> Result<Option<DeliveryRow>, StoreError> {
        self.inner.delivery(recipient, seq).await
    }
    async fn deliveries(
        &self,
        class: Class,
        recipient: Option<&str>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<Located>, StoreError> {
        let mut rows = self
            .inner
            .deliveries(class, recipient, after, limit)
            .await?;
        if let Bug::NewestFirst = self.bug {
            rows.reverse();
        }
        Ok(rows)
    }
    async fn audit(&self, from_seq: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.inner.audit(from_seq, limit).await
    }
    async fn audit_of_subject(&self, subject: &str) -> Result<Vec<Entry>, StoreError> {
        self.inner.audit_of_subject(subject).await
    }
    async fn lease(
        &self,
        recipient: &str,
        seqs: &[u64],
        holder: &str,
        period: std::time::Duration,
    ) -> Result<Vec<u64>, StoreError> {
        self.inner.lease(recipient, seqs, holder, period).await
    }
    async fn leased(&self, recipient: &str) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.leased(recipient).await
    }
    async fn release(
        &self,
        recipient: &str,
        seq: u64,
        holder: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.release(recipient, seq, holder).await
    }
    async fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.checkpoints().await
    }
    async fn signing_keys(&self) -> Result<Vec<Value>, StoreError> {
        self.inner.signing_keys().await
    }
    fn flush_stats(&self) -> FlushStats {
        self.inner.flush_stats()
    }
}

/// Retention reads the messages it may act on, not every message stored: a pass stops at the
/// first message received after its cut, and the next pass over bodies starts where the last one
/// had to keep a body.
#[tokio::test]
async fn retention_reads_the_messages_before_its_cut_and_not_every_message_stored() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Broken::new(dir.path(), Bug::None));
    let store = Store::open(engine.clone(), Default::default())
        .await
        .unwrap();
    // one message a second from t0, each delivered a second after it was received
    let t0 = 1_781_000_000;
    let n = 1_500;
    for i in 0..n {
        let id = Uuid::now_v7();
        let at = chrono::DateTime::from_timestamp(t0 + i, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let a = acceptance(
            id,
            "north",
            &format!("doc-{i}"),
            "sha",
            &format!("case-{i}"),
            &["alpha"],
            &at,
        );
        store.accept(a).await.unwrap();
        store.ack("alpha", &id, t0 + i + 1).await.unwrap();
    }
    let purge = async |now: i64| {
        engine.listed.store(0, SeqCst);
        let p = store.purge(now, 0, 365 * 100).await.unwrap();
        (p.bodies, engine.listed.load(SeqCst))
    };
    // bodies delivered before the cut go; each of the two passes (metadata, bodies) reads one
    // page of the engine's (256 messages), not 1,500
    let (bodies, listed) = purge(t0 + 100).await;
    assert_eq!(bodies, 99, "delivered at t0+1..t0+99");
    assert!(
        listed <= 512,
        "listed {listed} messages for a cut at the 100th"
    );
    // again at the same time: nothing more, and it starts where the last one stopped
    let (bodies, listed) = purge(t0 + 100).await;
    assert_eq!(bodies, 0);
    assert!(listed <= 512, "listed {listed} messages again");
    // further on, what is left before the new cut, from where the last pass stopped
    let (bodies, listed) = purge(t0 + 1_000).await;
    assert_eq!(bodies, 900);
    assert!(
        listed <= 900 + 512,
        "listed {listed} messages for 900 bodies"
    );
    // after a restart, the bodies' first pass reads from the oldest again
    store.close().await;
    let store = Store::open(engine.clone(), Default::default())
        .await
        .unwrap();
    engine.listed.store(0, SeqCst);
    let p = store.purge(t0 + n + 10, 0, 365 * 100).await.unwrap();
    assert_eq!(p.bodies, 501, "the rest: delivered at t0+1000..t0+1500");
    let listed = engine.listed.load(SeqCst);
    assert!(
        listed <= n as u64 + 256,
        "listed {listed}: every message once, and one page"
    );
}

async fn finds(bug: Bug) {
    let plan = Plan::from_env();
    let broken = move |dir: &Path| -> Opening {
        let engine: Arc<dyn Engine> = Arc::new(Broken::new(dir, bug));
        Box::pin(async move { engine })
    };
    match run(plan, Leases::Process, broken).await {
        Ok(_) => panic!("the suite passed an engine whose {bug:?}"),
        Err(e) => eprintln!("{bug:?} found: {e}"),
    }
}

#[tokio::test]
async fn the_suite_finds_an_ack_that_does_not_stick() {
    finds(Bug::AckDoesNotStick).await;
}

#[tokio::test]
async fn the_suite_finds_deliveries_out_of_order() {
    finds(Bug::NewestFirst).await;
}

#[tokio::test]
async fn the_suite_finds_counts_that_are_not_kept() {
    finds(Bug::CountsLost).await;
}

#[tokio::test]
async fn the_suite_finds_a_body_key_that_outlives_its_body() {
    finds(Bug::KeyOutlivesBody).await;
}

#[tokio::test]
async fn a_batch_that_panics_fails_its_changes_and_not_the_store() {
    use jxg_gateway::audit::{Event, Record};
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Broken::new(dir.path(), Bug::SecondWritePanics));
    let store = jxg_gateway::store::Store::open(engine, Default::default())
        .await
        .unwrap();
    let rec =
        |n: u32| vec![Record::new(Event::Consulted, "admin:auditor").detail(format!("read {n}"))];
    store.audit(rec(1)).await.unwrap();
    let failed = store.audit(rec(2)).await;
    assert!(matches!(&failed, Err(e) if e.is_transient()), "{failed:?}");
    // the writer goes on, from what the engine holds
    store.audit(rec(3)).await.unwrap();
    store.durable().await.unwrap();
    let entries = store.audit_entries(0, 10).await.unwrap();
    let details: Vec<_> = entries
        .iter()
        .map(|e| e.record.detail.clone().unwrap())
        .collect();
    assert_eq!(details, ["read 1", "read 3"]);
    assert!(
        store.verify_audit(&[]).await.unwrap().is_ok(),
        "the chain holds"
    );
}

/// The migrations up to the PostgreSQL engine's layout 1 of the audit log (a row per entry), as
/// refinery applied them to a database of that time.
mod pg_layout_1 {
    refinery::embed_migrations!("../gateway/store-postgres/migrations");
}

/// A database whose audit log is in layout 1 (a row per entry and one per entry and subject) is
/// in runs once the engine opens it: every entry reads back in order, from any place and by
/// subject, the chain goes on from its head and verifies, and the records are compressed with
/// lz4.
#[tokio::test]
async fn a_postgres_audit_log_of_a_row_per_entry_becomes_runs_when_the_engine_opens() {
    use jxg_gateway::audit::{Event, Head, Record};
    let db = Database::create("layout1").await;
    let (mut client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    pg_layout_1::migrations::runner()
        .set_target(refinery::Target::Version(2))
        .run_async(&mut client)
        .await
        .unwrap();
    let subject = |n: u32| format!("subject-{}", n % 3);
    let records: Vec<Record> = (0..10)
        .map(|n| {
            let mut r = Record::new(Event::Consulted, "admin:auditor").detail(format!("read {n}"));
            r.subjects = vec![subject(n)];
            r
        })
        .collect();
    let (entries, _) = Head::default().chain(records, "2026-12-01T10:00:00Z");
    for e in &entries {
        let seq = e.seq as i64;
        client
            .execute(
                "INSERT INTO jxg_audit (seq, entry) VALUES ($1, $2)",
                &[&seq, &serde_json::to_string(e).unwrap()],
            )
            .await
            .unwrap();
        for s in &e.record.subjects {
            client
                .execute(
                    "INSERT INTO jxg_audit_subjects (subject, seq) VALUES ($1, $2)",
                    &[s, &seq],
                )
                .await
                .unwrap();
        }
    }
    drop(client);
    let _ = conn.await;

    let engine = PgEngine::open(&pg_options(&db, "layout")).await.unwrap();
    assert_eq!(engine.audit(0, 100).await.unwrap(), entries);
    assert_eq!(engine.audit(4, 3).await.unwrap(), entries[3..6]);
    let of_one: Vec<Entry> = entries
        .iter()
        .filter(|e| e.record.subjects == [subject(1)])
        .cloned()
        .collect();
    assert_eq!(of_one.len(), 3);
    assert_eq!(engine.audit_of_subject(&subject(1)).await.unwrap(), of_one);
    let head = engine.state().await.unwrap().head;
    assert_eq!(head.next_seq, 11);
    assert_eq!(head.last_hash, entries[9].hash);

    // the writer goes on from there, in runs of its batches
    let engine = Arc::new(engine);
    let store = Store::open(engine.clone(), Default::default())
        .await
        .unwrap();
    let mut more = Record::new(Event::Consulted, "admin:auditor").detail("read again");
    more.subjects = vec![subject(1)];
    store.audit(vec![more.clone(), more]).await.unwrap();
    store.durable().await.unwrap();
    let all = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(all[..10], entries[..]);
    assert!(
        store.verify_audit(&[]).await.unwrap().is_ok(),
        "the chain holds"
    );
    store.close().await;

    // retention takes whole runs, and cuts the run that holds its last entry
    let next_seq = engine.state().await.unwrap().next_seq;
    for last in [5, 11] {
        engine
            .write(Batch {
                ops: vec![Op::RemoveAuditThrough(last)],
                next_seq,
                counts: BTreeMap::new(),
            })
            .await
            .unwrap();
    }
    let kept = engine.audit(0, 100).await.unwrap();
    assert_eq!(kept, all[11..], "entry 12 alone is kept");
    assert_eq!(engine.audit(12, 1).await.unwrap(), all[11..]);
    assert_eq!(
        engine.audit_of_subject(&subject(1)).await.unwrap(),
        all[11..]
    );
    assert_eq!(engine.state().await.unwrap().head.next_seq, 13);
    drop(engine);

    let layout = db
        .execute(
            "SELECT (SELECT count(*) FROM jxg_audit_runs), \
             (SELECT count(*) FROM information_schema.tables WHERE table_name = 'jxg_audit'), \
             (SELECT attcompression::text FROM pg_attribute \
              WHERE attrelid = 'jxg_messages'::regclass AND attname = 'record')",
        )
        .await;
    // of ten runs of one migrated entry and the writer's run, the writer's second entry
    assert_eq!(layout[0].get::<_, i64>(0), 1);
    assert_eq!(layout[0].get::<_, i64>(1), 0, "layout 1's table is gone");
    assert_eq!(
        layout[0].get::<_, String>(2),
        "l",
        "records compressed with lz4"
    );
}
