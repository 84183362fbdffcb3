//! Publishing with broker confirms: a message counts as sent only once
//! RabbitMQ has acknowledged it, and an unroutable one is an error.

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use uuid::Uuid;

/// The header that carries why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-dynamo-reason";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
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

/// A channel in confirm mode. Clone it freely: lapin channels are shared handles.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("channel", &self.channel.id())
            .finish()
    }
}

/// How one message is to be published.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub message_id: Option<Uuid>,
    /// Return (and fail) the message when no queue is bound.
    pub mandatory: bool,
    pub headers: Vec<(String, String)>,
}

impl Publisher {
    pub async fn open(connection: &Connection) -> Result<Self, lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes a persistent JSON message and waits for the broker's confirm.
    pub async fn publish_json(
        &self,
        exchange: &str,
        body: &[u8],
        envelope: Envelope,
    ) -> Result<(), PublishError> {
        let broker = |source| PublishError::Broker {
            exchange: exchange.to_owned(),
            source,
        };
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
        let confirmation = self
            .channel
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions {
                    mandatory: envelope.mandatory,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(broker)?
            .await
            .map_err(broker)?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(PublishError::Returned(exchange.to_owned())),
            Confirmation::Nack(_) => Err(PublishError::Nacked(exchange.to_owned())),
            // We always select confirm mode on this channel, so this means the
            // channel was replaced underneath us: treat as not sent.
            Confirmation::NotRequested => Err(PublishError::Nacked(exchange.to_owned())),
        }
    }
}
