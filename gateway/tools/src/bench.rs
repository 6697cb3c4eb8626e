//! `jxg-tools bench`: a load generator that measures the gateway against the machine's own limit for
//! the same work, in one run.
//!
//! It makes a gateway of its own (the configuration given, with its listeners on free ports, its
//! store in a temporary folder, every authority pulling and no rate limit) and then, one after
//! another so that nothing else competes for the cores:
//!
//! 1. **S**: ES256 detached signatures per second with the gateway's signing key, on every core;
//! 2. **R_http**: the same listener stack (actix-web, rustls, mutual TLS, the same client and
//!    connections, the same documents) answering every request with a trivial 202, served by
//!    `jxg-tools bench-baseline` in a process of its own as the gateway is;
//! 3. for each workload, the real binary (`jxg serve`) flat out, and then at a fixed rate of half
//!    that, with latency measured from each request's intended start (corrected for coordinated
//!    omission); the limit is `L = 1 / (1/R_http + k/S)` with `k` the signatures one message takes
//!    (its receipt and one per recipient);
//! 4. a consumer draining the pull inbox the police workload filled, against the ingest rate;
//! 5. with `--backlog N`: N police reports written by the gateway's own pipeline before it starts,
//!    then its start-up time, resident memory holding them, and a consumer draining them.
//!
//! Every request counts: any answer other than 202 (200 for takes and acknowledgements) is an
//! error, listed by status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use jxg_gateway::config::Config;
use jxg_tests::Gateway;

/// A kind of submission the bench drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// The police's report (`anmeldelse-1.json`) over REST.
    Police,
    /// The courts' verdict (`dom-1-latin1.xml`, ISO-8859-1) over REST.
    Court,
    /// The prison service's admission (`custody.admitted.json`), canonical.
    Canonical,
}

/// What `jxg-tools bench` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration whose certificates, keys, policies and authorities the bench uses.
    pub config: PathBuf,
    pub samples: PathBuf,
    /// Connections (each its own TLS session with the sender's certificate).
    pub connections: usize,
    /// Length of each measurement.
    pub seconds: f64,
    pub workloads: Vec<Workload>,
    /// Police reports written before the gateway starts (0: none).
    pub backlog: u64,
    /// Where a filled backlog store is kept between runs.
    pub backlog_cache: Option<PathBuf>,
    /// A PostgreSQL server to measure the police workload on as well (a database of its own).
    pub postgres: Option<String>,
    /// Also write the results as JSON here.
    pub report: Option<PathBuf>,
}

/// One workload's documents: a sample with the values that must differ per message replaced.
struct Documents {
    workload: Workload,
    sender: &'static str,
    path: &'static str,
    content_type: &'static str,
    template: Vec<u8>,
    swaps: Vec<Swap>,
}

/// A value of the sample, and what replaces it in document `n`.
type Swap = (&'static str, fn(u64) -> String);

/// The police journal number of message `n`: a case each, repeating after 99,999.
fn journal(n: u64) -> String {
    format!("1470-76543-{:05}-26", 1 + n % 99_999)
}

impl Documents {
    fn load(w: Workload, samples: &Path) -> Result<Self, String> {
        let (file, sender, path, content_type, swaps): (_, _, _, _, Vec<Swap>) = match w {
            Workload::Police => (
                "police/valid/anmeldelse-1.json",
                "police",
                "/police/v1/dokumenter",
                "application/json",
                vec![
                    ("POL-2026-0012417", |n| {
                        format!("POL-2026-{:07}", n % 10_000_000)
                    }),
                    ("1470-76543-00012-26", journal),
                ],
            ),
            Workload::Court => (
                "court/valid/dom-1-latin1.xml",
                "courts",
                "/courts/v1/dokumenter",
                "application/xml; charset=ISO-8859-1",
                vec![
                    ("DOM-2026-000417", |n| {
                        format!("DOM-2026-{:06}", n % 1_000_000)
                    }),
                    ("1470-76543-00012-26", journal),
                ],
            ),
            Workload::Canonical => (
                "canonical/valid/custody.admitted.json",
                "prison",
                "/v1/messages",
                "application/json",
                vec![
                    ("OMS-ADM-2026-018842", |n| {
                        format!("OMS-ADM-2026-{:06}", n % 1_000_000)
                    }),
                    ("1470-76543-00012-26", journal),
                ],
            ),
        };
        let at = samples.join(file);
        let template = std::fs::read(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        for (needle, _) in &swaps {
            if !contains(&template, needle.as_bytes()) {
                return Err(format!("{}: {needle} is not in the sample", at.display()));
            }
        }
        Ok(Self {
            workload: w,
            sender,
            path,
            content_type,
            template,
            swaps,
        })
    }

    /// Document `n`: the sample with its own document id and case.
    fn body(&self, n: u64) -> Vec<u8> {
        let mut out = self.template.clone();
        for (needle, value) in &self.swaps {
            out = replace(&out, needle.as_bytes(), value(n).as_bytes());
        }
        out
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len() + with.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// What one measurement counted.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub requests: u64,
    pub ok: u64,
    /// Answers other than the expected one, by status (or transport error).
    pub errors: BTreeMap<String, u64>,
    pub seconds: f64,
    /// Expected answers per second.
    pub rate: f64,
    pub latency: Percentiles,
}

struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
    hist: Histogram<u64>,
    last: Instant,
}

impl Tally {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: BTreeMap::new(),
            hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds"),
            last: Instant::now(),
        }
    }
    fn record(&mut self, outcome: Result<u16, String>, expected: u16, latency: Duration) {
        match outcome {
            Ok(s) if s == expected => self.ok += 1,
            Ok(s) => *self.errors.entry(s.to_string()).or_default() += 1,
            Err(e) => *self.errors.entry(e).or_default() += 1,
        }
        let _ = self
            .hist
            .record((latency.as_micros() as u64).clamp(1, 120_000_000));
        self.last = Instant::now();
    }
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        let _ = self.hist.add(&o.hist);
        self.last = self.last.max(o.last);
    }
    fn finish(self, started: Instant) -> Run {
        let seconds = self.last.duration_since(started).as_secs_f64().max(1e-9);
        let requests = self.ok + self.errors.values().sum::<u64>();
        Run {
            requests,
            ok: self.ok,
            errors: self.errors,
            seconds,
            rate: self.ok as f64 / seconds,
            latency: Percentiles::of(&self.hist),
        }
    }
}

/// Flat out, or requests started at a fixed rate.
#[derive(Debug, Clone, Copy)]
enum Pace {
    FlatOut,
    Rate(f64),
}

/// Sends `docs` over every client for `duration`; each client is one connection used in turn.
async fn drive(
    clients: &[reqwest::Client],
    base: &str,
    docs: &Arc<Documents>,
    next: &Arc<AtomicU64>,
    pace: Pace,
    duration: Duration,
) -> Run {
    let started = Instant::now();
    let end = started + duration;
    let tickets = Arc::new(AtomicU64::new(0));
    let url = format!("{base}{}", docs.path);
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let (c, url, docs, next, tickets) = (
                c.clone(),
                url.clone(),
                docs.clone(),
                next.clone(),
                tickets.clone(),
            );
            tokio::spawn(async move {
                let mut t = Tally::new();
                loop {
                    // with a fixed rate, latency counts from when the request was due, so a
                    // stall is charged to every request it delayed (coordinated omission)
                    let due = match pace {
                        Pace::FlatOut => {
                            let now = Instant::now();
                            if now >= end {
                                break;
                            }
                            now
                        }
                        Pace::Rate(r) => {
                            let i = tickets.fetch_add(1, Ordering::Relaxed);
                            let due = started + Duration::from_secs_f64(i as f64 / r);
                            if due >= end {
                                break;
                            }
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                    };
                    let body = docs.body(next.fetch_add(1, Ordering::Relaxed));
                    let r = c
                        .post(&url)
                        .header("Content-Type", docs.content_type)
                        .body(body)
                        .send()
                        .await;
                    t.record(answer(r).await, 202, due.elapsed());
                }
                t
            })
        })
        .collect();
    gather(tasks, started).await
}

/// A response's status, its body read so that the connection is reused; or the transport error.
async fn answer(r: Result<reqwest::Response, reqwest::Error>) -> Result<u16, String> {
    match r {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            Ok(s)
        }
        Err(e) => Err(transport(&e)),
    }
}

/// The connections' tallies as one run, timed from `started`.
async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>, started: Instant) -> Run {
    let mut all = Tally::new();
    all.last = started;
    for t in tasks {
        if let Ok(t) = t.await {
            all.merge(t);
        }
    }
    all.finish(started)
}

/// A transport failure by kind, with its innermost cause (never a body: TLS, socket and HTTP
/// framing errors only).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text: String = cause.to_string().chars().take(80).collect();
    format!("transport {kind}: {text}")
}

/// Takes and acknowledges the caller's inbox over every client until it stays empty (two takes
/// that waited a second each found nothing) or `duration` passes; `ok` counts acknowledgements
/// and the rate runs to the last of them.
async fn drain(clients: &[reqwest::Client], base: &str, duration: Duration) -> Run {
    let started = Instant::now();
    let end = started + duration;
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let (c, base) = (c.clone(), base.to_string());
            tokio::spawn(async move {
                let mut t = Tally::new();
                let mut empty = 0;
                while Instant::now() < end && empty < 2 {
                    let asked = Instant::now();
                    let r = c
                        .get(format!("{base}/v1/inbox?limit=100&wait=1"))
                        .send()
                        .await;
                    let items = match r {
                        Ok(r) if r.status() == 200 => r
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|v| v["items"].as_array().cloned())
                            .unwrap_or_default(),
                        Ok(r) => {
                            t.record(Ok(r.status().as_u16()), 200, asked.elapsed());
                            continue;
                        }
                        Err(e) => {
                            t.record(Err(transport(&e)), 200, asked.elapsed());
                            continue;
                        }
                    };
                    empty = if items.is_empty() { empty + 1 } else { 0 };
                    for item in items {
                        let id = item["id"].as_str().unwrap_or_default();
                        let r = c.post(format!("{base}/v1/inbox/{id}/ack")).send().await;
                        t.record(answer(r).await, 200, asked.elapsed());
                    }
                }
                t
            })
        })
        .collect();
    gather(tasks, started).await
}

/// ES256 detached signatures per second on every core, with the gateway's key, over `bytes`.
fn sign_rate(signer: &jxg_gateway::signing::Signer, bytes: &[u8], duration: Duration) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while started.elapsed() < duration {
                        let claims = jxg_gateway::signing::DeliveryClaims {
                            message_id: "0192f000-0000-7000-8000-000000000000",
                            message_type: "offence.reported",
                            recipient: "prosecution",
                            issued_at: 0,
                        };
                        if signer.detached(bytes, claims).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// Starts `exe args` in `cwd` (a gateway, or this tool's baseline) and waits for it to listen;
/// the test kit's process, which keeps none of its log lines here.
fn server(exe: &Path, args: &[&str], cwd: &Path) -> Result<Gateway, String> {
    Gateway::spawn(exe, args, cwd, &[("RUST_LOG", "info")], false)
}

/// The `jxg` binary beside this one (cargo builds both into one folder).
fn jxg_exe() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let jxg = me.with_file_name("jxg");
    if jxg.exists() {
        Ok(jxg)
    } else {
        Err(format!(
            "{} is missing: build the gateway too (cargo build --bin jxg)",
            jxg.display()
        ))
    }
}

fn own_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("own executable: {e}"))
}

/// The bench's own configuration: the given one with free ports, a store of its own, every
/// authority pulling, no rate limit and every path absolute. Returns its path.
fn bench_config(config: &Config, source: &Path, work: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut t: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let abs = |p: &Path| {
        let r = config.resolve(p);
        Value::from(std::path::absolute(&r).unwrap_or(r).display().to_string())
    };
    let tv = |v: Value| -> toml::Value {
        toml::Value::try_from(v).unwrap_or(toml::Value::String(String::new()))
    };
    let table = |t: &mut toml::Table, k: &str| -> toml::Table {
        t.get(k)
            .and_then(|v| v.as_table())
            .cloned()
            .unwrap_or_default()
    };
    let mut listeners = table(&mut t, "listeners");
    listeners.insert("authority".into(), "127.0.0.1:0".into());
    listeners.insert("admin".into(), "127.0.0.1:0".into());
    t.insert("listeners".into(), listeners.into());
    let mut tls = table(&mut t, "tls");
    tls.insert("ca".into(), tv(abs(&config.tls.ca)));
    tls.insert("cert".into(), tv(abs(&config.tls.cert)));
    tls.insert("key".into(), tv(abs(&config.tls.key)));
    if let Some(crl) = &config.tls.crl {
        tls.insert("crl".into(), tv(abs(crl)));
    }
    t.insert("tls".into(), tls.into());
    let mut signing = table(&mut t, "signing");
    signing.insert("key".into(), tv(abs(&config.signing.key)));
    t.insert("signing".into(), signing.into());
    let mut audit = table(&mut t, "audit");
    audit.insert("hmac_key".into(), tv(abs(&config.audit.hmac_key)));
    t.insert("audit".into(), audit.into());
    let mut store = table(&mut t, "store");
    store.insert(
        "path".into(),
        work.join("data").display().to_string().into(),
    );
    t.insert("store".into(), store.into());
    if let Some(p) = &config.policies {
        t.insert("policies".into(), tv(abs(p)));
    }
    if let Some(p) = &config.master_data {
        t.insert("master_data".into(), tv(abs(p)));
    }
    if let Some(toml::Value::Array(authorities)) = t.get_mut("authority") {
        for a in authorities.iter_mut() {
            let Some(a) = a.as_table_mut() else { continue };
            a.insert("delivery".into(), "pull".into());
            a.remove("webhook");
            a.insert("rate_per_second".into(), toml::Value::Float(1e9));
            a.insert("burst".into(), toml::Value::Integer(1_000_000_000));
            if let Some(j) = a.get("jwks").and_then(|v| v.as_str()).map(PathBuf::from) {
                a.insert("jwks".into(), tv(abs(&j)));
            }
        }
    }
    let path = work.join("gateway.toml");
    let text = toml::to_string(&t).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Config::load(&path).map_err(|e| format!("the bench's configuration: {e}"))?;
    Ok(path)
}

/// The connections of one authority, each a client of its own (one TLS session each).
fn clients(config: &Config, authority: &str, n: usize) -> Result<Vec<reqwest::Client>, String> {
    let ca_path = config.resolve(&config.tls.ca);
    let dir = ca_path.parent().unwrap_or(Path::new("."));
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(|e| {
            format!(
                "{}: {e} (jxg certs init makes the development certificates)",
                p.display()
            )
        })
    };
    let ca = read(ca_path.clone())?;
    let cert = read(dir.join(format!("{authority}.pem")))?;
    let key = read(dir.join(format!("{authority}-key.pem")))?;
    (0..n.max(1))
        .map(|_| jxg_gateway::peer::client(&ca, Some((&cert, &key))))
        .collect()
}

/// The gateway's stage histograms from `/metrics`: stage → (seconds in all, count).
async fn stages(operator: &reqwest::Client, admin: &str) -> BTreeMap<String, (f64, u64)> {
    let mut out: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let Ok(r) = operator
        .get(format!("https://{admin}/metrics"))
        .send()
        .await
    else {
        return out;
    };
    let text = r.text().await.unwrap_or_default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("jxg_stage_duration_seconds_") else {
            continue;
        };
        let (Some(stage), Some(value)) = (
            rest.split("stage=\"")
                .nth(1)
                .and_then(|s| s.split('"').next()),
            line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let e = out.entry(stage.to_string()).or_default();
        if rest.starts_with("sum") {
            e.0 += value;
        } else if rest.starts_with("count") {
            e.1 += value as u64;
        }
    }
    out
}

/// Mean microseconds per message in each stage between two scrapes, over `messages`.
fn stage_means(
    before: &BTreeMap<String, (f64, u64)>,
    after: &BTreeMap<String, (f64, u64)>,
    messages: u64,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(stage, (sum, _))| {
            let was = before.get(stage).map_or(0.0, |b| b.0);
            (stage.clone(), (sum - was) * 1e6 / messages.max(1) as f64)
        })
        .filter(|(_, us)| *us > 0.0)
        .collect()
}

/// Signatures one message of `docs` takes: its receipt and one per recipient that got it.
async fn signatures_per_message(c: &reqwest::Client, base: &str, docs: &Documents) -> u64 {
    let r = c
        .post(format!("{base}{}", docs.path))
        .header("Content-Type", docs.content_type)
        .body(docs.body(u64::MAX / 2))
        .send()
        .await;
    let Ok(r) = r else { return 1 };
    let Ok(v) = r.json::<Value>().await else {
        return 1;
    };
    let Some(id) = v["id"].as_str() else { return 1 };
    let Ok(r) = c.get(format!("{base}/v1/messages/{id}")).send().await else {
        return 1;
    };
    let m: Value = r.json().await.unwrap_or_default();
    let delivered = m["recipients"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|r| r["status"] != "skipped").count());
    1 + delivered as u64
}

/// Writes `n` police reports through the gateway's own pipeline (no HTTP) into the bench's
/// store, 64 at a time so that they share fsyncs; returns the seconds it took.
fn fill(config_path: &Path, docs: &Arc<Documents>, n: u64) -> Result<f64, String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let store = rt
        .block_on(jxg_gateway::server::open_store(&config))
        .map_err(|e| e.to_string())?;
    let state =
        Arc::new(jxg_gateway::server::build_state(config, store).map_err(|e| e.to_string())?);
    let adapter = jxg_adapters::registry::get("police-json").ok_or("no police adapter")?;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (state, docs, next, failed) =
                    (state.clone(), docs.clone(), next.clone(), failed.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let body = docs.body(i);
                        let p = &state.pipeline;
                        let accepted = match jxg_gateway::pipeline::decode_document(
                            adapter,
                            &body,
                            &p.master_data,
                        ) {
                            Ok(m) => p.accept(docs.sender, m, &body, None).await.is_ok(),
                            Err(_) => false,
                        };
                        if !accepted {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!(
            "{failed} of {n} backlog messages were not accepted"
        ));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// One workload's results.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    pub workload: Workload,
    pub sender: String,
    /// k: the message's receipt and one per recipient.
    pub signatures_per_message: u64,
    /// R_sign = S / k.
    pub sign_limit: f64,
    /// L = 1 / (1/R_http + 1/R_sign).
    pub limit: f64,
    pub flat_out: Run,
    pub ratio_to_limit: f64,
    pub ratio_to_http: f64,
    /// Half the flat-out rate, requests started on a fixed schedule.
    pub half_rate: f64,
    /// Latency from each request's due time (corrected for coordinated omission).
    pub at_half_rate: Run,
    /// Every 202 of this workload, warm-up included: what its recipients' inboxes must hold.
    pub accepted: u64,
    /// Wall time per accepted message in each pipeline stage (the gateway's own histograms,
    /// `jxg_stage_duration_seconds`), in microseconds: where the time goes. `store` includes the
    /// wait for the batch's fsync; stages that run once per recipient are summed.
    pub stage_us: BTreeMap<String, f64>,
}

/// A consumer draining a pull inbox.
#[derive(Debug, Clone, Serialize)]
pub struct Drain {
    pub recipient: String,
    /// Acknowledged deliveries per second (`ok` counts acknowledgements).
    pub run: Run,
    /// Against the police workload's flat-out ingest rate.
    pub ratio_to_ingest: Option<f64>,
}

/// The gateway holding a backlog.
#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    pub messages: u64,
    pub fill_seconds: f64,
    pub startup_seconds: f64,
    pub rss_mib_at_start: f64,
    pub peak_rss_mib: f64,
    pub store_mib: f64,
    /// Police reports flat out with the backlog stored.
    pub police_flat_out: Run,
    /// That rate over the police rate with an empty store (the same run's).
    pub ingest_ratio_to_empty: Option<f64>,
    /// Police reports accepted on the backlog (warm-up included): the drain takes them too.
    pub ingested: u64,
    pub drain: Drain,
}

/// Everything one `jxg-tools bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Value,
    pub connections: usize,
    pub seconds: f64,
    /// S: ES256 signatures per second on every core.
    pub sign_rate: f64,
    /// R_http: the trivial handler on the same stack, flat out.
    pub http: Run,
    pub gateway_startup_seconds: f64,
    pub workloads: Vec<WorkloadResult>,
    pub inbox: Option<Drain>,
    pub gateway_rss_mib: f64,
    pub backlog: Option<Backlog>,
    /// The police workload with the store in PostgreSQL, when asked for.
    pub postgres: Option<OnPostgres>,
}

/// The police workload on a gateway whose store is in PostgreSQL, measured in the same run as
/// the configured engine.
#[derive(Debug, Clone, Serialize)]
pub struct OnPostgres {
    pub police_flat_out: Run,
    /// Police reports accepted on it (the warm-up's and the measurement's).
    pub accepted: u64,
    /// That rate over L (the police workload's).
    pub ratio_to_limit: Option<f64>,
    /// That rate over the police rate on the configured engine.
    pub ratio_to_configured: Option<f64>,
    pub drain: Drain,
    /// Two nodes sharing one database, police sent to both.
    pub two_nodes: TwoNodes,
    pub node_loss: NodeLoss,
}

/// Two gateway nodes on one PostgreSQL database, the police workload flat out split over them.
#[derive(Debug, Clone, Serialize)]
pub struct TwoNodes {
    /// Each node's run (half the connections each, at once).
    pub nodes: Vec<Run>,
    /// Accepted per second, both together.
    pub rate: f64,
    pub ratio_to_limit: Option<f64>,
    /// That rate over the police rate on the configured engine (one node).
    pub ratio_to_configured: Option<f64>,
    /// Over one node on PostgreSQL.
    pub ratio_to_one_node: f64,
}

/// What losing a node costs a push recipient: two nodes pushing to a slow webhook, one
/// SIGKILLed with deliveries in flight; the longest gap between the recipient's deliveries
/// from the kill until every accepted message had arrived, over the lease period.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLoss {
    pub lease_seconds: f64,
    pub accepted: u64,
    /// Distinct messages the webhook took.
    pub delivered: u64,
    pub longest_gap_seconds: f64,
    pub gap_to_lease: f64,
}

/// A configuration for a node of its own on the database at `url`: `path`'s, with the store
/// there under the name `node`, and `extra` keys set in their tables.
fn node_config(
    path: &Path,
    work: &Path,
    url: &str,
    node: &str,
    extra: &[(&str, &str, toml::Value)],
) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut t: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let mut sets: Vec<(&str, &str, toml::Value)> = vec![
        ("store", "engine", "postgres".into()),
        ("store", "url", url.into()),
        ("store", "node", node.into()),
    ];
    sets.extend(extra.iter().cloned());
    for (table, key, value) in sets {
        let mut part = t
            .get(table)
            .and_then(|v| v.as_table())
            .cloned()
            .unwrap_or_default();
        part.insert(key.into(), value);
        t.insert(table.into(), part.into());
    }
    let out = work.join(format!("{node}.toml"));
    std::fs::write(&out, t.to_string()).map_err(|e| e.to_string())?;
    Ok(out)
}

/// What the runs of several nodes on PostgreSQL share.
struct OnServer<'a> {
    rt: &'a tokio::runtime::Runtime,
    /// `postgresql://user@host:port`: each run makes a database of its own there.
    server: &'a str,
    work: &'a Path,
    config: &'a Config,
    police: &'a Arc<Documents>,
    next: &'a Arc<AtomicU64>,
}

impl OnServer<'_> {
    /// One node per name on a new database (dropped with the value returned), each on `path`'s
    /// configuration with `extra`: the database, the nodes and their authority URLs.
    fn start_nodes(
        &self,
        path: &Path,
        tag: &str,
        names: &[&str],
        extra: &[(&str, &str, toml::Value)],
    ) -> Result<(jxg_tests::postgres::Database, Vec<Gateway>, Vec<String>), String> {
        let db = self
            .rt
            .block_on(jxg_tests::postgres::Database::create_on(self.server, tag))?;
        let mut nodes = Vec::new();
        for name in names {
            let cfg = node_config(path, self.work, &db.url(), name, extra)?;
            let arg = cfg.display().to_string();
            nodes.push(server(
                &jxg_exe()?,
                &["serve", "--config", &arg],
                self.work,
            )?);
        }
        let bases = nodes
            .iter()
            .map(|g| format!("https://{}", g.authority))
            .collect();
        Ok((db, nodes, bases))
    }

    /// Two nodes: police flat out over both (half the connections each), then drained.
    fn two_nodes(
        &self,
        path: &Path,
        connections: usize,
        (warmup, seconds): (Duration, Duration),
    ) -> Result<Vec<Run>, String> {
        let (_db, nodes, bases) =
            self.start_nodes(path, "bench_nodes", &["bench-1", "bench-2"], &[])?;
        let (police, next) = (self.police, self.next);
        let half = (connections / 2).max(1);
        let c = clients(self.config, police.sender, half * 2)?;
        let runs = self.rt.block_on(async {
            let (a, b) = (&c[..half], &c[half..]);
            tokio::join!(
                drive(a, &bases[0], police, next, Pace::FlatOut, warmup),
                drive(b, &bases[1], police, next, Pace::FlatOut, warmup)
            );
            let (x, y) = tokio::join!(
                drive(a, &bases[0], police, next, Pace::FlatOut, seconds),
                drive(b, &bases[1], police, next, Pace::FlatOut, seconds)
            );
            vec![x, y]
        });
        let c = clients(self.config, "prosecution", connections)?;
        self.rt
            .block_on(drain(&c, &bases[1], seconds.max(Duration::from_secs(60))));
        for mut n in nodes {
            n.terminate();
        }
        Ok(runs)
    }

    /// Two nodes pushing the prosecution's copies to a webhook that takes 300 ms a request;
    /// police at a rate both together deliver, then one node SIGKILLed with deliveries in
    /// flight.
    fn node_loss(&self, path: &Path) -> Result<NodeLoss, String> {
        let lease = 3.0;
        let ca = self.config.resolve(&self.config.tls.ca);
        let ca_key = ca.with_file_name("ca-key.pem");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let hook = jxg_tests::Webhook::issued(
            &ca,
            &ca_key,
            &self.work.join("webhook"),
            listener,
            "/jxg",
            jxg_tests::Mode::Slow(300),
        )
        .map_err(|e| format!("the bench's webhook (needs the development CA's key): {e}"))?;
        // the prosecution pushed to the webhook; attempts bounded well under the lease
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let mut t: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
        if let Some(toml::Value::Array(authorities)) = t.get_mut("authority") {
            for a in authorities.iter_mut().filter_map(|a| a.as_table_mut()) {
                if a.get("id").and_then(|v| v.as_str()) == Some("prosecution") {
                    a.insert("delivery".into(), "push".into());
                    a.insert("format".into(), "canonical".into());
                    a.insert("webhook".into(), hook.url.clone().into());
                }
            }
        }
        let pushed = self.work.join("pushed.toml");
        std::fs::write(&pushed, t.to_string()).map_err(|e| e.to_string())?;
        let (_db, mut nodes, bases) = self.start_nodes(
            &pushed,
            "bench_loss",
            &["loss-1", "loss-2"],
            &[
                ("store", "lease_seconds", toml::Value::Integer(lease as i64)),
                (
                    "delivery",
                    "request_timeout_seconds",
                    toml::Value::Integer(2),
                ),
                ("delivery", "retry_base_ms", toml::Value::Integer(50)),
            ],
        )?;
        let (police, next) = (self.police, self.next);
        let c = clients(self.config, police.sender, 4)?;
        let runs = self.rt.block_on(async {
            let every = Duration::from_secs(3);
            tokio::join!(
                drive(&c[..2], &bases[0], police, next, Pace::Rate(10.0), every),
                drive(&c[2..], &bases[1], police, next, Pace::Rate(10.0), every)
            )
        });
        let accepted = runs.0.ok + runs.1.ok;
        nodes.remove(0).kill();
        let killed = Instant::now();
        let deadline = killed + Duration::from_secs(60);
        let distinct = |hook: &jxg_tests::Webhook| {
            hook.delivered()
                .iter()
                .filter(|r| r.status == 200)
                .map(|r| r.message_id.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u64
        };
        while distinct(&hook) < accepted && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let done = Instant::now();
        let mut arrivals: Vec<Instant> = hook
            .delivered()
            .iter()
            .map(|r| r.at)
            .filter(|t| *t >= killed && *t <= done)
            .collect();
        arrivals.sort();
        let mut last = killed;
        let mut longest = Duration::ZERO;
        for t in arrivals {
            longest = longest.max(t - last);
            last = t;
        }
        let delivered = distinct(&hook);
        for mut n in nodes {
            n.terminate();
        }
        Ok(NodeLoss {
            lease_seconds: lease,
            accepted,
            delivered,
            longest_gap_seconds: longest.as_secs_f64(),
            gap_to_lease: longest.as_secs_f64() / lease,
        })
    }
}

/// Writes the backlog in a process of its own (so that the store is closed when the gateway
/// opens it), returning how long it took.
fn fill_backlog(config: &str, opts: &Options) -> Result<f64, String> {
    let filled = Command::new(own_exe()?)
        .args(["bench-fill", "--config", config, "--samples"])
        .arg(&opts.samples)
        .args(["--count", &opts.backlog.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("jxg-tools bench-fill: {e}"))?;
    if !filled.status.success() {
        return Err("jxg-tools bench-fill failed".into());
    }
    String::from_utf8_lossy(&filled.stdout)
        .trim()
        .parse()
        .map_err(|_| "jxg-tools bench-fill did not say how long it took".into())
}

/// The write time of the backlog of `count` kept in `cache`, if it holds one.
fn kept_backlog(cache: &Path, count: u64) -> Option<f64> {
    let said = std::fs::read_to_string(cache.join("backlog")).ok()?;
    let (n, seconds) = said.trim().split_once(' ')?;
    (n.parse::<u64>().ok()? == count && cache.join("store").is_dir())
        .then(|| seconds.parse().ok())
        .flatten()
}

fn keep_backlog(cache: &Path, store: &Path, count: u64, seconds: f64) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(cache);
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    copy_dir(store, &cache.join("store"))?;
    std::fs::write(cache.join("backlog"), format!("{count} {seconds}"))
        .map_err(|e| format!("{}: {e}", cache.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(to);
    let done = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if !done.success() {
        return Err(format!("cp {} {} failed", from.display(), to.display()));
    }
    // written back before anything is measured: the disk is not still busy with the copy
    match Command::new("sync").status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err("sync failed".into()),
    }
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_string();
    json!({
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu": model,
        "os": std::env::consts::OS,
    })
}

fn dir_mib(p: &Path) -> f64 {
    fn walk(p: &Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(p) as f64 / (1024.0 * 1024.0)
}

/// `jxg-tools bench`: exit 0 when every request got its expected answer, 1 when any did not, 2 when
/// the bench could not run.
pub fn run(opts: &Options) -> i32 {
    match measure(opts) {
        Ok(report) => {
            print(&report);
            if let Some(path) = &opts.report {
                let text = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(path, text) {
                    eprintln!("jxg-tools bench: {}: {e}", path.display());
                    return 2;
                }
            }
            let errors: u64 = report
                .workloads
                .iter()
                .flat_map(|w| [&w.flat_out, &w.at_half_rate])
                .chain(report.inbox.as_ref().map(|d| &d.run))
                .chain(report.backlog.as_ref().map(|b| &b.drain.run))
                .chain(
                    report
                        .postgres
                        .iter()
                        .flat_map(|p| [&p.police_flat_out, &p.drain.run]),
                )
                .chain(report.postgres.iter().flat_map(|p| &p.two_nodes.nodes))
                .chain([&report.http])
                .map(|r| r.errors.values().sum::<u64>())
                .sum();
            let lost = report.postgres.as_ref().map_or(0, |p| {
                p.node_loss.accepted.saturating_sub(p.node_loss.delivered)
            });
            if lost > 0 {
                eprintln!(
                    "jxg-tools bench: {lost} messages accepted before a node was killed never reached the webhook"
                );
                return 1;
            }
            if errors > 0 {
                eprintln!("jxg-tools bench: {errors} requests did not get their expected answer");
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("jxg-tools bench: {e}");
            2
        }
    }
}

fn measure(opts: &Options) -> Result<Report, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::load(&opts.config).map_err(|e| e.to_string())?;
    let work = tempfile::Builder::new()
        .prefix("jxg-bench-")
        .tempdir()
        .map_err(|e| format!("a temporary folder: {e}"))?;
    let path = bench_config(&config, &opts.config, work.path())?;
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    let docs: Vec<Arc<Documents>> = opts
        .workloads
        .iter()
        .map(|w| Documents::load(*w, &opts.samples).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let police = Arc::new(Documents::load(Workload::Police, &opts.samples)?);
    let seconds = Duration::from_secs_f64(opts.seconds.max(0.2));
    let warmup = Duration::from_secs_f64((opts.seconds / 5.0).clamp(0.2, 2.0));
    // a drain runs until the inbox is empty, or at most this long (its rate is what it reached)
    let drain_cap = seconds.max(Duration::from_secs(60));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let next = Arc::new(AtomicU64::new(1_000_000));

    // S: signing on every core, alone on the machine
    let signer = jxg_gateway::signing::Signer::load(&config.resolve(&config.signing.key))
        .map_err(|e| e.to_string())?;
    eprintln!("jxg-tools bench: ES256 signing on every core…");
    let sign_rate = sign_rate(
        &signer,
        &police.template,
        seconds.min(Duration::from_secs(5)),
    );

    // R_http: the same stack answering a trivial 202
    eprintln!("jxg-tools bench: the trivial handler on the same stack…");
    let path_arg = path.display().to_string();
    let mut baseline = server(
        &own_exe()?,
        &["bench-baseline", "--config", &path_arg],
        work.path(),
    )?;
    let base = format!("https://{}", baseline.authority);
    let first = docs.first().cloned().unwrap_or_else(|| police.clone());
    let c = clients(&config, first.sender, opts.connections)?;
    let http = rt.block_on(async {
        drive(&c, &base, &first, &next, Pace::FlatOut, warmup).await;
        drive(&c, &base, &first, &next, Pace::FlatOut, seconds).await
    });
    baseline.terminate();

    // the gateway, one workload after another
    let mut gateway = server(&jxg_exe()?, &["serve", "--config", &path_arg], work.path())?;
    let gateway_startup_seconds = gateway.startup.as_secs_f64();
    let base = format!("https://{}", gateway.authority);
    let operator = clients(&config, "operator", 1)?.remove(0);
    let mut workloads = Vec::new();
    let mut inbox = None;
    for d in &docs {
        eprintln!(
            "jxg-tools bench: {:?} flat out, then at half that rate…",
            d.workload
        );
        let c = clients(&config, d.sender, opts.connections)?;
        let before = rt.block_on(stages(&operator, &gateway.admin));
        let (k, flat, half, at_half, warm) = rt.block_on(async {
            let k = signatures_per_message(&c[0], &base, d).await;
            let warm = drive(&c, &base, d, &next, Pace::FlatOut, warmup).await;
            let flat = drive(&c, &base, d, &next, Pace::FlatOut, seconds).await;
            let half = (flat.rate / 2.0).max(1.0);
            let at_half = drive(&c, &base, d, &next, Pace::Rate(half), seconds).await;
            (k, flat, half, at_half, warm.ok)
        });
        let after = rt.block_on(stages(&operator, &gateway.admin));
        let accepted = u64::from(k > 1) + warm + flat.ok + at_half.ok;
        let stage_us = stage_means(&before, &after, accepted);
        let sign_limit = sign_rate / k as f64;
        let limit = 1.0 / (1.0 / http.rate.max(1e-9) + 1.0 / sign_limit.max(1e-9));
        workloads.push(WorkloadResult {
            workload: d.workload,
            sender: d.sender.to_string(),
            signatures_per_message: k,
            sign_limit,
            limit,
            ratio_to_limit: flat.rate / limit,
            accepted,
            stage_us,
            ratio_to_http: flat.rate / http.rate.max(1e-9),
            flat_out: flat,
            half_rate: half,
            at_half_rate: at_half,
        });
        // the police reports wait in the prosecution's inbox alone: drain them before the
        // next workload adds to it
        if d.workload == Workload::Police {
            eprintln!("jxg-tools bench: the prosecution draining its inbox…");
            let c = clients(&config, "prosecution", opts.connections)?;
            let run = rt.block_on(drain(&c, &base, drain_cap));
            let ingest = workloads.last().map(|w: &WorkloadResult| w.flat_out.rate);
            inbox = Some(Drain {
                recipient: "prosecution".into(),
                ratio_to_ingest: ingest.map(|p| run.rate / p),
                run,
            });
        }
    }
    let police_rate = workloads
        .iter()
        .find(|w| w.workload == Workload::Police)
        .map(|w| w.flat_out.rate);
    let (_, gateway_rss_mib) = gateway.memory();
    gateway.terminate();

    let backlog = if opts.backlog > 0 {
        let data = config.resolve(&config.store.path);
        let _ = std::fs::remove_dir_all(&data);
        let kept = opts
            .backlog_cache
            .as_deref()
            .and_then(|c| kept_backlog(c, opts.backlog));
        eprintln!(
            "jxg-tools bench: {} a backlog of {} police reports…",
            if kept.is_some() {
                "copying the kept"
            } else {
                "writing"
            },
            opts.backlog
        );
        let fill_seconds = match (kept, &opts.backlog_cache) {
            (Some(seconds), Some(cache)) => {
                copy_dir(&cache.join("store"), &data)?;
                seconds
            }
            (_, cache) => {
                let seconds = fill_backlog(&path_arg, opts)?;
                if let Some(cache) = cache {
                    keep_backlog(cache, &data, opts.backlog, seconds)?;
                }
                seconds
            }
        };
        let store_mib = dir_mib(&data);
        let mut gateway = server(&jxg_exe()?, &["serve", "--config", &path_arg], work.path())?;
        std::thread::sleep(Duration::from_secs(1));
        let (rss_mib_at_start, _) = gateway.memory();
        let base = format!("https://{}", gateway.authority);
        eprintln!("jxg-tools bench: police reports flat out with the backlog stored…");
        // numbers the backlog did not use
        next.fetch_max(opts.backlog + 1, Ordering::Relaxed);
        let c = clients(&config, police.sender, opts.connections)?;
        let (warm, police_flat_out) = rt.block_on(async {
            let warm = drive(&c, &base, &police, &next, Pace::FlatOut, warmup).await;
            let flat = drive(&c, &base, &police, &next, Pace::FlatOut, seconds).await;
            (warm, flat)
        });
        let ingested = warm.ok + police_flat_out.ok;
        let c = clients(&config, "prosecution", opts.connections)?;
        eprintln!("jxg-tools bench: the prosecution draining the backlog…");
        let run = rt.block_on(drain(&c, &base, drain_cap));
        let (_, peak_rss_mib) = gateway.memory();
        let startup_seconds = gateway.startup.as_secs_f64();
        gateway.terminate();
        Some(Backlog {
            messages: opts.backlog,
            fill_seconds,
            startup_seconds,
            rss_mib_at_start,
            peak_rss_mib,
            store_mib,
            ingest_ratio_to_empty: police_rate.map(|p| police_flat_out.rate / p),
            police_flat_out,
            ingested,
            drain: Drain {
                recipient: "prosecution".into(),
                ratio_to_ingest: police_rate.map(|p| run.rate / p),
                run,
            },
        })
    } else {
        None
    };
    let postgres = match &opts.postgres {
        None => None,
        Some(on) => {
            let db = rt.block_on(jxg_tests::postgres::Database::create_on(on, "bench"))?;
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let mut t: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
            let mut store = t
                .get("store")
                .and_then(|v| v.as_table())
                .cloned()
                .unwrap_or_default();
            store.insert("engine".into(), "postgres".into());
            store.insert("url".into(), db.url().into());
            t.insert("store".into(), store.into());
            let pg_path = work.path().join("gateway-postgres.toml");
            std::fs::write(&pg_path, t.to_string()).map_err(|e| e.to_string())?;
            let pg_arg = pg_path.display().to_string();
            eprintln!("jxg-tools bench: police flat out with the store in PostgreSQL…");
            let mut gateway = server(&jxg_exe()?, &["serve", "--config", &pg_arg], work.path())?;
            let base = format!("https://{}", gateway.authority);
            let c = clients(&config, police.sender, opts.connections)?;
            let (warm, flat) = rt.block_on(async {
                let warm = drive(&c, &base, &police, &next, Pace::FlatOut, warmup).await;
                let flat = drive(&c, &base, &police, &next, Pace::FlatOut, seconds).await;
                (warm, flat)
            });
            let c = clients(&config, "prosecution", opts.connections)?;
            let run = rt.block_on(drain(&c, &base, drain_cap));
            gateway.terminate();
            eprintln!("jxg-tools bench: police flat out over two nodes on one database…");
            let on_server = OnServer {
                rt: &rt,
                server: on,
                work: work.path(),
                config: &config,
                police: &police,
                next: &next,
            };
            let nodes = on_server.two_nodes(&pg_path, opts.connections, (warmup, seconds))?;
            let rate: f64 = nodes.iter().map(|r| r.rate).sum();
            eprintln!("jxg-tools bench: a node SIGKILLed with pushes in flight…");
            let node_loss = on_server.node_loss(&pg_path)?;
            let limit = workloads
                .iter()
                .find(|w| w.workload == Workload::Police)
                .map(|w| w.limit);
            Some(OnPostgres {
                accepted: warm.ok + flat.ok,
                ratio_to_limit: limit.map(|l| flat.rate / l),
                ratio_to_configured: police_rate.map(|p| flat.rate / p),
                two_nodes: TwoNodes {
                    ratio_to_limit: limit.map(|l| rate / l),
                    ratio_to_configured: police_rate.map(|p| rate / p),
                    ratio_to_one_node: rate / flat.rate.max(1e-9),
                    rate,
                    nodes,
                },
                node_loss,
                drain: Drain {
                    recipient: "prosecution".into(),
                    ratio_to_ingest: Some(run.rate / flat.rate.max(1e-9)),
                    run,
                },
                police_flat_out: flat,
            })
        }
    };
    Ok(Report {
        postgres,
        machine: machine(),
        connections: opts.connections,
        seconds: opts.seconds,
        sign_rate,
        http,
        gateway_startup_seconds,
        workloads,
        inbox,
        gateway_rss_mib,
        backlog,
    })
}

fn errors(r: &Run) -> String {
    if r.errors.is_empty() {
        "0 errors".into()
    } else {
        let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{v}× {k}")).collect();
        format!("ERRORS {}", list.join(", "))
    }
}

fn lat(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms
    )
}

fn print(r: &Report) {
    println!(
        "jxg-tools bench: {} cores ({}), {} connections, {} s per measurement",
        r.machine["cores"],
        r.machine["cpu"].as_str().unwrap_or(""),
        r.connections,
        r.seconds
    );
    println!(
        "  S       ES256 signatures on every core      {:>10.0} /s",
        r.sign_rate
    );
    println!(
        "  R_http  trivial 202, same stack and client  {:>10.0} /s  ({}; {})",
        r.http.rate,
        lat(&r.http.latency),
        errors(&r.http)
    );
    println!(
        "  the gateway started in {:.2} s",
        r.gateway_startup_seconds
    );
    for w in &r.workloads {
        println!(
            "  {:?} from {}: k = {} signatures, R_sign = S/k = {:.0} /s, L = {:.0} /s",
            w.workload, w.sender, w.signatures_per_message, w.sign_limit, w.limit
        );
        println!(
            "    flat out        {:>8.0} /s = {:.2} of L, {:.2} of R_http ({}; {})",
            w.flat_out.rate,
            w.ratio_to_limit,
            w.ratio_to_http,
            lat(&w.flat_out.latency),
            errors(&w.flat_out)
        );
        println!(
            "    at {:>6.0} /s   latency from due time: {} ({})",
            w.half_rate,
            lat(&w.at_half_rate.latency),
            errors(&w.at_half_rate)
        );
        let stages: Vec<String> = w
            .stage_us
            .iter()
            .map(|(s, us)| format!("{s} {us:.0}"))
            .collect();
        println!("    µs per message by stage: {}", stages.join(", "));
    }
    if let Some(d) = &r.inbox {
        println!(
            "  inbox: {} drained {} deliveries at {:.0} /s{} ({})",
            d.recipient,
            d.run.ok,
            d.run.rate,
            d.ratio_to_ingest
                .map(|x| format!(" = {x:.2} of the police ingest rate"))
                .unwrap_or_default(),
            errors(&d.run)
        );
    }
    println!(
        "  gateway resident memory after the run: {:.0} MiB",
        r.gateway_rss_mib
    );
    if let Some(pg) = &r.postgres {
        println!(
            "  the store in PostgreSQL: police flat out {:.0} /s{}{} ({})",
            pg.police_flat_out.rate,
            pg.ratio_to_limit
                .map(|x| format!(" = {x:.2} of L"))
                .unwrap_or_default(),
            pg.ratio_to_configured
                .map(|x| format!(", {x:.2} of the configured engine's"))
                .unwrap_or_default(),
            errors(&pg.police_flat_out)
        );
        println!(
            "    {} drained {} deliveries at {:.0} /s ({})",
            pg.drain.recipient,
            pg.drain.run.ok,
            pg.drain.run.rate,
            errors(&pg.drain.run)
        );
        let t = &pg.two_nodes;
        println!(
            "  two nodes on one database: police flat out {:.0} /s{}{}, {:.2} of one node on it ({})",
            t.rate,
            t.ratio_to_limit
                .map(|x| format!(" = {x:.2} of L"))
                .unwrap_or_default(),
            t.ratio_to_configured
                .map(|x| format!(", {x:.2} of one node on the configured engine"))
                .unwrap_or_default(),
            t.ratio_to_one_node,
            t.nodes.iter().map(errors).collect::<Vec<_>>().join("; ")
        );
        let l = &pg.node_loss;
        println!(
            "  a node SIGKILLed: the longest gap in a push recipient's deliveries {:.2} s = {:.2} × the lease ({:.0} s); {} of {} accepted delivered",
            l.longest_gap_seconds, l.gap_to_lease, l.lease_seconds, l.delivered, l.accepted
        );
    }
    if let Some(b) = &r.backlog {
        println!(
            "  backlog of {} messages: written in {:.1} s ({:.0} MiB on disk); start-up {:.2} s; resident {:.0} MiB at start, {:.0} MiB peak",
            b.messages,
            b.fill_seconds,
            b.store_mib,
            b.startup_seconds,
            b.rss_mib_at_start,
            b.peak_rss_mib
        );
        println!(
            "    police flat out with it stored {:>8.0} /s{} ({})",
            b.police_flat_out.rate,
            b.ingest_ratio_to_empty
                .map(|x| format!(" = {x:.2} of the rate with an empty store"))
                .unwrap_or_default(),
            errors(&b.police_flat_out)
        );
        println!(
            "    {} drained {} deliveries at {:.0} /s{} ({})",
            b.drain.recipient,
            b.drain.run.ok,
            b.drain.run.rate,
            b.drain
                .ratio_to_ingest
                .map(|x| format!(" = {x:.2} of the police ingest rate"))
                .unwrap_or_default(),
            errors(&b.drain.run)
        );
    }
}

/// `jxg-tools bench-fill`: writes `count` police reports into the configured store through the
/// pipeline and prints the seconds it took.
pub fn fill_command(config: &Path, samples: &Path, count: u64) -> i32 {
    let docs = match Documents::load(Workload::Police, samples) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("jxg-tools bench-fill: {e}");
            return 2;
        }
    };
    match fill(config, &docs, count) {
        Ok(seconds) => {
            println!("{seconds}");
            0
        }
        Err(e) => {
            eprintln!("jxg-tools bench-fill: {e}");
            1
        }
    }
}

/// `jxg-tools bench-baseline`: the gateway's listener stack (actix-web, rustls with the ring provider,
/// mutual TLS against the configured CA, the same connection hook) answering every request with
/// a trivial 202 after reading its body. Logs its `listening` line as the gateway does.
pub fn baseline(config: &Path) -> i32 {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jxg-tools bench-baseline: {e}");
            return 2;
        }
    };
    let tls = match jxg_gateway::tls::server_config(
        &config.resolve(&config.tls.ca),
        &config.resolve(&config.tls.cert),
        &config.resolve(&config.tls.key),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("jxg-tools bench-baseline: {e}");
            return 2;
        }
    };
    let registry = match jxg_core::registry::Registry::compile(&config) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("jxg-tools bench-baseline: {e}");
            return 2;
        }
    };
    let listener = match std::net::TcpListener::bind(config.listeners.authority) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("jxg-tools bench-baseline: {e}");
            return 2;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let served = actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| {
            App::new().default_service(web::to(|body: web::Bytes| async move {
                HttpResponse::Accepted().json(json!({"status": "accepted", "bytes": body.len()}))
            }))
        })
        .on_connect(jxg_gateway::ingress::identity::on_connect(
            registry,
            jxg_gateway::ingress::identity::Slots::new(usize::MAX),
        ))
        .listen_rustls_0_23(listener, tls)?
        .run();
        println!(
            "{}",
            json!({"fields": {"message": "listening", "authority": addr}})
        );
        server.await
    });
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("jxg-tools bench-baseline: {e}");
            1
        }
    }
}
