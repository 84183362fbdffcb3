//! Per-test exchange and queue names on the real broker, and queues that
//! capture what dynamo publishes.

use dynamo_broker::lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use dynamo_broker::lapin::types::FieldTable;
use dynamo_broker::lapin::{Channel, Connection};
use dynamo_broker::{Envelope, Publisher, Topology};
use dynamo_runtime::{BrokerSettings, Env};
use std::time::Duration;

pub struct TestBroker {
    pub topology: Topology,
    pub settings: BrokerSettings,
    pub connection: Connection,
    pub channel: Channel,
    pub publisher: Publisher,
    /// Capture queues declared so far, deleted on drop with the rest.
    captures: std::sync::Mutex<Vec<String>>,
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
    pub persistent: bool,
    pub headers: Vec<(String, String)>,
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
        let publisher = Publisher::open(&connection).await.unwrap();
        Self {
            topology,
            settings,
            connection,
            channel,
            publisher,
            captures: std::sync::Mutex::default(),
        }
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
        self.captures.lock().unwrap().push(queue.clone());
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
                                dynamo_broker::lapin::types::AMQPValue::LongString(s) => Some((
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
            .message_count()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which is about to end (a task
        // spawned on it would never run) and cannot be blocked on: delete the
        // test's queues and exchanges from a thread with a runtime and a
        // connection of its own, and wait for it, so nothing piles up on the
        // machine's broker.
        let settings = self.settings.clone();
        let t = self.topology.clone();
        let mut queues = std::mem::take(&mut *self.captures.lock().unwrap());
        queues.extend([t.requests_queue.clone(), t.dead_letter_queue.clone()]);
        let exchanges = [
            t.requests_exchange.clone(),
            t.alerts_exchange.clone(),
            t.results_exchange.clone(),
            t.dead_letter_exchange.clone(),
        ];
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                // Best effort: a test that stopped the broker leaves nothing to reach.
                let Ok(connection) =
                    dynamo_broker::connect(&settings, "dynamo-tests-cleanup").await
                else {
                    return;
                };
                let Ok(channel) = connection.create_channel().await else {
                    return;
                };
                for queue in &queues {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                for exchange in &exchanges {
                    let _ = channel
                        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                        .await;
                }
                let _ = connection.close(200, "test done".into()).await;
            });
        })
        .join();
    }
}
