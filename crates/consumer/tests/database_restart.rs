//! PostgreSQL restarts under a running consumer: processing resumes by itself.
//!
//! This restarts the machine's PostgreSQL, so it lives alone in its own test
//! binary: cargo runs test binaries one at a time.
//! Anything else on this machine using it sees its connections drop:
//! `DYNAMO_SKIP_RESTART_TESTS=1 scripts/test.sh` skips this test by name
//! (scripts/test.sh's RESTART_TESTS; rename both together). CI runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::Shutdown;
use dynamo_testkit::{TestWorld, ghost_request};

use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);

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
    let (results, _alerts) = world.broker.capture_outputs().await;
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(dynamo_consumer::run(
        ConsumerConfig::from_env(&world.consumer_env()).unwrap(),
        shutdown.clone(),
    ));
    world
        .broker
        .publish_request(&ghost_request("before"), Some(Uuid::new_v4()))
        .await;
    assert_eq!(
        world.broker.next(&results, WAIT).await.unwrap().body["state"],
        "succeeded"
    );

    restart_postgres();

    world
        .broker
        .publish_request(&ghost_request("after"), Some(Uuid::new_v4()))
        .await;
    let result = world
        .broker
        .next(&results, WAIT)
        .await
        .expect("a result after the restart");
    assert_eq!(result.body["description"], "after");
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let flows = world.fakes.flows();
    assert_eq!(flows.len(), 2, "one debit per request");
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}
