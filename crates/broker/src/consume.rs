//! Consuming from a queue: a subscription yields [`Delivery`]s that carry
//! what dynamo reads from a message and the three ways to settle it.
//!
//! A delivery belongs to the connection it came on: once that connection is
//! lost, settling it fails (and is logged) and the broker redelivers the
//! message. That is what keeps "nothing is acked while disconnected" true.

use crate::BrokerError;
use crate::headers;
use crate::publisher::{PublishError, Publisher};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use uuid::Uuid;

/// Deliveries from one queue on one connection. It can be paused: the broker
/// then sends nothing more (basic.cancel) and the messages stay ready in the
/// queue, while the deliveries already taken can still be settled on the same
/// channel; resuming subscribes again (basic.consume under a new tag).
pub struct Subscription {
    channel: Channel,
    queue: String,
    tag_prefix: &'static str,
    /// The live basic.consume; `None` while paused.
    active: Option<Active>,
}

struct Active {
    tag: String,
    deliveries: lapin::Consumer,
}

/// How long pausing may take (the broker's cancel-ok, then the deliveries it
/// had already sent) before the channel counts as broken.
const PAUSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Subscription {
    /// A channel on `queue` with at most `prefetch` unacknowledged deliveries
    /// (basic.qos), paused: nothing comes until [`Subscription::resume`].
    pub(crate) async fn open_paused(
        connection: &Connection,
        queue: &str,
        prefetch: u16,
    ) -> Result<Self, BrokerError> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        Ok(Self::paused(channel, queue, "dynamo-consumer"))
    }

    fn paused(channel: Channel, queue: &str, tag_prefix: &'static str) -> Self {
        Self {
            channel,
            queue: queue.to_owned(),
            tag_prefix,
            active: None,
        }
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
        let mut subscription = Self::paused(channel, &queue, "dynamo-watch");
        subscription.resume().await?;
        Ok(subscription)
    }

    /// The next delivery; an error when the connection or channel failed or
    /// the broker ended the subscription. While paused nothing comes: it
    /// waits until the caller gives up on it (a `select!` on resuming).
    pub async fn next(&mut self) -> Result<Delivery, BrokerError> {
        let Some(active) = self.active.as_mut() else {
            return std::future::pending().await;
        };
        match active.deliveries.next().await {
            Some(Ok(delivery)) => Ok(Delivery::from(delivery)),
            Some(Err(error)) => Err(BrokerError::Channel(error)),
            None => Err(BrokerError::Cancelled(self.queue.clone())),
        }
    }

    pub fn is_paused(&self) -> bool {
        self.active.is_none()
    }

    /// Starts (again) taking deliveries, under a tag of its own. Does
    /// nothing when not paused.
    pub async fn resume(&mut self) -> Result<(), BrokerError> {
        if self.active.is_some() {
            return Ok(());
        }
        let tag = format!("{}-{}", self.tag_prefix, Uuid::new_v4());
        let deliveries = self
            .channel
            .basic_consume(
                self.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.active = Some(Active { tag, deliveries });
        Ok(())
    }

    /// Stops the broker sending deliveries (basic.cancel). Those it had
    /// already sent but nobody took yet go back to the queue untouched
    /// (nack with requeue): the queue keeps them ready, nothing stays
    /// unacknowledged. Deliveries taken before can still be settled.
    pub async fn pause(&mut self) -> Result<(), BrokerError> {
        let Some(mut active) = self.active.take() else {
            return Ok(());
        };
        let cancel = async {
            self.channel
                .basic_cancel(active.tag.as_str().into(), BasicCancelOptions::default())
                .await?;
            // The stream ends with the broker's cancel-ok, after every
            // delivery sent before it.
            while let Some(sent) = active.deliveries.next().await {
                sent?
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await?;
            }
            Ok::<(), BrokerError>(())
        };
        tokio::time::timeout(PAUSE_TIMEOUT, cancel)
            .await
            .map_err(|_| BrokerError::Timeout(PAUSE_TIMEOUT))?
    }

    /// Stops new deliveries; those already taken can still be settled.
    pub async fn cancel(&mut self) {
        if let Some(active) = self.active.take() {
            let _ = self
                .channel
                .basic_cancel(active.tag.as_str().into(), BasicCancelOptions::default())
                .await;
        }
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
    /// The content type the publisher gave it, if any.
    pub content_type: Option<String>,
    /// How many times it was delivered before, when the broker counts
    /// (quorum queues' `x-delivery-count`); classic queues do not.
    pub delivery_count: Option<u64>,
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
        let delivery_count = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|table| table.inner().get(headers::DELIVERY_COUNT))
            .and_then(header_count);
        Self {
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            content_type: delivery
                .properties
                .content_type()
                .as_ref()
                .map(|kind| kind.as_str().to_owned()),
            delivery_count,
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

/// A count the broker keeps in a header, whichever integer type it chose.
fn header_count(value: &AMQPValue) -> Option<u64> {
    match *value {
        AMQPValue::ShortShortInt(n) => u64::try_from(n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(n.into()),
        AMQPValue::ShortInt(n) => u64::try_from(n).ok(),
        AMQPValue::ShortUInt(n) => Some(n.into()),
        AMQPValue::LongInt(n) => u64::try_from(n).ok(),
        AMQPValue::LongUInt(n) => Some(n.into()),
        AMQPValue::LongLongInt(n) => u64::try_from(n).ok(),
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
    /// reason and where it came from, then acknowledges it. The parked copy
    /// is the original as received — body, `message_id`, content type and
    /// every other property and header — plus the two headers saying why
    /// and whence, and it is persistent whatever the original was, so an
    /// operator can replay it unchanged. If parking fails the message is
    /// left unacknowledged and the error returned: the caller requeues it
    /// rather than drop it.
    pub async fn dead_letter(
        &self,
        publisher: &Publisher,
        exchange: &str,
        reason: &str,
    ) -> Result<(), DeadLetterError> {
        let original = &self.inner.properties;
        let mut table = original.headers().clone().unwrap_or_default();
        for (name, value) in [
            (headers::REASON, reason),
            (headers::ORIGINAL_EXCHANGE, self.exchange.as_str()),
        ] {
            table.insert(name.into(), AMQPValue::LongString(value.into()));
        }
        let properties = original.clone().with_headers(table).with_delivery_mode(2);
        publisher
            .publish(exchange, &self.body, properties, true)
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
