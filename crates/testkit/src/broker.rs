//! Per-test exchange and queue names on the real broker, and queues that
//! capture what dynamo publishes.

use dynamo_broker::{Broker, Declare, Envelope, Publisher, Topology};
use dynamo_runtime::{BrokerSettings, Env};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use std::sync::Mutex;
use std::time::Duration;

pub struct TestBroker {
    pub topology: Topology,
    pub settings: BrokerSettings,
    pub connection: Connection,
    pub channel: Channel,
    pub publisher: Publisher,
    /// Capture queues made by [`TestBroker::capture`], deleted on drop: a
    /// queue read only with `basic.get` never has a consumer, so RabbitMQ's
    /// auto-delete never removes it.
    captures: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TestBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBroker")
            .field("topology", &self.topology)
            .finish()
    }
}

/// A message captured from one of dynamo's exchanges.
#[derive(Debug, Clone)]
pub struct Captured {
    pub body: serde_json::Value,
    pub raw: Vec<u8>,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub persistent: bool,
    pub headers: Vec<(String, String)>,
}

impl Captured {
    /// The value of a string header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl TestBroker {
    pub async fn create() -> Self {
        let settings = BrokerSettings::from_env(&Env::from_process().unwrap_or_default()).unwrap();
        let connection = dynamo_broker::connect(&settings, "dynamo-tests")
            .await
            .expect("RabbitMQ must be running for the tests (see README: Testing)");
        let channel = connection.create_channel().await.unwrap();
        let topology = Topology::prefixed(&format!("test-{}", uuid::Uuid::new_v4().simple()));
        topology.declare_all(&channel).await.unwrap();
        // Published through the same self-healing connection dynamo uses.
        let broker = Broker::start(
            settings.clone(),
            "dynamo-tests-publisher",
            topology.clone(),
            Declare::Exchanges,
        );
        tokio::time::timeout(Duration::from_secs(30), broker.connected())
            .await
            .expect("RabbitMQ must be running for the tests")
            .expect("the broker handle was just started");
        let publisher = broker.publisher();
        Self {
            topology,
            settings,
            connection,
            channel,
            publisher,
            captures: Mutex::default(),
        }
    }

    /// A fresh connection and channel for the test's own reads, after a
    /// test restarted RabbitMQ: a lapin connection does not come back by
    /// itself, and reading on the dead one would fail (or read nothing).
    pub async fn reconnect(&mut self) {
        self.connection = dynamo_broker::connect(&self.settings, "dynamo-tests")
            .await
            .unwrap();
        self.channel = self.connection.create_channel().await.unwrap();
    }

    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let t = &self.topology;
        [
            ("RMQ_REQUESTS_EXCHANGE", &t.requests_exchange),
            ("RMQ_REQUESTS_QUEUE", &t.requests_queue),
            ("RMQ_DEAD_LETTER_EXCHANGE", &t.dead_letter_exchange),
            ("RMQ_DEAD_LETTER_QUEUE", &t.dead_letter_queue),
            ("RMQ_ALERTS_EXCHANGE", &t.alerts_exchange),
            ("RMQ_RESULTS_EXCHANGE", &t.results_exchange),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }

    /// A queue bound to `exchange`, as another service would bind one.
    /// Deleted with the rest of the test's names.
    pub async fn capture(&self, exchange: &str) -> String {
        let queue = format!("{exchange}.capture-{}", uuid::Uuid::new_v4().simple());
        self.channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.captures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(queue.clone());
        queue
    }

    /// Capture queues on the results and alerts exchanges, in that order:
    /// what the chatbot and the alerts service would receive.
    pub async fn capture_outputs(&self) -> (String, String) {
        let results = self.capture(&self.topology.results_exchange).await;
        let alerts = self.capture(&self.topology.alerts_exchange).await;
        (results, alerts)
    }

    /// Publishes raw bytes to the requests exchange, as the Golden VCR
    /// pipeline does (optionally with a message id).
    pub async fn publish_request(&self, body: &[u8], message_id: Option<uuid::Uuid>) {
        self.publisher
            .publish_json(
                &self.topology.requests_exchange,
                body,
                Envelope {
                    message_id,
                    mandatory: true,
                    headers: Vec::new(),
                },
            )
            .await
            .unwrap();
    }

    /// Publishes to the requests exchange straight through AMQP, with the
    /// properties given and no check of the body: as a careless or hostile
    /// publisher would, bypassing everything dynamo validates.
    pub async fn publish_raw(
        &self,
        body: &[u8],
        message_id: &str,
        content_type: &str,
        headers: &[(&str, &str)],
    ) {
        let mut table = FieldTable::default();
        for (name, value) in headers {
            table.insert(
                (*name).into(),
                lapin::types::AMQPValue::LongString((*value).into()),
            );
        }
        let properties = lapin::BasicProperties::default()
            .with_message_id(message_id.into())
            .with_content_type(content_type.into())
            .with_headers(table);
        self.channel
            .basic_publish(
                self.topology.requests_exchange.as_str().into(),
                "".into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap();
    }

    /// The next message on `queue`, waiting up to `limit`.
    pub async fn next(&self, queue: &str, limit: Duration) -> Option<Captured> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self
                .channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .unwrap();
            if let Some(message) = got {
                let delivery = message.delivery;
                delivery.ack(BasicAckOptions::default()).await.unwrap();
                let properties = &delivery.properties;
                let headers = properties
                    .headers()
                    .as_ref()
                    .map(|table| {
                        table
                            .inner()
                            .iter()
                            .filter_map(|(k, v)| match v {
                                lapin::types::AMQPValue::LongString(s) => Some((
                                    k.to_string(),
                                    String::from_utf8_lossy(s.as_bytes()).into_owned(),
                                )),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(Captured {
                    body: serde_json::from_slice(&delivery.data).unwrap_or(serde_json::Value::Null),
                    message_id: properties.message_id().as_ref().map(|id| id.to_string()),
                    content_type: properties.content_type().as_ref().map(|t| t.to_string()),
                    persistent: *properties.delivery_mode() == Some(2),
                    headers,
                    raw: delivery.data,
                });
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// How many messages wait in `queue`.
    pub async fn depth(&self, queue: &str) -> u32 {
        self.look_at(queue).await.message_count()
    }

    /// How many consumers `queue` has: a process consumes once it counts.
    pub async fn consumers(&self, queue: &str) -> u32 {
        self.look_at(queue).await.consumer_count()
    }

    /// The queue as the broker has it (a passive declare changes nothing).
    async fn look_at(&self, queue: &str) -> lapin::Queue {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let settings = self.settings.clone();
        let topology = self.topology.clone();
        let captures = std::mem::take(
            &mut *self
                .captures
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        crate::clean_up("the test's broker names", move || async move {
            delete_names(&settings, &topology, &captures).await
        });
    }
}

/// Deletes a test's queues and exchanges. A queue or exchange that is not
/// there (a test deleted it, or never declared it) is not an error.
async fn delete_names(
    settings: &BrokerSettings,
    topology: &Topology,
    captures: &[String],
) -> anyhow::Result<()> {
    let connection = dynamo_broker::connect(settings, "dynamo-tests-cleanup").await?;
    let queues = captures
        .iter()
        .chain([&topology.requests_queue, &topology.dead_letter_queue]);
    for queue in queues {
        // A failed delete closes the channel: one channel per name.
        let channel = connection.create_channel().await?;
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [
        &topology.requests_exchange,
        &topology.alerts_exchange,
        &topology.results_exchange,
        &topology.dead_letter_exchange,
    ] {
        let channel = connection.create_channel().await?;
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "test over".into()).await;
    Ok(())
}
