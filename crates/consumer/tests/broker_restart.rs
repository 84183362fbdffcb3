//! RabbitMQ restarts under a running consumer: it reconnects by itself and
//! processing resumes, with nothing lost.
//!
//! This restarts the machine's broker (`rabbitmqctl stop_app` / `start_app`),
//! so it lives alone in its own test binary: cargo runs test binaries one at
//! a time, and no other test shares the broker while it runs.
//! Anything else on this machine using it sees its connections drop:
//! `DYNAMO_SKIP_RESTART_TESTS=1 scripts/test.sh` skips this test by name
//! (scripts/test.sh's RESTART_TESTS; rename both together). CI runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_broker::{Broker, Declare, Envelope, Publisher};
use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::Shutdown;
use dynamo_testkit::{TestWorld, eventually, ghost_request};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl is installed");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

async fn open(world: &TestWorld) -> (Connection, Channel, Publisher) {
    let connection = dynamo_broker::connect(&world.broker.settings, "dynamo-tests-restart")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let broker = Broker::start(
        world.broker.settings.clone(),
        "dynamo-tests-restart-publisher",
        world.broker.topology.clone(),
        Declare::Exchanges,
    );
    broker.connected().await.unwrap();
    let publisher = broker.publisher();
    (connection, channel, publisher)
}

async fn next(channel: &Channel, queue: &str) -> Value {
    eventually("a result", WAIT, || async {
        let message = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .ok()??;
        message
            .delivery
            .ack(BasicAckOptions::default())
            .await
            .ok()?;
        serde_json::from_slice(&message.delivery.data).ok()
    })
    .await
}

async fn publish(publisher: &Publisher, exchange: &str, body: &[u8]) {
    publisher
        .publish_json(
            exchange,
            body,
            Envelope {
                message_id: Some(Uuid::new_v4()),
                mandatory: true,
                headers: Vec::new(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn processing_resumes_by_itself_after_rabbitmq_restarts() {
    let world = TestWorld::start().await;
    let topology = world.broker.topology.clone();
    // Durable capture queues survive the restart, as the real consumers' would.
    let results = format!("{}.durable-capture", topology.results_exchange);
    let alerts = format!("{}.durable-capture", topology.alerts_exchange);
    let (_connection, channel, publisher) = open(&world).await;
    for (queue, exchange) in [
        (&results, &topology.results_exchange),
        (&alerts, &topology.alerts_exchange),
    ] {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(dynamo_consumer::run(
        ConsumerConfig::from_env(&world.consumer_env()).unwrap(),
        shutdown.clone(),
    ));

    publish(
        &publisher,
        &topology.requests_exchange,
        &ghost_request("before the restart"),
    )
    .await;
    assert_eq!(next(&channel, &results).await["state"], "succeeded");

    rabbitmqctl(&["stop_app"]);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);

    let (_connection, channel, publisher) = open(&world).await;
    publish(
        &publisher,
        &topology.requests_exchange,
        &ghost_request("after the restart"),
    )
    .await;
    // The first result may come again: an ack in flight when the broker
    // stopped is lost, and delivery is at-least-once.
    let mut result = next(&channel, &results).await;
    if result["description"] == "before the restart" {
        result = next(&channel, &results).await;
    }
    assert_eq!(result["description"], "after the restart", "{result}");
    assert_eq!(result["state"], "succeeded", "{result}");

    shutdown.trigger();
    consumer.await.unwrap().unwrap();
    for queue in [&results, &alerts] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}
