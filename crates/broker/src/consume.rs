//! Consuming from a queue: a subscription yields [`Delivery`]s that carry
//! what dynamo reads from a message and the three ways to settle it.
//!
//! A delivery belongs to the connection it came on: once that connection is
//! lost, settling it fails (and is logged) and the broker redelivers the
//! message. That is what keeps "nothing is acked while disconnected" true.

use crate::BrokerError;
use crate::headers;
use crate::publisher::{Envelope, PublishError, Publisher};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use uuid::Uuid;

/// Deliveries from one queue on one connection.
pub struct Subscription {
    channel: Channel,
    tag: String,
    queue: String,
    deliveries: lapin::Consumer,
}

impl Subscription {
    pub(crate) async fn open(
        connection: &Connection,
        queue: &str,
        prefetch: u16,
    ) -> Result<Self, BrokerError> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        Self::subscribe(channel, queue, "dynamo-consumer").await
    }

    /// Starts consuming `queue` on `channel`, under a tag of its own.
    async fn subscribe(
        channel: Channel,
        queue: &str,
        tag_prefix: &str,
    ) -> Result<Self, BrokerError> {
        let tag = format!("{tag_prefix}-{}", Uuid::new_v4());
        let deliveries = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            channel,
            tag,
            queue: queue.to_owned(),
            deliveries,
        })
    }

    pub(crate) async fn watch(
        connection: &Connection,
        exchanges: &[&str],
    ) -> Result<Self, BrokerError> {
        let channel = connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        for exchange in exchanges {
            channel
                .queue_bind(
                    queue.name().clone(),
                    (*exchange).into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let queue = queue.name().as_str().to_owned();
        Self::subscribe(channel, &queue, "dynamo-watch").await
    }

    /// The next delivery; an error when the connection or channel failed or
    /// the broker ended the subscription.
    pub async fn next(&mut self) -> Result<Delivery, BrokerError> {
        match self.deliveries.next().await {
            Some(Ok(delivery)) => Ok(Delivery::from(delivery)),
            Some(Err(error)) => Err(BrokerError::Channel(error)),
            None => Err(BrokerError::Cancelled(self.queue.clone())),
        }
    }

    /// Stops new deliveries; those already taken can still be settled.
    pub async fn cancel(&self) {
        let _ = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await;
    }

    /// Closes the channel: whatever is still unsettled goes back to the queue.
    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
    }
}

/// One message taken from a queue.
pub struct Delivery {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    /// The broker delivered it before (to us or another consumer) without it
    /// being acknowledged.
    pub redelivered: bool,
    pub exchange: String,
    /// Headers whose values are strings or booleans, as strings.
    pub headers: Vec<(String, String)>,
    /// Settles the message (its body moved out into `body`).
    inner: lapin::message::Delivery,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message_id", &self.message_id)
            .field("redelivered", &self.redelivered)
            .field("bytes", &self.body.len())
            .finish()
    }
}

impl From<lapin::message::Delivery> for Delivery {
    fn from(mut delivery: lapin::message::Delivery) -> Self {
        let headers = delivery
            .properties
            .headers()
            .as_ref()
            .map(|table| {
                table
                    .inner()
                    .iter()
                    .filter_map(|(name, value)| {
                        Some((name.as_str().to_owned(), header_text(value)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            redelivered: delivery.redelivered,
            exchange: delivery.exchange.as_str().to_owned(),
            headers,
            body: std::mem::take(&mut delivery.data),
            inner: delivery,
        }
    }
}

/// A header value as text, for the kinds dynamo and its peers send.
pub(crate) fn header_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        AMQPValue::Boolean(value) => Some(value.to_string()),
        _ => None,
    }
}

impl Delivery {
    /// The value of header `name` (see [`crate::headers`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trace context the publisher stamped (`traceparent`, `tracestate`).
    pub fn trace_context(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(name, _)| name == headers::TRACEPARENT || name == headers::TRACESTATE)
            .cloned()
            .collect()
    }

    /// The message's `message_id` when it is a UUID.
    pub fn message_uuid(&self) -> Option<Uuid> {
        self.message_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
    }

    /// Done with: the broker forgets the message.
    pub async fn ack(&self) -> Result<(), BrokerError> {
        self.inner.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// Hands the message back to the queue for another try.
    pub async fn requeue(&self) -> Result<(), BrokerError> {
        self.inner
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await?;
        Ok(())
    }

    /// Parks the message in `exchange` (the dead-letter exchange) with the
    /// reason and where it came from, then acknowledges it. If parking
    /// fails the message is left unacknowledged and the error returned: the
    /// caller requeues it rather than drop it.
    pub async fn dead_letter(
        &self,
        publisher: &Publisher,
        exchange: &str,
        reason: &str,
    ) -> Result<(), DeadLetterError> {
        let envelope = Envelope {
            message_id: None,
            mandatory: true,
            headers: vec![
                (headers::REASON.to_owned(), reason.to_owned()),
                (headers::ORIGINAL_EXCHANGE.to_owned(), self.exchange.clone()),
            ],
        };
        publisher
            .publish_json(exchange, &self.body, envelope)
            .await?;
        self.ack().await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("could not park the message: {0}")]
    Park(#[from] PublishError),
    #[error("parked the message but could not acknowledge it: {0}")]
    Ack(#[from] BrokerError),
}
