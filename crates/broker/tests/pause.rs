//! Pausing a subscription (issue 12 item 3): while paused the broker sends
//! nothing and keeps new messages ready in the queue; deliveries it had sent
//! but nobody took go back to it; those taken can still be settled; resuming
//! delivers the rest. Against the real RabbitMQ, on names of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup should fail the test

mod support;

use dynamo_broker::{Broker, Declare, Delivery, Envelope, Subscription, Topology};
use std::time::Duration;
use support::{LIMIT, TestBroker};

async fn publish(broker: &Broker, topology: &Topology, n: usize) {
    for i in 0..n {
        broker
            .publisher()
            .publish_json(
                &topology.requests_exchange,
                format!("{{\"n\":{i}}}").as_bytes(),
                Envelope {
                    message_id: None,
                    mandatory: true,
                    headers: vec![],
                },
            )
            .await
            .unwrap();
    }
}

/// Waits for the queue to hold `ready` messages (a nack, like a publish on
/// another channel, reaches the queue a moment after it is sent).
async fn ready_becomes(broker: &Broker, ready: u32, why: &str) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let depth = broker.requests_queue_depth().await;
        if depth == Some(ready) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{why}: {depth:?} ready, not {ready}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next(subscription: &mut Subscription) -> Delivery {
    tokio::time::timeout(LIMIT, subscription.next())
        .await
        .expect("a delivery")
        .unwrap()
}

#[tokio::test]
async fn a_paused_subscription_leaves_messages_ready_and_resumes() {
    let test = TestBroker::start(Declare::Everything).await;
    let (broker, topology) = (&test.broker, &test.topology);
    let connected = broker.connected().await.unwrap();
    publish(broker, topology, 3).await;

    // With room for all three, the broker sends them all; one is taken.
    let mut subscription = connected
        .consume(&topology.requests_queue, 3)
        .await
        .unwrap();
    let taken = next(&mut subscription).await;
    ready_becomes(broker, 0, "all sent").await;

    subscription.pause().await.unwrap();
    assert!(subscription.is_paused());
    ready_becomes(broker, 2, "the two sent but not taken are ready again").await;
    publish(broker, topology, 2).await;
    ready_becomes(broker, 4, "nothing is sent while paused").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), subscription.next())
            .await
            .is_err(),
        "no delivery while paused"
    );
    taken
        .ack()
        .await
        .expect("a delivery taken before still settles");

    subscription.resume().await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let delivery = next(&mut subscription).await;
        bodies.push(String::from_utf8(delivery.body.clone()).unwrap());
        delivery.ack().await.unwrap();
    }
    bodies.sort();
    assert_eq!(
        bodies,
        [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":1}"#, r#"{"n":2}"#]
    );
    ready_becomes(broker, 0, "all taken").await;
    subscription.close().await;

    test.clean_up().await;
}
