//! `jxg serve`: validate the configuration, open keys and store, bind both listeners, and shut
//! down cleanly on SIGTERM (new requests 503, in-flight ones finish, final flush, exit 0).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use jxg_schema::MasterData;

use crate::config::Config;
use crate::ingress::identity;
use crate::ingress::{self, AppState};
use crate::pipeline::Pipeline;
use crate::policy::{Origin, PolicyError, PolicyStore};
use crate::signing::Signer;
use crate::store::{SledEngine, Store};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("master data: {0}")]
    MasterData(#[from] jxg_schema::master_data::MasterDataError),
    #[error("policies:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Policies(Vec<PolicyError>),
    #[error("audit key: {0}")]
    Audit(String),
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
}

/// Builds the shared state from a validated configuration and an opened store.
pub fn build_state(config: Config, store: Arc<Store>) -> Result<AppState, StartError> {
    let signer = Signer::load(&config.resolve(&config.signing.key))?;
    let pseudonyms = crate::audit::Pseudonyms::load(&config.resolve(&config.audit.hmac_key))
        .map_err(StartError::Audit)?;
    let master_data = match &config.master_data {
        Some(dir) => MasterData::load_dir(&config.resolve(dir))?,
        None => MasterData::embedded(),
    };
    let broker = config
        .authorities
        .iter()
        .any(|a| a.delivery == crate::config::Delivery::Amqp)
        .then(|| Arc::new(crate::broker::Broker::new(config.broker.clone())));
    let authorities: BTreeMap<String, Vec<String>> = config
        .authorities
        .iter()
        .map(|a| (a.id.clone(), a.clearances.clone()))
        .collect();
    let origin = match &config.policies {
        Some(dir) => Origin::Dir(config.resolve(dir)),
        None => Origin::Embedded,
    };
    let policies = PolicyStore::open(origin, authorities).map_err(StartError::Policies)?;
    let limits = crate::ingress::limits::RateLimits::new(&config);
    let mut sender_keys = BTreeMap::new();
    for a in &config.authorities {
        if let Some(path) = &a.jwks {
            sender_keys.insert(
                a.id.clone(),
                crate::signing::load_jwks(&config.resolve(path))?,
            );
        }
    }
    let registry = Arc::new(jxg_core::registry::Registry::compile(&config).map_err(|e| {
        StartError::Config(crate::config::ConfigError::Invalid(vec![e.to_string()]))
    })?);
    Ok(AppState {
        pipeline: Pipeline {
            registry,
            config,
            store,
            signer: arc_swap::ArcSwap::from_pointee(signer),
            master_data,
            policies,
            pseudonyms,
            sender_keys,
        },
        limits,
        refusals: Default::default(),
        draining: AtomicBool::new(false),
        inflight: std::sync::atomic::AtomicUsize::new(0),
        broker,
        tls: std::sync::OnceLock::new(),
        verifications: Default::default(),
    })
}

/// Opens the configured store: PostgreSQL, or sled (see [`open_sled_store`]).
pub async fn open_store(config: &Config) -> Result<Arc<Store>, StartError> {
    match config.store.engine {
        crate::config::EngineKind::Postgres => {
            let engine = jxg_store_postgres::PgEngine::open(&postgres_options(config)).await?;
            Ok(Arc::new(
                Store::open_as(
                    Arc::new(engine),
                    config.store.tuning(),
                    &config.store.node,
                    config.store.lease(),
                )
                .await?,
            ))
        }
        crate::config::EngineKind::Sled => open_sled_store(config).await,
    }
}

/// How the PostgreSQL engine of `config` reaches its database.
pub fn postgres_options(config: &Config) -> jxg_store_postgres::PgOptions {
    jxg_store_postgres::PgOptions {
        url: config.store.url.clone().unwrap_or_default(),
        pool_size: config.store.pool_size,
        timeout: Duration::from_millis(config.store.database_timeout_ms),
        node: config.store.node.clone(),
    }
}

/// Opens the configured sled store (migrating a store of layout v1), to be opened again
/// should its disk fail.
pub async fn open_sled_store(config: &Config) -> Result<Arc<Store>, StartError> {
    let (path, cache_mb, tuning) = (
        config.resolve(&config.store.path),
        config.store.cache_mb,
        config.store.tuning(),
    );
    let engine = SledEngine::open(&path, cache_mb)?;
    let first = std::sync::Mutex::new(Some(engine));
    let reopening = crate::store::Reopening::open(Box::new(move || {
        if let Some(engine) = first.lock().ok().and_then(|mut f| f.take()) {
            return Ok(engine);
        }
        // a store that vanished (an unmounted disk) is not made anew: that would hide loss
        if !path.join("db").exists() {
            return Err(crate::store::StoreError::Unavailable(format!(
                "no store at {}",
                path.display()
            )));
        }
        SledEngine::open(&path, cache_mb)
    }))?;
    Ok(Arc::new(
        Store::open_as(
            Arc::new(reopening),
            tuning,
            &config.store.node,
            config.store.lease(),
        )
        .await?,
    ))
}

/// The runtime the background work runs on: delivery workers and their attempts, the AMQP
/// consumer and its pipeline work, the checkpointer and retention — apart from the HTTP
/// workers, so that a slow step there holds up no request, and no request holds it up.
pub fn work_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("jxg-work")
        .enable_all()
        .build()
}

/// Serves until SIGTERM or SIGINT; the background work runs on `work` (see [`work_runtime`]).
pub async fn serve(
    config: Config,
    store: Arc<Store>,
    work: tokio::runtime::Handle,
) -> Result<(), StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let live_tls = crate::tls::LiveTls::open(crate::tls::Paths {
        ca: config.resolve(&config.tls.ca),
        cert: config.resolve(&config.tls.cert),
        key: config.resolve(&config.tls.key),
        crl: config.tls.crl.as_ref().map(|p| config.resolve(p)),
    })?;
    let tls = live_tls.server_config()?;
    let drain = Duration::from_secs(config.listeners.drain_timeout_seconds);
    let header_read = Duration::from_millis(config.listeners.header_read_ms);
    let per_peer = config.limits.connections_per_peer;
    let authority_listener =
        TcpListener::bind(config.listeners.authority).map_err(StartError::Bind)?;
    let admin_listener = TcpListener::bind(config.listeners.admin).map_err(StartError::Bind)?;
    let (authority_addr, admin_addr) = (
        authority_listener.local_addr().map_err(StartError::Bind)?,
        admin_listener.local_addr().map_err(StartError::Bind)?,
    );
    let state = ingress::shared(build_state(config, store)?);
    let registry = state.pipeline.registry.clone();
    // every key that signs is kept, so that checkpoints verify after a rotation
    let p = &state.pipeline;
    let current = p.signer.load();
    p.store
        .put_signing_key(
            current.kid(),
            &serde_json::json!({"jwk": current.jwks()["keys"][0], "retired_at": null}),
        )
        .await?;
    let mut checkpointer = crate::audit::checkpoints::Checkpointer::new(p.store.as_ref()).await?;
    let s = state.clone();
    let checkpoints = work.spawn(async move {
        loop {
            if let Err(e) = checkpointer
                .run(
                    s.pipeline.store.as_ref(),
                    &s.pipeline.signer.load_full(),
                    false,
                )
                .await
            {
                tracing::error!(error = %e, "cannot write an audit checkpoint");
            }
            if s.draining.load(Ordering::SeqCst) {
                return checkpointer;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    // refusals, summarised into the audit log at a bounded rate
    let s = state.clone();
    let every = Duration::from_secs(state.pipeline.config.limits.refusal_summary_seconds);
    work.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            s.refusals.write(&s.pipeline.store).await;
        }
    });
    if state.pipeline.config.store.engine == crate::config::EngineKind::Postgres {
        // the counts and the audit head other nodes change, seen here within seconds even
        // when this node writes nothing
        let s = state.clone();
        work.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e) = s.pipeline.store.refresh().await {
                    tracing::warn!(error = %e, "cannot read the store's state");
                }
            }
        });
    }
    let _gauges = gauges(&state);
    let _ = state.tls.set(live_tls.clone());
    let _expiry = certificate_expiry(&live_tls, state.pipeline.config.tls.expiry_warning_days);
    watch_tls(live_tls, &state.pipeline.config);
    // retention, hourly, by one node at a time (the one holding its job's lease, renewed
    // before it ends while the node runs)
    let s = state.clone();
    work.spawn(async move {
        let hour = Duration::from_secs(3600);
        loop {
            match s
                .pipeline
                .store
                .hold_job(crate::store::RETENTION_JOB, hour + Duration::from_secs(600))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // another node runs it; look again within the hour
                    tokio::time::sleep(Duration::from_secs(300)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the retention job");
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    continue;
                }
            }
            let r = &s.pipeline.config.retention;
            let (store, body, audit) = (s.pipeline.store.clone(), r.body_days, r.audit_days);
            let now = chrono::Utc::now().timestamp();
            match store.purge(now, body, audit).await {
                Ok(p) if p != Default::default() => {
                    tracing::info!(
                        bodies = p.bodies,
                        messages = p.messages,
                        audit_entries = p.audit_entries,
                        unreadable = p.unreadable,
                        "retention purge"
                    );
                }
                Err(e) => tracing::error!(error = %e, "retention purge failed"),
                _ => {}
            }
            tokio::time::sleep(hour).await;
        }
    });

    let s = state.clone();
    let authority = HttpServer::new(move || {
        let counted = s.clone();
        App::new()
            .app_data(s.clone())
            // requests in flight, so that a shutdown waits for them while answering new ones 503
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let state = counted.clone();
                state.inflight.fetch_add(1, Ordering::SeqCst);
                let actor = match req.conn_data::<crate::ingress::identity::Peer>() {
                    Some(crate::ingress::identity::Peer::Authority(a)) => a.to_string(),
                    Some(_) => "unmapped certificate".to_string(),
                    None => "no certificate".to_string(),
                };
                let route = format!("{} {}", req.method(), req.path());
                let fut = srv.call(req);
                async move {
                    let r = fut.await;
                    state.inflight.fetch_sub(1, Ordering::SeqCst);
                    // a refused document is audited with its status, never its content; a
                    // refusal before any document is read (see `refusals::is_cheap`) is counted, and audited in
                    // the next summary
                    if let Ok(res) = &r {
                        let status = res.status();
                        if crate::ingress::refusals::is_cheap(status.as_u16())
                            && req_is_submission(&route)
                        {
                            state.refusals.note(&actor, status.as_u16(), &route);
                        } else if status.is_client_error() && req_is_submission(&route) {
                            let rec =
                                crate::audit::Record::new(crate::audit::Event::Rejected, actor)
                                    .detail(format!("{status} {route}"));
                            if let Err(e) = state.pipeline.store.audit(vec![rec]).await {
                                tracing::error!(error = %e, "cannot audit a rejection");
                            }
                        }
                    }
                    r
                }
            })
            .configure(ingress::configure)
            .default_service(web::to(ingress::not_found))
    })
    .on_connect(identity::on_connect(
        registry.clone(),
        identity::Slots::new(per_peer),
    ))
    .client_request_timeout(header_read)
    .disable_signals()
    .shutdown_timeout(drain.as_secs())
    .listen_rustls_0_23(authority_listener, tls.clone())
    .map_err(StartError::Bind)?
    .run();
    let s = state.clone();
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .configure(crate::admin::configure)
            .configure(crate::console::configure)
            .default_service(web::to(ingress::not_found))
    })
    .on_connect(identity::on_connect(
        registry,
        identity::Slots::new(per_peer),
    ))
    .client_request_timeout(header_read)
    .disable_signals()
    // long reads run on the blocking pool; two workers keep health checks answered besides
    .workers(2)
    .shutdown_timeout(drain.as_secs())
    .listen_rustls_0_23(admin_listener, tls)
    .map_err(StartError::Bind)?
    .run();

    let mut workers = crate::delivery::start(&state, &work)?;
    tokio::spawn(crate::admin_overview::sample_backlogs(state.clone()));
    if let Some(broker) = &state.broker {
        for a in state
            .pipeline
            .config
            .authorities
            .iter()
            .filter(|a| a.delivery == crate::config::Delivery::Amqp)
        {
            workers.push(crate::ingress::amqp::start(
                &work,
                state.clone(),
                broker.clone(),
                a.id.clone(),
                a.format.clone(),
            ));
        }
    }
    tracing::info!(authority = %authority_addr, admin = %admin_addr, "listening");
    let (h1, h2) = (authority.handle(), admin.handle());
    let s = state.clone();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: new requests get 503, in-flight requests finish");
        s.draining.store(true, Ordering::SeqCst);
        // the listeners stay open, answering 503 with Retry-After, until the requests in flight
        // (commits, long polls) have finished or the drain timeout has passed
        let deadline = tokio::time::Instant::now() + drain;
        while s.inflight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::join!(h1.stop(true), h2.stop(true));
    });
    let (a, b) = tokio::join!(authority, admin);
    a.map_err(StartError::Bind)?;
    b.map_err(StartError::Bind)?;
    // deliveries in flight finish (their workers stop taking new ones), bounded by the drain timeout
    state.draining.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(drain, futures_util::future::join_all(workers)).await;
    state.refusals.write(&state.pipeline.store).await;
    // a last checkpoint covers everything written before the stop
    if let Ok(mut c) = checkpoints.await {
        if let Err(e) = c
            .run(
                state.pipeline.store.as_ref(),
                &state.pipeline.signer.load_full(),
                true,
            )
            .await
        {
            tracing::error!(error = %e, "cannot write the final audit checkpoint");
        }
    }
    state.pipeline.store.durable().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Requests that submit a document (their refusals are audited).
fn req_is_submission(route: &str) -> bool {
    matches!(
        route,
        "POST /police/v1/dokumenter" | "POST /courts/v1/dokumenter" | "POST /v1/messages"
    )
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The gauges `/metrics` and OTLP read when they collect: outbox depth and the age of the oldest
/// waiting entry per recipient, and the broker connection. Kept alive while the gateway serves.
/// Warns about a configured certificate within `tls.expiry_warning_days` of its end, and exports
/// the seconds each in force has left (`jxg_certificate_expiry_seconds{certificate}`, negative
/// once expired).
fn certificate_expiry(tls: &Arc<crate::tls::LiveTls>, warning_days: u32) -> Box<dyn std::any::Any> {
    use opentelemetry::KeyValue;
    for (certificate, days_left) in tls.expiring(warning_days) {
        tracing::warn!(
            certificate,
            days_left,
            "a configured certificate expires soon"
        );
    }
    let tls = tls.clone();
    let gauge = crate::telemetry::meter()
        .i64_observable_gauge("jxg_certificate_expiry")
        .with_description("Seconds until a configured certificate expires (negative once expired)")
        .with_unit("s")
        .with_callback(move |o| {
            let now = chrono::Utc::now().timestamp();
            for (name, end) in tls.expiries() {
                o.observe(end - now, &[KeyValue::new("certificate", name)]);
            }
        })
        .build();
    Box::new(gauge)
}

/// Looks for changed TLS files every `tls.reload_interval_seconds` and puts a new set in force
/// for the handshakes that follow; a set that does not load is logged and the old one stays.
fn watch_tls(tls: Arc<crate::tls::LiveTls>, config: &Config) {
    let every = config.tls.reload_interval_seconds;
    let warning_days = config.tls.expiry_warning_days;
    if every == 0 {
        return;
    }
    let reloads = crate::telemetry::meter()
        .u64_counter("jxg_tls_reloads")
        .with_description("Reads of changed TLS files, by result (loaded, refused)")
        .build();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(every));
            match tls.reload_if_changed() {
                Ok(false) => {}
                Ok(true) => {
                    reloads.add(1, &[opentelemetry::KeyValue::new("result", "loaded")]);
                    tracing::info!(
                        "TLS certificate, key, CA bundle or CRL read again; new connections use them"
                    );
                    for (certificate, days_left) in tls.expiring(warning_days) {
                        tracing::warn!(
                            certificate,
                            days_left,
                            "a configured certificate expires soon"
                        );
                    }
                }
                Err(e) => {
                    reloads.add(1, &[opentelemetry::KeyValue::new("result", "refused")]);
                    tracing::error!(error = %e, "changed TLS files not loaded; the set in force stays");
                }
            }
        }
    });
}

fn gauges(state: &crate::ingress::State) -> Vec<Box<dyn std::any::Any>> {
    use opentelemetry::KeyValue;
    let meter = crate::telemetry::meter();
    let recipients: Vec<String> = state
        .pipeline
        .config
        .authorities
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let (s, r) = (state.clone(), recipients.clone());
    let depth = meter
        .u64_observable_gauge("jxg_outbox_depth")
        .with_description("Entries waiting for a recipient")
        .with_callback(move |o| {
            for id in &r {
                // from the counts the store keeps: a scrape never scans the store
                let (n, _) = s.pipeline.store.outbox_depth(id);
                o.observe(n as u64, &[KeyValue::new("recipient", id.clone())]);
            }
        })
        .build();
    let s = state.clone();
    let age = meter
        .f64_observable_gauge("jxg_outbox_oldest_age")
        .with_description("Age of the oldest entry waiting for a recipient (0 when none)")
        .with_unit("s")
        .with_callback(move |o| {
            let now = chrono::Utc::now().timestamp();
            for id in &recipients {
                let (_, oldest) = s.pipeline.store.outbox_depth(id);
                let age = oldest
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                    .map_or(0, |t| (now - t.timestamp()).max(0));
                o.observe(age as f64, &[KeyValue::new("recipient", id.clone())]);
            }
        })
        .build();
    let s = state.clone();
    let node = meter
        .u64_observable_gauge("jxg_node")
        .with_description(
            "1, naming this node (store.node): every node's metrics carry its name here",
        )
        .with_callback(move |o| {
            o.observe(
                1,
                &[KeyValue::new("node", s.pipeline.store.node().to_string())],
            );
        })
        .build();
    let s = state.clone();
    let broker = meter
        .u64_observable_gauge("jxg_broker_connected")
        .with_description("1 while the AMQP connection is up (absent without a broker)")
        .with_callback(move |o| {
            if let Some(b) = &s.broker {
                o.observe(u64::from(b.is_connected()), &[]);
            }
        })
        .build();
    let s = state.clone();
    let blocked = meter
        .u64_observable_gauge("jxg_broker_blocked")
        .with_description("1 while the broker blocks publishing (connection.blocked)")
        .with_callback(move |o| {
            if let Some(b) = &s.broker {
                o.observe(u64::from(b.blocked().is_some()), &[]);
            }
        })
        .build();
    vec![
        Box::new(node),
        Box::new(depth),
        Box::new(age),
        Box::new(broker),
        Box::new(blocked),
    ]
}
