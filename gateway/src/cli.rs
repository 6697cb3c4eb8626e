//! The `jxg` command line (README, "Command line").

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use jxg_adapters::Context;
use jxg_adapters::canonical::Canonical;
use jxg_adapters::registry;
use jxg_schema::MasterData;

use crate::config::Config;
use crate::ingress::problem::Problem;

#[derive(Debug, Parser)]
#[command(name = "jxg", version, about = "jxg, the justice exchange gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Development certificates and keys.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Convert one document between formats, offline, by the gateway's own code path.
    Convert {
        /// police-json, canonical
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// The sender of canonical output (default: the source format's authority).
        #[arg(long)]
        sender: Option<String>,
        /// The document (default: standard input).
        file: Option<PathBuf>,
    },
    /// Check a canonical message (stored or submission form) against schema, master data and rules.
    Validate { file: PathBuf },
    /// Retention of bodies, metadata and audit entries.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// The store of a stopped gateway.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Security policies: check a policy folder, or explain the decisions about one message.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Purge what the retention periods allow, on a stopped gateway's store (the running
    /// gateway does the same every hour). `--at` runs it as of another time.
    Purge {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        #[arg(long)]
        data: Option<PathBuf>,
        /// RFC 3339 time to purge as of (default: now).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Migrate a stopped gateway's store to the current layout (the gateway also does it when
    /// it starts), printing how far it got. A migration that is stopped goes on where it was at
    /// the next run or start.
    Migrate {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        #[arg(long)]
        data: Option<PathBuf>,
        /// Messages copied per durable batch (four times as many audit entries).
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Copy a stopped gateway's whole store into an empty one of another engine (a sled store
    /// into PostgreSQL, say): every message, delivery, audit entry, checkpoint and key, so that
    /// `jxg audit verify` passes on the target and its gateway delivers what was pending.
    Copy {
        /// The source: a sled store's folder, or a `postgresql://` URL.
        #[arg(long)]
        from: String,
        /// The target (empty): a sled store's folder, or a `postgresql://` URL.
        #[arg(long)]
        to: String,
        /// Supplies the PostgreSQL pool size and call bound.
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain and the signed checkpoints of a stopped gateway's store; names the
    /// first bad `seq`. Exit 0 when it verifies, 1 when it does not.
    Verify {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The store folder (default: the configuration's `store.path`).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy folder against the schema and the registered authorities; every error
    /// with its file and line.
    Check {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The policy folder (default: the configuration's `policies`, else the embedded set).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Each decision about one message for one recipient, the policy behind it, and the fields
    /// removed with the rule that removed them.
    Explain {
        /// The message (default format canonical).
        #[arg(long)]
        message: PathBuf,
        #[arg(long)]
        recipient: String,
        /// police-json, court-xml, prosecution-flat, canonical
        #[arg(long, default_value = "canonical")]
        format: String,
        /// The sender (default: the message's `sender`, else the format's authority).
        #[arg(long)]
        sender: Option<String>,
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the development CA, certificates and keys for the configured authorities.
    Init {
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        #[arg(long, default_value = "certs/dev")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Revoke certificates: write the CRL (`tls.crl`) signed by the development CA, listing them
    /// and every certificate it listed before. A running gateway reads it within
    /// `tls.reload_interval_seconds`.
    Revoke {
        /// PEM files of the certificates to revoke.
        #[arg(required = true)]
        certs: Vec<PathBuf>,
        #[arg(long, default_value = "certs/dev")]
        dir: PathBuf,
        /// The CRL file; default `<dir>/crl.pem`.
        #[arg(long)]
        crl: Option<PathBuf>,
        /// Days until the CRL's next update.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
}

fn read_input(file: &Option<PathBuf>) -> Result<Vec<u8>, String> {
    match file {
        Some(f) => std::fs::read(f).map_err(|e| format!("{}: {e}", f.display())),
        None => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|e| e.to_string())?;
            Ok(v)
        }
    }
}

fn print_problem(p: Problem) -> i32 {
    eprintln!("{}", serde_json::to_string_pretty(&p.body()).expect("JSON"));
    1
}

/// `jxg convert`; returns the exit code.
pub fn convert(from: &str, to: &str, sender: Option<String>, file: &Option<PathBuf>) -> i32 {
    let (Some(src), Some(dst)) = (registry::get(from), registry::get(to)) else {
        eprintln!("jxg convert: formats are {}", registry::names().join(", "));
        return 2;
    };
    let bytes = match read_input(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("jxg convert: {e}");
            return 2;
        }
    };
    let md = MasterData::embedded();
    let ctx = Context { master_data: &md };
    let mut doc = match crate::pipeline::decode_any(src, &bytes, &md) {
        Ok(d) => d,
        Err(e) => return print_problem(Problem::from_rejection(e.rejection)),
    };
    if !src.name().starts_with("canonical") || sender.is_some() {
        let named = sender.or_else(|| src.native_authority().map(String::from));
        match &mut doc {
            jxg_schema::Document::Message(m) => m.sender = named,
            jxg_schema::Document::Withdrawal(w) => w.sender = named,
        }
    }
    let encoded = match &doc {
        jxg_schema::Document::Message(m) if m.replaces.is_some() && !dst.carries_corrections() => {
            Err(jxg_adapters::EncodeError::CannotCarry {
                format: dst.name(),
                what: "a correction".into(),
            })
        }
        jxg_schema::Document::Message(m) => dst.encode(m, &ctx),
        jxg_schema::Document::Withdrawal(w) => dst.encode_withdrawal(w, &ctx),
    };
    match encoded {
        Ok(out) => {
            // canonical output is pretty-printed
            let text = match serde_json::from_slice::<serde_json::Value>(&out) {
                Ok(v) if dst.name().starts_with("canonical") => {
                    serde_json::to_vec_pretty(&v).expect("JSON")
                }
                _ => out,
            };
            use std::io::Write;
            let mut stdout = std::io::stdout();
            let _ = stdout
                .write_all(&text)
                .and_then(|_| stdout.write_all(b"\n"));
            0
        }
        Err(e) => print_problem(Problem::new(
            422,
            "cannot-carry",
            "Cannot convert",
            e.to_string(),
        )),
    }
}

/// `jxg validate`; returns the exit code.
pub fn validate(file: &Path) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("jxg validate: {}: {e}", file.display());
            return 2;
        }
    };
    let md = MasterData::embedded();
    match crate::pipeline::decode_document(&Canonical, &bytes, &md) {
        Ok(m) => {
            println!("valid: {} {}", m.message_type(), m.source_document_id);
            0
        }
        Err(e) => print_problem(Problem::from_rejection(e.rejection)),
    }
}

/// `jxg certs init`; returns the exit code.
pub fn certs_init(config: &Path, dir: &Path, force: bool) -> i32 {
    let c = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jxg certs init: {e}");
            return 1;
        }
    };
    let ids: Vec<String> = c.authorities.iter().map(|a| a.id.clone()).collect();
    match crate::certs::init(dir, &ids, force) {
        Ok(files) => {
            println!("wrote {} files to {}", files.len(), dir.display());
            0
        }
        Err(e) => {
            eprintln!("jxg certs init: {e}");
            1
        }
    }
}

/// `jxg certs revoke`; returns the exit code.
pub fn certs_revoke(dir: &Path, crl: Option<PathBuf>, certs: &[PathBuf], days: i64) -> i32 {
    let crl = crl.unwrap_or_else(|| dir.join("crl.pem"));
    match crate::certs::revoke(dir, &crl, certs, days) {
        Ok(n) => {
            println!("{} lists {n} revoked certificates", crl.display());
            0
        }
        Err(e) => {
            eprintln!("jxg certs revoke: {e}");
            1
        }
    }
}

/// The policies a command works on: `--dir`, else the configuration's, else the embedded set.
fn load_policies(
    config: &Path,
    dir: &Option<PathBuf>,
) -> Result<crate::policy::Policies, Vec<String>> {
    use crate::policy::{Origin, Policies};
    let c = Config::load(config).map_err(|e| vec![e.to_string()])?;
    let origin = match (dir, &c.policies) {
        (Some(d), _) => Origin::Dir(d.clone()),
        (None, Some(d)) => Origin::Dir(c.resolve(d)),
        (None, None) => Origin::Embedded,
    };
    let authorities = c
        .authorities
        .iter()
        .map(|a| (a.id.clone(), a.clearances.clone()))
        .collect();
    origin
        .read()
        .and_then(|s| Policies::load(&s, &authorities))
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// `jxg policy check`; returns the exit code.
pub fn policy_check(config: &Path, dir: &Option<PathBuf>) -> i32 {
    match load_policies(config, dir) {
        Ok(p) => {
            println!(
                "ok: {} ({} policies and rules, digest {})",
                p.origin,
                p.ids().len(),
                p.digest
            );
            0
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("jxg policy check: {} error(s)", errors.len());
            1
        }
    }
}

/// `jxg policy explain`; returns the exit code.
pub fn policy_explain(
    message: &Path,
    recipient: &str,
    format: &str,
    sender: Option<String>,
    config: &Path,
    dir: &Option<PathBuf>,
) -> i32 {
    let policies = match load_policies(config, dir) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return 1;
        }
    };
    let Some(adapter) = registry::get(format) else {
        eprintln!(
            "jxg policy explain: formats are {}",
            registry::names().join(", ")
        );
        return 2;
    };
    let bytes = match std::fs::read(message) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("jxg policy explain: {}: {e}", message.display());
            return 2;
        }
    };
    let m = match crate::pipeline::decode_document(adapter, &bytes, &MasterData::embedded()) {
        Ok(m) => m,
        Err(e) => return print_problem(Problem::from_rejection(e.rejection)),
    };
    let Some(sender) = sender
        .or_else(|| m.sender.clone())
        .or_else(|| adapter.native_authority().map(String::from))
    else {
        eprintln!("jxg policy explain: the message names no sender; give --sender");
        return 2;
    };
    for line in crate::policy::explain(&policies, &m, &sender, recipient).lines() {
        println!("{line}");
    }
    0
}

/// The configuration and the store folder of a stopped gateway, for offline commands.
fn offline_path(
    what: &str,
    config: &Path,
    data: &Option<PathBuf>,
) -> Result<(Config, PathBuf), i32> {
    let c = Config::load(config).map_err(|e| {
        eprintln!("jxg {what}: {e}");
        2
    })?;
    let path = data.clone().unwrap_or_else(|| c.resolve(&c.store.path));
    // a store in PostgreSQL has no folder (a folder given on the command line is a sled store)
    let in_database = data.is_none() && c.store.engine == crate::config::EngineKind::Postgres;
    if !in_database && !path.exists() {
        eprintln!("jxg {what}: no store at {}", path.display());
        return Err(2);
    }
    Ok((c, path))
}

/// Runs `f` on a stopped gateway's store (opened, and migrated if it has to be).
fn offline_store<F>(what: &str, config: &Path, data: &Option<PathBuf>, f: F) -> i32
where
    F: AsyncFnOnce(Config, crate::store::Store) -> i32,
{
    let (c, path) = match offline_path(what, config, data) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jxg {what}: {e}");
            return 2;
        }
    };
    rt.block_on(async move {
        let opened = match (c.store.engine, data) {
            // a folder given on the command line is a sled store, whatever the configuration
            (crate::config::EngineKind::Postgres, None) => {
                match jxg_store_postgres::PgEngine::open(&crate::server::postgres_options(&c)).await
                {
                    Ok(e) => crate::store::Store::open(Arc::new(e), Default::default()).await,
                    Err(e) => Err(e),
                }
            }
            _ => crate::store::open_sled(&path, 64, Default::default()).await,
        };
        let store = match opened {
            Ok(s) => s,
            Err(e) => {
                eprintln!("jxg {what}: {e} (is the gateway still running?)");
                return 2;
            }
        };
        f(c, store).await
    })
}

/// A store named on the command line: a `postgresql://` (or `postgres://`) URL, else a sled
/// folder.
async fn named_engine(
    c: &Config,
    name: &str,
    create: bool,
) -> Result<Arc<dyn crate::store::Engine>, String> {
    if name.starts_with("postgresql://") || name.starts_with("postgres://") {
        let mut options = crate::server::postgres_options(c);
        options.url = name.to_string();
        let e = jxg_store_postgres::PgEngine::open(&options)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(Arc::new(e));
    }
    let path = Path::new(name);
    if !create && !path.exists() {
        return Err(format!("no store at {}", path.display()));
    }
    let e = crate::store::SledEngine::open(path, 64).map_err(|e| e.to_string())?;
    Ok(Arc::new(e))
}

/// `jxg store copy`; returns the exit code.
pub fn store_copy(config: &Path, from: &str, to: &str) -> i32 {
    let c = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jxg store copy: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jxg store copy: {e}");
            return 2;
        }
    };
    rt.block_on(async move {
        let (source, target) = match (
            named_engine(&c, from, false).await,
            named_engine(&c, to, true).await,
        ) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) => {
                eprintln!("jxg store copy: the source: {e} (is its gateway still running?)");
                return 2;
            }
            (_, Err(e)) => {
                eprintln!("jxg store copy: the target: {e}");
                return 2;
            }
        };
        let report = |d: &crate::store::copy::Copied| {
            println!(
                "copied {} messages, {} deliveries, {} audit entries",
                d.messages, d.deliveries, d.audit_entries
            );
        };
        match crate::store::copy::copy(source.as_ref(), target.as_ref(), report).await {
            Ok(d) => {
                println!(
                    "done: {} messages, {} deliveries, {} audit entries, {} checkpoints",
                    d.messages, d.deliveries, d.audit_entries, d.checkpoints
                );
                0
            }
            Err(e) => {
                eprintln!("jxg store copy: {e}");
                1
            }
        }
    })
}

/// `jxg store migrate`; returns the exit code.
pub fn store_migrate(config: &Path, data: &Option<PathBuf>, batch: usize) -> i32 {
    let (_, path) = match offline_path("store migrate", config, data) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut report = |p: crate::store::MigrationProgress| {
        if p.phase != "done" {
            println!("{}: {} of {}", p.phase, p.done, p.total);
        }
    };
    match crate::store::migrate_sled(&path, 64, batch, &mut report) {
        Ok(()) => {
            println!("the store is at layout v2");
            0
        }
        Err(e) => {
            eprintln!("jxg store migrate: {e} (run it again to go on from where it stopped)");
            1
        }
    }
}

/// `jxg retention purge`; returns the exit code.
pub fn retention_purge(config: &Path, data: &Option<PathBuf>, at: &Option<String>) -> i32 {
    let now = match at {
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => t.timestamp(),
            Err(_) => {
                eprintln!("jxg retention purge: --at is not an RFC 3339 time");
                return 2;
            }
        },
        None => chrono::Utc::now().timestamp(),
    };
    offline_store(
        "retention purge",
        config,
        data,
        async move |c, store| match store
            .purge(now, c.retention.body_days, c.retention.audit_days)
            .await
        {
            Ok(p) => {
                println!(
                    "purged {} bodies, {} messages' metadata, {} audit entries",
                    p.bodies, p.messages, p.audit_entries
                );
                if p.unreadable > 0 {
                    println!(
                        "skipped {} messages whose stored record cannot be read (left in place; \
                         their ids are in the log)",
                        p.unreadable
                    );
                }
                0
            }
            Err(e) => {
                eprintln!("jxg retention purge: {e}");
                1
            }
        },
    )
}

/// `jxg audit verify`; returns the exit code.
pub fn audit_verify(config: &Path, data: &Option<PathBuf>) -> i32 {
    offline_store("audit verify", config, data, async |_, store| {
        let keys: Vec<josekit::jwk::Jwk> = match store.signing_keys().await {
            Ok(k) => k
                .into_iter()
                .filter_map(|v| v["jwk"].as_object().cloned())
                .filter_map(|m| josekit::jwk::Jwk::from_map(m).ok())
                .collect(),
            Err(e) => {
                eprintln!("jxg audit verify: {e}");
                return 2;
            }
        };
        match store.verify_audit(&keys).await {
            Ok(Ok(r)) => {
                println!(
                    "ok: {} entries (seq {}..{}), {} signed checkpoints, last hash {}",
                    r.entries,
                    r.first_seq.unwrap_or(0),
                    r.last_seq.unwrap_or(0),
                    r.checkpoints,
                    r.last_hash
                );
                0
            }
            Ok(Err(bad)) => {
                println!("bad: {bad}");
                1
            }
            Err(e) => {
                eprintln!("jxg audit verify: {e}");
                2
            }
        }
    })
}
