//! `jxg-tools simulate`: the four authority systems of the sample story played against a running
//! gateway, each with its own client certificate and its own transport — the police system POSTs
//! police-json and pulls its inbox, the courts' system runs an HTTPS webhook and POSTs court XML,
//! the prosecution system publishes and takes flat record sets on RabbitMQ, the prison system
//! submits and pulls canonical messages. Every signature received is verified against the
//! gateway's JWKS. Prints each hop, then the case timeline and the audit verification from the
//! admin API; optionally writes the same as JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use jxg_gateway::config::{Config, Delivery};
use jxg_gateway::peer::{verify_compact, verify_detached};
use jxg_tests::{Mode, Webhook};

/// What `jxg-tools simulate` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub samples: PathBuf,
    /// Play the prosecution's leg on RabbitMQ (false: say it needs the broker, run the rest).
    pub broker: bool,
    pub report: Option<PathBuf>,
}

/// One step of the story.
struct Hop {
    step: &'static str,
    sender: &'static str,
    file: &'static str,
    /// The AMQP `message_id` of a record set (prosecution only).
    message_id: Option<&'static str>,
}

const STORY: [Hop; 8] = [
    hop("report", "police", "police/valid/anmeldelse-1.json"),
    hop(
        "arrest, custody hearing requested",
        "police",
        "police/valid/anholdelse-1.json",
    ),
    hop("remand", "courts", "court/valid/kendelse-varetaegt-1.xml"),
    Hop {
        step: "indictment",
        sender: "prosecution",
        file: "prosecution/valid/tilt-1.flat",
        message_id: Some("ANK-2026-004711-001"),
    },
    hop(
        "hearing",
        "courts",
        "court/valid/retsmoede-grundlovsforhoer-1.xml",
    ),
    hop("verdict", "courts", "court/valid/dom-1-latin1.xml"),
    hop(
        "admission",
        "prison",
        "canonical/valid/custody.admitted.json",
    ),
    hop("release", "prison", "canonical/valid/custody.released.json"),
];

const fn hop(step: &'static str, sender: &'static str, file: &'static str) -> Hop {
    Hop {
        step,
        sender,
        file,
        message_id: None,
    }
}

/// The story's main case (samples/README.md, "The story").
pub const STORY_CASE: &str = "1470-76543-00012-26";

/// What a recipient system took: the bytes and the detached signature.
#[derive(Debug, Clone)]
struct Got {
    body: Vec<u8>,
    signature: String,
}

/// Everything the recipient systems have taken, by message id.
#[derive(Default)]
struct Inboxes {
    got: Mutex<BTreeMap<(String, String), Got>>,
}

impl Inboxes {
    fn put(&self, recipient: &str, id: String, got: Got) {
        if let Ok(mut g) = self.got.lock() {
            g.insert((recipient.to_string(), id), got);
        }
    }
    fn take(&self, recipient: &str, id: &str) -> Option<Got> {
        self.got
            .lock()
            .ok()?
            .remove(&(recipient.to_string(), id.to_string()))
    }
}

struct Systems {
    config: Config,
    authority: String,
    admin: String,
    clients: BTreeMap<String, reqwest::Client>,
    jwks: Value,
    inboxes: Arc<Inboxes>,
    /// Where the gateway pushes to the courts.
    courts_webhook: Webhook,
    amqp: Option<lapin::Channel>,
}

/// Runs the story; the exit code is 0 when every hop reached every recipient with a signature
/// that verifies.
pub fn run(opts: &Options) -> i32 {
    let config = match Config::load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jxg-tools simulate: {e}");
            return 2;
        }
    };
    match actix_web::rt::System::new().block_on(play(config, opts)) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("jxg-tools simulate: {e}");
            2
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn play(config: Config, opts: &Options) -> Result<bool, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca_path = config.resolve(&config.tls.ca);
    let certs = ca_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let ca = read(&ca_path)?;
    let mut clients = BTreeMap::new();
    for who in [
        "police",
        "courts",
        "prosecution",
        "prison",
        "operator",
        "auditor",
    ] {
        let cert = read(&certs.join(format!("{who}.pem")))?;
        let key = read(&certs.join(format!("{who}-key.pem")))?;
        clients.insert(
            who.to_string(),
            jxg_gateway::peer::client(&ca, Some((&cert, &key)))?,
        );
    }
    let authority = format!("https://{}", config.listeners.authority);
    let admin = format!("https://{}", config.listeners.admin);
    let jwks: Value = clients["police"]
        .get(format!("{authority}/.well-known/jwks.json"))
        .send()
        .await
        .map_err(|e| format!("the gateway does not answer at {authority}: {e}"))?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let inboxes = Arc::new(Inboxes::default());

    // the courts' webhook, where the gateway pushes to them
    let courts = config
        .authority("courts")
        .ok_or("no authority `courts` is registered")?;
    if courts.delivery != Delivery::Push {
        return Err(
            "the simulation plays the courts' webhook: register courts with \
             delivery = \"push\" and a webhook on this machine (make demo writes such a \
             configuration)"
                .into(),
        );
    }
    let url = courts.webhook.clone().unwrap_or_default();
    let courts_webhook = start_webhook(&url, &certs, &ca_path)?;

    let amqp = if opts.broker {
        let conn = lapin::Connection::connect(&config.broker.url, Default::default())
            .await
            .map_err(|e| format!("RabbitMQ at {}: {e}", config.broker.url))?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        ch.confirm_select(Default::default())
            .await
            .map_err(|e| e.to_string())?;
        // the channel keeps the connection open
        std::mem::forget(conn);
        Some(ch)
    } else {
        println!(
            "RabbitMQ is not running: the prosecution's leg (record sets on {} and {}) is left \
             out. Start it with `rabbitmq-server -detached` (Debian: apt-get install \
             rabbitmq-server) and run again for the whole story.",
            config.broker.in_queue, config.broker.out_queue
        );
        None
    };
    let sys = Systems {
        config,
        authority,
        admin,
        clients,
        jwks,
        inboxes,
        courts_webhook,
        amqp,
    };
    println!(
        "The sample story through the gateway at {}:\n",
        sys.authority
    );
    let mut ok = true;
    let mut hops = Vec::new();
    for (n, hop) in STORY.iter().enumerate() {
        let (fine, report) = sys.hop(n + 1, hop, &opts.samples).await?;
        ok &= fine;
        hops.push(report);
    }
    let timeline = sys.timeline().await?;
    let verify: Value = sys.clients["auditor"]
        .get(format!("{}/admin/v1/audit/verify", sys.admin))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "\nThe audit log (GET /admin/v1/audit/verify, as the auditor): {}",
        if verify["status"] == "ok" {
            format!(
                "intact, {} entries, {} signed checkpoints",
                verify["report"]["entries"], verify["report"]["checkpoints"]
            )
        } else {
            format!("BROKEN: {verify}")
        }
    );
    ok &= verify["status"] == "ok";
    println!(
        "\n{}",
        if ok {
            "Every hop arrived and every signature verified."
        } else {
            "Something did not arrive or did not verify (see above)."
        }
    );
    if let Some(path) = &opts.report {
        let report = json!({"ok": ok, "hops": hops, "timeline": timeline, "audit": verify});
        std::fs::write(path, serde_json::to_vec_pretty(&report).unwrap_or_default())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(ok)
}

impl Systems {
    /// Sends one document as its system does, then waits for every recipient to take it.
    async fn hop(&self, n: usize, hop: &Hop, samples: &Path) -> Result<(bool, Value), String> {
        let file = samples.join(hop.file);
        let body = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = hop.file.rsplit('/').next().unwrap_or(hop.file);
        let started = Instant::now();
        let via = match hop.sender {
            "police" => "POST /police/v1/dokumenter",
            "courts" => "POST /courts/v1/dokumenter",
            "prison" => "POST /v1/messages",
            _ => "AMQP publish",
        };
        println!("{n}. {} — {} sends {name} ({via})", hop.step, hop.sender);
        let id = if hop.sender == "prosecution" {
            let Some(ch) = &self.amqp else {
                println!("   skipped: the prosecution's leg needs RabbitMQ\n");
                return Ok((true, json!({"step": hop.step, "skipped": "no broker"})));
            };
            let props = lapin::BasicProperties::default()
                .with_content_type("text/x-jxg-flat".into())
                .with_content_encoding("ISO-8859-1".into())
                .with_message_id(hop.message_id.unwrap_or_default().into())
                .with_delivery_mode(2);
            let taken = jxg_gateway::broker::publish_confirmed(
                ch,
                &self.config.broker.in_queue,
                &body,
                props,
            )
            .await
            .map_err(|e| e.to_string())?;
            if !taken {
                return Err("the broker refused the record set".into());
            }
            let id = self
                .find_by_source(hop.message_id.unwrap_or_default())
                .await?;
            println!("   acknowledged by the gateway as {id}");
            id
        } else {
            let media = if hop.file.ends_with(".xml") {
                "application/xml"
            } else {
                "application/json"
            };
            let r = self.clients[hop.sender]
                .post(format!("{}{}", self.authority, &via[5..]))
                .header("Content-Type", media)
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let answer: Value = r.json().await.unwrap_or(Value::Null);
            if status != 202 && status != 200 {
                println!("   REFUSED with {status}: {answer}\n");
                return Ok((false, json!({"step": hop.step, "refused": status})));
            }
            let receipt = answer["receipt"].as_str().unwrap_or_default();
            let verified = verify_compact(receipt, &self.jwks).is_ok();
            let id = answer["id"].as_str().unwrap_or_default().to_string();
            println!(
                "   {status} {id}, receipt signature {}",
                if verified {
                    "verified"
                } else {
                    "DOES NOT VERIFY"
                }
            );
            if !verified {
                return Ok((false, json!({"step": hop.step, "receipt": "unverified"})));
            }
            id
        };
        let meta = self.metadata(&id).await?;
        println!(
            "   canonical {} of case {}",
            meta["type"].as_str().unwrap_or("?"),
            meta["correlation_id"].as_str().unwrap_or("?")
        );
        let mut ok = true;
        let mut recipients = Vec::new();
        for r in meta["recipients"].as_array().cloned().unwrap_or_default() {
            let who = r["recipient"].as_str().unwrap_or_default().to_string();
            if r["status"] == "skipped" {
                println!(
                    "   ✗ {who}: not sent ({})",
                    r["reason"].as_str().unwrap_or("")
                );
                recipients.push(json!({"recipient": who, "skipped": r["reason"]}));
                continue;
            }
            let removed = r["removed"].as_array().cloned().unwrap_or_default();
            let arrived = self.arrival(&who, &id).await?;
            let verified = arrived
                .as_ref()
                .map(|g| verify_detached(&g.signature, &g.body, &self.jwks).is_ok());
            let latency = started.elapsed().as_millis();
            let format = r["format"].as_str().unwrap_or("?");
            let how = self
                .config
                .authority(&who)
                .map(|a| format!("{:?}", a.delivery).to_lowercase())
                .unwrap_or_default();
            match verified {
                Some(true) => println!(
                    "   → {who} ({format}, {how}): arrived after {latency} ms, signature verified"
                ),
                Some(false) => {
                    ok = false;
                    println!("   → {who} ({format}, {how}): signature DOES NOT VERIFY");
                }
                None if who == "prosecution" && self.amqp.is_none() => println!(
                    "   → {who} ({format}, {how}): waits in the outbox until RabbitMQ runs"
                ),
                None => {
                    ok = false;
                    println!("   → {who} ({format}, {how}): DID NOT ARRIVE");
                }
            }
            let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for x in &removed {
                by_rule
                    .entry(x["rule"].as_str().unwrap_or("?").to_string())
                    .or_default()
                    .push(x["path"].as_str().unwrap_or("?").to_string());
            }
            for (rule, paths) in &by_rule {
                println!("       policy {rule} removed {}", paths.join(", "));
            }
            recipients.push(json!({
                "recipient": who,
                "format": format,
                "arrived": arrived.is_some(),
                "verified": verified == Some(true),
                "latency_ms": latency as u64,
                "removed": removed,
            }));
        }
        println!();
        Ok((
            ok,
            json!({
                "step": hop.step,
                "sender": hop.sender,
                "file": hop.file,
                "id": id,
                "type": meta["type"],
                "correlation_id": meta["correlation_id"],
                "recipients": recipients,
            }),
        ))
    }

    async fn metadata(&self, id: &str) -> Result<Value, String> {
        self.clients["operator"]
            .get(format!("{}/admin/v1/messages/{id}", self.admin))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    /// The id the gateway gave a record set taken from the queue (bounded wait).
    async fn find_by_source(&self, source: &str) -> Result<String, String> {
        for _ in 0..300 {
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{}/admin/v1/messages?limit=500", self.admin);
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let page: Value = self.clients["operator"]
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                for m in page["items"].as_array().cloned().unwrap_or_default() {
                    if m["source_document_id"] == source && m["sender"] == "prosecution" {
                        return Ok(m["id"].as_str().unwrap_or_default().to_string());
                    }
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "the gateway did not take the record set {source} from the queue"
        ))
    }

    /// Waits (bounded) until `recipient`'s system has message `id`, the way it receives.
    async fn arrival(&self, recipient: &str, id: &str) -> Result<Option<Got>, String> {
        let delivery = self
            .config
            .authority(recipient)
            .map(|a| a.delivery)
            .ok_or_else(|| format!("{recipient} is not registered"))?;
        if delivery == Delivery::Amqp && self.amqp.is_none() {
            return Ok(None);
        }
        for _ in 0..150 {
            if let Some(g) = self.inboxes.take(recipient, id) {
                return Ok(Some(g));
            }
            match delivery {
                Delivery::Pull => self.pull(recipient).await?,
                Delivery::Amqp => self.consume(recipient).await?,
                Delivery::Push => {
                    let pushed = self
                        .courts_webhook
                        .delivered()
                        .into_iter()
                        .find(|r| r.message_id == id);
                    match pushed {
                        Some(r) => {
                            return Ok(Some(Got {
                                body: r.body,
                                signature: r.signature,
                            }));
                        }
                        None => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        }
        Ok(None)
    }

    /// One long poll of `recipient`'s inbox: everything offered is kept and acknowledged.
    async fn pull(&self, recipient: &str) -> Result<(), String> {
        let c = &self.clients[recipient];
        let items: Value = c
            .get(format!("{}/v1/inbox?limit=50&wait=1", self.authority))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        for item in items["items"].as_array().cloned().unwrap_or_default() {
            let id = item["id"].as_str().unwrap_or_default().to_string();
            let body = match (item["content"].as_str(), item["content_base64"].as_str()) {
                (Some(t), _) => t.as_bytes().to_vec(),
                (None, Some(b)) => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|e| e.to_string())?
                }
                _ => Vec::new(),
            };
            let signature = item["signature"].as_str().unwrap_or_default().to_string();
            c.post(format!("{}/v1/inbox/{id}/ack", self.authority))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            self.inboxes.put(recipient, id, Got { body, signature });
        }
        Ok(())
    }

    /// Takes what waits on the out-queue for `recipient` (the prosecution system).
    async fn consume(&self, recipient: &str) -> Result<(), String> {
        let Some(ch) = &self.amqp else { return Ok(()) };
        let got = ch
            .basic_get(
                self.config.broker.out_queue.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(got) = got else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        };
        let p = &got.delivery.properties;
        let id = p
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let signature =
            jxg_gateway::broker::header(p.headers().as_ref(), "jxg-signature").unwrap_or_default();
        self.inboxes.put(
            recipient,
            id,
            Got {
                body: got.delivery.data.clone(),
                signature,
            },
        );
        Ok(())
    }

    /// Prints the story case's timeline from the admin API and returns it.
    async fn timeline(&self) -> Result<Value, String> {
        let t: Value = self.clients["operator"]
            .get(format!(
                "{}/admin/v1/cases/{STORY_CASE}/timeline",
                self.admin
            ))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        println!("The case {STORY_CASE} (GET /admin/v1/cases/{STORY_CASE}/timeline):");
        for m in t["messages"].as_array().cloned().unwrap_or_default() {
            let to: Vec<String> = m["recipients"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r["recipient"].as_str().unwrap_or("?"),
                        r["delivered_at"].as_str().unwrap_or("(waiting)")
                    )
                })
                .collect();
            println!(
                "  {}  {:<17} from {:<11} → {}",
                m["accepted_at"].as_str().unwrap_or("?"),
                m["type"].as_str().unwrap_or("?"),
                m["sender"].as_str().unwrap_or("?"),
                to.join("; ")
            );
        }
        for s in t["stages"].as_array().cloned().unwrap_or_default() {
            println!(
                "  {} → {}: {} s",
                s["from"].as_str().unwrap_or("?"),
                s["to"].as_str().unwrap_or("?"),
                s["seconds"]
            );
        }
        Ok(t)
    }
}

/// The courts' HTTPS webhook at `url` (this machine): the test kit's webhook, with a server
/// certificate from the development CA in `certs` and the gateway's client certificate required.
fn start_webhook(url: &str, certs: &Path, ca: &Path) -> Result<Webhook, String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("the courts' webhook {url} is not https"))?;
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = format!("/{path}");
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen for the courts' webhook on {addr}: {e}"))?;
    let dir = std::env::temp_dir().join(format!("jxg-simulate-{}", std::process::id()));
    let hook = Webhook::issued(
        ca,
        &certs.join("ca-key.pem"),
        &dir,
        listener,
        &path,
        Mode::Ok,
    );
    let _ = std::fs::remove_dir_all(&dir);
    hook
}
