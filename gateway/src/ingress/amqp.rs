//! The broker ingress: consume the authority's in-queue with manual acknowledgement and a bounded
//! prefetch. A delivery is acked only after its message is durably accepted (or was accepted
//! before: the AMQP `message_id`, else the HD document id, is the idempotency key), or after it
//! was durably moved to the rejected queue with the reason in `x-jxg-error` — so a poison message
//! is answered once, never redelivered forever. When the store is unavailable the delivery is
//! returned to the queue, at most `broker.max_deliveries` times (the quorum queue counts them in
//! `x-delivery-count`): after that it too goes to the rejected queue with its last reason, and
//! the consumer goes on with the next. Every call to the broker is bounded; the rejected copies
//! go out on the publishing connection, so that a broker blocking publishers never stops the
//! consumer's acks. A lost connection is remade with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::Instrument;

use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};

use super::State;
use super::problem::Problem;
use crate::broker::{Broker, header};
use crate::pipeline;

/// Consumes until the gateway drains.
pub fn start(
    work: &tokio::runtime::Handle,
    state: State,
    broker: Arc<Broker>,
    authority: String,
    format: String,
) -> tokio::task::JoinHandle<()> {
    work.spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            if state.draining.load(Ordering::SeqCst) {
                return;
            }
            match consume(&state, &broker, &authority, &format).await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(e) => tracing::warn!(error = %e, "broker connection lost; reconnecting"),
            }
            broker.set_connected(false);
            if state.draining.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    })
}

async fn consume(
    state: &State,
    broker: &Broker,
    authority: &str,
    format: &str,
) -> Result<(), String> {
    let conn = broker.connect().await.map_err(|e| e.to_string())?;
    let ch = broker
        .within("a channel open", broker.bound(), conn.create_channel())
        .await
        .map_err(|e| e.to_string())?;
    broker
        .within(
            "the prefetch setting",
            broker.bound(),
            ch.basic_qos(broker.config.prefetch, BasicQosOptions::default()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer = broker
        .within(
            "the consume request",
            broker.bound(),
            ch.basic_consume(
                broker.config.in_queue.as_str().into(),
                "jxg-gateway".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .map_err(|e| e.to_string())?;
    broker.set_connected(true);
    tracing::info!(queue = %broker.config.in_queue, "consuming");
    let adapter =
        jxg_adapters::registry::get(format).ok_or("no adapter for the authority's format")?;
    loop {
        let next = tokio::select! {
            d = consumer.next() => d,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if state.draining.load(Ordering::SeqCst) { return Ok(()) }
                continue;
            }
        };
        let Some(delivery) = next else {
            return Err("the broker closed the consumer".into());
        };
        let delivery = delivery.map_err(|e| e.to_string())?;
        handle(state, broker, authority, adapter, delivery).await?;
    }
}

/// A short digest of a delivery's bytes (it names the copy, never shows it).
fn ring_digest(data: &[u8]) -> String {
    use base64::Engine;
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..12])
}

fn describe(p: &Problem) -> String {
    let mut s = format!("{} {}: {}", p.status, p.slug, p.detail);
    for e in p.errors.iter().take(20) {
        s.push_str(&format!("; {}: {}", e.path, e.message));
    }
    s.chars().take(2000).collect()
}

async fn handle(
    state: &State,
    broker: &Broker,
    authority: &str,
    adapter: &'static dyn jxg_adapters::Adapter,
    d: Delivery,
) -> Result<(), String> {
    let p = &state.pipeline;
    let key = d
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.as_str().to_string())
        .filter(|k| !k.trim().is_empty());
    let traceparent = header(d.properties.headers().as_ref(), "traceparent");
    let format = adapter.name();
    let span = crate::ingress::ingest_span(authority, format, traceparent.as_deref());
    let result = async {
        if d.data.len() > p.config.limits.body_bytes {
            return Err(Problem::too_large(p.config.limits.body_bytes));
        }
        match pipeline::decode_any(adapter, &d.data, &p.master_data) {
            Ok(mut doc) => {
                if let Some(k) = &key {
                    match &mut doc {
                        jxg_schema::Document::Message(m) => m.source_document_id = k.clone(),
                        jxg_schema::Document::Withdrawal(w) => w.source_document_id = k.clone(),
                    }
                }
                let passed_on =
                    crate::telemetry::traceparent(&tracing::Span::current(), traceparent);
                p.accept_document(authority, doc, &d.data, passed_on, None)
                    .await
                    .map_err(Problem::from)
            }
            Err(e) => Err(Problem::from(pipeline::rejection(
                e,
                authority,
                &p.policies,
            ))),
        }
    }
    .instrument(span)
    .await;
    // deliveries before this one that were handed back (quorum queues count them)
    let returned = crate::broker::header_number(d.properties.headers().as_ref(), "x-delivery-count")
        .unwrap_or(0)
        .max(0) as u64;
    let max = u64::from(p.config.broker.max_deliveries);
    match result {
        Ok(answer) => {
            if let pipeline::Answer::Accepted(body) = &answer {
                crate::telemetry::accepted(authority, format, body["type"].as_str().unwrap_or(""));
            }
            broker
                .within("an ack", broker.bound(), d.ack(BasicAckOptions::default()))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        // back-pressure (the store is behind) is never the message's fault: it always comes again
        Err(problem)
            if problem.status == 503 && (returned + 1 < max || problem.slug == "store-behind") =>
        {
            // nothing was accepted: hand it back and pause before taking more
            broker
                .within(
                    "a nack",
                    broker.bound(),
                    d.nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        }
        Err(mut problem) => {
            if problem.status == 503 {
                // handed back as often as allowed: it goes aside, and the next one comes
                problem.detail = format!(
                    "not accepted in {} deliveries; the last: {}",
                    returned + 1,
                    problem.detail
                );
            }
            crate::telemetry::rejected(authority, format, problem.status, problem.slug);
            let rec = crate::audit::Record::new(crate::audit::Event::Rejected, authority)
                .detail(format!("{} from the broker", problem.status));
            if let Err(e) = state.pipeline.store.audit(vec![rec]).await {
                tracing::error!(error = %e, "cannot audit a rejection");
            }
            let reason = describe(&problem);
            tracing::warn!(status = problem.status, "refused a message from the broker");
            let mut headers = FieldTable::default();
            headers.insert(
                "x-jxg-error".into(),
                AMQPValue::LongString(reason.as_str().into()),
            );
            headers.insert(
                "x-jxg-status".into(),
                AMQPValue::LongString(problem.status.to_string().as_str().into()),
            );
            let mut props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_headers(headers);
            if let Some(k) = &key {
                props = props.with_message_id(k.as_str().into());
            }
            // in doubt under the delivery's own key: a second attempt waits for the first copy
            let copy = format!(
                "rejected:{}:{}",
                key.as_deref().unwrap_or(""),
                ring_digest(&d.data)
            );
            let deadline = tokio::time::Instant::now()
                + Duration::from_secs(p.config.delivery.request_timeout_seconds);
            broker
                .publish(
                    &copy,
                    &broker.config.rejected_queue,
                    d.data.clone(),
                    props,
                    deadline,
                )
                .await
                .map_err(|e| format!("the rejected copy: {e}"))?;
            broker
                .within("an ack", broker.bound(), d.ack(BasicAckOptions::default()))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}
