//! Leases against the real database: who may write to a request, and what
//! happens when an owner stops renewing (SPEC §6.8).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use dynamo_store::{Lease, NewRequest, RequestState, Store, StoreError};
use dynamo_testkit::{TestDatabase, eventually};
use dynamo_wire::GenerationRequest;
use std::time::Duration;
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);
/// Long enough that a test sees the lease live, short enough to watch it lapse.
const SHORT: Duration = Duration::from_secs(2);

fn request(viewer: &str) -> GenerationRequest {
    GenerationRequest::from_value(serde_json::json!({"type": "image",
        "viewer": {"twitch_user_id": viewer, "twitch_display_name": "viewer"},
        "payload": {"style": "ghost", "inputs": {"subject": "a seal"}}}))
    .unwrap()
}

async fn record(store: &Store, viewer: &str, owner: &str, ttl: Duration) -> Lease {
    let request = request(viewer);
    let (_, created, lease) = store
        .record(
            &NewRequest {
                id: Uuid::new_v4(),
                request: &request,
                prompt: "p",
                settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
                points_cost: 200,
                free_of_charge: false,
                retry_of: None,
                fingerprint: None,
                trial: false,
            },
            owner,
            ttl,
        )
        .await
        .unwrap();
    assert!(created);
    lease.expect("a new request is leased to its recorder")
}

#[tokio::test]
async fn a_stale_owner_cannot_write_after_its_lease_was_taken_over() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let stale = record(&store, "1", "frozen", SHORT).await;
    let id = stale.request_id;

    assert_eq!(
        store.acquire_lease(id, "rescuer", LONG).await.unwrap(),
        None,
        "the lease is live"
    );
    let fresh = eventually("the lease to lapse and be taken", LONG, || async {
        store.acquire_lease(id, "rescuer", LONG).await.unwrap()
    })
    .await;
    assert_ne!(fresh.token, stale.token);

    for refused in [
        store.mark_debited(&stale, Some(Uuid::new_v4())).await,
        store.mark_settled(&stale).await,
        store.mark_result_published(&stale).await,
        store
            .finish_unsuccessfully(&stale, RequestState::Failed, "stale")
            .await,
    ] {
        assert!(
            matches!(refused, Err(StoreError::LeaseLost(got)) if got == id),
            "{refused:?}"
        );
    }
    assert!(matches!(
        store
            .note_failure(&stale, dynamo_store::Step::Debit, "x")
            .await,
        Err(StoreError::LeaseLost(_))
    ));
    assert!(!store.renew_lease(&stale, LONG).await.unwrap());
    let record = store.get(id).await.unwrap();
    assert_eq!(
        record.state(),
        RequestState::Received,
        "nothing the stale owner did landed"
    );
    assert_eq!(record.ledger_flow_id, None);
    assert!(record.settled_at.is_none() && record.result_published_at.is_none());

    store.mark_debited(&fresh, None).await.unwrap();
    assert_eq!(store.get(id).await.unwrap().state(), RequestState::Debited);
}

#[tokio::test]
async fn a_lapsed_lease_is_claimed_once_and_a_live_one_never() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let live = record(&store, "1", "alive", LONG).await;
    let dead = record(&store, "2", "dead", SHORT).await;

    let claimed = eventually("the dead owner's request to be claimable", LONG, || async {
        let claimed = store.claim_open("rescuer", 10, LONG).await.unwrap();
        (!claimed.is_empty()).then_some(claimed)
    })
    .await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0],
        (
            Lease {
                request_id: dead.request_id,
                ..claimed[0].0
            },
            true
        ),
        "rescued"
    );
    assert!(
        store
            .claim_open("another", 10, LONG)
            .await
            .unwrap()
            .is_empty(),
        "claimed once"
    );
    assert!(
        store.renew_lease(&live, LONG).await.unwrap(),
        "the live owner keeps its request"
    );
    let (holder, _) = store.lease_holder(dead.request_id).await.unwrap().unwrap();
    assert_eq!(holder, "rescuer");
}

#[tokio::test]
async fn a_scheduled_run_is_claimed_only_when_due() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let lease = record(&store, "1", "worker", LONG).await;
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(500);
    store.release_lease(&lease, Some(due)).await.unwrap();
    assert!(
        store
            .claim_open("rescuer", 10, LONG)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let claimed = eventually("the retry to come due", LONG, || async {
        let claimed = store.claim_open("rescuer", 10, LONG).await.unwrap();
        (!claimed.is_empty()).then_some(claimed)
    })
    .await;
    assert_eq!(claimed[0].0.request_id, lease.request_id);
    assert!(!claimed[0].1, "a due retry is not a rescue");
    assert!(chrono::Utc::now() >= due);
}

#[tokio::test]
async fn the_viewer_cap_counts_live_leases_only() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let _busy = record(&store, "7", "alive", LONG).await;
    // Recorded before the crashed one: a viewer's requests take their turns
    // in the order they came, so a crashed request that came first would
    // (rightly) go before it once resumed.
    let waiting = record(&store, "7", "worker", LONG).await;
    let crashed = record(&store, "7", "crashed", SHORT).await;

    // Two live leases of the same viewer (one of them about to lapse): no room at cap 2.
    assert!(
        !store
            .start_if_viewer_has_room(&waiting, "7", 2, Duration::from_millis(1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder(waiting.request_id).await.unwrap(),
        None,
        "waiting gives the lease up"
    );
    assert_eq!(
        store.get(waiting.request_id).await.unwrap().attempts,
        1,
        "waiting costs no attempt"
    );

    // Once the crashed owner's lease lapses, it no longer holds the viewer up.
    eventually("the crashed owner's lease to lapse", LONG, || async {
        store
            .lease_holder(crashed.request_id)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let retaken = eventually("the waiting request to come due", LONG, || async {
        store
            .acquire_lease(waiting.request_id, "worker", LONG)
            .await
            .unwrap()
    })
    .await;
    assert!(
        store
            .start_if_viewer_has_room(&retaken, "7", 2, Duration::from_millis(1))
            .await
            .unwrap()
    );
}

/// A request that stands aside for an earlier one of the same viewer hands
/// it the turn: the earlier one is due at once, not when its own look comes
/// round (with a viewer's burst of a hundred, the oldest kept being passed
/// over by later ones that then stood aside, and the burst crawled).
#[tokio::test]
async fn a_request_standing_aside_makes_the_earlier_one_due_now() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    const LATER: Duration = Duration::from_secs(30);
    let first = record(&store, "8", "worker", LONG).await;
    let second = record(&store, "8", "worker", LONG).await;
    // The first waited its turn a moment ago: it looks again in 30 s.
    let later = chrono::Utc::now() + chrono::Duration::seconds(30);
    store.release_lease(&first, Some(later)).await.unwrap();

    // The second finds the viewer with room, but the first is earlier.
    assert!(
        !store
            .start_if_viewer_has_room(&second, "8", 1, LATER)
            .await
            .unwrap(),
        "the second stands aside for the first"
    );
    let claimed = store.claim_open("scheduler", 10, LONG).await.unwrap();
    let claimed: Vec<Uuid> = claimed.iter().map(|(lease, _)| lease.request_id).collect();
    assert_eq!(
        claimed,
        vec![first.request_id],
        "the first is due now; the second waits its 30 s"
    );
}

/// A debit no request heard of is refundable only while no other request of
/// the viewer waits for a debit's answer (SPEC §6.3): that debit could be its.
#[tokio::test]
async fn an_unheard_debit_is_orphaned_only_when_no_request_of_the_viewer_is_being_debited() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let ended = record(&store, "7", "a", LONG).await;
    store.note_debit_intent(&ended).await.unwrap();
    store
        .finish_unsuccessfully(&ended, RequestState::Failed, "debiting points failed")
        .await
        .unwrap();
    let pending = [Uuid::new_v4(), Uuid::new_v4()];

    let held = record(&store, "7", "b", LONG).await;
    store.note_debit_intent(&held).await.unwrap();
    assert_eq!(
        store
            .orphaned_flows(ended.request_id, &pending)
            .await
            .unwrap(),
        None,
        "another request of the viewer is waiting for its debit's answer"
    );
    // Another viewer's debits in flight are no reason to wait.
    let other = record(&store, "8", "c", LONG).await;
    store.note_debit_intent(&other).await.unwrap();

    store.mark_debited(&held, Some(pending[0])).await.unwrap();
    assert_eq!(
        store
            .orphaned_flows(ended.request_id, &pending)
            .await
            .unwrap(),
        Some(vec![pending[1]]),
        "the flow a request holds is not an orphan"
    );
    let record = store.get(ended.request_id).await.unwrap();
    assert_eq!(
        record.settled_at, None,
        "not settled before the ledger was looked at"
    );
}

/// The Twitch intake's lease (issue 29): one holder at a time; a lapsed
/// lease is taken over with a new fence, and the old holder's renewal then
/// fails, which is how it learns to drop its socket.
#[tokio::test]
async fn the_intake_lease_has_one_holder_and_fences_out_the_one_taken_over() {
    let database = TestDatabase::create().await;
    let store = Store::new(database.pool().clone());
    let first = store
        .take_intake_lease("a:1:x", SHORT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.take_intake_lease("b:2:y", SHORT).await.unwrap(), None);
    assert!(store.renew_intake_lease(first, SHORT).await.unwrap());
    assert_eq!(
        store.intake_holder().await.unwrap(),
        Some(("a:1:x".to_owned(), first.fence))
    );

    // The first stops renewing (frozen): once it lapses the second takes over.
    let second = eventually("the lease to lapse and be taken", LONG, || async {
        store.take_intake_lease("b:2:y", SHORT).await.unwrap()
    })
    .await;
    assert!(second.fence > first.fence);
    assert!(
        !store.renew_intake_lease(first, SHORT).await.unwrap(),
        "the old holder is fenced out"
    );
    assert!(store.renew_intake_lease(second, SHORT).await.unwrap());

    // A clean shutdown hands it over at once.
    store.release_intake_lease(second).await.unwrap();
    let third = store
        .take_intake_lease("a:1:z", LONG)
        .await
        .unwrap()
        .unwrap();
    assert!(third.fence > second.fence);
    // Releasing a lease one no longer holds changes nothing.
    store.release_intake_lease(second).await.unwrap();
    assert_eq!(
        store.intake_holder().await.unwrap(),
        Some(("a:1:z".to_owned(), third.fence))
    );
}
