//! The exchanges and queues dynamo uses, declared idempotently at start-up.

use crate::BrokerError;
use dynamo_runtime::{Env, SettingError};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ErrorKind, ExchangeKind};

/// What the broker says about the request queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDepth {
    /// This many messages wait in it.
    Waiting(u32),
    /// It does not exist yet: no consumer has declared it, so nothing
    /// published now would be kept.
    NotDeclared,
    /// The broker did not say (not connected, or another error).
    Unknown,
}

impl QueueDepth {
    /// The number waiting, when known.
    pub fn waiting(self) -> Option<u32> {
        match self {
            QueueDepth::Waiting(count) => Some(count),
            QueueDepth::NotDeclared | QueueDepth::Unknown => None,
        }
    }
}

/// A passive declare of a queue that does not exist.
fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

/// Names of everything dynamo declares. Defaults follow SPEC §2; tests give
/// each run its own names so they can share one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `RMQ_REQUESTS_EXCHANGE`, default `generation-requests`.
    pub requests_exchange: String,
    /// `RMQ_REQUESTS_QUEUE`, default `dynamo.generation-requests`: our own
    /// durable queue bound to the requests exchange.
    pub requests_queue: String,
    /// `RMQ_DEAD_LETTER_EXCHANGE`, default `dynamo.dead-letters`.
    pub dead_letter_exchange: String,
    /// `RMQ_DEAD_LETTER_QUEUE`, default `dynamo.dead-letters`: where malformed
    /// requests are parked with the reason.
    pub dead_letter_queue: String,
    /// `RMQ_ALERTS_EXCHANGE`, default `onscreen-events`.
    pub alerts_exchange: String,
    /// `RMQ_RESULTS_EXCHANGE`, default `generation-results`.
    pub results_exchange: String,
    /// `RMQ_QUORUM_QUEUES`, default false: declare our queues as quorum queues
    /// (replicated; needs a RabbitMQ cluster to be worth it). A queue's type
    /// cannot change once declared.
    pub quorum_queues: bool,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            requests_exchange: "generation-requests".into(),
            requests_queue: "dynamo.generation-requests".into(),
            dead_letter_exchange: "dynamo.dead-letters".into(),
            dead_letter_queue: "dynamo.dead-letters".into(),
            alerts_exchange: "onscreen-events".into(),
            results_exchange: "generation-results".into(),
            quorum_queues: false,
        }
    }
}

impl Topology {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let defaults = Self::default();
        let name = |var: &str, default: &str| -> Result<String, SettingError> {
            let value = env.string(var, default);
            // AMQP names are short strings: at most 255 bytes.
            if value.len() > 255 {
                return Err(SettingError::new(var, "must be at most 255 bytes"));
            }
            Ok(value)
        };
        Ok(Self {
            requests_exchange: name("RMQ_REQUESTS_EXCHANGE", &defaults.requests_exchange)?,
            requests_queue: name("RMQ_REQUESTS_QUEUE", &defaults.requests_queue)?,
            dead_letter_exchange: name("RMQ_DEAD_LETTER_EXCHANGE", &defaults.dead_letter_exchange)?,
            dead_letter_queue: name("RMQ_DEAD_LETTER_QUEUE", &defaults.dead_letter_queue)?,
            alerts_exchange: name("RMQ_ALERTS_EXCHANGE", &defaults.alerts_exchange)?,
            results_exchange: name("RMQ_RESULTS_EXCHANGE", &defaults.results_exchange)?,
            quorum_queues: env.flag("RMQ_QUORUM_QUEUES", false)?,
        })
    }

    /// The same names with a prefix, for isolated test runs.
    pub fn prefixed(prefix: &str) -> Self {
        let d = Self::default();
        let p = |name: String| format!("{prefix}.{name}");
        Self {
            requests_exchange: p(d.requests_exchange),
            requests_queue: p(d.requests_queue),
            dead_letter_exchange: p(d.dead_letter_exchange),
            dead_letter_queue: p(d.dead_letter_queue),
            alerts_exchange: p(d.alerts_exchange),
            results_exchange: p(d.results_exchange),
            quorum_queues: false,
        }
    }

    /// The exchanges dynamo publishes to (declared by producers and consumers alike).
    pub async fn declare_exchanges(&self, channel: &Channel) -> Result<(), BrokerError> {
        for exchange in [
            &self.requests_exchange,
            &self.alerts_exchange,
            &self.results_exchange,
            &self.dead_letter_exchange,
        ] {
            declare_fanout(channel, exchange).await?;
        }
        Ok(())
    }

    /// Everything the consumer needs: exchanges, its request queue (dead-lettering
    /// into the dead-letter exchange) and the dead-letter queue.
    pub async fn declare_all(&self, channel: &Channel) -> Result<(), BrokerError> {
        self.declare_exchanges(channel).await?;
        self.declare_queue(channel, &self.dead_letter_queue, FieldTable::default())
            .await?;
        self.bind(channel, &self.dead_letter_queue, &self.dead_letter_exchange)
            .await?;

        let mut arguments = FieldTable::default();
        // Without a dead-letter exchange, RabbitMQ silently drops a message
        // rejected without requeue (and, on quorum queues, one redelivered
        // too often); with it, such messages are parked where operators look.
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange.as_str().into()),
        );
        self.declare_queue(channel, &self.requests_queue, arguments)
            .await?;
        self.bind(channel, &self.requests_queue, &self.requests_exchange)
            .await
    }

    /// Messages waiting in the request queue, asked on a channel of its own.
    /// A queue nobody declared yet (no consumer has run) closes that channel
    /// with 404, which is an answer, not a lost connection.
    pub async fn requests_queue(&self, connection: &lapin::Connection) -> QueueDepth {
        let Ok(channel) = connection.create_channel().await else {
            return QueueDepth::Unknown;
        };
        let declared = channel
            .queue_declare(
                self.requests_queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(queue) => {
                let _ = channel.close(200, "done".into()).await;
                QueueDepth::Waiting(queue.message_count())
            }
            // The broker closed the channel itself.
            Err(error) if is_not_found(&error) => QueueDepth::NotDeclared,
            Err(_) => QueueDepth::Unknown,
        }
    }

    async fn declare_queue(
        &self,
        channel: &Channel,
        queue: &str,
        mut arguments: FieldTable,
    ) -> Result<(), BrokerError> {
        if self.quorum_queues {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await
            .map_err(|source| BrokerError::Declare {
                what: format!(
                    "queue {queue:?} (if it exists with other arguments, e.g. another queue \
                     type or dead-letter exchange, delete it or pick another name)"
                ),
                source,
            })?;
        Ok(())
    }

    async fn bind(
        &self,
        channel: &Channel,
        queue: &str,
        exchange: &str,
    ) -> Result<(), BrokerError> {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| BrokerError::Declare {
                what: format!("binding of queue {queue:?} to exchange {exchange:?}"),
                source,
            })
    }
}

async fn declare_fanout(channel: &Channel, exchange: &str) -> Result<(), BrokerError> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|source| BrokerError::Declare {
            what: format!("durable fanout exchange {exchange:?}"),
            source,
        })
}
