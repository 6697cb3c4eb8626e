//! The AMQP transport: publish to the broker's out-queue with publisher confirms and persistent
//! delivery; a delivery counts as done only when the broker confirms it, within the attempt's
//! bound. A broker that blocks publishers fails the attempt at once, naming why.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};

use super::{Outcome, Transport};
use crate::broker::{Broker, BrokerError};
use crate::store::OutboxEntry;

pub struct AmqpTransport {
    pub broker: Arc<Broker>,
}

fn content_encoding(format: &str) -> &'static str {
    if format == "prosecution-flat" {
        "ISO-8859-1"
    } else {
        "UTF-8"
    }
}

impl Transport for AmqpTransport {
    fn via(&self) -> &'static str {
        "amqp"
    }

    fn deliver<'a>(&'a self, entry: &'a OutboxEntry, bound: Duration) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + bound;
            let mut headers = FieldTable::default();
            headers.insert(
                "jxg-signature".into(),
                AMQPValue::LongString(entry.signature.as_str().into()),
            );
            if let Some(t) = &entry.traceparent {
                headers.insert(
                    "traceparent".into(),
                    AMQPValue::LongString(t.as_str().into()),
                );
            }
            let id = entry.message_id.to_string();
            let props = BasicProperties::default()
                .with_message_id(id.as_str().into())
                .with_correlation_id(entry.correlation_id.as_str().into())
                .with_content_type(entry.media_type.as_str().into())
                .with_content_encoding(content_encoding(&entry.format).into())
                .with_delivery_mode(2)
                .with_headers(headers);
            let queue = self.broker.config.out_queue.as_str();
            match self
                .broker
                .publish(&id, queue, entry.content.clone(), props, deadline)
                .await
            {
                Ok(()) => Outcome::Delivered,
                Err(e @ BrokerError::Failed { .. }) => {
                    self.broker.reset_publisher().await;
                    Outcome::Retry(e.to_string())
                }
                Err(e) => Outcome::Retry(e.to_string()),
            }
        })
    }
}
