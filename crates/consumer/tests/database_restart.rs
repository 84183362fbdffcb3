//! PostgreSQL restarts under a running consumer, with requests in flight:
//! processing resumes by itself, nothing is lost, nobody is charged twice or
//! left pending (counted from the fake ledger), every alert goes out once.
//!
//! This restarts the machine's PostgreSQL, so it lives alone in its own test
//! binary: cargo runs test binaries one at a time.
//! Anything else on this machine using it sees its connections drop:
//! `DYNAMO_SKIP_RESTART_TESTS=1 scripts/test.sh` skips this test by name
//! (scripts/test.sh's RESTART_TESTS; rename both together). CI runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::Shutdown;
use dynamo_testkit::{Expected, TestWorld, assert_alerts, drain_by_message_id, ghost_request};
use support::in_flight;

use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);
/// Requests under way when the database stops.
const IN_FLIGHT: usize = 6;

fn from_viewer_1(request_id: Uuid) -> Expected {
    Expected {
        request_id,
        viewer: "1".to_owned(),
        succeeded: true,
    }
}

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .unwrap();
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctlcluster restart failed");
}

#[tokio::test]
async fn processing_resumes_by_itself_after_postgresql_restarts() {
    let world = TestWorld::start().await;
    let (results, alerts) = world.broker.capture_outputs().await;
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(dynamo_consumer::run(
        ConsumerConfig::from_env(&world.consumer_env()).unwrap(),
        shutdown.clone(),
    ));
    let before = Uuid::new_v4();
    world
        .broker
        .publish_request(&ghost_request("before"), Some(before))
        .await;
    assert_eq!(
        world.broker.next(&results, WAIT).await.unwrap().body["state"],
        "succeeded"
    );
    let mut expected = vec![from_viewer_1(before)];
    // Requests under way when the database goes: their progress cannot be
    // recorded until it is back, and each must end once.
    expected.extend(in_flight::send(&world, IN_FLIGHT, Duration::from_secs(2)).await);
    in_flight::under_way(&world, 2).await;

    restart_postgres();

    let after = Uuid::new_v4();
    world
        .broker
        .publish_request(&ghost_request("after"), Some(after))
        .await;
    expected.push(from_viewer_1(after));
    in_flight::all_ended(&world, expected.len() as i64, WAIT).await;
    world.fakes.assert_money(&expected);
    let reported = drain_by_message_id(&world.broker, &results).await;
    for e in &expected[1..] {
        assert!(
            reported.contains_key(&e.request_id.to_string()),
            "no result for {}: {reported:?}",
            e.request_id
        );
    }
    // An alert confirmed just before the database went, whose "alerted"
    // could not be recorded, is sent again when the request resumes (the
    // confirm→commit window): at most one per request in flight, counted.
    let repeats = assert_alerts(
        &drain_by_message_id(&world.broker, &alerts).await,
        &expected,
        IN_FLIGHT,
    );
    eprintln!("alerts repeated after the restart: {repeats}");
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}
