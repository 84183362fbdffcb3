//! A broker handle on names of the test's own, against the real RabbitMQ,
//! and their clean-up; shared by the broker's tests.
#![allow(dead_code)] // each test binary uses a different part of it

use dynamo_broker::{Broker, Declare, Topology};
use dynamo_runtime::{BrokerSettings, Env};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use std::time::Duration;

pub const LIMIT: Duration = Duration::from_secs(10);

pub struct TestBroker {
    pub settings: BrokerSettings,
    pub topology: Topology,
    pub broker: Broker,
    /// The generation of the first connection.
    pub first: u64,
}

impl TestBroker {
    /// Connected, having declared `declare`.
    pub async fn start(declare: Declare) -> Self {
        let settings =
            BrokerSettings::from_env(&Env::from_process().unwrap_or_default()).unwrap();
        let topology = Topology::prefixed(&format!("test-{}", uuid::Uuid::new_v4().simple()));
        let broker = Broker::start(
            settings.clone(),
            "dynamo-broker-tests",
            topology.clone(),
            declare,
        );
        let first = tokio::time::timeout(LIMIT, broker.connected())
            .await
            .expect("RabbitMQ must be running for the tests (see README: Testing)")
            .unwrap()
            .generation();
        Self {
            settings,
            topology,
            broker,
            first,
        }
    }

    /// Deletes the test's queues and exchanges (those not there are fine)
    /// and closes the handle.
    pub async fn clean_up(self) {
        let connection = dynamo_broker::connect(&self.settings, "dynamo-broker-tests-cleanup")
            .await
            .unwrap();
        let topology = &self.topology;
        for queue in [&topology.requests_queue, &topology.dead_letter_queue] {
            // A failed delete closes the channel: one channel per name.
            let channel = connection.create_channel().await.unwrap();
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
            let channel = connection.create_channel().await.unwrap();
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = connection.close(200, "test over".into()).await;
        self.broker.close().await;
    }
}
