//! A server may start before any consumer (issue 25 item 6): asking for the
//! depth of a request queue nobody has declared yet is answered "not
//! declared", on a channel of its own, and never costs the connection.
//! Against the real RabbitMQ, on names of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup should fail the test

mod support;

use dynamo_broker::{Declare, Envelope, PublishError, QueueDepth};
use support::TestBroker;

#[tokio::test]
async fn asking_for_a_queue_no_consumer_declared_keeps_the_connection() {
    // As the server does: exchanges only, the queue is the consumer's.
    let test = TestBroker::start(Declare::Exchanges).await;
    let broker = &test.broker;

    // As a dashboard polling /stats would. Each 404 closes a channel; before
    // the fix the link took that for a lost connection and reconnected, so
    // later answers were `Unknown` (no link) and the generation moved on.
    for poll in 0..20 {
        assert_eq!(
            broker.requests_queue().await,
            QueueDepth::NotDeclared,
            "poll {poll}"
        );
    }
    // A publish needs the live confirming channel: it is still there, and
    // the broker returns the message as unroutable rather than failing.
    let published = broker
        .publisher()
        .publish_json(
            &test.topology.requests_exchange,
            b"{}",
            Envelope {
                message_id: None,
                mandatory: true,
                headers: vec![],
            },
        )
        .await;
    assert!(
        matches!(published, Err(PublishError::Returned(_))),
        "no queue bound is said as such: {published:?}"
    );
    assert!(broker.is_connected());
    let now = broker.connected().await.unwrap().generation();
    assert_eq!(now, test.first, "the broker connection was replaced");
    test.clean_up().await;
}
