//! The transports that deliver to recipients that do not pull (push over HTTPS, AMQP publish)
//! and the wiring that starts one [`Worker`] (the domain's delivery state machine,
//! `jxg_core::delivery`) per such recipient.

pub mod amqp;
pub mod push;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use jxg_core::delivery::{Backoff, Outcome, Transport, Worker};
pub use push::PushTransport;

use crate::config::{Config, Delivery};
use crate::ingress::State;

/// Starts a worker for every recipient that does not pull (push and amqp). Returns their handles.
pub fn start(
    state: &State,
    work: &tokio::runtime::Handle,
) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::tls::TlsError> {
    let config: &Config = &state.pipeline.config;
    let mut handles = Vec::new();
    for a in config
        .authorities
        .iter()
        .filter(|a| a.delivery != Delivery::Pull)
    {
        let transport: Arc<dyn Transport> = match (a.delivery, &state.broker) {
            (Delivery::Amqp, Some(broker)) => Arc::new(amqp::AmqpTransport {
                broker: broker.clone(),
            }),
            _ => Arc::new(PushTransport::new(
                a.webhook.as_deref().expect("validated: push has a webhook"),
                &config.resolve(&config.tls.ca),
                &config.resolve(&config.tls.cert),
                &config.resolve(&config.tls.key),
                Duration::from_secs(config.delivery.request_timeout_seconds),
            )?),
        };
        let s = state.clone();
        let worker = Worker {
            recipient: a.id.clone(),
            transport,
            store: state.pipeline.store.clone(),
            cfg: config.delivery.clone(),
            draining: Arc::new(move || s.draining.load(Ordering::SeqCst)),
        };
        handles.push(work.spawn(worker.run()));
    }
    Ok(handles)
}
