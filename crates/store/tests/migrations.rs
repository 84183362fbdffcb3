//! The schema comes up on an empty database, is a no-op the second time, and
//! survives several processes migrating at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::{MIGRATIONS_TABLE, NewRequest, RequestState, Store, StoreError, migrate};
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
            "blocked_phrase",
            "caption_speech",
            "content_rules",
            "generated_image",
            "image",
            "image_request",
            "image_spend",
            "intake_lease",
            "message_delivery",
            "model",
            "model_catalogue_check",
            "model_parameter_refusal",
            "overlay_alert",
            "overlay_control",
            "overlay_token",
            "rate_limit_call",
            "rate_limit_count",
            "rate_limit_pause",
            "rules_verdict",
            "step_failure",
            "style_sounds",
            "styles",
            "twitch_channel",
            "twitch_chat_message",
            "twitch_grant",
            "twitch_redemption",
            "twitch_reward_pause",
            "upstream_hold"
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
    assert_eq!(tables(&database).await.len(), 30);
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
        settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
        points_cost: 200,
        free_of_charge: false,
        retry_of: None,
        fingerprint: None,
        trial: false,
    };
    let ttl = std::time::Duration::from_secs(30);
    let (record, created, lease) = store.record(&new, "first", ttl).await.unwrap();
    assert!(created);
    assert_eq!(record.state(), RequestState::Received);
    let lease = lease.expect("a new request is owned by whoever recorded it");
    let (again, created, other) = store.record(&new, "second", ttl).await.unwrap();
    assert!(!created, "a redelivery finds the same request");
    assert_eq!(again.attempts, 2);
    assert_eq!(other, None, "the first owner's lease is live");

    store
        .mark_debited(&lease, Some(uuid::Uuid::new_v4()))
        .await
        .unwrap();
    store.mark_debited(&lease, None).await.unwrap(); // a repeat is a no-op
    assert!(matches!(
        store.mark_alerted(&lease).await,
        Err(StoreError::IllegalTransition { .. })
    ));
    store
        .finish_unsuccessfully(&lease, RequestState::Failed, "not enough points")
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

#[tokio::test]
async fn an_older_build_starts_on_a_database_a_newer_one_migrated() {
    // A rolling upgrade: a newer dynamo applied a migration this build has
    // never heard of, then an old replica restarts.
    let database = TestDatabase::create_empty().await;
    migrate(database.pool()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {MIGRATIONS_TABLE} (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from a newer dynamo', true, '\\x00', 1)"
    )))
    .execute(database.pool())
    .await
    .unwrap();
    migrate(database.pool())
        .await
        .expect("an older build runs on against the newer schema");
}

#[test]
fn migrations_only_add_so_an_older_build_can_run_on_a_newer_schema() {
    // What `migrate` promises an older replica during a rolling upgrade. A
    // migration that must remove something needs a plan (two releases: stop
    // using it, then drop it) and this test changed with it.
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut checked = 0;
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        let sql = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for word in ["drop table", "drop column", "rename"] {
            assert!(
                !sql.contains(word),
                "{} says {word:?}: older replicas would break on it",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 18,
        "read only {checked} migrations from {directory}"
    );
}
