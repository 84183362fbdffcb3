//! dynamo's own database failing under a request is not the upstream's
//! failure (issue 26 item 3): the request waits and resumes, its deliveries
//! (`attempts`) and its step's tries untouched, and it is not ended.
//!
//! The consumer reaches PostgreSQL through a proxy the test controls, so
//! only this consumer loses its database (the machine's PostgreSQL keeps
//! serving everyone else, including the test's own checks), and the test
//! proves the outage happened: the proxy counts the connections it refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_runtime::Env;
use dynamo_store::RateLimiter;
use dynamo_testkit::{FlakyProxy, TestWorld, eventually};
use std::sync::Arc;
use std::time::Duration;
use support::{Running, WAIT, ghost};
use uuid::Uuid;

/// How long the database stays away: about what a PostgreSQL restart takes.
const OUTAGE: Duration = Duration::from_secs(5);

/// A consumer whose database is behind `proxy`, waiting out infrastructure
/// failures briefly so the test sees several tries during the outage.
async fn start_behind(world: TestWorld, extra: &[(&str, &str)]) -> (Running, FlakyProxy) {
    let target = format!(
        "{}:{}",
        world.database.settings.host, world.database.settings.port
    );
    let proxy = FlakyProxy::start(target, 0).await;
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    let mut env: Env = world
        .consumer_env()
        .with("PGHOST", "127.0.0.1")
        .with("PGPORT", &port)
        .with("INFRA_RETRY_PAUSE", "200ms")
        .with("MODERATION", "false");
    for (key, value) in extra {
        env = env.with(key, *value);
    }
    (Running::start(world, env).await, proxy)
}

/// Takes the database away from the consumer for [`OUTAGE`], doing `meanwhile`
/// once it is away, and returns how many of the consumer's connections the
/// proxy refused in that time.
async fn outage(proxy: &FlakyProxy, meanwhile: impl FnOnce()) -> usize {
    let before = proxy.dropped();
    proxy.set_down(true);
    meanwhile();
    // The fault's length, not a wait for a condition.
    tokio::time::sleep(OUTAGE).await;
    proxy.set_down(false);
    proxy.dropped() - before
}

/// What the request's row and its failure log say from outside.
async fn attempts_and_failures(running: &Running, id: Uuid) -> (i32, Vec<String>) {
    let pool = running.world.database.pool();
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM dynamo.image_request WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
    let failures: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM dynamo.step_failure WHERE image_request_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    (attempts, failures)
}

async fn state_of(running: &Running, id: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM dynamo.image_request WHERE id = $1")
        .bind(id)
        .fetch_optional(running.world.database.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_outage_while_waiting_for_the_rate_limiter_costs_no_attempt() {
    let world = TestWorld::start().await;
    // One image per window, and that one taken by a call in flight
    // elsewhere in the fleet: the request waits for the limiter, in place.
    let (running, proxy) = start_behind(
        world,
        &[
            ("OPENAI_IMAGES_PER_MINUTE", "1"),
            ("RATE_LIMIT_WINDOW", "1s"),
            ("RETRY_INLINE_MAX", "120s"),
        ],
    )
    .await;
    let elsewhere = RateLimiter::new(
        running.world.database.pool().clone(),
        "openai-images",
        1,
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    let in_flight = elsewhere
        .acquire_within(Duration::ZERO)
        .await
        .unwrap()
        .expect("the image slot");

    let id = running.send(&ghost("a seal")).await;
    // Debited, and admitted by the requests limiter: it now polls the
    // images limiter, which has no room while the other call is in flight.
    eventually(
        "the request to wait for the images limiter",
        WAIT,
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM dynamo.rate_limit_call WHERE limiter = 'openai-requests'",
            )
            .fetch_one(running.world.database.pool())
            .await
            .unwrap();
            (state_of(&running, id).await.as_deref() == Some("debited") && waiting > 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(running.world.fakes.with(|s| s.image_calls.len()), 0);

    let refused = outage(&proxy, || {}).await;
    assert!(
        refused > 0,
        "the consumer's database was really away: it tried to connect"
    );
    in_flight.cancel().await.unwrap();

    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let (attempts, failures) = attempts_and_failures(&running, id).await;
    assert_eq!(attempts, 1, "delivered once, never requeued");
    assert!(failures.is_empty(), "no try was spent: {failures:?}");
    assert_eq!(running.world.fakes.flows().len(), 1, "one debit");
    running.stop().await;
}

#[tokio::test]
async fn a_database_outage_while_looking_for_an_orphaned_debit_costs_no_attempt() {
    let world = TestWorld::start().await;
    // The first debit's answer never comes back: the retry reads the
    // ledger's history and asks the database which debits are held.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    world.fakes.with(|s| {
        s.debit_answers_lost = 1;
        s.history_gate = Some(gate.clone());
    });
    let (running, proxy) = start_behind(world, &[]).await;

    let id = running.send(&ghost("a seal")).await;
    eventually("the retry to read the ledger's history", WAIT, || async {
        (running.world.fakes.with(|s| s.history_asked) > 0).then_some(())
    })
    .await;
    // The history answers into the outage: the orphan check meets no database.
    let refused = outage(&proxy, || {
        gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2)
    })
    .await;
    assert!(
        refused > 0,
        "the consumer's database was really away: it tried to connect"
    );

    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let (attempts, failures) = attempts_and_failures(&running, id).await;
    assert_eq!(attempts, 1, "delivered once, never requeued");
    assert_eq!(
        failures.len(),
        1,
        "only the lost answer spent a try: {failures:?}"
    );
    assert!(!failures[0].contains("database"), "{failures:?}");
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1, "the debit made was adopted, not made again");
    running.stop().await;
}
