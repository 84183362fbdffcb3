//! Publishing with broker confirms: a message counts as sent only once
//! RabbitMQ has acknowledged it, and an unroutable one is an error.
//!
//! A [`Publisher`] follows its [`crate::Broker`]'s current connection, so it
//! never needs replacing after a reconnect; while there is none it fails at
//! once rather than waiting, and the caller decides (the server answers 503,
//! the pipeline holds the request and tries later).

use crate::headers;
use crate::link::Link;
use lapin::BasicProperties;
use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Not connected to RabbitMQ right now; the message was not sent.
    #[error("not connected to RabbitMQ; the message for exchange {0:?} was not sent")]
    Unavailable(String),
    /// No queue is bound to the exchange: nobody would see the message.
    #[error("no queue is bound to exchange {0:?}; the message was returned")]
    Returned(String),
    #[error("RabbitMQ refused the message for exchange {0:?}")]
    Nacked(String),
    #[error("publishing to {exchange:?} failed: {source}")]
    Broker {
        exchange: String,
        #[source]
        source: lapin::Error,
    },
}

impl PublishError {
    /// The broker was away or the connection broke: trying again later may
    /// work. (A returned or refused message is about the topology instead.)
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            PublishError::Unavailable(_) | PublishError::Broker { .. }
        )
    }
}

/// The pauses before each publish again on a fresh channel after a nack:
/// 1.9 s in all, within which a quorum queue has usually elected a new leader.
const NACK_PAUSES: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// Publishes through the live connection's confirming channel. Clone it freely.
#[derive(Clone)]
pub struct Publisher {
    link: watch::Receiver<Option<Link>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let generation = self.link.borrow().as_ref().map(|l| l.generation);
        f.debug_struct("Publisher")
            .field("connection", &generation)
            .finish()
    }
}

/// How one message is to be published.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub message_id: Option<Uuid>,
    /// Return (and fail) the message when no queue is bound.
    pub mandatory: bool,
    /// Name and value; names are the constants of [`crate::headers`].
    pub headers: Vec<(String, String)>,
}

impl Publisher {
    pub(crate) fn following(link: watch::Receiver<Option<Link>>) -> Self {
        Self { link }
    }

    /// Waits (up to `limit`) until a connection with an open confirming
    /// channel is there to publish on; `false` if none came in time. After a
    /// failed publish this tells "the broker is back" from a fixed pause.
    pub async fn wait_until_ready(&self, limit: Duration) -> bool {
        let mut link = self.link.clone();
        let ready = async {
            loop {
                let current = link.borrow_and_update().clone();
                if let Some(current) = current
                    && current.channel().await.is_some()
                {
                    return;
                }
                if link.changed().await.is_err() {
                    // The broker handle is closed: nothing will come.
                    return std::future::pending().await;
                }
            }
        };
        tokio::time::timeout(limit, ready).await.is_ok()
    }

    /// Publishes a persistent JSON message and waits for the broker's confirm.
    /// The current span's trace context goes along in the headers, so the
    /// taker of the message continues the trace.
    pub async fn publish_json(
        &self,
        exchange: &str,
        body: &[u8],
        mut envelope: Envelope,
    ) -> Result<(), PublishError> {
        let trace = dynamo_runtime::trace_context::current();
        if !trace.is_empty() {
            envelope
                .headers
                .retain(|(name, _)| name != headers::TRACEPARENT && name != headers::TRACESTATE);
            envelope.headers.extend(trace);
        }
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        if let Some(id) = envelope.message_id {
            properties = properties.with_message_id(id.to_string().into());
        }
        if !envelope.headers.is_empty() {
            let mut headers = FieldTable::default();
            for (name, value) in envelope.headers {
                // Header names are short strings; ours are fixed and short.
                headers.insert(name.as_str().into(), AMQPValue::LongString(value.into()));
            }
            properties = properties.with_headers(headers);
        }
        self.publish(exchange, body, properties, envelope.mandatory)
            .await
    }

    /// Publishes `body` with exactly these properties and waits for the
    /// broker's confirm (a dead-lettered copy keeps its original's).
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        body: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<(), PublishError> {
        let link = self.link.borrow().clone();
        let Some(link) = link else {
            return Err(PublishError::Unavailable(exchange.to_owned()));
        };
        // A nack is answered on a fresh channel, a few times with short
        // pauses: a quorum queue whose leader moved keeps nacking the old
        // channel for seconds, and a new leader takes a moment to be elected.
        // The caller would publish the same message again after a nack
        // anyway (after `INFRA_RETRY_PAUSE`); this does it sooner, on a
        // channel that can succeed.
        let mut pauses = NACK_PAUSES.iter();
        loop {
            let Some(channel) = link.channel().await else {
                return Err(PublishError::Unavailable(exchange.to_owned()));
            };
            let confirmation =
                publish_on(&channel, exchange, body, properties.clone(), mandatory).await?;
            match confirmation {
                Confirmation::Ack(None) => return Ok(()),
                Confirmation::Ack(Some(_)) => {
                    return Err(PublishError::Returned(exchange.to_owned()));
                }
                // We always select confirm mode on this channel, so
                // NotRequested means it was replaced underneath us: not sent.
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    if let Err(error) = link.renew_channel(&channel).await {
                        tracing::warn!(%error, "could not open a fresh channel after a nack");
                        return Err(PublishError::Nacked(exchange.to_owned()));
                    }
                    let Some(pause) = pauses.next() else {
                        return Err(PublishError::Nacked(exchange.to_owned()));
                    };
                    tokio::time::sleep(*pause).await;
                }
            }
        }
    }
}

/// One publish on `channel`, and the broker's confirm.
async fn publish_on(
    channel: &lapin::Channel,
    exchange: &str,
    body: &[u8],
    properties: BasicProperties,
    mandatory: bool,
) -> Result<Confirmation, PublishError> {
    let broker = |source| PublishError::Broker {
        exchange: exchange.to_owned(),
        source,
    };
    channel
        .basic_publish(
            exchange.into(),
            "".into(),
            BasicPublishOptions {
                mandatory,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await
        .map_err(broker)?
        .await
        .map_err(broker)
}
