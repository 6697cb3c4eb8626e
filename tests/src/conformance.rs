//! The conformance suite of the Store seam: a model-based test that every engine passes. It
//! drives [`Store`] over the engine under test with random sequences of accept (new, duplicate,
//! conflicting), take (the pull inbox, with leases), ack, delivery attempts (retry, delivered,
//! dead), replay of a dead letter, retention (bodies, then metadata) and restart, and after
//! each step compares what the store says with an in-memory model of what it must say: outcomes,
//! the inbox's order (one entry per case, leases holding a case back), every message's delivery
//! states, the counts, and at the end an audit chain that verifies with one entry per audited
//! operation. The first difference is returned with the seed, the sequence and the step, so that
//! a failure can be replayed exactly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jxg_gateway::audit::{Event, Record};
use jxg_gateway::pipeline::{Meta, PreparedCopy};
use jxg_gateway::store::{
    AcceptOutcome, Acceptance, AckOutcome, DeliveryState, Engine, OutboxEntry, Store, StoredMessage,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

const RECIPIENTS: [&str; 3] = ["alpha", "beta", "gamma"];
const SENDERS: [&str; 2] = ["north", "south"];
/// Far in the future: every ended delivery is past any retention.
const LATER: i64 = 4_102_444_800; // 2100-01-01

/// How much to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub seed: u64,
    pub sequences: usize,
    pub steps: usize,
}

impl Plan {
    /// The fixed plan `make test` runs; `JXG_CONFORMANCE_SEED` replays another seed.
    pub fn from_env() -> Self {
        let seed = std::env::var("JXG_CONFORMANCE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x6a78_6732_0018);
        Self {
            seed,
            sequences: 24,
            steps: 250,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Delivered,
    Dead,
    /// Never offered when a message acting on its message was accepted.
    Superseded,
}

impl State {
    /// The model's state of a stored delivery state.
    fn of(s: DeliveryState) -> Self {
        match s {
            DeliveryState::Queued | DeliveryState::Retrying => State::Waiting,
            DeliveryState::Delivered => State::Delivered,
            DeliveryState::Dead => State::Dead,
            DeliveryState::Superseded => State::Superseded,
        }
    }
}

#[derive(Debug, Clone)]
struct Copy {
    state: State,
    acked: bool,
    attempts: u32,
}

#[derive(Debug, Clone)]
struct Msg {
    id: Uuid,
    sender: String,
    key: String,
    sha: String,
    case: String,
    copies: BTreeMap<String, Copy>,
    body: bool,
    removed: bool,
    received_at: String,
}

#[derive(Debug, Default)]
struct Model {
    /// In acceptance order.
    msgs: Vec<Msg>,
    idem: HashMap<(String, String), usize>,
    /// A message acted on (corrected or withdrawn) → the message that acted on it.
    acted: HashMap<Uuid, Uuid>,
    leased: HashSet<(String, Uuid)>,
    audit: u64,
}

impl Model {
    /// The oldest waiting copy of each case for `r`, in acceptance order; with `leases`, a case
    /// whose head is leased is held back whole.
    fn heads(&self, r: &str, leases: bool) -> Vec<Uuid> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for m in self.msgs.iter().filter(|m| !m.removed) {
            let Some(c) = m.copies.get(r) else { continue };
            if c.state != State::Waiting || !seen.insert(m.case.clone()) {
                continue;
            }
            if leases && self.leased.contains(&(r.to_string(), m.id)) {
                continue;
            }
            out.push(m.id);
        }
        out
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Msg)> {
        self.msgs.iter().enumerate().filter(|(_, m)| !m.removed)
    }
}

/// How many steps of each kind changed something, over a whole run: a plan that never got to
/// replay a dead letter, say, would prove nothing about replays.
pub type Coverage = BTreeMap<&'static str, usize>;

/// Runs `plan` against the engine `open` makes on a folder (called again on the same folder
/// for each restart). `Err` names the first difference from the model.
/// An engine being opened for the folder a sequence runs in (the same folder when it opens the
/// engine again after a restart: the engine must find what it wrote there, or in what the folder
/// names, such as a database of its own).
pub type Opening = futures_util::future::BoxFuture<'static, Arc<dyn Engine>>;

/// Where an engine keeps its leases, which says what a restart does to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leases {
    /// In the process (one writer): a restart offers every waiting entry again.
    Process,
    /// Where every process sharing the store sees them: they outlive a restart.
    Shared,
}

///
/// The sequences run [`AT_ONCE`] at a time, each on a folder and an engine of its own: an engine
/// mostly waits (for its disk's flush or its server's answer), so one at a time would leave the
/// cores idle.
pub async fn run<F>(plan: Plan, leases: Leases, open: F) -> Result<Coverage, String>
where
    F: Fn(&Path) -> Opening,
{
    use futures_util::{StreamExt, TryStreamExt};
    let open = &open;
    futures_util::stream::iter(0..plan.sequences)
        .map(|n| async move {
            let seed = plan.seed.wrapping_add(n as u64);
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let mut coverage = Coverage::new();
            sequence(seed, plan.steps, dir.path(), leases, open, &mut coverage)
                .await
                .map_err(|e| format!("seed {} (sequence {n}): {e}", plan.seed))?;
            Ok::<_, String>(coverage)
        })
        .buffer_unordered(AT_ONCE)
        .try_fold(Coverage::new(), |mut all, one| async move {
            for (kind, n) in one {
                *all.entry(kind).or_default() += n;
            }
            Ok(all)
        })
        .await
}

/// How many of a plan's sequences run at once.
pub const AT_ONCE: usize = 4;

fn entry(id: Uuid, r: &str, case: &str, body: &[u8], received_at: &str) -> OutboxEntry {
    PreparedCopy {
        bytes: body.to_vec(),
        format: "canonical".into(),
        media_type: "application/json".into(),
        signature: format!("sig-{id}-{r}"),
        alterations: vec![],
        removed: vec![],
        subjects: vec![format!("subject-{case}")],
        permitted_by: vec![],
    }
    .entry(
        &Meta {
            message_id: id,
            seq: 0,
            message_type: "offence.reported",
            correlation_id: case,
            received_at,
            traceparent: None,
        },
        r,
    )
}

/// The acceptance of message `id` as the model makes it: its body names it, and one subject
/// per case.
pub fn acceptance(
    id: Uuid,
    sender: &str,
    key: &str,
    sha: &str,
    case: &str,
    recipients: &[&str],
    received_at: &str,
) -> Acceptance {
    let body = format!("body of {id}").into_bytes();
    Acceptance {
        message: StoredMessage {
            id,
            seq: 0,
            sender: sender.to_string(),
            message_type: "offence.reported".into(),
            source_document_id: key.to_string(),
            received_at: received_at.to_string(),
            correlation_id: case.to_string(),
            body_sha256: sha.to_string(),
            response: json!({"id": id.to_string()}),
            canonical: String::from_utf8_lossy(&body).into_owned(),
            subjects: vec![format!("subject-{case}")],
            skipped: vec![],
            traceparent: None,
            sender_signature: None,
            policy_digest: "digest".into(),
        },
        acts_on: None,
        erase: false,
        entries: recipients
            .iter()
            .map(|r| entry(id, r, case, &body, received_at))
            .collect(),
        audit: vec![
            Record::new(Event::Received, sender)
                .message(id, "offence.reported", None)
                .subjects(&[format!("subject-{case}")]),
        ],
    }
}

async fn sequence<F>(
    seed: u64,
    steps: usize,
    dir: &Path,
    leases: Leases,
    open: &F,
    coverage: &mut Coverage,
) -> Result<(), String>
where
    F: Fn(&Path) -> Opening,
{
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let opened = |engine| async move {
        Store::open(engine, Default::default())
            .await
            .map_err(|e| format!("open: {e}"))
    };
    let mut store = opened(open(dir).await).await?;
    let bad = |step: usize, op: &str, what: String| format!("step {step} ({op}): {what}");
    for step in 0..steps {
        let roll = rng.random_range(0..100);
        let op = match roll {
            0..35 => "accept",
            35..50 => "take",
            50..62 => "ack",
            62..80 => "attempt",
            80..86 => "replay",
            86..90 => "purge bodies",
            90..94 => "purge metadata",
            _ => "restart",
        };
        match op {
            "accept" => {
                let sender = SENDERS[rng.random_range(0..2)].to_string();
                let key = format!("doc-{}", rng.random_range(0..14));
                let sha = ["same", "other"][usize::from(rng.random_range(0..10) == 0)].to_string();
                let case = format!("case-{}", rng.random_range(0..6));
                let mut recipients: Vec<&str> = RECIPIENTS
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.6))
                    .collect();
                if recipients.is_empty() {
                    recipients.push(RECIPIENTS[rng.random_range(0..3)]);
                }
                let id = Uuid::now_v7();
                // each its own time, in acceptance order: the oldest waiting one can be told
                let t = 12 * 3600 + 31 * 60 + model.msgs.len();
                let received_at = format!(
                    "2026-06-{:02}T{:02}:{:02}:{:02}Z",
                    15 + t / 86_400,
                    t / 3600 % 24,
                    t / 60 % 60,
                    t % 60
                );
                let mut a = acceptance(id, &sender, &key, &sha, &case, &recipients, &received_at);
                // a fifth act on an earlier message (perhaps one acted on, or purged, already)
                let acts_on = match pick(&mut rng, model.msgs.len()) {
                    Some(i) if rng.random_bool(0.2) => Some(model.msgs[i].id),
                    _ => None,
                };
                a.acts_on = acts_on;
                // some of them withdrawals for erasure
                a.erase = acts_on.is_some() && rng.random_bool(0.3);
                let erase = a.erase;
                let got = store
                    .accept(a)
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?;
                let k = (sender.clone(), key.clone());
                let acted = acts_on.and_then(|o| model.acted.get(&o).copied());
                match (model.idem.get(&k).map(|i| &model.msgs[*i]), got) {
                    (None, AcceptOutcome::Acted(by)) if acted == Some(by) => {
                        *coverage.entry("acted on already").or_default() += 1;
                    }
                    (None, AcceptOutcome::Accepted) if acted.is_none() => {
                        if let Some(o) = acts_on {
                            model.acted.insert(o, id);
                            *coverage.entry("acts on").or_default() += 1;
                            // its copies never offered are superseded
                            let leased = &model.leased;
                            if let Some(m) = model.msgs.iter_mut().find(|m| m.id == o && !m.removed)
                            {
                                for (r, c) in m.copies.iter_mut() {
                                    let offered =
                                        c.attempts > 0 || leased.contains(&(r.clone(), o));
                                    if c.state == State::Waiting && !offered {
                                        c.state = State::Superseded;
                                        model.audit += 1;
                                        *coverage.entry("superseded").or_default() += 1;
                                    }
                                }
                                // erased: no body, no key, nothing left to send, offered or not
                                if erase {
                                    m.body = false;
                                    for c in m.copies.values_mut() {
                                        if c.state == State::Waiting {
                                            c.state = State::Superseded;
                                        }
                                    }
                                    model.audit += 1;
                                    *coverage.entry("erased").or_default() += 1;
                                }
                            }
                        }
                        model.idem.insert(k, model.msgs.len());
                        model.msgs.push(Msg {
                            received_at,
                            id,
                            sender,
                            key,
                            sha,
                            case,
                            copies: recipients
                                .iter()
                                .map(|r| {
                                    (
                                        r.to_string(),
                                        Copy {
                                            state: State::Waiting,
                                            acked: false,
                                            attempts: 0,
                                        },
                                    )
                                })
                                .collect(),
                            body: true,
                            removed: false,
                        });
                        model.audit += 1;
                        *coverage.entry("accepted").or_default() += 1;
                    }
                    (Some(first), AcceptOutcome::Duplicate(v)) if first.sha == sha => {
                        if v["id"] != first.id.to_string().as_str() {
                            return Err(bad(step, op, format!("duplicate answered {v}")));
                        }
                        *coverage.entry("duplicate").or_default() += 1;
                    }
                    (Some(first), AcceptOutcome::Conflict) if first.sha != sha => {
                        *coverage.entry("conflict").or_default() += 1;
                    }
                    (first, got) => {
                        return Err(bad(
                            step,
                            op,
                            format!("model {:?}, store {got:?}", first.map(|m| m.id)),
                        ));
                    }
                }
            }
            "take" => {
                let r = RECIPIENTS[rng.random_range(0..3)];
                let limit = rng.random_range(1..5);
                let want: Vec<Uuid> = model.heads(r, true).into_iter().take(limit).collect();
                let got: Vec<Uuid> = store
                    .take_inbox(r, limit, Duration::from_secs(3600))
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?
                    .iter()
                    .map(|e| e.message_id)
                    .collect();
                if got != want {
                    return Err(bad(step, op, format!("{r}: took {got:?}, model {want:?}")));
                }
                if want.len() < model.heads(r, false).len() {
                    *coverage.entry("take held back by a lease").or_default() += 1;
                }
                for id in got {
                    model.leased.insert((r.to_string(), id));
                    *coverage.entry("taken").or_default() += 1;
                }
            }
            "ack" => {
                let r = RECIPIENTS[rng.random_range(0..3)];
                let Some(i) = pick(&mut rng, model.msgs.len()) else {
                    continue;
                };
                let id = model.msgs[i].id;
                let got = store
                    .ack(r, &id, LATER - 1)
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?;
                let m = &mut model.msgs[i];
                let want = match m.copies.get_mut(r) {
                    _ if m.removed => None,
                    None => None,
                    Some(c) if c.acked => Some(AckOutcome::AlreadyAcked),
                    Some(c) => {
                        c.acked = true;
                        c.state = State::Delivered;
                        model.audit += 1;
                        model.leased.remove(&(r.to_string(), id));
                        *coverage.entry("acked").or_default() += 1;
                        Some(AckOutcome::Acked)
                    }
                };
                if got != want {
                    return Err(bad(step, op, format!("{r} {id}: {got:?}, model {want:?}")));
                }
            }
            "attempt" => {
                let r = RECIPIENTS[rng.random_range(0..3)];
                let want = model.heads(r, false);
                // every head is due at the end of time
                let (heads, _) = store
                    .due_heads(r, i64::MAX, 1000, &Default::default())
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?;
                let got: Vec<Uuid> = heads.iter().map(|(_, row)| row.message_id).collect();
                if got != want {
                    return Err(bad(step, op, format!("{r}: heads {got:?}, model {want:?}")));
                }
                let Some(k) = pick(&mut rng, heads.len()) else {
                    continue;
                };
                let Some(mut e) = store
                    .entry(r, &heads[k].1)
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?
                else {
                    return Err(bad(step, op, format!("{r}: a head without its entry")));
                };
                let outcome =
                    [State::Waiting, State::Delivered, State::Dead][rng.random_range(0..3)];
                e.attempts += 1;
                e.state = match outcome {
                    State::Waiting => DeliveryState::Retrying,
                    State::Delivered => DeliveryState::Delivered,
                    State::Dead | State::Superseded => DeliveryState::Dead,
                };
                e.last_error = (outcome != State::Delivered).then(|| "HTTP 500".into());
                e.delivered_at = (outcome == State::Delivered).then_some(LATER - 1);
                store
                    .record_delivery(&e)
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?;
                let m = model
                    .msgs
                    .iter_mut()
                    .find(|m| m.id == e.message_id)
                    .unwrap();
                let c = m.copies.get_mut(r).unwrap();
                c.state = outcome;
                c.attempts += 1;
                model.audit += 1;
                *coverage
                    .entry(match outcome {
                        State::Waiting => "attempt failed",
                        State::Delivered => "attempt delivered",
                        State::Dead | State::Superseded => "dead-lettered",
                    })
                    .or_default() += 1;
            }
            "replay" => {
                let dead: Vec<(usize, String)> = model
                    .live()
                    .flat_map(|(i, m)| {
                        m.copies
                            .iter()
                            .filter(|(_, c)| c.state == State::Dead)
                            .map(move |(r, _)| (i, r.clone()))
                    })
                    .collect();
                let Some(k) = pick(&mut rng, dead.len()) else {
                    continue;
                };
                let (i, r) = &dead[k];
                let id = model.msgs[*i].id;
                let old = store
                    .deliveries(&id)
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?
                    .into_iter()
                    .find(|e| &e.recipient == r)
                    .ok_or_else(|| bad(step, op, format!("no delivery of {id} to {r}")))?;
                let again = OutboxEntry {
                    state: DeliveryState::Queued,
                    attempts: 0,
                    last_error: None,
                    content: format!("replayed {id}").into_bytes(),
                    ..old
                };
                store
                    .requeue(
                        &again,
                        vec![Record::new(Event::Replayed, "admin:operator").message(
                            id,
                            "offence.reported",
                            None,
                        )],
                    )
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?;
                let c = model.msgs[*i].copies.get_mut(r).unwrap();
                *c = Copy {
                    state: State::Waiting,
                    acked: false,
                    attempts: 0,
                };
                model.leased.remove(&(r.clone(), id));
                model.audit += 1;
                *coverage.entry("replayed").or_default() += 1;
            }
            "purge bodies" | "purge metadata" => {
                let metadata = op == "purge metadata";
                let audit_days = if metadata { 0 } else { 365 * 300 };
                // after everything, or at the time a message was received: retention must stop
                // there and still purge everything before it
                let at = match pick(&mut rng, model.msgs.len()) {
                    Some(i) if rng.random_bool(0.5) => seconds(&model.msgs[i].received_at),
                    _ => LATER,
                };
                let got = store
                    .purge(at, 0, audit_days)
                    .await
                    .map_err(|e| bad(step, op, e.to_string()))?;
                let mut n = 0;
                for m in model.msgs.iter_mut().filter(|m| !m.removed) {
                    let ended = m.copies.values().all(|c| c.state != State::Waiting);
                    let received = seconds(&m.received_at);
                    if !ended || received >= at {
                        continue;
                    }
                    // a delivery or an ack in this model happens at LATER - 1
                    let delivered = m
                        .copies
                        .values()
                        .any(|c| c.acked || c.state == State::Delivered);
                    let last = if delivered { LATER - 1 } else { received };
                    if metadata {
                        m.removed = true;
                        model.idem.remove(&(m.sender.clone(), m.key.clone()));
                        // what acted on it goes with it
                        model.acted.remove(&m.id);
                        n += 1;
                    } else if m.body && last < at {
                        m.body = false;
                        n += 1;
                    }
                }
                model.audit += n as u64;
                *coverage.entry(op).or_default() += n;
                if at < LATER {
                    *coverage.entry("purge up to a cut").or_default() += 1;
                }
                let count = if metadata { got.messages } else { got.bodies };
                if count != n {
                    return Err(bad(
                        step,
                        op,
                        format!("purged {count} up to {at}, model {n}"),
                    ));
                }
            }
            _ => {
                store.close().await;
                store = opened(open(dir).await).await?;
                if leases == Leases::Process {
                    // a restart offers every waiting entry again
                    model.leased.clear();
                }
                *coverage.entry("restart").or_default() += 1;
            }
        }
        check(&store, &model)
            .await
            .map_err(|e| bad(step, op, format!("after it, {e}")))?;
    }
    let report = store
        .verify_audit(&[])
        .await
        .map_err(|e| e.to_string())?
        .map_err(|bad| format!("the audit chain does not verify: {bad}"))?;
    if report.entries != model.audit {
        return Err(format!(
            "the audit log holds {} entries, the model {}",
            report.entries, model.audit
        ));
    }
    store.close().await;
    Ok(())
}

/// Unix seconds of an RFC 3339 time of the model's.
fn seconds(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .expect("the model's times are RFC 3339")
        .timestamp()
}

fn pick(rng: &mut StdRng, n: usize) -> Option<usize> {
    (n > 0).then(|| rng.random_range(0..n))
}

/// What the store says about every message, and its counts, against the model.
async fn check(store: &Store, model: &Model) -> Result<(), String> {
    let counts = store.counts();
    for r in RECIPIENTS {
        let c = counts.get(r).copied().unwrap_or_default();
        let waiting = model
            .live()
            .filter(|(_, m)| m.copies.get(r).is_some_and(|c| c.state == State::Waiting))
            .count() as u64;
        let dead = model
            .live()
            .filter(|(_, m)| m.copies.get(r).is_some_and(|c| c.state == State::Dead))
            .count() as u64;
        if (c.waiting, c.dead) != (waiting, dead) {
            return Err(format!(
                "{r} counts waiting {} dead {}, model {waiting} {dead}",
                c.waiting, c.dead
            ));
        }
        let (depth, oldest) = store.outbox_depth(r);
        let first = model
            .live()
            .find(|(_, m)| m.copies.get(r).is_some_and(|c| c.state == State::Waiting))
            .map(|(_, m)| m.received_at.clone());
        if depth as u64 != waiting || oldest != first {
            return Err(format!(
                "{r} outbox depth {depth}, oldest waiting {oldest:?}; model {waiting}, {first:?}"
            ));
        }
    }
    // every record as the engine keeps it, in one listing (one round trip for an engine with
    // round trips)
    let records: HashMap<Uuid, jxg_gateway::store::MessageRec> = store
        .engine()
        .messages(None, usize::MAX)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| (r.id, r))
        .collect();
    for m in &model.msgs {
        let stored = store.message(&m.id).await.map_err(|e| e.to_string())?;
        match (&stored, m.removed) {
            (None, true) => continue,
            (Some(s), false) if s.canonical.is_empty() != m.body => {}
            (s, removed) => {
                return Err(format!(
                    "message {}: stored {:?} (body {:?}), model removed {removed} body {}",
                    m.id,
                    s.is_some(),
                    s.as_ref().map(|s| !s.canonical.is_empty()),
                    m.body
                ));
            }
        }
        // the bodies are sealed under a key of their own, which goes with them
        let want_body = format!("body of {}", m.id);
        if let Some(s) = &stored
            && m.body
            && s.canonical != want_body
        {
            return Err(format!(
                "message {}: its body reads {:?}",
                m.id, s.canonical
            ));
        }
        let rec = records
            .get(&m.id)
            .ok_or_else(|| format!("message {}: not listed", m.id))?;
        if rec.key.is_some() != m.body {
            return Err(format!(
                "message {}: key held {}, model body {}",
                m.id,
                rec.key.is_some(),
                m.body
            ));
        }
        let plain = want_body.as_bytes();
        let holds = |b: &[u8]| b.windows(plain.len()).any(|w| w == plain);
        if holds(&rec.canonical) || rec.copies.iter().any(|c| holds(&c.content)) {
            return Err(format!("message {}: a body stored unsealed", m.id));
        }
        let deliveries = store.deliveries(&m.id).await.map_err(|e| e.to_string())?;
        let replayed = format!("replayed {}", m.id);
        if m.body
            && let Some(e) = deliveries
                .iter()
                .find(|e| e.content != plain && e.content != replayed.as_bytes())
        {
            return Err(format!(
                "message {}: {}'s copy reads {:?}",
                m.id,
                e.recipient,
                String::from_utf8_lossy(&e.content)
            ));
        }
        let got: BTreeMap<String, (State, bool)> = deliveries
            .iter()
            .map(|e| {
                (
                    e.recipient.clone(),
                    (State::of(e.state), e.acked_at.is_some()),
                )
            })
            .collect();
        let want: BTreeMap<String, (State, bool)> = m
            .copies
            .iter()
            .map(|(r, c)| (r.clone(), (c.state, c.acked)))
            .collect();
        if got != want {
            return Err(format!(
                "message {}: deliveries {got:?}, model {want:?}",
                m.id
            ));
        }
        let found = store
            .idempotency(&m.sender, &m.key)
            .await
            .map_err(|e| e.to_string())?;
        if found.as_ref().map(|(r, _)| r.message_id) != Some(m.id) {
            return Err(format!(
                "message {}: its idempotency key names {found:?}",
                m.id
            ));
        }
    }
    batched_reads(store.engine().as_ref(), model, &records).await
}

/// The reads of many at once that the writer decides a batch on: every message record as the
/// listing has it (none for one removed), and every recipient's delivery row as the model says.
async fn batched_reads(
    engine: &dyn Engine,
    model: &Model,
    records: &HashMap<Uuid, jxg_gateway::store::MessageRec>,
) -> Result<(), String> {
    let ids: Vec<Uuid> = model.msgs.iter().map(|m| m.id).collect();
    let found = engine.messages_of(&ids).await.map_err(|e| e.to_string())?;
    if found.len() != ids.len() {
        return Err(format!(
            "messages_of: {} for {} ids",
            found.len(),
            ids.len()
        ));
    }
    let mut keys = Vec::new();
    let mut want = Vec::new();
    for (m, got) in model.msgs.iter().zip(&found) {
        if got.as_ref() != records.get(&m.id) {
            return Err(format!(
                "message {}: read with others {:?}, listed {:?}",
                m.id,
                got.as_ref().map(|r| r.seq),
                records.get(&m.id).map(|r| r.seq)
            ));
        }
        let Some(rec) = got else { continue };
        for r in RECIPIENTS {
            keys.push((r.to_string(), rec.seq));
            want.push(m.copies.get(r).map(|c| (c.state, c.acked)));
        }
    }
    let rows = engine
        .deliveries_of(&keys)
        .await
        .map_err(|e| e.to_string())?;
    if rows.len() != keys.len() {
        return Err(format!(
            "deliveries_of: {} for {} keys",
            rows.len(),
            keys.len()
        ));
    }
    for ((key, row), want) in keys.iter().zip(&rows).zip(&want) {
        let got = row
            .as_ref()
            .map(|row| (State::of(row.state), row.acked_at.is_some()));
        if got != *want {
            return Err(format!(
                "delivery row {key:?} read with others: {got:?}, model {want:?}"
            ));
        }
    }
    Ok(())
}

/// The leases of an engine: one holder at a time per entry, renewed by its holder, ended by
/// its holder or by anyone (an ack), and free once expired.
pub async fn leases_hold(engine: &dyn Engine) -> Result<(), String> {
    let e = |e: jxg_gateway::store::StoreError| e.to_string();
    let long = Duration::from_secs(3600);
    let got = engine
        .lease("alpha", &[1, 2], "node-a", long)
        .await
        .map_err(e)?;
    if got != [1, 2] {
        return Err(format!("node-a leased {got:?} of [1, 2]"));
    }
    let got = engine
        .lease("alpha", &[2, 3], "node-b", long)
        .await
        .map_err(e)?;
    if got != [3] {
        return Err(format!(
            "node-b leased {got:?} of [2, 3] with 2 held by node-a"
        ));
    }
    let got = engine
        .lease("beta", &[2], "node-b", long)
        .await
        .map_err(e)?;
    if got != [2] {
        return Err(format!(
            "a lease of another recipient's entry held back: {got:?}"
        ));
    }
    let got = engine
        .lease("alpha", &[1], "node-a", long)
        .await
        .map_err(e)?;
    if got != [1] {
        return Err(format!("node-a could not renew its own lease: {got:?}"));
    }
    let held = engine.leased("alpha").await.map_err(e)?;
    let want = vec![
        (1, "node-a".to_string()),
        (2, "node-a".to_string()),
        (3, "node-b".to_string()),
    ];
    if held != want {
        return Err(format!("leased {held:?}, want {want:?}"));
    }
    // another holder cannot end a lease; its holder, or anyone ending it whoever holds it, can
    engine
        .release("alpha", 1, Some("node-b"))
        .await
        .map_err(e)?;
    engine
        .release("alpha", 2, Some("node-a"))
        .await
        .map_err(e)?;
    engine.release("alpha", 3, None).await.map_err(e)?;
    let held = engine.leased("alpha").await.map_err(e)?;
    if held != [(1, "node-a".to_string())] {
        return Err(format!("after the releases, leased {held:?}"));
    }
    // an expired lease is free for anyone
    let got = engine
        .lease("gamma", &[7], "node-a", Duration::from_millis(50))
        .await
        .map_err(e)?;
    if got != [7] {
        return Err(format!("node-a leased {got:?} of [7]"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    if !engine.leased("gamma").await.map_err(e)?.is_empty() {
        return Err("an expired lease is still listed".into());
    }
    let got = engine
        .lease("gamma", &[7], "node-b", long)
        .await
        .map_err(e)?;
    if got != [7] {
        return Err(format!("node-b could not take an expired lease: {got:?}"));
    }
    Ok(())
}
