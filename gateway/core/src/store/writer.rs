//! The one writer. Request tasks prepare their acceptance in parallel (everything up to the
//! signed copies) and send it here; so does every other change (attempts, acks, replays, audit
//! entries, checkpoints, retention). The writer takes every command waiting (and, when a window
//! is set, the ones that arrive within it, up to a maximum), gives each acceptance its sequence
//! number, checks idempotency keys, chains every audit entry of the batch after the head, and
//! hands the batch to the engine as one write, which is durable when it returns. Only then is
//! any command of the batch answered. No request task takes a lock that orders the store: the
//! order is the writer's.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot, watch};
use uuid::Uuid;

use super::engine::*;
use super::{AcceptOutcome, Acceptance, AckOutcome, OutboxEntry, StoreError};
use crate::audit::{Event, Head, Record};

/// How batches are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitTuning {
    /// How long a batch waits after its first command for more (zero: write at once).
    pub window: Duration,
    /// The most commands one batch takes; later ones wait for the next.
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

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Cmd {
    /// An acceptance, with its record as sealed by the caller (numbered here).
    Accept(Box<Acceptance>, Box<MessageRec>, Reply<AcceptOutcome>),
    /// An attempt's result (or any change of a delivery's state), audited.
    Deliver(Box<OutboxEntry>, Reply<()>),
    Ack {
        recipient: String,
        id: Uuid,
        at: i64,
        /// With the outcome, the message's sequence number (whose lease the ack ends).
        reply: Reply<Option<(AckOutcome, u64)>>,
    },
    /// A delivery whose message record cannot be read, dead-lettered with why.
    Unreadable {
        recipient: String,
        seq: u64,
        why: String,
        reply: Reply<()>,
    },
    /// A new copy for a recipient, queued again, with its audit entries.
    Requeue(Box<OutboxEntry>, Vec<Record>, Reply<()>),
    /// Changes that touch no delivery, with their audit entries.
    Write(Vec<Op>, Vec<Record>, Reply<()>),
    /// A change of one message's record, decided on the record as it stands in the writer's
    /// order.
    Amend(Uuid, Amendment, Reply<super::Amended>),
}

/// Changes a message's record: the audit entries of the change, none where there is nothing to
/// change, `Err` where the change does not apply to the record.
pub type Amendment =
    Box<dyn FnOnce(&mut MessageRec) -> Result<Option<Vec<Record>>, super::DoesNotApply> + Send>;

impl Cmd {
    /// A change of nothing: it only has the writer read the engine's state.
    fn is_refresh(&self) -> bool {
        matches!(self, Cmd::Write(ops, audit, _) if ops.is_empty() && audit.is_empty())
    }

    /// Answers the command with `e`, undecided.
    fn refuse(self, e: StoreError) {
        match self {
            Cmd::Accept(_, _, r) => drop(r.send(Err(e))),
            Cmd::Deliver(_, r) | Cmd::Requeue(_, _, r) | Cmd::Write(_, _, r) => {
                drop(r.send(Err(e)))
            }
            Cmd::Ack { reply, .. } => drop(reply.send(Err(e))),
            Cmd::Unreadable { reply, .. } => drop(reply.send(Err(e))),
            Cmd::Amend(_, _, reply) => drop(reply.send(Err(e))),
        }
    }
}

/// What the writer shares with readers.
pub(super) struct Shared {
    pub head: Mutex<Head>,
    pub counts: Mutex<BTreeMap<String, Counts>>,
    /// `received_at` of each recipient's oldest waiting delivery.
    pub oldest: Mutex<BTreeMap<String, String>>,
    /// Commands sent and not yet answered.
    pub queued: AtomicUsize,
    /// Batches handed to the engine so far.
    pub started: AtomicU64,
    /// (batches finished, whether the last one was written).
    pub done: watch::Sender<(u64, bool)>,
    pub signals: Signals,
}

/// One wake-up per recipient: notified when that recipient's waiting entries change (an entry
/// added, released, delivered or acknowledged), so that a change for one recipient wakes only
/// the worker or the long polls of that recipient.
#[derive(Default)]
pub(super) struct Signals(Mutex<HashMap<String, Arc<Notify>>>);

impl Signals {
    pub fn of(&self, recipient: &str) -> Arc<Notify> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(recipient.to_string())
            .or_default()
            .clone()
    }

    pub(super) fn notify_all(&self) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for n in map.values() {
            n.notify_waiters();
        }
    }

    pub(super) fn notify(&self, recipients: &[String]) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for r in recipients {
            if let Some(n) = map.get(r) {
                n.notify_waiters();
            }
        }
    }
}

pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Cmd>,
    pub shared: Arc<Shared>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    pub(super) async fn start(
        engine: Arc<dyn Engine>,
        tuning: CommitTuning,
    ) -> Result<Self, StoreError> {
        let state = engine.state().await?;
        let mut oldest = BTreeMap::new();
        for (r, c) in &state.counts {
            if c.waiting > 0 {
                if let Some((_, _, _, row)) = engine
                    .deliveries(Class::Waiting, Some(r), None, 1)
                    .await?
                    .into_iter()
                    .next()
                {
                    oldest.insert(r.clone(), row.received_at);
                }
            }
        }
        let shared = Arc::new(Shared {
            head: Mutex::new(state.head.clone()),
            counts: Mutex::new(state.counts.clone()),
            oldest: Mutex::new(oldest),
            queued: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            done: watch::channel((0, true)).0,
            signals: Signals::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let mut run = Run {
            generation: engine.generation(),
            engine,
            shared: shared.clone(),
            head: state.head,
            next_seq: state.next_seq.max(1),
            counts: state.counts,
        };
        let thread = std::thread::Builder::new()
            .name("jxg-store-writer".into())
            .spawn(move || {
                // with I/O: an engine may make its connections from here (PostgreSQL's pool)
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the writer's runtime starts");
                rt.block_on(run.serve(rx, tuning));
            })
            .map_err(|e| StoreError::Unavailable(format!("the store writer: {e}")))?;
        Ok(Self { tx, shared, thread })
    }

    pub(super) fn send(&self, cmd: Cmd) {
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(cmd)) = self.tx.send(cmd) {
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            cmd.refuse(StoreError::Unavailable("the store is closed".into()));
        }
    }

    /// Answers what was sent, then stops; returns once the writer has let go of the engine.
    pub(super) fn close(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }

    /// Resolves once every batch handed to the engine before the call is durable.
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        let target = self.shared.started.load(Ordering::SeqCst);
        let mut rx = self.shared.done.subscribe();
        let seen = rx
            .wait_for(|(done, _)| *done >= target)
            .await
            .map_err(|_| StoreError::Unavailable("the store writer ended".into()))?;
        if seen.1 {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the last write to the store failed".into(),
            ))
        }
    }
}

/// A command's answer, sent once its batch is written.
enum Answer {
    Accept(Reply<AcceptOutcome>, AcceptOutcome),
    Unit(Reply<()>),
    Ack(Reply<Option<(AckOutcome, u64)>>, Option<(AckOutcome, u64)>),
    Amended(Reply<super::Amended>, super::Amended),
}

impl Answer {
    fn send(self, failed: Option<&StoreError>) {
        match (self, failed) {
            (Answer::Accept(r, o), None) => drop(r.send(Ok(o))),
            (Answer::Unit(r), None) => drop(r.send(Ok(()))),
            (Answer::Ack(r, o), None) => drop(r.send(Ok(o))),
            (Answer::Amended(r, o), None) => drop(r.send(Ok(o))),
            (Answer::Amended(r, _), Some(e)) => drop(r.send(Err(e.clone()))),
            (Answer::Accept(r, _), Some(e)) => drop(r.send(Err(e.clone()))),
            (Answer::Unit(r), Some(e)) => drop(r.send(Err(e.clone()))),
            (Answer::Ack(r, _), Some(e)) => drop(r.send(Err(e.clone()))),
        }
    }
}

struct Run {
    engine: Arc<dyn Engine>,
    /// The engine's generation whose state this writer holds.
    generation: u64,
    shared: Arc<Shared>,
    head: Head,
    next_seq: u64,
    counts: BTreeMap<String, Counts>,
}

/// One batch being formed: its changes and what it has already decided, so that commands of
/// the same batch see each other.
#[derive(Default)]
struct Forming {
    ops: Vec<Op>,
    audit: Vec<Record>,
    answers: Vec<Answer>,
    idem: HashMap<(String, String), (IdemRow, String)>,
    /// The stored rows of the batch's idempotency keys, read together before deciding.
    stored_idem: HashMap<(String, String), Option<IdemRow>>,
    /// Message records and delivery rows the batch's commands act on, as stored, read together
    /// before deciding; what the batch itself changed (`messages`, `rows`) comes first.
    stored_messages: HashMap<Uuid, Option<MessageRec>>,
    stored_rows: HashMap<(String, u64), Option<DeliveryRow>>,
    rows: HashMap<(String, u64), DeliveryRow>,
    messages: HashMap<Uuid, MessageRec>,
    counts: BTreeMap<String, Counts>,
    /// Recipients whose waiting deliveries changed.
    touched: Vec<String>,
    /// Of those, the recipients whose change was more than new deliveries joining the end of
    /// the waiting ones (one left them, or an earlier one came back), so that their oldest
    /// waiting delivery must be read again.
    reordered: Vec<String>,
}

impl Run {
    async fn serve(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>, tuning: CommitTuning) {
        let max = tuning.max_batch.max(1);
        while let Some(first) = rx.recv().await {
            let mut cmds = vec![first];
            while cmds.len() < max {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let deadline = Instant::now() + tuning.window;
            while cmds.len() < max {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(left, rx.recv()).await {
                    Ok(Some(c)) => cmds.push(c),
                    _ => break,
                }
            }
            let n = cmds.len();
            // a panic in a batch (an engine's bug) fails that batch's commands — their answers
            // are dropped, which their callers see as the store unavailable — and not the store:
            // the writer reads the engine's state again before the next batch
            let batch = std::panic::AssertUnwindSafe(self.batch(cmds));
            if futures_util::FutureExt::catch_unwind(batch).await.is_err() {
                tracing::error!("a store batch failed unexpectedly; the writer goes on");
                self.generation = u64::MAX;
                self.shared.done.send_modify(|(done, ok)| {
                    *done = self.shared.started.load(Ordering::SeqCst);
                    *ok = false;
                });
            }
            self.shared.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    async fn batch(&mut self, cmds: Vec<Cmd>) {
        let started = Instant::now();
        let generation = self.engine.generation();
        // a batch of nothing but refreshes (Store::refresh) has nothing to make durable: its
        // failure is not a failed write
        let changes = cmds.iter().any(|c| !c.is_refresh());
        let keys: Vec<(String, String)> = cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Accept(a, _, _) => Some((
                    a.message.sender.clone(),
                    a.message.source_document_id.clone(),
                )),
                _ => None,
            })
            .collect();
        // an engine several processes write gives the state as it stands in this batch's turn,
        // and the batch's idempotency keys with it; one opened again from disk (or after a
        // batch that failed unexpectedly) is read anew
        let mut stored_idem = None;
        let fresh = match self.engine.turn(&keys).await {
            Ok(Some(t)) => {
                stored_idem = Some(t.idempotency);
                Some(t.state)
            }
            Ok(None) if generation != self.generation => self.engine.state().await.ok(),
            Ok(None) => None,
            Err(e) => {
                let number = self.shared.started.fetch_add(1, Ordering::SeqCst) + 1;
                self.shared.done.send_replace((number, !changes));
                for c in cmds {
                    c.refuse(e.clone());
                }
                return;
            }
        };
        // state read anew may hold what this writer did not do: nothing it knew is kept
        let stale = fresh.is_some();
        if let Some(s) = fresh {
            self.head = s.head.clone();
            self.next_seq = s.next_seq.max(1);
            self.counts = s.counts.clone();
            *self.shared.head.lock().unwrap_or_else(|e| e.into_inner()) = s.head;
            *self.shared.counts.lock().unwrap_or_else(|e| e.into_inner()) = s.counts;
            self.generation = generation;
        }
        let mut f = Forming::default();
        // one read for every key (the turn's, where it read them); should it fail, each
        // acceptance reads its own
        let stored_idem = match stored_idem {
            Some(rows) => Ok(rows),
            None => self.engine.idempotency_of(&keys).await,
        };
        if let Ok(rows) = stored_idem {
            f.stored_idem = keys.into_iter().zip(rows).collect();
        }
        self.read_ahead(&cmds, &mut f).await;
        let mut next_seq = self.next_seq;
        let mut failed = None;
        for cmd in cmds {
            if let Err(e) = self.decide(cmd, &mut f, &mut next_seq).await {
                failed = Some(e);
            }
        }
        // a store that failed while deciding fails the whole batch: nothing of it is written
        let (entries, head) = self
            .head
            .chain(std::mem::take(&mut f.audit), &crate::audit::now());
        if !entries.is_empty() {
            f.ops.push(Op::Audit(entries));
        }
        let batch = Batch {
            ops: std::mem::take(&mut f.ops),
            next_seq,
            counts: f.counts.clone(),
        };
        // the recipients whose oldest waiting delivery the write may have changed, read with it
        let reread = self.to_reread(&f.touched, if stale { &f.touched } else { &f.reordered });
        let number = self.shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let result = match failed {
            Some(e) => {
                self.engine.abandon().await;
                Err(e)
            }
            None => self.engine.write_then_oldest(batch, &reread).await,
        };
        let (result, firsts) = match result {
            Ok(firsts) => (Ok(()), firsts),
            Err(e) => (Err(e), Vec::new()),
        };
        let ok = result.is_ok();
        if ok {
            let mut oldest = self.shared.oldest.lock().unwrap_or_else(|e| e.into_inner());
            for (r, first) in reread.into_iter().zip(firsts) {
                match first {
                    Some(row) => oldest.insert(r, row.received_at),
                    None => oldest.remove(&r),
                };
            }
            drop(oldest);
            self.head = head;
            self.next_seq = next_seq;
            for (r, c) in &f.counts {
                self.counts.insert(r.clone(), *c);
            }
            *self.shared.head.lock().unwrap_or_else(|e| e.into_inner()) = self.head.clone();
            self.shared
                .counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(f.counts.iter().map(|(r, c)| (r.clone(), *c)));
        }
        let m = crate::telemetry::metrics();
        m.flush_seconds.record(started.elapsed().as_secs_f64(), &[]);
        m.flush_batch.record(f.answers.len() as u64, &[]);
        self.shared.done.send_replace((number, ok || !changes));
        let err = result.err();
        for a in f.answers {
            a.send(err.as_ref());
        }
        if ok {
            self.shared.signals.notify(&f.touched);
        }
    }

    /// Reads what the batch's acknowledgements and attempt results act on — their messages,
    /// then their delivery rows — in two reads for the whole batch instead of one or two for
    /// each command. Should a read fail, each command reads its own.
    async fn read_ahead(&self, cmds: &[Cmd], f: &mut Forming) {
        let ids: Vec<Uuid> = cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Ack { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        if !ids.is_empty()
            && let Ok(found) = self.engine.messages_of(&ids).await
        {
            f.stored_messages = ids.into_iter().zip(found).collect();
        }
        let keys: Vec<(String, u64)> = cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Ack { recipient, id, .. } => {
                    let m = f.stored_messages.get(id)?.as_ref()?;
                    Some((recipient.clone(), m.seq))
                }
                Cmd::Deliver(e, _) => Some((e.recipient.clone(), e.seq)),
                _ => None,
            })
            .collect();
        if !keys.is_empty()
            && let Ok(found) = self.engine.deliveries_of(&keys).await
        {
            f.stored_rows = keys.into_iter().zip(found).collect();
        }
    }

    /// Of the recipients whose waiting deliveries a batch changed, those whose oldest must be
    /// read again: each of `reordered`, and any not known yet. Where only new deliveries joined
    /// the end of waiting ones already known, the oldest stays.
    fn to_reread(&self, touched: &[String], reordered: &[String]) -> Vec<String> {
        let oldest = self.shared.oldest.lock().unwrap_or_else(|e| e.into_inner());
        touched
            .iter()
            .filter(|r| !oldest.contains_key(*r) || reordered.contains(r))
            .cloned()
            .collect()
    }

    fn count(&self, f: &mut Forming, recipient: &str) -> Counts {
        *f.counts
            .entry(recipient.to_string())
            .or_insert_with(|| self.counts.get(recipient).copied().unwrap_or_default())
    }

    /// Moves `recipient`'s counts for a delivery going from `from` to `to`.
    fn moved(&self, f: &mut Forming, recipient: &str, from: Option<Class>, to: Option<Class>) {
        if from == to {
            return;
        }
        let mut c = self.count(f, recipient);
        match from {
            Some(Class::Waiting) => c.waiting = c.waiting.saturating_sub(1),
            Some(Class::Dead) => c.dead = c.dead.saturating_sub(1),
            _ => {}
        }
        match to {
            Some(Class::Waiting) => c.waiting += 1,
            Some(Class::Dead) => c.dead += 1,
            _ => {}
        }
        f.counts.insert(recipient.to_string(), c);
        if (from == Some(Class::Waiting) || to == Some(Class::Waiting))
            && !f.touched.iter().any(|t| t == recipient)
        {
            f.touched.push(recipient.to_string());
        }
        // a new delivery has the highest sequence number yet: it cannot be the oldest of
        // waiting ones that were there before it
        let joined_the_end = from.is_none() && to == Some(Class::Waiting);
        if (from == Some(Class::Waiting) || to == Some(Class::Waiting))
            && !joined_the_end
            && !f.reordered.iter().any(|t| t == recipient)
        {
            f.reordered.push(recipient.to_string());
        }
    }

    async fn row(
        &self,
        f: &Forming,
        recipient: &str,
        seq: u64,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let key = (recipient.to_string(), seq);
        match f
            .rows
            .get(&key)
            .or_else(|| f.stored_rows.get(&key)?.as_ref())
        {
            Some(r) => Ok(Some(r.clone())),
            None if f.stored_rows.contains_key(&key) => Ok(None),
            None => self.engine.delivery(recipient, seq).await,
        }
    }

    async fn message(&self, f: &Forming, id: &Uuid) -> Result<Option<MessageRec>, StoreError> {
        match f
            .messages
            .get(id)
            .or_else(|| f.stored_messages.get(id)?.as_ref())
        {
            Some(m) => Ok(Some(m.clone())),
            None if f.stored_messages.contains_key(id) => Ok(None),
            None => self.engine.message(id).await,
        }
    }

    fn put_row(
        &self,
        f: &mut Forming,
        recipient: &str,
        seq: u64,
        old: Option<Class>,
        row: DeliveryRow,
    ) {
        self.moved(f, recipient, old, Some(Class::of(row.state)));
        f.rows.insert((recipient.to_string(), seq), row.clone());
        f.ops.push(Op::PutDelivery {
            recipient: recipient.to_string(),
            seq,
            row,
            was: old,
        });
    }

    /// Decides one command into the forming batch. A record that cannot be read fails only the
    /// command that needed it (its reads come before its changes, so the batch is untouched);
    /// a store that is unavailable fails the whole batch.
    async fn decide(
        &self,
        cmd: Cmd,
        f: &mut Forming,
        next_seq: &mut u64,
    ) -> Result<(), StoreError> {
        match cmd {
            Cmd::Accept(a, rec, reply) => match self.accept(*a, *rec, f, next_seq).await {
                Ok(outcome) => f.answers.push(Answer::Accept(reply, outcome)),
                Err(e) => return fail(reply, e),
            },
            Cmd::Deliver(e, reply) => match self.deliver(f, &e).await {
                Ok(()) => f.answers.push(Answer::Unit(reply)),
                Err(e) => return fail(reply, e),
            },
            Cmd::Unreadable {
                recipient,
                seq,
                why,
                reply,
            } => match self.unreadable(f, &recipient, seq, why).await {
                Ok(()) => f.answers.push(Answer::Unit(reply)),
                Err(e) => return fail(reply, e),
            },
            Cmd::Ack {
                recipient,
                id,
                at,
                reply,
            } => match self.ack(f, &recipient, &id, at).await {
                Ok(o) => f.answers.push(Answer::Ack(reply, o)),
                Err(e) => return fail(reply, e),
            },
            Cmd::Requeue(e, audit, reply) => match self.requeue(f, &e, audit).await {
                Ok(()) => f.answers.push(Answer::Unit(reply)),
                Err(e) => return fail(reply, e),
            },
            Cmd::Write(ops, audit, reply) => match self.write(f, ops, audit).await {
                Ok(()) => f.answers.push(Answer::Unit(reply)),
                Err(e) => return fail(reply, e),
            },
            Cmd::Amend(id, amend, reply) => match self.amend(f, &id, amend).await {
                Ok(o) => f.answers.push(Answer::Amended(reply, o)),
                Err(e) => return fail(reply, e),
            },
        }
        Ok(())
    }

    async fn accept(
        &self,
        a: Acceptance,
        mut rec: MessageRec,
        f: &mut Forming,
        next_seq: &mut u64,
    ) -> Result<AcceptOutcome, StoreError> {
        let m = &a.message;
        let key = (m.sender.clone(), m.source_document_id.clone());
        let taken = match (f.idem.get(&key), f.stored_idem.get(&key)) {
            (Some((row, response)), _) => Some((row.clone(), Some(response.clone()))),
            (None, Some(stored)) => stored.clone().map(|row| (row, None)),
            (None, None) => self
                .engine
                .idempotency(&key.0, &key.1)
                .await?
                .map(|row| (row, None)),
        };
        if let Some((row, response)) = taken {
            if row.body_sha256 != m.body_sha256 {
                return Ok(AcceptOutcome::Conflict);
            }
            let response = match response {
                Some(r) => r,
                None => {
                    self.message(f, &row.message_id)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Corrupt("an idempotency key without its message".into())
                        })?
                        .response
                }
            };
            return Ok(AcceptOutcome::Duplicate(
                serde_json::from_str(&response).unwrap_or_default(),
            ));
        }
        // one correction or withdrawal per message, decided here where every node's writes are
        // ordered: two sent at once cannot both act on it
        let revision = a
            .acts_on
            .map(|o| (super::REVISION_KEYS.to_string(), o.to_string()));
        if let Some(k) = &revision {
            let acted = match f.idem.get(k) {
                Some((row, _)) => Some(row.clone()),
                None => self.engine.idempotency(&k.0, &k.1).await?,
            };
            if let Some(row) = acted {
                return Ok(AcceptOutcome::Acted(row.message_id));
            }
        }
        let seq = *next_seq;
        *next_seq += 1;
        let mut a = a;
        a.message.seq = seq;
        rec.seq = seq;
        for e in &mut a.entries {
            e.seq = seq;
        }
        let row = IdemRow {
            message_id: rec.id,
            body_sha256: rec.body_sha256.clone(),
        };
        if let Some(k) = revision {
            f.idem
                .insert(k.clone(), (row.clone(), rec.response.clone()));
            f.ops.push(Op::PutIdempotency {
                sender: k.0,
                key: k.1,
                row: row.clone(),
            });
        }
        f.idem
            .insert(key.clone(), (row.clone(), rec.response.clone()));
        f.ops.push(Op::PutIdempotency {
            sender: key.0,
            key: key.1,
            row,
        });
        f.ops.push(Op::PutCase {
            case: rec.correlation_id.clone(),
            seq,
            message_id: rec.id,
        });
        for e in &a.entries {
            self.put_row(f, &e.recipient, seq, None, super::delivery_row(e));
        }
        if let Some(o) = a.acts_on
            && let Some(m) = self.message(f, &o).await?
        {
            self.supersede(f, &m, rec.id).await?;
            if a.erase {
                self.erase(f, &m, rec.id).await?;
            }
        }
        // not kept in the batch's overlay: nothing in the same batch can ack or replay a message
        // before its acceptance is durable
        f.ops.push(Op::PutMessage(Box::new(rec)));
        f.audit.extend(a.audit);
        Ok(AcceptOutcome::Accepted)
    }

    /// The copies of message `o` that were never offered (queued, no attempt, no lease) are
    /// superseded by `by`, which replaced or withdrew it: the recipient gets only the latest.
    /// A copy offered meanwhile (an attempt in flight, an inbox lease taken) is left as it
    /// is: when it is delivered or acknowledged, that is what it records.
    async fn supersede(&self, f: &mut Forming, m: &MessageRec, by: Uuid) -> Result<(), StoreError> {
        for c in &m.copies {
            let Some(row) = self.row(f, &c.recipient, m.seq).await? else {
                continue;
            };
            if row.state != super::DeliveryState::Queued || row.attempts > 0 {
                continue;
            }
            let leased = self.engine.leased(&c.recipient).await?;
            if leased.iter().any(|(seq, _)| *seq == m.seq) {
                continue;
            }
            let why = format!("superseded by {by} before it was offered");
            self.set_superseded(f, &c.recipient, m.seq, row, why);
            f.audit.push(
                Record::new(Event::Decided, "gateway")
                    .message(m.id, &m.message_type, None)
                    .recipient(&c.recipient)
                    .subjects(&c.subjects)
                    .detail(format!(
                        "superseded by {by} before it was offered: not sent"
                    )),
            );
        }
        Ok(())
    }

    /// Erases message `o` at the withdrawal `by`: every body of it goes, and its key with them,
    /// so that no copy of its record the engine's files still hold can be read again. A copy
    /// not yet delivered has nothing left to send: it is superseded, whether or not it was
    /// offered (a copy already taken or in flight is the recipient's, and the withdrawal
    /// follows it).
    async fn erase(&self, f: &mut Forming, m: &MessageRec, by: Uuid) -> Result<(), StoreError> {
        for c in &m.copies {
            let Some(row) = self.row(f, &c.recipient, m.seq).await? else {
                continue;
            };
            if !row.state.is_final() {
                let why = format!("erased at withdrawal {by}: not sent");
                self.set_superseded(f, &c.recipient, m.seq, row, why);
            }
        }
        let erased = super::without_bodies(m);
        f.ops.push(Op::PutMessage(Box::new(erased.clone())));
        f.messages.insert(m.id, erased);
        f.audit.push(
            Record::new(Event::Erased, "gateway")
                .message(m.id, &m.message_type, None)
                .subjects(&m.subjects)
                .detail(format!(
                    "every body and its key, at withdrawal {by} for erasure"
                )),
        );
        Ok(())
    }

    /// Supersedes a delivery row: nothing of it is sent, and why is kept with it.
    fn set_superseded(
        &self,
        f: &mut Forming,
        recipient: &str,
        seq: u64,
        mut row: DeliveryRow,
        why: String,
    ) {
        let from = Some(Class::of(row.state));
        row.state = super::DeliveryState::Superseded;
        row.last_error = Some(why);
        row.next_attempt_at_ms = None;
        self.put_row(f, recipient, seq, from, row);
    }

    async fn deliver(&self, f: &mut Forming, e: &OutboxEntry) -> Result<(), StoreError> {
        let old = self.row(f, &e.recipient, e.seq).await?;
        // a delivery that is gone (purged) is not brought back; one superseded while an attempt
        // was in flight stays superseded unless that attempt delivered it
        if let Some(old) = old.filter(|o| {
            o.state != super::DeliveryState::Superseded
                || e.state == super::DeliveryState::Delivered
        }) {
            let from = Some(Class::of(old.state));
            self.put_row(f, &e.recipient, e.seq, from, super::delivery_row(e));
            f.audit.push(delivery_record(e));
        }
        Ok(())
    }

    /// Dead-letters a delivery whose message record cannot be read: it can never go out, and
    /// it must not hold back its recipient.
    async fn unreadable(
        &self,
        f: &mut Forming,
        recipient: &str,
        seq: u64,
        why: String,
    ) -> Result<(), StoreError> {
        let Some(mut row) = self.row(f, recipient, seq).await? else {
            return Ok(());
        };
        if row.state.is_final() {
            return Ok(());
        }
        let from = Some(Class::of(row.state));
        let id = row.message_id;
        row.state = super::DeliveryState::Dead;
        row.next_attempt_at_ms = None;
        row.last_error = Some(why.clone());
        self.put_row(f, recipient, seq, from, row);
        f.audit.push(
            Record::new(Event::DeadLettered, "gateway")
                .message(id, "unknown", None)
                .recipient(recipient)
                .detail(why),
        );
        Ok(())
    }

    async fn requeue(
        &self,
        f: &mut Forming,
        e: &OutboxEntry,
        audit: Vec<Record>,
    ) -> Result<(), StoreError> {
        let Some(mut m) = self.message(f, &e.message_id).await? else {
            return Err(StoreError::Corrupt(format!(
                "message {} is not stored",
                e.message_id
            )));
        };
        let old = self.row(f, &e.recipient, e.seq).await?;
        let copy = super::copy_rec(e, &e.content, m.key.as_ref());
        match m.copies.iter_mut().find(|c| c.recipient == e.recipient) {
            Some(c) => *c = copy,
            None => m.copies.push(copy),
        }
        let from = old.as_ref().map(|r| Class::of(r.state));
        self.put_row(f, &e.recipient, e.seq, from, super::delivery_row(e));
        f.ops.push(Op::PutMessage(Box::new(m.clone())));
        f.messages.insert(m.id, m);
        f.audit.extend(audit);
        Ok(())
    }

    async fn amend(
        &self,
        f: &mut Forming,
        id: &Uuid,
        amend: Amendment,
    ) -> Result<super::Amended, StoreError> {
        use super::Amended;
        let Some(mut m) = self.message(f, id).await? else {
            return Ok(Amended::NoSuchMessage);
        };
        let audit = match amend(&mut m) {
            Ok(Some(audit)) => audit,
            Ok(None) => return Ok(Amended::Unchanged),
            Err(super::DoesNotApply) => return Ok(Amended::Refused),
        };
        f.ops.push(Op::PutMessage(Box::new(m.clone())));
        f.messages.insert(m.id, m);
        f.audit.extend(audit);
        Ok(Amended::Changed)
    }

    async fn write(
        &self,
        f: &mut Forming,
        ops: Vec<Op>,
        audit: Vec<Record>,
    ) -> Result<(), StoreError> {
        // every read first: a row that cannot be read leaves the batch as it was
        let mut gone = Vec::new();
        for op in &ops {
            if let Op::RemoveMessage {
                seq, recipients, ..
            } = op
            {
                for r in recipients {
                    let old = self.row(f, r, *seq).await?;
                    gone.push((r.clone(), old.map(|o| Class::of(o.state))));
                }
            }
        }
        for (r, from) in gone {
            self.moved(f, &r, from, None);
        }
        f.ops.extend(ops);
        f.audit.extend(audit);
        Ok(())
    }

    async fn ack(
        &self,
        f: &mut Forming,
        recipient: &str,
        id: &Uuid,
        at: i64,
    ) -> Result<Option<(AckOutcome, u64)>, StoreError> {
        let Some(m) = self.message(f, id).await? else {
            return Ok(None);
        };
        let Some(copy) = m.copies.iter().find(|c| c.recipient == recipient) else {
            return Ok(None);
        };
        let Some(mut row) = self.row(f, recipient, m.seq).await? else {
            return Ok(None);
        };
        if row.acked_at.is_some() {
            return Ok(Some((AckOutcome::AlreadyAcked, m.seq)));
        }
        let from = Some(Class::of(row.state));
        row.acked_at = Some(at);
        row.delivered_at = Some(at);
        row.state = super::DeliveryState::Delivered;
        f.audit.push(
            Record::new(Event::Acked, recipient)
                .message(m.id, &m.message_type, None)
                .recipient(recipient)
                .subjects(&copy.subjects),
        );
        self.put_row(f, recipient, m.seq, from, row);
        Ok(Some((AckOutcome::Acked, m.seq)))
    }
}

/// Answers a command that failed while it was decided. A record that cannot be read fails that
/// command alone; anything else fails the batch.
fn fail<T>(reply: Reply<T>, e: StoreError) -> Result<(), StoreError> {
    drop(reply.send(Err(e.clone())));
    if e.is_transient() { Err(e) } else { Ok(()) }
}

/// The audit record a delivery state change makes.
fn delivery_record(e: &OutboxEntry) -> Record {
    use super::DeliveryState;
    let event = match e.state {
        DeliveryState::Delivered => Event::Delivered,
        DeliveryState::Dead => Event::DeadLettered,
        _ => Event::DeliveryFailed,
    };
    let mut r = Record::new(event, "gateway")
        .message(e.message_id, &e.message_type, None)
        .recipient(&e.recipient)
        .subjects(&e.subjects)
        .detail(format!("attempt {}", e.attempts));
    if let (Some(err), false) = (&e.last_error, event == Event::Delivered) {
        r = r.detail(format!("attempt {}: {err}", e.attempts));
    }
    r
}
