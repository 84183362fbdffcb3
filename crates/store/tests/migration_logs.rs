//! What migrating logs: each migration applied, once, and nothing at all
//! when there was nothing to apply (PostgreSQL's "already exists, skipping"
//! notices included).
//!
//! The logs are captured by one global subscriber for this test binary, and
//! its tests take turns: a per-thread subscriber misses events when another
//! thread registers the same call site first (tracing's interest cache), so
//! these tests live apart from the others.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::migrate;
use dynamo_testkit::{CapturedLogs, TestDatabase};
use std::sync::LazyLock;
use tokio::sync::{Mutex, MutexGuard};

static LOGS: LazyLock<CapturedLogs> = LazyLock::new(|| {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    // The binaries' default level.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    logs
});
static TURN: Mutex<()> = Mutex::const_new(());

/// This test's turn with the captured logs, empty.
async fn capture() -> (&'static CapturedLogs, MutexGuard<'static, ()>) {
    let turn = TURN.lock().await;
    LOGS.take();
    (&LOGS, turn)
}

#[tokio::test]
async fn migrations_log_what_they_applied_and_nothing_when_there_was_nothing() {
    let (logs, _turn) = capture().await;
    let database = TestDatabase::create_empty().await;

    migrate(database.pool()).await.unwrap();
    let first = logs.take();
    assert!(first.contains("applied database migration"), "{first}");
    assert!(!first.contains("already exists"), "{first}");

    migrate(database.pool()).await.unwrap();
    assert_eq!(
        logs.take(),
        "",
        "a start with nothing to apply says nothing"
    );
}

#[tokio::test]
async fn processes_migrating_at_once_report_each_migration_once() {
    let (logs, _turn) = capture().await;
    let database = TestDatabase::create_empty().await;
    // Separate pools stand in for separate processes starting at once.
    let mut pools = Vec::new();
    for _ in 0..3 {
        let options = dynamo_store::connect_options(&database.settings);
        pools.push(sqlx::PgPool::connect_with(options).await.unwrap());
    }
    let (a, b, c) = tokio::join!(migrate(&pools[0]), migrate(&pools[1]), migrate(&pools[2]));
    for outcome in [a, b, c] {
        outcome.unwrap();
    }
    let text = logs.take();
    let reported = text
        .lines()
        // "version=1" as a whole word: not version=10.
        .filter(|line| line.contains("applied database migration") && line.ends_with(" version=1"))
        .count();
    assert_eq!(reported, 1, "migration 1 reported once: {text}");
}
