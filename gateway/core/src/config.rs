//! Configuration: one TOML file, validated whole (every error at once) before anything is opened.
//! Paths are relative to the file. Unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole gateway configuration (`gateway.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener addresses. Port 0 picks a free port; the bound addresses are logged at start.
    #[serde(default)]
    pub listeners: Listeners,
    /// TLS files of both listeners: the sector CA that client certificates must chain to, and the
    /// gateway's own certificate and key.
    #[serde(default)]
    pub tls: Tls,
    /// The gateway's signing key (ES256, PKCS#8 PEM, not readable by group or others).
    #[serde(default)]
    pub signing: Signing,
    /// The audit log's secret pseudonym key.
    #[serde(default)]
    pub audit: AuditConfig,
    /// How long bodies and metadata are kept.
    #[serde(default)]
    pub retention: Retention,
    /// The message store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Request and inbox limits.
    #[serde(default)]
    pub limits: Limits,
    /// A folder replacing the embedded master data (the four JSON files of `schemas/master-data/`).
    #[serde(default)]
    pub master_data: Option<PathBuf>,
    /// A folder of policy files (`schema.cedarschema`, `*.cedar`, `disclosure.toml`) replacing
    /// the embedded ones; `POST /admin/v1/policies/reload` re-reads it.
    #[serde(default)]
    pub policies: Option<PathBuf>,
    /// Push delivery: retries, backoff, concurrency, circuit breaker.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// The message broker (AMQP 0-9-1) of authorities delivered by `amqp`.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// The registered authorities.
    #[serde(default, rename = "authority")]
    pub authorities: Vec<Authority>,
    /// The folder the configuration file is in; relative paths are resolved against it.
    #[serde(skip)]
    pub base: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// Authority API (mutual TLS). Default `127.0.0.1:8443`.
    #[serde(default = "default_authority_addr")]
    pub authority: SocketAddr,
    /// Admin API (mutual TLS). Default `127.0.0.1:9443`.
    #[serde(default = "default_admin_addr")]
    pub admin: SocketAddr,
    /// How long in-flight requests may take to finish on SIGTERM, in seconds. Default 30.
    #[serde(default = "default_drain")]
    pub drain_timeout_seconds: u64,
    /// How long a client has to send a request's head (line and headers) once it starts, in
    /// milliseconds; later, 408 and the connection closed. Default 5000.
    #[serde(default = "default_header_read_ms")]
    pub header_read_ms: u64,
}
fn default_header_read_ms() -> u64 {
    5000
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            authority: default_authority_addr(),
            admin: default_admin_addr(),
            drain_timeout_seconds: default_drain(),
            header_read_ms: default_header_read_ms(),
        }
    }
}

fn default_authority_addr() -> SocketAddr {
    "127.0.0.1:8443".parse().expect("literal address")
}
fn default_admin_addr() -> SocketAddr {
    "127.0.0.1:9443".parse().expect("literal address")
}
fn default_drain() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the sector CA. Default `certs/dev/ca.pem`.
    #[serde(default = "default_ca")]
    pub ca: PathBuf,
    /// PEM certificate of the gateway. Default `certs/dev/gateway.pem`.
    #[serde(default = "default_cert")]
    pub cert: PathBuf,
    /// PEM private key of the gateway. Default `certs/dev/gateway-key.pem`.
    #[serde(default = "default_key")]
    pub key: PathBuf,
    /// Days before the gateway's certificate or the CA expires from which the gateway warns at
    /// start. Default 30.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
    /// PEM file of certificate revocation lists (`X509 CRL`), one from each CA in `ca`; a client
    /// certificate they do not decide is refused. None by default.
    #[serde(default)]
    pub crl: Option<PathBuf>,
    /// How often the gateway looks for a changed certificate, key, CA bundle or CRL file and
    /// reads the set again; 0 never. Default 5.
    #[serde(default = "default_reload_interval")]
    pub reload_interval_seconds: u64,
}
fn default_reload_interval() -> u64 {
    5
}
fn default_expiry_warning_days() -> u32 {
    30
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            ca: default_ca(),
            cert: default_cert(),
            key: default_key(),
            expiry_warning_days: default_expiry_warning_days(),
            crl: None,
            reload_interval_seconds: default_reload_interval(),
        }
    }
}
fn default_ca() -> PathBuf {
    "certs/dev/ca.pem".into()
}
fn default_cert() -> PathBuf {
    "certs/dev/gateway.pem".into()
}
fn default_key() -> PathBuf {
    "certs/dev/gateway-key.pem".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// PKCS#8 PEM ES256 key. Default `certs/dev/signing-key.pem`.
    #[serde(default = "default_signing_key")]
    pub key: PathBuf,
}

impl Default for Signing {
    fn default() -> Self {
        Self {
            key: default_signing_key(),
        }
    }
}
fn default_signing_key() -> PathBuf {
    "certs/dev/signing-key.pem".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// At least 32 random bytes, not readable by group or others; CPR numbers in the audit log
    /// are HMAC-SHA256 under it. Default `certs/dev/audit-hmac.key`.
    #[serde(default = "default_audit_key")]
    pub hmac_key: PathBuf,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            hmac_key: default_audit_key(),
        }
    }
}

fn default_audit_key() -> PathBuf {
    "certs/dev/audit-hmac.key".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days after its last delivery that a message's body is purged. Default 90.
    #[serde(default = "default_body_days")]
    pub body_days: u32,
    /// Days that metadata and audit entries are kept. Default 1826 (five years).
    #[serde(default = "default_audit_days")]
    pub audit_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            body_days: default_body_days(),
            audit_days: default_audit_days(),
        }
    }
}

fn default_body_days() -> u32 {
    90
}
fn default_audit_days() -> u32 {
    1826
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Which engine keeps the store: `sled` (embedded, in `path`) or `postgres` (at `url`).
    /// Default `sled`.
    #[serde(default)]
    pub engine: EngineKind,
    /// The PostgreSQL database, a libpq URL (`postgresql://jxg@127.0.0.1:5432/jxg`), for
    /// `engine = "postgres"`.
    #[serde(default)]
    pub url: Option<String>,
    /// Connections to PostgreSQL. Default 8.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// The bound of every call to PostgreSQL (a connection, a read, a write), in milliseconds.
    /// Default 5000.
    #[serde(default = "default_database_timeout_ms")]
    pub database_timeout_ms: u64,
    /// This node's name, unique among the nodes sharing one PostgreSQL database: it holds its
    /// delivery and inbox leases under it, and a second process of the same name is refused.
    /// Default: the host's name.
    #[serde(default = "default_node")]
    pub node: String,
    /// Seconds a node's lease of a push delivery in flight lasts; a node that dies holding
    /// one lets it go this long after it took it, and another node takes the delivery over.
    /// Must be more than `delivery.request_timeout_seconds`. Default 60.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// The sled folder. Default `data`.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// sled's page cache in MiB (sled's own default is 1 GiB). Default 16: what the gateway keeps
    /// resident beside it grows with the store (about 185 MiB with a million messages stored).
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// Microseconds a group commit waits after its first writer for more before it flushes.
    /// Default 0: flush at once, taking every writer already waiting.
    #[serde(default)]
    pub commit_window_us: u64,
    /// The most writers one flush covers. Default 1024.
    #[serde(default = "default_commit_batch_max")]
    pub commit_batch_max: usize,
    /// Writers waiting for a flush beyond which new submissions answer 503 with Retry-After
    /// until the disk catches up. Default 4096.
    #[serde(default = "default_commit_queue_max")]
    pub commit_queue_max: usize,
}

/// The store's engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    #[default]
    Sled,
    Postgres,
}

fn default_node() -> String {
    whoami::hostname()
        .ok()
        .map(|h| {
            h.chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(64)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".into())
}
fn default_lease_seconds() -> u64 {
    60
}
fn default_pool_size() -> usize {
    8
}
fn default_database_timeout_ms() -> u64 {
    5000
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::default(),
            url: None,
            pool_size: default_pool_size(),
            database_timeout_ms: default_database_timeout_ms(),
            node: default_node(),
            lease_seconds: default_lease_seconds(),
            path: default_store_path(),
            cache_mb: default_cache_mb(),
            commit_window_us: 0,
            commit_batch_max: default_commit_batch_max(),
            commit_queue_max: default_commit_queue_max(),
        }
    }
}

impl StoreConfig {
    /// A delivery attempt's lease.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_seconds)
    }

    /// The group commit's batching.
    pub fn tuning(&self) -> crate::store::CommitTuning {
        crate::store::CommitTuning {
            window: std::time::Duration::from_micros(self.commit_window_us),
            max_batch: self.commit_batch_max,
        }
    }
}
fn default_commit_batch_max() -> usize {
    1024
}
fn default_commit_queue_max() -> usize {
    4096
}
fn default_store_path() -> PathBuf {
    "data".into()
}
fn default_cache_mb() -> u64 {
    16
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body in bytes. Default 1 MiB.
    #[serde(default = "default_body")]
    pub body_bytes: usize,
    /// Seconds an offered inbox item stays hidden before it is offered again. Default 30.
    #[serde(default = "default_visibility")]
    pub inbox_visibility_seconds: u64,
    /// The longest an inbox long poll holds a request, whatever `wait` asks (0-30). Default 30.
    #[serde(default = "default_max_wait")]
    pub inbox_max_wait_seconds: u64,
    /// Body limits of single routes, by path, in place of `body_bytes`
    /// (`"/police/v1/dokumenter" = 262144`). None by default.
    #[serde(default)]
    pub body_bytes_per_route: std::collections::BTreeMap<String, usize>,
    /// How long a request's whole body may take to arrive, in seconds; later, 408. Default 30.
    #[serde(default = "default_body_read")]
    pub body_read_seconds: u64,
    /// The deepest nesting of objects and arrays a JSON body may have. Default 32.
    #[serde(default = "default_json_depth")]
    pub json_depth: usize,
    /// The longest string (member name or value, in bytes as sent) a JSON body may hold.
    /// Default 65536.
    #[serde(default = "default_json_string_bytes")]
    pub json_string_bytes: usize,
    /// Connections one certificate holder may have open on a listener at once; requests on the
    /// ones over it get 429 and the connection is closed. Default 64.
    #[serde(default = "default_connections_per_peer")]
    pub connections_per_peer: usize,
    /// How often the count of refusals made before any work (429, 401, 403, 503) is written to
    /// the audit log, one summary entry per sender, answer and route, in seconds. Default 60.
    #[serde(default = "default_refusal_summary_seconds")]
    pub refusal_summary_seconds: u64,
}

fn default_refusal_summary_seconds() -> u64 {
    60
}

fn default_body_read() -> u64 {
    30
}
fn default_json_depth() -> usize {
    32
}
fn default_json_string_bytes() -> usize {
    65536
}
fn default_connections_per_peer() -> usize {
    64
}

fn default_max_wait() -> u64 {
    30
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: default_body(),
            inbox_visibility_seconds: default_visibility(),
            inbox_max_wait_seconds: default_max_wait(),
            body_bytes_per_route: Default::default(),
            body_read_seconds: default_body_read(),
            json_depth: default_json_depth(),
            json_string_bytes: default_json_string_bytes(),
            connections_per_peer: default_connections_per_peer(),
            refusal_summary_seconds: default_refusal_summary_seconds(),
        }
    }
}
fn default_body() -> usize {
    1024 * 1024
}
fn default_visibility() -> u64 {
    30
}

/// How messages reach an authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The authority pulls from `GET /v1/inbox`.
    Pull,
    /// The gateway POSTs each document to the authority's `webhook`.
    Push,
    /// The authority publishes to and consumes from the broker's queues.
    Amqp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[serde(default = "default_broker_url")]
    pub url: String,
    /// Where the authority publishes. Default `jxg.prosecution.in`.
    #[serde(default = "default_in_queue")]
    pub in_queue: String,
    /// Where the gateway publishes for the authority. Default `jxg.prosecution.out`.
    #[serde(default = "default_out_queue")]
    pub out_queue: String,
    /// Where refused messages go, with the reason in `x-jxg-error`. Default `jxg.prosecution.rejected`.
    #[serde(default = "default_rejected_queue")]
    pub rejected_queue: String,
    /// Unacknowledged deliveries the gateway takes at once. Default 16.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// The bound of each call to the broker other than a publication (connect, channel open,
    /// declare, consume setup, ack), in milliseconds. Default 5000.
    #[serde(default = "default_operation_timeout_ms")]
    pub operation_timeout_ms: u64,
    /// How many times a message of the in-queue is delivered without being accepted before it
    /// goes to the rejected queue with its last reason (the quorum queue's
    /// `x-delivery-count`). Default 5.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            url: default_broker_url(),
            in_queue: default_in_queue(),
            out_queue: default_out_queue(),
            rejected_queue: default_rejected_queue(),
            prefetch: default_prefetch(),
            operation_timeout_ms: default_operation_timeout_ms(),
            max_deliveries: default_max_deliveries(),
        }
    }
}
fn default_operation_timeout_ms() -> u64 {
    5000
}
fn default_max_deliveries() -> u32 {
    5
}
fn default_broker_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}
fn default_in_queue() -> String {
    "jxg.prosecution.in".into()
}
fn default_out_queue() -> String {
    "jxg.prosecution.out".into()
}
fn default_rejected_queue() -> String {
    "jxg.prosecution.rejected".into()
}
fn default_prefetch() -> u16 {
    16
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// First retry delay in milliseconds; each further retry doubles it (full jitter). Default 1000.
    #[serde(default = "default_retry_base")]
    pub retry_base_ms: u64,
    /// Longest retry delay in milliseconds. Default 300000 (5 minutes).
    #[serde(default = "default_retry_cap")]
    pub retry_cap_ms: u64,
    /// Attempts before a delivery is dead-lettered. Default 12.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Deliveries in flight at once per recipient. Default 4.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds one push may take before it counts as failed. Default 30.
    #[serde(default = "default_push_timeout")]
    pub request_timeout_seconds: u64,
    /// Consecutive failures that open a recipient's circuit breaker. Default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// Milliseconds an open breaker waits before one probe. Default 30000.
    #[serde(default = "default_breaker_cooldown")]
    pub breaker_cooldown_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry_base_ms: default_retry_base(),
            retry_cap_ms: default_retry_cap(),
            max_attempts: default_max_attempts(),
            concurrency: default_concurrency(),
            request_timeout_seconds: default_push_timeout(),
            breaker_failures: default_breaker_failures(),
            breaker_cooldown_ms: default_breaker_cooldown(),
        }
    }
}
fn default_retry_base() -> u64 {
    1000
}
fn default_retry_cap() -> u64 {
    300_000
}
fn default_max_attempts() -> u32 {
    12
}
fn default_concurrency() -> usize {
    4
}
fn default_push_timeout() -> u64 {
    30
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown() -> u64 {
    30_000
}

/// One registered authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// Lowercase slug: `police`, `prosecution`, `courts`, `prison`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The certificate identity: SAN URI `urn:jxg:authority:<id>`.
    pub certificate: String,
    /// The adapter that encodes messages for it (`police-json`, `canonical`, …).
    pub format: String,
    /// How it receives messages.
    pub delivery: Delivery,
    /// The HTTPS URL documents are POSTed to, for `delivery = "push"`.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Its public signing keys (a JWKS file), for sender-signed `application/jose` submissions.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Sustained requests per second it may make; over it, 429 with Retry-After. Default 200.
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Requests it may make at once above the sustained rate. Default 400.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Clearances it holds: `protected-address`, `secret`. Default none.
    #[serde(default)]
    pub clearances: Vec<String>,
}

fn default_rate() -> f64 {
    200.0
}
fn default_burst() -> u32 {
    400
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (names the key and line).
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// The configuration parsed but breaks rules; every problem is listed.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut c = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        c.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if c.base.as_os_str().is_empty() {
            c.base = PathBuf::from(".");
        }
        c.validate().map_err(ConfigError::Invalid)?;
        Ok(c)
    }

    /// Parses TOML text without validating.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Every rule broken, at once.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.authorities {
            if !seen.insert(a.id.as_str()) {
                errs.push(format!("authority {} is registered twice", a.id));
            }
            let slug_ok = !a.id.is_empty()
                && a.id.len() <= 32
                && a.id.starts_with(|c: char| c.is_ascii_lowercase())
                && a.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !slug_ok {
                errs.push(format!("authority id {:?} must be a lowercase slug", a.id));
            }
            if a.certificate != format!("urn:jxg:authority:{}", a.id) {
                errs.push(format!(
                    "authority {}: certificate must be urn:jxg:authority:{}",
                    a.id, a.id
                ));
            }
            if jxg_adapters::registry::get(&a.format).is_none() {
                errs.push(format!(
                    "authority {}: format {:?} has no adapter (known: {})",
                    a.id,
                    a.format,
                    jxg_adapters::registry::names().join(", ")
                ));
            }
            match (a.delivery, &a.webhook) {
                (Delivery::Push, None) => {
                    errs.push(format!("authority {}: push delivery needs a webhook", a.id))
                }
                (Delivery::Push, Some(w)) if !w.starts_with("https://") => errs.push(format!(
                    "authority {}: the webhook must be an https:// URL",
                    a.id
                )),
                (Delivery::Pull, Some(_)) => errs.push(format!(
                    "authority {}: a webhook is only for push delivery",
                    a.id
                )),
                _ => {}
            }
            if !(a.rate_per_second > 0.0 && a.rate_per_second.is_finite()) || a.burst == 0 {
                errs.push(format!(
                    "authority {}: rate_per_second must be above 0 and burst at least 1",
                    a.id
                ));
            }
            for c in &a.clearances {
                if !matches!(c.as_str(), "protected-address" | "secret") {
                    errs.push(format!("authority {}: unknown clearance {c:?}", a.id));
                }
            }
        }
        if self
            .authorities
            .iter()
            .filter(|a| a.delivery == Delivery::Amqp)
            .count()
            > 1
        {
            errs.push(
                "only one authority can be delivered by amqp (it owns the broker's queues)".into(),
            );
        }
        if !self.broker.url.starts_with("amqp://") && !self.broker.url.starts_with("amqps://") {
            errs.push("broker.url must be an amqp:// or amqps:// URL".into());
        }
        if self.broker.operation_timeout_ms == 0 || self.broker.max_deliveries == 0 {
            errs.push(
                "broker.operation_timeout_ms and broker.max_deliveries must be at least 1".into(),
            );
        }
        if self.broker.prefetch == 0 {
            errs.push("broker.prefetch must be at least 1".into());
        }
        if self.authorities.is_empty() {
            errs.push("no authority is registered".into());
        }
        if self.limits.body_bytes == 0 || self.limits.body_bytes > 64 * 1024 * 1024 {
            errs.push("limits.body_bytes must be between 1 and 64 MiB".into());
        }
        if self.limits.inbox_max_wait_seconds > 30 {
            errs.push("limits.inbox_max_wait_seconds must be at most 30".into());
        }
        if self.store.engine == EngineKind::Postgres && self.store.url.is_none() {
            errs.push("store.url is required with store.engine = \"postgres\"".into());
        }
        if self.store.pool_size == 0 || self.store.database_timeout_ms == 0 {
            errs.push("store.pool_size and store.database_timeout_ms must be at least 1".into());
        }
        if self.store.node.is_empty()
            || self.store.node.len() > 64
            || !self
                .store
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errs.push("store.node must be 1 to 64 letters, digits, '-', '_' or '.'".into());
        }
        if self.store.lease_seconds <= self.delivery.request_timeout_seconds {
            errs.push(format!(
                "store.lease_seconds ({}) must be more than delivery.request_timeout_seconds ({}): \
                 a lease outlasts the attempt it covers",
                self.store.lease_seconds, self.delivery.request_timeout_seconds
            ));
        }
        if self.limits.refusal_summary_seconds == 0 {
            errs.push("limits.refusal_summary_seconds must be at least 1".into());
        }
        if self.limits.inbox_visibility_seconds == 0 {
            errs.push("limits.inbox_visibility_seconds must be at least 1".into());
        }
        let d = &self.delivery;
        if d.retry_base_ms == 0 || d.retry_cap_ms < d.retry_base_ms {
            errs.push(
                "delivery.retry_base_ms must be at least 1 and at most delivery.retry_cap_ms"
                    .into(),
            );
        }
        if d.max_attempts == 0
            || d.concurrency == 0
            || d.breaker_failures == 0
            || d.request_timeout_seconds == 0
        {
            errs.push("delivery.max_attempts, concurrency, breaker_failures and request_timeout_seconds must be at least 1".into());
        }
        if self.store.cache_mb == 0 {
            errs.push("store.cache_mb must be at least 1".into());
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub fn authority(&self, id: &str) -> Option<&Authority> {
        self.authorities.iter().find(|a| a.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_development_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gateway.toml");
        let c = Config::load(&path).unwrap();
        let ids: Vec<&str> = c.authorities.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["police", "prosecution", "courts", "prison"]);
        assert_eq!(c.listeners.authority.port(), 8443);
        assert_eq!(c.listeners.admin.port(), 9443);
    }

    #[test]
    fn unknown_keys_and_every_rule_are_reported() {
        let e = Config::parse("[store]\npath = \"x\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let c = Config::parse(
            r#"
            [[authority]]
            id = "Police"
            name = "x"
            certificate = "urn:jxg:authority:other"
            format = "cobol"
            delivery = "pull"
            clearances = ["everything"]
            "#,
        )
        .unwrap();
        let errs = c.validate().unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
    }
}
