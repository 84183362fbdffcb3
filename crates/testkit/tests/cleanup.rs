//! The test world tidies up after itself: tests run on the machine's own
//! RabbitMQ and PostgreSQL, and nothing of theirs may pile up there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{TestBroker, TestDatabase};
use lapin::ExchangeKind;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

#[test]
fn a_test_broker_leaves_no_queue_or_exchange_behind() {
    // As in every test, the broker is dropped as the test's runtime ends.
    let (capture, settings, t) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let broker = TestBroker::create().await;
        let capture = broker.capture(&broker.topology.results_exchange).await;
        (capture, broker.settings.clone(), broker.topology.clone())
    });
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(nothing_left(capture, settings, t));
}

async fn nothing_left(
    capture: String,
    settings: dynamo_runtime::BrokerSettings,
    t: dynamo_broker::Topology,
) {
    let connection = dynamo_broker::connect(&settings, "cleanup-check")
        .await
        .unwrap();
    for queue in [capture, t.requests_queue, t.dead_letter_queue] {
        // A passive declare of a missing queue closes its channel: one each.
        let channel = connection.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let found = channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await;
        assert!(found.is_err(), "queue {queue} is still there");
    }
    for exchange in [
        t.requests_exchange,
        t.alerts_exchange,
        t.results_exchange,
        t.dead_letter_exchange,
    ] {
        let channel = connection.create_channel().await.unwrap();
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        let found = channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Fanout,
                passive,
                FieldTable::default(),
            )
            .await;
        assert!(found.is_err(), "exchange {exchange} is still there");
    }
}

#[tokio::test]
async fn a_test_database_is_dropped_with_it() {
    let database = TestDatabase::create().await;
    let name = database.name.clone();
    let settings = database.settings.clone();
    drop(database);

    let admin =
        sqlx::PgPool::connect_with(dynamo_store::connect_options(&settings).database("postgres"))
            .await
            .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "database {name} is still there");
}
