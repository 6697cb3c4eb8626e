//! The connection to the message broker (AMQP 0-9-1, RabbitMQ): one lazily made connection with
//! a publishing channel in confirm mode, remade after any failure; the queues are declared as
//! durable quorum queues each time it is made.

use std::sync::atomic::{AtomicBool, Ordering};

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use crate::config::BrokerConfig;

pub struct Broker {
    pub config: BrokerConfig,
    publisher: Mutex<Option<(Connection, Channel)>>,
    connected: AtomicBool,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            publisher: Mutex::new(None),
            connected: AtomicBool::new(false),
        }
    }

    /// Whether the last connection attempt or use succeeded (for `/readyz`).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
    }

    /// A new connection with every queue declared.
    pub async fn connect(&self) -> Result<Connection, String> {
        let conn = Connection::connect(&self.config.url, ConnectionProperties::default())
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        for q in [
            &self.config.in_queue,
            &self.config.out_queue,
            &self.config.rejected_queue,
        ] {
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::durable(),
                args.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        let _ = ch.close(200, "declared".into()).await;
        Ok(conn)
    }

    /// The publishing channel (confirm mode), connecting when there is none.
    pub async fn publisher(&self) -> Result<Channel, String> {
        let mut slot = self.publisher.lock().await;
        if let Some((conn, ch)) = slot.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        *slot = None;
        let conn = self
            .connect()
            .await
            .inspect_err(|_| self.set_connected(false))?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        self.set_connected(true);
        *slot = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Forgets the publishing connection after a failure, so the next use makes a new one.
    pub async fn reset_publisher(&self) {
        self.set_connected(false);
        if let Some((conn, _)) = self.publisher.lock().await.take() {
            let _ = conn.close(200, "reset".into()).await;
        }
    }
}

/// A header value as text.
pub fn header(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// Publishes `body` to `queue` (the default exchange) on a channel in confirm mode and waits for
/// the broker's answer: `true` when it took the message, `false` when it refused it.
pub async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    props: lapin::BasicProperties,
) -> Result<bool, lapin::Error> {
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            lapin::options::BasicPublishOptions::default(),
            body,
            props,
        )
        .await?
        .await?;
    Ok(confirm.is_ack())
}
