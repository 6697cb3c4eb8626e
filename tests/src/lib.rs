//! Harness for the end-to-end tests: a temporary configuration and PKI, the real `jxg` binary,
//! and real mutual-TLS clients.
#![forbid(unsafe_code)]

pub mod conformance;
pub mod nodes;
pub mod postgres;
pub mod stored;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// `tests/data/<rel>`: the sample documents.
pub fn sample(rel: &str) -> Vec<u8> {
    let p = samples_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A loopback port free now (a listener bound to port 0 and let go of).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The `jxg` binary cargo built for this workspace.
pub fn jxg_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/jxg");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` first (make test does)",
        p.display()
    );
    p
}

/// A temporary gateway home: configuration, certificates, store.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    /// A configuration with port-0 listeners and a fresh development PKI. The prosecution
    /// service pulls canonical messages here, so tests that do not exercise the broker observe
    /// it through its inbox; [`Home::with_broker`] keeps the shipped AMQP delivery.
    pub fn new() -> Self {
        Self::with_limits("")
    }

    /// As [`Home::new`], with extra TOML lines in `[limits]`.
    pub fn with_limits(limits: &str) -> Self {
        let home = Self::base(limits);
        home.edit_config(|t| {
            t.replace(
                "format = \"prosecution-flat\"\ndelivery = \"amqp\"",
                "format = \"canonical\"\ndelivery = \"pull\"",
            )
        });
        home
    }

    /// The shipped configuration, prosecution on the broker, with queues of this test's own.
    pub fn with_broker(tag: &str) -> Self {
        let home = Self::base("");
        let tag = format!("{tag}.{}", uuid::Uuid::now_v7().simple());
        home.edit_config(|t| {
            t.replace("\"jxg.prosecution.in\"", &format!("\"test.{tag}.in\""))
                .replace("\"jxg.prosecution.out\"", &format!("\"test.{tag}.out\""))
                .replace(
                    "\"jxg.prosecution.rejected\"",
                    &format!("\"test.{tag}.rejected\""),
                )
        });
        home
    }

    /// The configured queue names: (in, out, rejected).
    pub fn queues(&self) -> (String, String, String) {
        let text = std::fs::read_to_string(self.path().join("gateway.toml")).unwrap();
        let get = |k: &str| {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{k} =")))
                .unwrap();
            line.split('"').nth(1).unwrap().to_string()
        };
        (get("in_queue"), get("out_queue"), get("rejected_queue"))
    }

    /// The shipped configuration with port-0 listeners, with extra TOML lines in `[limits]`.
    fn base(limits: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let shipped =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway.toml"))
                .unwrap();
        let mut cfg = shipped
            .replace("127.0.0.1:8443", "127.0.0.1:0")
            .replace("127.0.0.1:9443", "127.0.0.1:0")
            .replace("drain_timeout_seconds = 30", "drain_timeout_seconds = 5");
        if !limits.is_empty() {
            cfg = cfg.replace("[limits]\n", &format!("[limits]\n{limits}\n"));
            cfg = dedupe_keys(&cfg);
        }
        std::fs::write(dir.path().join("gateway.toml"), cfg).unwrap();
        // the shipped policies, as a folder of the home's own that a test may edit and reload
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        for e in std::fs::read_dir(shipped_policies()).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), policies.join(e.file_name())).unwrap();
            }
        }
        let out = Command::new(jxg_bin())
            .current_dir(dir.path())
            .args([
                "certs",
                "init",
                "--config",
                "gateway.toml",
                "--dir",
                "certs/dev",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "certs init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cert(&self, name: &str) -> (String, String) {
        let d = self.path().join("certs/dev");
        (
            std::fs::read_to_string(d.join(format!("{name}.pem"))).unwrap(),
            std::fs::read_to_string(d.join(format!("{name}-key.pem"))).unwrap(),
        )
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.path().join("certs/dev/ca.pem")).unwrap()
    }

    /// Starts `jxg serve` on this home.
    pub fn start(&self) -> Gateway {
        Gateway::start(self, &[])
    }

    /// Starts `jxg serve` with extra environment variables (e.g. `RUST_LOG`).
    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Gateway {
        Gateway::start(self, env)
    }
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

/// The repository's `policies/` folder.
pub fn shipped_policies() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// Keeps the last value of each key in `[limits]` (test overrides come first).
fn dedupe_keys(cfg: &str) -> String {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut in_limits = false;
    for line in cfg.lines() {
        if line.starts_with('[') {
            in_limits = line.trim() == "[limits]";
        }
        if in_limits {
            if let Some((k, _)) = line.split_once('=') {
                if !seen.insert(k.trim().to_string()) {
                    continue;
                }
            }
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// A running gateway process (or any `jxg`-style server that logs a `listening` line).
pub struct Gateway {
    pub child: Child,
    pub authority: String,
    pub admin: String,
    /// Every line it wrote (stdout and stderr), when kept.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    /// From spawn to its `listening` line.
    pub startup: Duration,
}

impl Gateway {
    fn start(home: &Home, env: &[(&str, &str)]) -> Self {
        let args = ["serve", "--config", "gateway.toml"];
        Self::spawn(&jxg_bin(), &args, home.path(), env, true)
            .unwrap_or_else(|e| panic!("the gateway did not start: {e}"))
    }

    /// Starts `exe args` in `cwd` and waits (at most two minutes) for its `listening` line,
    /// whose fields give the listeners' addresses. With `keep_log` every line it writes is kept
    /// in [`Gateway::log`]; without, only error lines are passed on to this process's stderr.
    pub fn spawn(
        exe: &Path,
        args: &[&str],
        cwd: &Path,
        env: &[(&str, &str)],
        keep_log: bool,
    ) -> Result<Self, String> {
        let started = std::time::Instant::now();
        let mut child = Command::new(exe)
            .envs(env.iter().copied())
            .current_dir(cwd)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if keep_log {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .map_err(|e| format!("{} {}: {e}", exe.display(), args.join(" ")))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // only until the listening line: a load test's gateway writes a line a request
                if let Some(t) = &tx {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        let f = &v["fields"];
                        if f["message"] == "listening" {
                            let field = |k: &str| f[k].as_str().unwrap_or("").to_string();
                            let _ = t.send((field("authority"), field("admin")));
                            tx = None;
                        }
                    }
                }
                if keep_log {
                    l.lock().unwrap().push(line);
                } else if line.contains("\"level\":\"ERROR\"") {
                    eprintln!("{line}");
                }
            }
        });
        if let Some(stderr) = child.stderr.take() {
            let l = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok((authority, admin)) => Ok(Self {
                child,
                authority,
                admin,
                log,
                startup: started.elapsed(),
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "{} {} did not start: {:?}",
                    exe.display(),
                    args.join(" "),
                    log.lock().unwrap()
                ))
            }
        }
    }

    /// Resident and peak resident memory in MiB (Linux).
    pub fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.authority)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.admin)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
    }

    /// SIGTERM, and it must exit cleanly: else a panic naming its status and its last lines
    /// (when kept).
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate();
        if !status.success() {
            let log = self.log.lock().unwrap();
            panic!(
                "the gateway exited {status} on SIGTERM; its last lines: {:#?}",
                &log[log.len().saturating_sub(12)..]
            );
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client holding `cert`/`key` (or none), trusting `ca_pem`.
pub fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    jxg_gateway::peer::client(ca_pem, identity).unwrap()
}

/// A client for a registered authority (or role) of `home`.
pub fn client_for(home: &Home, name: &str) -> reqwest::Client {
    let (c, k) = home.cert(name);
    client(&home.ca_pem(), Some((&c, &k)))
}

pub use jxg_gateway::peer::{verify_compact, verify_detached};

/// A police document with its `dokumentid` replaced.
pub fn with_dokumentid(sample_rel: &str, id: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&sample(sample_rel)).unwrap();
    v["dokumentid"] = Value::from(id);
    serde_json::to_vec(&v).unwrap()
}

impl Home {
    /// Rewrites `gateway.toml` before the gateway starts.
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let p = self.path().join("gateway.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(text)).unwrap();
    }

    /// Has the gateway push to `authority`'s webhook at `url`.
    pub fn push_to(&self, authority: &str, url: &str) {
        self.edit_config(|text| {
            let blocks: Vec<String> = text
                .split("[[authority]]")
                .map(|b| {
                    if b.contains(&format!("id = \"{authority}\"")) {
                        b.replace(
                            "delivery = \"pull\"",
                            &format!("delivery = \"push\"\nwebhook = \"{url}\""),
                        )
                    } else {
                        b.to_string()
                    }
                })
                .collect();
            blocks.join("[[authority]]")
        });
    }

    /// Sets keys the configuration already has, wherever they are (`("retry_base_ms", "20")`,
    /// `("operation_timeout_ms", "1000")`, …).
    pub fn delivery(&self, settings: &[(&str, &str)]) {
        self.edit_config(|text| {
            text.lines()
                .map(|l| {
                    match settings
                        .iter()
                        .find(|(k, _)| l.starts_with(&format!("{k} =")))
                    {
                        Some((k, v)) => format!("{k} = {v}"),
                        None => l.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        });
    }
}

/// How a test webhook answers.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// 200 to everything.
    Ok,
    /// This status for the next `n` requests, then 200.
    FailTimes(usize, u16),
    /// Always this status.
    Always(u16),
    /// Never answers (holds each request open for an hour).
    Hang,
    /// 200, after this many milliseconds.
    Slow(u64),
}

/// One request a webhook took.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub signature: String,
    pub content_type: String,
    pub traceparent: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
    /// When it came.
    pub at: std::time::Instant,
}

/// A real HTTPS webhook that requires a client certificate of the sector CA.
pub struct Webhook {
    pub url: String,
    pub requests: Arc<std::sync::Mutex<Vec<Received>>>,
    pub mode: Arc<std::sync::Mutex<Mode>>,
}

impl Webhook {
    /// A webhook of `home`'s development CA on a free port of this machine.
    pub fn start(home: &Home, mode: Mode) -> Self {
        let d = home.path().join("certs/dev");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::issued(
            &d.join("ca.pem"),
            &d.join("ca-key.pem"),
            &home.path().join("webhook"),
            listener,
            "/jxg",
            mode,
        )
        .unwrap()
    }

    /// A webhook on `listener` at `path` with a server certificate issued now by the CA
    /// (`ca`, `ca_key`: PEM files), kept in `dir`, requiring a client certificate of that CA.
    pub fn issued(
        ca: &Path,
        ca_key: &Path,
        dir: &Path,
        listener: std::net::TcpListener,
        path: &str,
        mode: Mode,
    ) -> Result<Self, String> {
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let issued = jxg_gateway::certs::issue(
            &read(ca)?,
            &read(ca_key)?,
            "webhook",
            "urn:jxg:test:webhook",
            true,
            jxg_gateway::certs::Validity::days(30),
        )
        .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, issued.cert_pem).map_err(|e| e.to_string())?;
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&key)
                .and_then(|mut f| f.write_all(issued.key_pem.as_bytes()))
                .map_err(|e| format!("{}: {e}", key.display()))?;
        }
        let tls = jxg_gateway::tls::server_config(ca, &cert, &key).map_err(|e| e.to_string())?;
        Ok(Self::serve(listener, path, tls, mode))
    }

    /// A webhook on `listener` at `path`, with this TLS configuration (which should require
    /// the gateway's client certificate).
    pub fn serve(
        listener: std::net::TcpListener,
        path: &str,
        tls: rustls::ServerConfig,
        mode: Mode,
    ) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let url = format!(
            "https://127.0.0.1:{}{path}",
            listener.local_addr().unwrap().port()
        );
        let path = path.to_string();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mode = Arc::new(std::sync::Mutex::new(mode));
        let (r, m) = (requests.clone(), mode.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    let (r, m) = (r.clone(), m.clone());
                    App::new().route(
                        &path,
                        web::post().to(move |req: HttpRequest, body: web::Bytes| {
                            let (r, m) = (r.clone(), m.clone());
                            async move {
                                let now = *m.lock().unwrap();
                                let pause = match now {
                                    Mode::Hang => Some(Duration::from_secs(3600)),
                                    Mode::Slow(ms) => Some(Duration::from_millis(ms)),
                                    _ => None,
                                };
                                if let Some(pause) = pause {
                                    tokio::time::sleep(pause).await;
                                }
                                let status = {
                                    let mut mode = m.lock().unwrap();
                                    match *mode {
                                        Mode::Ok | Mode::Hang | Mode::Slow(_) => 200,
                                        Mode::Always(s) => s,
                                        Mode::FailTimes(0, _) => 200,
                                        Mode::FailTimes(n, s) => {
                                            *mode = Mode::FailTimes(n - 1, s);
                                            s
                                        }
                                    }
                                };
                                let h = |n: &str| {
                                    req.headers()
                                        .get(n)
                                        .and_then(|v| v.to_str().ok())
                                        .map(String::from)
                                };
                                r.lock().unwrap().push(Received {
                                    message_id: h("JXG-Message-Id").unwrap_or_default(),
                                    signature: h("JXG-Signature").unwrap_or_default(),
                                    content_type: h("Content-Type").unwrap_or_default(),
                                    traceparent: h("traceparent"),
                                    body: body.to_vec(),
                                    status,
                                    at: std::time::Instant::now(),
                                });
                                HttpResponse::build(
                                    actix_web::http::StatusCode::from_u16(status).unwrap(),
                                )
                                .finish()
                            }
                        }),
                    )
                })
                .workers(1)
                .listen_rustls_0_23(listener, tls)
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        });
        Self {
            url,
            requests,
            mode,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .cloned()
            .collect()
    }

    pub fn attempts(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Waits (bounded) until `cond` holds; the bound is a liveness limit, not a speed target.
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        for _ in 0..600 {
            if cond(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gave up waiting for: {what} ({} requests)", self.attempts());
    }
}

/// A canonical submission made from a stored-form sample: without `id` and `received_at`.
pub fn submission(sample_rel: &str, source_document_id: &str) -> Value {
    let mut v: Value = serde_json::from_slice(&sample(sample_rel)).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("id");
    o.remove("received_at");
    o.insert("source_document_id".into(), Value::from(source_document_id));
    v
}

/// An AMQP client of the test's own, playing the prosecution system on the real broker.
pub struct Prosecution {
    pub conn: lapin::Connection,
    pub channel: lapin::Channel,
}

/// One message taken from a queue.
#[derive(Debug, Clone)]
pub struct Taken {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
}

pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl Prosecution {
    pub async fn connect() -> Self {
        let conn = lapin::Connection::connect(BROKER_URL, lapin::ConnectionProperties::default())
            .await
            .expect("RabbitMQ answers on 127.0.0.1:5672 (make test starts it)");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self { conn, channel }
    }

    /// Declares the queues as the gateway does (durable quorum), so publishing before the
    /// gateway has started loses nothing.
    pub async fn declare(&self, queues: &[&str]) {
        let mut args = lapin::types::FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            lapin::types::AMQPValue::LongString("quorum".into()),
        );
        for q in queues {
            self.channel
                .queue_declare(
                    (*q).into(),
                    lapin::options::QueueDeclareOptions::durable(),
                    args.clone(),
                )
                .await
                .unwrap();
        }
    }

    /// Publishes a record set as the prosecution system does, and waits for the broker's confirm.
    pub async fn publish(&self, queue: &str, body: &[u8], message_id: &str) {
        let props = lapin::BasicProperties::default()
            .with_content_type("text/x-jxg-flat".into())
            .with_content_encoding("ISO-8859-1".into())
            .with_message_id(message_id.into())
            .with_delivery_mode(2);
        let taken = jxg_gateway::broker::publish_confirmed(&self.channel, queue, body, props)
            .await
            .unwrap();
        assert!(taken);
    }

    /// Takes one message, if there is one.
    pub async fn take(&self, queue: &str) -> Option<Taken> {
        let got = self
            .channel
            .basic_get(
                queue.into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .ok()??;
        let p = &got.delivery.properties;
        let mut headers = std::collections::BTreeMap::new();
        if let Some(h) = p.headers() {
            for (k, v) in h.inner() {
                if let lapin::types::AMQPValue::LongString(s) = v {
                    headers.insert(
                        k.as_str().to_string(),
                        String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    );
                }
            }
        }
        Some(Taken {
            body: got.delivery.data.clone(),
            message_id: p.message_id().as_ref().map(|s| s.as_str().to_string()),
            correlation_id: p.correlation_id().as_ref().map(|s| s.as_str().to_string()),
            content_type: p.content_type().as_ref().map(|s| s.as_str().to_string()),
            content_encoding: p
                .content_encoding()
                .as_ref()
                .map(|s| s.as_str().to_string()),
            headers,
        })
    }

    /// Waits (bounded) for the next message on a queue.
    pub async fn next(&self, queue: &str) -> Taken {
        for _ in 0..300 {
            if let Some(t) = self.take(queue).await {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("nothing arrived on {queue}");
    }

    /// How many messages wait on a queue.
    pub async fn depth(&self, queue: &str) -> u32 {
        let mut args = lapin::types::FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            lapin::types::AMQPValue::LongString("quorum".into()),
        );
        let q = self
            .channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .unwrap();
        q.message_count()
    }

    pub async fn delete(&self, queues: &[&str]) {
        for q in queues {
            let _ = self
                .channel
                .queue_delete((*q).into(), lapin::options::QueueDeleteOptions::default())
                .await;
        }
    }
}

/// The caller's inbox (up to 500 items).
pub async fn inbox(c: &reqwest::Client, gw: &Gateway) -> Vec<Value> {
    let r: Value = c
        .get(gw.url("/v1/inbox?limit=500"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["items"].as_array().unwrap().clone()
}

/// Acknowledges an inbox item, expecting 200.
pub async fn ack(c: &reqwest::Client, gw: &Gateway, id: &str) {
    let r = c
        .post(gw.url(&format!("/v1/inbox/{id}/ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The gateway's published keys.
pub async fn jwks(c: &reqwest::Client, gw: &Gateway) -> Value {
    c.get(gw.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs a JSON body to a path of the authority API.
pub async fn post_json(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    c.post(gw.url(path))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The body of a problem+json answer, asserting its status and media type (`what` names the
/// request in a failure).
pub async fn problem(r: reqwest::Response, status: u64, what: &str) -> Value {
    assert_eq!(r.status().as_u16() as u64, status, "{what}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    r.json().await.expect("a problem+json body")
}

/// `field` of each entry of `v["recipients"]` (a message's status for its sender, an item of
/// the admin's rectifications), by recipient; `-` where an entry has no such field.
pub fn by_recipient<'a>(v: &'a Value, field: &str) -> std::collections::BTreeMap<&'a str, &'a str> {
    v["recipients"]
        .as_array()
        .expect("a list of recipients")
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().expect("each names its recipient"),
                r[field].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

/// The `path` of every entry of a problem+json answer's `errors`.
pub fn problem_paths(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("a problem+json answer lists its errors")
        .iter()
        .map(|x| x["path"].as_str().expect("each error names its path"))
        .collect()
}

/// The message id of a 202 answer (asserting it is one).
pub async fn accepted_id(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A home on the broker with its queues declared, and the prosecution system's client.
pub async fn broker_home(tag: &str) -> (Home, Prosecution, (String, String, String)) {
    let home = Home::with_broker(tag);
    let queues = home.queues();
    let p = Prosecution::connect().await;
    p.declare(&[&queues.0, &queues.1, &queues.2]).await;
    (home, p, queues)
}

/// The sample story (tests/data/README.md, "The story") against a gateway on
/// [`Home::new`]'s topology (the prosecution takes canonical messages from its inbox): report,
/// indictment, verdict, admission, release; then every recipient takes and acknowledges what it
/// got. Returns the ids of the five accepted messages.
pub async fn play_story(home: &Home, gw: &Gateway) -> Vec<String> {
    let police = client_for(home, "police");
    let prosecution = client_for(home, "prosecution");
    let courts = client_for(home, "courts");
    let prison = client_for(home, "prison");
    let mut ids = Vec::new();
    let r = post_json(
        &police,
        gw,
        "/police/v1/dokumenter",
        sample("police/valid/anmeldelse-1.json"),
    )
    .await;
    ids.push(accepted_id(r).await);
    let indictment = submission(
        "canonical/valid/indictment.filed.json",
        "ANK-2026-004711-001",
    );
    let r = post_json(
        &prosecution,
        gw,
        "/v1/messages",
        serde_json::to_vec(&indictment).unwrap(),
    )
    .await;
    ids.push(accepted_id(r).await);
    let r = courts
        .post(gw.url("/courts/v1/dokumenter"))
        .header("Content-Type", "application/xml")
        .body(sample("court/valid/dom-1-latin1.xml"))
        .send()
        .await
        .unwrap();
    ids.push(accepted_id(r).await);
    for s in ["custody.admitted.json", "custody.released.json"] {
        let r = post_json(
            &prison,
            gw,
            "/v1/messages",
            sample(&format!("canonical/valid/{s}")),
        )
        .await;
        ids.push(accepted_id(r).await);
    }
    for c in [&police, &prosecution, &courts, &prison] {
        // one item per case at a time: take and acknowledge until nothing is left
        for _ in 0..10 {
            let items = inbox(c, gw).await;
            if items.is_empty() {
                break;
            }
            for item in items {
                ack(c, gw, item["id"].as_str().unwrap()).await;
            }
        }
    }
    ids
}

/// Runs `jxg` with `args` in `home`; (exit code, stdout, stderr).
pub fn jxg(home: &Home, args: &[&str]) -> (i32, String, String) {
    run_in(home, &jxg_bin(), args)
}

/// Runs `jxg-tools` (the load generator and the simulator) with `args` in `home`.
pub fn jxg_tools(home: &Home, args: &[&str]) -> (i32, String, String) {
    run_in(home, &jxg_bin().with_file_name("jxg-tools"), args)
}

fn run_in(home: &Home, exe: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(exe)
        .current_dir(home.path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Every CPR number (both spellings), name and address in the canonical samples.
pub fn personal_data() -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("cpr", Value::String(s)) => {
                            out.push(s.clone());
                            out.push(format!("{}-{}", &s[..6], &s[6..]));
                        }
                        ("given_name" | "family_name" | "address", Value::String(s)) => {
                            out.push(s.clone());
                            // the family name alone, and the street of an address
                            out.extend(s.split(',').next().map(String::from));
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    for e in std::fs::read_dir(samples_dir().join("canonical/valid")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue; // the folder's README
        }
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        walk(&v, &mut out);
    }
    out.sort();
    out.dedup();
    out.retain(|s| s.len() >= 4);
    out
}

/// One span an [`OtlpReceiver`] took, ids in lowercase hex.
#[derive(Debug, Clone)]
pub struct SeenSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    /// Every attribute of the span and of its events, as (key, value as text).
    pub attributes: Vec<(String, String)>,
}

/// A real OTLP/HTTP receiver (protobuf, `/v1/traces` and `/v1/metrics`) decoding what it takes
/// with the `opentelemetry-proto` types.
pub struct OtlpReceiver {
    pub url: String,
    pub spans: Arc<std::sync::Mutex<Vec<SeenSpan>>>,
    /// Every metric name and every attribute key and value of every exported data point.
    pub metric_text: Arc<std::sync::Mutex<Vec<String>>>,
}

fn any_text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

impl OtlpReceiver {
    pub fn start() -> Self {
        use actix_web::{App, HttpResponse, HttpServer, web};
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let spans = Arc::new(std::sync::Mutex::new(Vec::new()));
        let metric_text = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, m) = (spans.clone(), metric_text.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    let (s, m) = (s.clone(), m.clone());
                    App::new()
                        .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                        .route(
                            "/v1/traces",
                            web::post().to(move |body: web::Bytes| {
                                let s = s.clone();
                                async move {
                                    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
                                        return HttpResponse::BadRequest().finish();
                                    };
                                    let hex = |b: &[u8]| {
                                        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                                    };
                                    let mut out = s.lock().unwrap();
                                    for rs in req.resource_spans {
                                        for ss in rs.scope_spans {
                                            for sp in ss.spans {
                                                let mut attributes: Vec<(String, String)> = sp
                                                    .attributes
                                                    .iter()
                                                    .map(|kv| (kv.key.clone(), any_text(&kv.value)))
                                                    .collect();
                                                for ev in &sp.events {
                                                    attributes
                                                        .push(("event".into(), ev.name.clone()));
                                                    attributes.extend(ev.attributes.iter().map(
                                                        |kv| (kv.key.clone(), any_text(&kv.value)),
                                                    ));
                                                }
                                                out.push(SeenSpan {
                                                    trace_id: hex(&sp.trace_id),
                                                    span_id: hex(&sp.span_id),
                                                    parent_span_id: hex(&sp.parent_span_id),
                                                    name: sp.name,
                                                    attributes,
                                                });
                                            }
                                        }
                                    }
                                    HttpResponse::Ok()
                                        .content_type("application/x-protobuf")
                                        .finish()
                                }
                            }),
                        )
                        .route(
                            "/v1/metrics",
                            web::post().to(move |body: web::Bytes| {
                                let m = m.clone();
                                async move {
                                    let Ok(req) = ExportMetricsServiceRequest::decode(body) else {
                                        return HttpResponse::BadRequest().finish();
                                    };
                                    // names, and every attribute of every data point, as text
                                    let text = format!("{req:?}");
                                    m.lock().unwrap().push(text);
                                    HttpResponse::Ok()
                                        .content_type("application/x-protobuf")
                                        .finish()
                                }
                            }),
                        )
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        });
        Self {
            url,
            spans,
            metric_text,
        }
    }

    /// The environment that sends a gateway's traces and metrics here, exported quickly.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.url.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500".into()),
        ]
    }

    /// The spans of one trace taken so far.
    pub fn trace(&self, trace_id: &str) -> Vec<SeenSpan> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

/// One HTTP/1.1 keep-alive connection over mutual TLS, held open by the test, so that it can
/// show a connection outliving a change on the server and see which certificate the server sent.
pub struct TlsConn {
    stream: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
}

impl TlsConn {
    /// Connects to `addr` trusting `ca_pem`, presenting `identity` (certificate, key PEM).
    pub fn open(addr: &str, ca_pem: &str, identity: (&str, &str)) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(c.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let chain = CertificateDer::pem_slice_iter(identity.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let key =
            PrivateKeyDer::from_pem_slice(identity.1.as_bytes()).map_err(|e| e.to_string())?;
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(
            Arc::new(cfg),
            ServerName::try_from("localhost").map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(Self { stream })
    }

    /// The serial number of the certificate the server presented.
    pub fn server_serial(&self) -> Vec<u8> {
        let leaf = &self.stream.conn.peer_certificates().unwrap()[0];
        jxg_gateway::certs::serial(leaf.as_ref()).unwrap()
    }

    /// `GET path` on this connection; the status, or why there was none.
    pub fn get(&mut self, path: &str) -> Result<u16, String> {
        self.send(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
                .as_bytes(),
        )?;
        self.response()
    }

    /// Writes raw bytes on the connection (part of a request, say).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        use std::io::Write;
        self.stream.write_all(bytes).map_err(|e| e.to_string())?;
        self.stream.flush().map_err(|e| e.to_string())
    }

    /// Reads one response; its status, or why there was none.
    pub fn response(&mut self) -> Result<u16, String> {
        use std::io::Read;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match self.stream.read(&mut byte) {
                Ok(0) => return Err("the connection was closed".into()),
                Ok(_) => buf.push(byte[0]),
                Err(e) => return Err(e.to_string()),
            }
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status line")?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

/// An anmeldelse of its own case (so inbox order does not serialise the check).
pub fn police_report(n: usize, tag: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&sample("police/valid/anmeldelse-1.json")).unwrap();
    v["dokumentid"] = Value::from(format!("{tag}-{n}"));
    v["journalnr"] = Value::from(format!("1470-76543-{:05}-26", n % 100_000));
    serde_json::to_vec(&v).unwrap()
}

/// Takes and acknowledges every item in the inbox; their message ids. Answers over the
/// authority's rate limit are waited out.
pub async fn drain_inbox(c: &reqwest::Client, gw: &Gateway) -> Vec<String> {
    async fn limited(send: impl AsyncFn() -> reqwest::Response) -> reqwest::Response {
        loop {
            let r = send().await;
            if r.status() != 429 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut ids = Vec::new();
    loop {
        let r: Value = limited(async || c.get(gw.url("/v1/inbox?limit=500")).send().await.unwrap())
            .await
            .json()
            .await
            .unwrap();
        let items = r["items"].as_array().unwrap().clone();
        if items.is_empty() {
            return ids;
        }
        for i in items {
            let id = i["id"].as_str().unwrap().to_string();
            let url = gw.url(&format!("/v1/inbox/{id}/ack"));
            let a = limited(async || c.post(&url).send().await.unwrap()).await;
            assert_eq!(a.status(), 200);
            ids.push(id);
        }
    }
}

/// A recipient endpoint that resets every connection as soon as it is made (a TCP RST, before
/// any TLS), counting them.
pub struct Resetter {
    pub url: String,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Resetter {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://127.0.0.1:{}/jxg",
            listener.local_addr().unwrap().port()
        );
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // linger zero: close sends RST instead of FIN
                let _ = nix::sys::socket::setsockopt(
                    &stream,
                    nix::sys::socket::sockopt::Linger,
                    &nix::libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                );
                drop(stream);
            }
        });
        Self { url, connections }
    }
}

/// The courts' verdict sample (ISO-8859-1) as a document and case of its own.
pub fn court_verdict(n: usize) -> Vec<u8> {
    let text = sample("court/valid/dom-1-latin1.xml");
    let swap = |bytes: Vec<u8>, from: &str, to: &str| {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap_or_else(|| panic!("{from} is in the sample"));
        let mut out = bytes[..at].to_vec();
        out.extend_from_slice(to.as_bytes());
        out.extend_from_slice(&bytes[at + from.len()..]);
        out
    };
    let text = swap(
        text,
        "DOM-2026-000417",
        &format!("DOM-2026-{:06}", 900_000 + n % 100_000),
    );
    swap(
        text,
        "1470-76543-00012-26",
        &format!("1470-76543-{:05}-26", 40_000 + n % 50_000),
    )
}

/// `GET url` answered with JSON.
pub async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// The audit chain of the gateway verifies, as its auditor sees it.
pub async fn assert_audit_verifies(home: &Home, gw: &Gateway) {
    let v = get_json(
        &client_for(home, "auditor"),
        &gw.admin_url("/admin/v1/audit/verify"),
    )
    .await;
    assert_eq!(v["status"], "ok", "{v}");
}

/// Parses `/metrics` with a Prometheus text parser.
pub async fn metrics(home: &Home, gw: &Gateway) -> (String, prometheus_parse::Scrape) {
    let text = client_for(home, "operator")
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    (text, scrape)
}

/// The sum of `metric`'s samples whose labels include every pair of `with`.
pub fn sum(s: &prometheus_parse::Scrape, metric: &str, with: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .filter(|x| with.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Each recipient's delivery state of each of `sender`'s messages, as the sender's status
/// endpoint shows it: recipient → [(status, attempts, last error)].
pub async fn delivery_states(
    home: &Home,
    gw: &Gateway,
    sender: &str,
    ids: &[String],
) -> std::collections::BTreeMap<String, Vec<(String, u64, String)>> {
    let client = client_for(home, sender);
    let mut out: std::collections::BTreeMap<String, Vec<(String, u64, String)>> =
        Default::default();
    for id in ids {
        let s = get_json(&client, &gw.url(&format!("/v1/messages/{id}"))).await;
        for r in s["recipients"].as_array().unwrap() {
            out.entry(r["recipient"].as_str().unwrap().to_string())
                .or_default()
                .push((
                    r["status"].as_str().unwrap().to_string(),
                    r["attempts"].as_u64().unwrap_or(0),
                    r["last_error"].as_str().unwrap_or_default().to_string(),
                ));
        }
    }
    out
}

/// A TILT (the prosecution's indictment) of its own case and document id: `ANK-{tag}-{n}`.
pub fn tilt(n: u32, tag: &str) -> (Vec<u8>, String) {
    let mut bytes = sample("prosecution/valid/tilt-1.flat");
    let id = format!("ANK-{tag}-{n:04}");
    let journal = format!("1470-76543-{:05}-26", 200 + n);
    bytes[26..45].copy_from_slice(journal.as_bytes());
    let mut field = id.clone().into_bytes();
    field.resize(40, b' ');
    bytes[79..119].copy_from_slice(&field);
    (bytes, id)
}

/// Posts police report `n` of `tag` ([`police_report`]) to `url` (a gateway's
/// `/police/v1/dokumenter`): its status, its `Retry-After`, its body (JSON, or null).
pub async fn submit_report(
    c: &reqwest::Client,
    url: &str,
    n: usize,
    tag: &str,
) -> (u16, Option<String>, Value) {
    let r = c
        .post(url)
        .header("Content-Type", "application/json")
        .body(police_report(n, tag))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}
