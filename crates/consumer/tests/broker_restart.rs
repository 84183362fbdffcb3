//! RabbitMQ restarts under a running consumer, with requests in flight: it
//! reconnects by itself and processing resumes, with nothing lost, nobody
//! charged twice or left pending (counted from the fake ledger) and every
//! alert delivered.
//!
//! This restarts the machine's broker (`rabbitmqctl stop_app` / `start_app`),
//! so it lives alone in its own test binary: cargo runs test binaries one at
//! a time, and no other test shares the broker while it runs.
//! Anything else on this machine using it sees its connections drop:
//! `DYNAMO_SKIP_RESTART_TESTS=1 scripts/test.sh` skips this test by name
//! (scripts/test.sh's RESTART_TESTS; rename both together). CI runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_broker::{Broker, Declare, Envelope, Publisher};
use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::Shutdown;
use dynamo_testkit::{
    Expected, TestWorld, assert_alerts, count_by_message_id, eventually, ghost_request,
};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use support::in_flight;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);
/// Requests under way when the broker stops.
const IN_FLIGHT: usize = 6;

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

/// Publishes a request from viewer "1" and says how it must end.
async fn publish(publisher: &Publisher, exchange: &str, body: &[u8]) -> Expected {
    let request_id = Uuid::new_v4();
    publisher
        .publish_json(
            exchange,
            body,
            Envelope {
                message_id: Some(request_id),
                mandatory: true,
                headers: Vec::new(),
            },
        )
        .await
        .unwrap();
    Expected {
        request_id,
        viewer: "1".to_owned(),
        succeeded: true,
    }
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

    let mut expected = vec![
        publish(
            &publisher,
            &topology.requests_exchange,
            &ghost_request("before the restart"),
        )
        .await,
    ];
    assert_eq!(next(&channel, &results).await["state"], "succeeded");
    // Requests under way when the broker goes: their deliveries cannot be
    // acked any more, their alerts and results must still go out once.
    expected.extend(in_flight::send(&world, IN_FLIGHT, Duration::from_secs(2)).await);
    in_flight::under_way(&world, 2).await;

    rabbitmqctl(&["stop_app"]);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);

    let (_connection, channel, publisher) = open(&world).await;
    expected.push(
        publish(
            &publisher,
            &topology.requests_exchange,
            &ghost_request("after the restart"),
        )
        .await,
    );
    in_flight::all_ended(&world, expected.len() as i64, WAIT).await;
    world.fakes.assert_money(&expected);
    // A result or alert whose confirm was lost with the connection is sent
    // again (at-least-once); none may be missing, and repeats are bounded by
    // what was in flight.
    let reported = count_by_message_id(&channel, &results).await;
    // The first result was read before the restart.
    for e in &expected[1..] {
        assert!(
            reported.contains_key(&e.request_id.to_string()),
            "no result for {}: {reported:?}",
            e.request_id
        );
    }
    let repeats = assert_alerts(
        &count_by_message_id(&channel, &alerts).await,
        &expected,
        IN_FLIGHT,
    );
    eprintln!("alerts repeated after the restart: {repeats}");

    shutdown.trigger();
    consumer.await.unwrap().unwrap();
    for queue in [&results, &alerts] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}
