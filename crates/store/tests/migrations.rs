//! The schema comes up on an empty database, is a no-op the second time, and
//! survives several processes migrating at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::{NewRequest, RequestState, Store, StoreError, migrate};
use dynamo_testkit::TestDatabase;
use dynamo_wire::GenerationRequest;

async fn tables(database: &TestDatabase) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'dynamo' ORDER BY 1",
    )
    .fetch_all(database.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_again_as_a_no_op() {
    let database = TestDatabase::create_empty().await;
    migrate(database.pool()).await.unwrap();
    migrate(database.pool()).await.unwrap();
    assert_eq!(
        tables(&database).await,
        [
            "_sqlx_migrations",
            "answer",
            "image",
            "image_request",
            "rate_limit_call",
            "rate_limit_count",
            "rate_limit_pause",
            "step_failure"
        ]
    );
    let public: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(database.pool())
    .await
    .unwrap();
    assert_eq!(public, 0, "nothing of ours outside the dynamo schema");
}

/// Log lines written while it is installed as the thread's subscriber.
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn migrations_log_what_they_applied_and_nothing_when_there_was_nothing() {
    let database = TestDatabase::create_empty().await;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    // The binaries' default level; one thread, so the connection's tasks log here too.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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

#[tokio::test(flavor = "current_thread")]
async fn processes_migrating_at_once_report_each_migration_once() {
    let database = TestDatabase::create_empty().await;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
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
        .filter(|line| line.contains("applied database migration") && line.contains("version=1"))
        .count();
    assert_eq!(reported, 1, "migration 1 reported once: {text}");
}

#[tokio::test]
async fn concurrent_migrations_do_not_break_each_other() {
    let database = TestDatabase::create_empty().await;
    // Separate pools stand in for separate processes starting at once.
    let mut runs = Vec::new();
    for _ in 0..4 {
        let settings = database.settings.clone();
        runs.push(tokio::spawn(async move {
            dynamo_store::connect(&settings).await.map(|_| ())
        }));
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dynamo._sqlx_migrations WHERE success")
            .fetch_one(database.pool())
            .await
            .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
        .unwrap()
        .count();
    assert_eq!(
        applied as usize, files,
        "each migration applied exactly once"
    );
    assert_eq!(tables(&database).await.len(), 8);
}

#[tokio::test]
async fn every_table_and_column_has_a_comment() {
    let database = TestDatabase::create().await;
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name || '.' || c.column_name
         FROM information_schema.columns c
         JOIN pg_catalog.pg_class t ON t.relname = c.table_name
         JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace AND n.nspname = c.table_schema
         WHERE c.table_schema = 'dynamo' AND c.table_name <> '_sqlx_migrations'
           AND col_description(t.oid, c.ordinal_position::int) IS NULL",
    )
    .fetch_all(database.pool())
    .await
    .unwrap();
    assert!(missing.is_empty(), "columns without comments: {missing:?}");
}

fn request() -> GenerationRequest {
    GenerationRequest::from_value(serde_json::json!({
        "type": "image",
        "viewer": {"twitch_user_id": "1", "twitch_display_name": "x"},
        "payload": {"style": "ghost", "inputs": {"subject": "a seal"}},
    }))
    .unwrap()
}

#[tokio::test]
async fn steps_only_move_forward_and_repeat_harmlessly() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let id = uuid::Uuid::new_v4();
    let request = request();
    let new = NewRequest {
        id,
        request: &request,
        prompt: "p",
        points_cost: 200,
        free_of_charge: false,
        retry_of: None,
        fingerprint: None,
    };
    let (record, created) = store.record(&new).await.unwrap();
    assert!(created);
    assert_eq!(record.state(), RequestState::Received);
    let (again, created) = store.record(&new).await.unwrap();
    assert!(!created, "a redelivery finds the same request");
    assert_eq!(again.attempts, 2);

    store
        .mark_debited(id, Some(uuid::Uuid::new_v4()))
        .await
        .unwrap();
    store.mark_debited(id, None).await.unwrap(); // a repeat is a no-op
    assert!(matches!(
        store.mark_alerted(id).await,
        Err(StoreError::IllegalTransition { .. })
    ));
    store
        .finish_unsuccessfully(id, RequestState::Failed, "not enough points")
        .await
        .unwrap();
    let record = store.get(id).await.unwrap();
    assert_eq!(record.state(), RequestState::Failed);
    assert!(
        record.settled_at.is_none(),
        "the pending debit still has to be refunded"
    );
    assert!(
        record.ledger_flow_id.is_some(),
        "the repeated debit did not erase the flow"
    );
}
