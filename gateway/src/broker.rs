//! The connection to the message broker (AMQP 0-9-1, RabbitMQ): one lazily made publishing
//! connection with a channel in confirm mode, remade after any failure; the queues are declared
//! as durable quorum queues each time a connection is made.
//!
//! Every call to the broker has a bound (`broker.operation_timeout_ms`; a publication the
//! delivery attempt's): a broker that accepts TCP and never speaks, or that blocks publishers
//! (`connection.blocked`, its memory or disk alarm), costs a bounded time and an error that
//! names it, never a hang. A publication whose confirm has not come within its bound is kept
//! *in doubt*: the broker may still take it, so the next attempt of the same message waits for
//! that confirm instead of publishing a second copy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, Shared};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::time::{Instant, timeout_at};

use crate::config::BrokerConfig;

/// Why a call to the broker failed. Never holds a message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker blocks publishers (a resource alarm): nothing is published until it lifts.
    #[error("the broker blocks publishing ({0})")]
    Blocked(String),
    /// No answer within the bound.
    #[error("the broker did not answer {what} within {ms} ms{}", blocked_note(.blocked))]
    Timeout {
        what: &'static str,
        ms: u128,
        blocked: Option<String>,
    },
    /// The broker answered with a refusal (a nack).
    #[error("the broker refused the message")]
    Refused,
    /// The connection or the call failed.
    #[error("broker unavailable ({what}: {error})")]
    Failed { what: &'static str, error: String },
}

fn blocked_note(blocked: &Option<String>) -> String {
    match blocked {
        Some(reason) => format!(": it blocks publishing ({reason})"),
        None => String::new(),
    }
}

/// The time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The confirm of one publication, awaitable by every attempt of its message.
type Confirm = Shared<BoxFuture<'static, Result<bool, String>>>;

pub struct Broker {
    pub config: BrokerConfig,
    publisher: tokio::sync::Mutex<Option<(Connection, Channel)>>,
    connected: AtomicBool,
    /// Why the broker blocks publishing, while it does.
    blocked: Arc<Mutex<Option<String>>>,
    /// Publications whose confirm has not come yet, by message id.
    in_doubt: Mutex<HashMap<String, Confirm>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connected", &self.is_connected())
            .field("blocked", &self.blocked())
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            publisher: tokio::sync::Mutex::new(None),
            connected: AtomicBool::new(false),
            blocked: Arc::new(Mutex::new(None)),
            in_doubt: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the last connection attempt or use succeeded (for `/readyz`).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
    }

    /// Why the broker blocks publishing, while it does (`connection.blocked`).
    pub fn blocked(&self) -> Option<String> {
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The bound of one call to the broker.
    pub fn bound(&self) -> Duration {
        Duration::from_millis(self.config.operation_timeout_ms)
    }

    /// `fut` within `bound`, or a timeout naming `what`.
    pub async fn within<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        bound: Duration,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, BrokerError> {
        match tokio::time::timeout(bound, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(BrokerError::Failed {
                what,
                error: e.to_string(),
            }),
            Err(_) => Err(BrokerError::Timeout {
                what,
                ms: bound.as_millis(),
                blocked: self.blocked(),
            }),
        }
    }

    /// A new connection with every queue declared, each step within the operation bound. The
    /// connection's `connection.blocked` and `connection.unblocked` notices are followed.
    pub async fn connect(&self) -> Result<Connection, BrokerError> {
        let bound = self.bound();
        let conn = self
            .within(
                "the connection",
                bound,
                Connection::connect(&self.config.url, ConnectionProperties::default()),
            )
            .await?;
        self.follow(&conn);
        let ch = self
            .within("a channel open", bound, conn.create_channel())
            .await?;
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
            self.within(
                "a queue declaration",
                bound,
                ch.queue_declare(
                    q.as_str().into(),
                    QueueDeclareOptions::durable(),
                    args.clone(),
                ),
            )
            .await?;
        }
        let _ = tokio::time::timeout(bound, ch.close(200, "declared".into())).await;
        Ok(conn)
    }

    /// Follows the blocked notices of `conn` until it ends.
    fn follow(&self, conn: &Connection) {
        let mut events = conn.events_listener();
        let blocked = self.blocked.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let now = match event {
                    lapin::Event::ConnectionBlocked(reason) => {
                        tracing::warn!(reason = %reason, "the broker blocks publishing");
                        Some(if reason.is_empty() {
                            "connection.blocked".to_string()
                        } else {
                            reason
                        })
                    }
                    lapin::Event::ConnectionUnblocked => {
                        tracing::info!("the broker takes publications again");
                        None
                    }
                    _ => continue,
                };
                *blocked.lock().unwrap_or_else(|e| e.into_inner()) = now;
            }
        });
    }

    /// The publishing channel (confirm mode), connecting when there is none, by `deadline`.
    pub async fn publisher(&self, deadline: Instant) -> Result<Channel, BrokerError> {
        let Ok(mut slot) = timeout_at(deadline, self.publisher.lock()).await else {
            return Err(BrokerError::Timeout {
                what: "the connection (another attempt is connecting)",
                ms: deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
                blocked: self.blocked(),
            });
        };
        if let Some((conn, ch)) = slot.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        *slot = None;
        // a new connection learns again whether it is blocked
        *self.blocked.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let made = async {
            let conn = self.connect().await?;
            let ch = self
                .within("a channel open", left(deadline), conn.create_channel())
                .await?;
            self.within(
                "confirm mode",
                left(deadline),
                ch.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
            Ok::<_, BrokerError>((conn, ch))
        };
        let (conn, ch) = match timeout_at(deadline, made).await {
            Ok(Ok(made)) => made,
            Ok(Err(e)) => {
                self.set_connected(false);
                return Err(e);
            }
            Err(_) => {
                self.set_connected(false);
                return Err(BrokerError::Timeout {
                    what: "the connection",
                    ms: self.bound().as_millis(),
                    blocked: self.blocked(),
                });
            }
        };
        self.set_connected(true);
        *slot = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Forgets the publishing connection after a failure, so the next use makes a new one.
    pub async fn reset_publisher(&self) {
        self.set_connected(false);
        let taken = match tokio::time::timeout(self.bound(), self.publisher.lock()).await {
            Ok(mut slot) => slot.take(),
            Err(_) => None,
        };
        if let Some((conn, _)) = taken {
            let _ = tokio::time::timeout(self.bound(), conn.close(200, "reset".into())).await;
        }
    }

    /// Publishes `body` under message id `key` to `queue` and waits for the broker's confirm,
    /// all by `deadline`. A confirm that does not come in time leaves the publication in doubt:
    /// the next call for the same key waits for that confirm rather than publishing again.
    pub async fn publish(
        &self,
        key: &str,
        queue: &str,
        body: Vec<u8>,
        props: lapin::BasicProperties,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        let earlier = self
            .in_doubt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        if let Some(confirm) = earlier {
            match self.confirmed(key, confirm, deadline).await {
                // the earlier publication is in the queue
                Ok(()) => return Ok(()),
                // still in doubt: publishing again could make a second copy
                Err(e @ BrokerError::Timeout { .. }) => return Err(e),
                // it was refused or lost with its connection: publish anew
                Err(_) => {}
            }
        }
        if let Some(reason) = self.blocked() {
            return Err(BrokerError::Blocked(reason));
        }
        let ch = self.publisher(deadline).await?;
        let queue = queue.to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let r = publish_confirmed(&ch, &queue, &body, props)
                .await
                .map_err(|e| e.to_string());
            let _ = tx.send(r);
        });
        let confirm: Confirm = async move {
            rx.await
                .unwrap_or_else(|_| Err("the publication ended".to_string()))
        }
        .boxed()
        .shared();
        self.in_doubt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), confirm.clone());
        self.confirmed(key, confirm, deadline).await
    }

    /// Waits for a publication's confirm by `deadline`; it stops being in doubt once answered.
    async fn confirmed(
        &self,
        key: &str,
        confirm: Confirm,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        let started = Instant::now();
        let answer = match timeout_at(deadline, confirm).await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(BrokerError::Timeout {
                    what: "the publication's confirm",
                    ms: deadline.saturating_duration_since(started).as_millis(),
                    blocked: self.blocked(),
                });
            }
        };
        self.in_doubt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        match answer {
            Ok(true) => Ok(()),
            Ok(false) => Err(BrokerError::Refused),
            Err(error) => {
                self.reset_publisher().await;
                Err(BrokerError::Failed {
                    what: "the publication",
                    error,
                })
            }
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

/// A header value as a number (`x-delivery-count`, which quorum queues set on a redelivery).
pub fn header_number(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    match headers?.inner().get(name)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
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
