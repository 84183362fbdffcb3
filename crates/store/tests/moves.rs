//! The guarded moves, each a checked query (`guarded_move!`): the state they
//! write and the states they move from are `RequestState`'s own names, a
//! repeat returns the progress as it stands, and a move from a state the
//! target cannot follow, or without the lease, is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use dynamo_store::{Lease, NewRequest, RequestState, Store, StoreError, StoredImage};
use dynamo_testkit::TestDatabase;
use dynamo_wire::GenerationRequest;
use std::time::Duration;
use uuid::Uuid;

const TTL: Duration = Duration::from_secs(60);

async fn record(store: &Store, trial: bool) -> Lease {
    let request = GenerationRequest::from_value(serde_json::json!({"type": "image",
        "viewer": {"twitch_user_id": "1", "twitch_display_name": "viewer"},
        "payload": {"style": "ghost", "inputs": {"subject": "a seal"}}}))
    .unwrap();
    let (_, _, lease) = store
        .record(
            &NewRequest {
                id: Uuid::new_v4(),
                request: &request,
                prompt: "p",
                settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
                points_cost: 0,
                free_of_charge: true,
                retry_of: None,
                fingerprint: None,
                trial,
            },
            "owner",
            TTL,
        )
        .await
        .unwrap();
    lease.expect("a new request is leased to its recorder")
}

fn image() -> StoredImage {
    StoredImage {
        index: 0,
        url: "https://x.test/i.jpg".into(),
        color: None,
        content_type: "image/jpeg".into(),
        byte_size: 1,
    }
}

/// The state column as the table holds it, not as the store decodes it.
async fn raw_state(store: &Store, id: Uuid) -> String {
    sqlx::query_scalar("SELECT state FROM dynamo.image_request WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_move_writes_the_enums_name_and_a_repeat_returns_the_same_progress() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let lease = record(&store, false).await;
    let id = lease.request_id;

    let debited = store.mark_debited(&lease, None).await.unwrap();
    assert_eq!(debited.state.0, RequestState::Debited);
    assert_eq!(raw_state(&store, id).await, RequestState::Debited.as_str());
    let again = store.mark_debited(&lease, None).await.unwrap();
    assert_eq!(
        again.debited_at, debited.debited_at,
        "a repeat moves nothing"
    );

    let (stored, recorded) = store.record_image(&lease, &image()).await.unwrap();
    assert_eq!(stored.state.0, RequestState::Stored);
    assert_eq!(recorded, image());
    assert_eq!(raw_state(&store, id).await, RequestState::Stored.as_str());
    let (again, recorded) = store.record_image(&lease, &image()).await.unwrap();
    assert_eq!(again.stored_at, stored.stored_at, "a repeat moves nothing");
    assert_eq!(recorded, image());

    let alerted = store.mark_alerted(&lease).await.unwrap();
    assert_eq!(raw_state(&store, id).await, RequestState::Alerted.as_str());
    assert!(alerted.alerted_at.is_some());
    let done = store.mark_succeeded(&lease).await.unwrap();
    assert_eq!(
        raw_state(&store, id).await,
        RequestState::Succeeded.as_str()
    );
    assert!(done.finished_at.is_some() && done.settled_at.is_some());

    let published = store.mark_result_published(&lease).await.unwrap();
    assert!(published.result_published_at.is_some());
    assert_eq!(
        store.get(id).await.unwrap().result_published_at,
        published.result_published_at
    );
}

#[tokio::test]
async fn a_move_from_a_state_it_cannot_follow_is_refused_and_changes_nothing() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let lease = record(&store, false).await;
    let id = lease.request_id;

    let skipped = store.mark_alerted(&lease).await;
    assert!(
        matches!(&skipped, Err(StoreError::IllegalTransition { from, to, .. })
            if from == "received" && *to == "alerted"),
        "{skipped:?}"
    );
    let unended = store.mark_settled(&lease).await;
    assert!(
        matches!(&unended, Err(StoreError::IllegalTransition { to, .. }) if *to == "settled_at"),
        "{unended:?}"
    );
    assert_eq!(raw_state(&store, id).await, "received");

    let stranger = Lease {
        request_id: id,
        token: Uuid::new_v4(),
    };
    let stolen = store.mark_debited(&stranger, None).await;
    assert!(
        matches!(stolen, Err(StoreError::LeaseLost(got)) if got == id),
        "{stolen:?}"
    );
    let missing = Lease {
        request_id: Uuid::new_v4(),
        token: lease.token,
    };
    let gone = store.mark_debited(&missing, None).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

#[tokio::test]
async fn only_a_try_out_skips_the_alert_to_succeed() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    for trial in [false, true] {
        let lease = record(&store, trial).await;
        store.mark_debited(&lease, None).await.unwrap();
        store.record_image(&lease, &image()).await.unwrap();
        let tried = store.mark_tried(&lease).await;
        let state = raw_state(&store, lease.request_id).await;
        if trial {
            let progress = tried.unwrap();
            assert_eq!(progress.state.0, RequestState::Succeeded);
            assert_eq!(state, RequestState::Succeeded.as_str());
            let again = store.mark_tried(&lease).await.unwrap();
            assert_eq!(
                again.finished_at, progress.finished_at,
                "a repeat moves nothing"
            );
        } else {
            assert!(
                matches!(&tried, Err(StoreError::IllegalTransition { from, .. }) if from == "stored"),
                "{tried:?}"
            );
            assert_eq!(
                state,
                RequestState::Stored.as_str(),
                "a real request is not tried"
            );
        }
    }
}
