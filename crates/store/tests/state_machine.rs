//! A property test of the request state machine against the real database:
//! random interleavings of three processes recording, claiming and moving
//! one request on — with crashes (a process forgets its lease), leases that
//! lapse and redeliveries — never break SPEC §6's invariants: one owner at a
//! time, a write lands only under the current lease, the state only moves
//! forward, an end state is final, a debit once recorded never changes, and
//! refund and result come only after the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use dynamo_store::{
    Lease, NewRequest, Progress, RequestRecord, RequestState, Store, StoreError, StoredImage,
};
use dynamo_testkit::TestDatabase;
use dynamo_wire::GenerationRequest;
use proptest::prelude::*;
use std::time::Duration;
use uuid::Uuid;

const OWNERS: usize = 3;
const TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Op {
    /// A (re)delivery of the request's message to this process.
    Deliver(usize),
    /// This process's scheduler looks for work nobody owns.
    Claim(usize),
    /// This process tries the next step with whatever lease it holds.
    Step(usize, Move),
    /// The process dies: it forgets its lease (the lease lives on until it lapses).
    Crash(usize),
    /// Time passes: every lease lapses.
    Lapse,
    /// An admin approves (dynamo-server: no lease).
    Decide,
}

#[derive(Debug, Clone, Copy)]
enum Move {
    Debit,
    Name,
    Store,
    /// Parks the stored image for approval, giving the lease up (due at once).
    Park,
    Alert,
    Succeed,
    Fail,
    Settle,
    Report,
}

fn op() -> impl Strategy<Value = Op> {
    let owner = 0..OWNERS;
    let moves = prop_oneof![
        Just(Move::Debit),
        Just(Move::Name),
        Just(Move::Store),
        Just(Move::Park),
        Just(Move::Alert),
        Just(Move::Succeed),
        Just(Move::Fail),
        Just(Move::Settle),
        Just(Move::Report),
    ];
    prop_oneof![
        1 => owner.clone().prop_map(Op::Deliver),
        1 => owner.clone().prop_map(Op::Claim),
        4 => (owner.clone(), moves).prop_map(|(o, m)| Op::Step(o, m)),
        1 => owner.prop_map(Op::Crash),
        1 => Just(Op::Lapse),
        1 => Just(Op::Decide),
    ]
}

fn rank(state: RequestState) -> u8 {
    match state {
        RequestState::Received => 0,
        RequestState::Debited => 1,
        RequestState::Named => 2,
        RequestState::Stored => 3,
        RequestState::AwaitingApproval => 4,
        RequestState::Alerted => 5,
        RequestState::Succeeded | RequestState::Rejected | RequestState::Failed => 6,
    }
}

/// A move, and what its write returned (`None`: a move that returns none).
async fn apply(
    store: &Store,
    lease: &Lease,
    step: Move,
    flow: Uuid,
) -> Result<Option<Progress>, StoreError> {
    let progress = match step {
        Move::Debit => store.mark_debited(lease, Some(flow)).await?,
        Move::Name => store.record_name(lease, "p", "Sealy").await?.0,
        Move::Store => {
            let image = StoredImage {
                index: 0,
                url: "https://x.test/i.jpg".into(),
                color: None,
                content_type: "image/jpeg".into(),
                byte_size: 1,
            };
            store.record_image(lease, &image).await?.0
        }
        Move::Park => {
            store.park_for_approval(lease, Duration::ZERO).await?;
            return Ok(None);
        }
        Move::Alert => store.mark_alerted(lease).await?,
        Move::Succeed => store.mark_succeeded(lease).await?,
        Move::Fail => {
            store
                .finish_unsuccessfully(lease, RequestState::Failed, "failed")
                .await?
        }
        Move::Settle => store.mark_settled(lease).await?,
        Move::Report => store.mark_result_published(lease).await?,
    };
    Ok(Some(progress))
}

/// The columns a step's write moves: state, flow, reason and timestamps.
type Moved = (
    RequestState,
    Option<Uuid>,
    Option<String>,
    [Option<chrono::DateTime<chrono::Utc>>; 7],
);

/// What a write says it left is what the row holds.
fn progress_of(record: &RequestRecord) -> Moved {
    (
        record.state(),
        record.ledger_flow_id,
        record.error_message.clone(),
        [
            record.debited_at,
            record.named_at,
            record.stored_at,
            record.alerted_at,
            record.settled_at,
            record.result_published_at,
            record.finished_at,
        ],
    )
}

async fn run_case(store: &Store, pool: &sqlx::PgPool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let request = GenerationRequest::from_value(serde_json::json!({"type": "image",
        "viewer": {"twitch_user_id": Uuid::new_v4().to_string(), "twitch_display_name": "v"},
        "payload": {"style": "friend", "inputs": {"subject": "a seal", "color": "red"}}}))
    .unwrap();
    let id = Uuid::new_v4();
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
    let mut held: [Option<Lease>; OWNERS] = [None; OWNERS];
    // The token the database holds, by our model, and whether its lease is
    // live. A lapsed lease still fences: its owner's writes land until
    // another process takes the request over (then the token changes).
    let mut current: Option<Uuid> = None;
    let mut live = false;
    let mut last_rank = 0;
    let mut final_state: Option<RequestState> = None;
    let mut flow_seen: Option<Uuid> = None;
    for op in ops {
        match op {
            Op::Deliver(owner) => {
                let (record, _, lease) =
                    store.record(&new, &format!("p{owner}"), TTL).await.unwrap();
                let stored = store.get(id).await.unwrap();
                prop_assert_eq!(progress_of(&record), progress_of(&stored));
                prop_assert_eq!(record.attempts, stored.attempts);
                if let Some(lease) = lease {
                    prop_assert!(!live, "took a live lease");
                    current = Some(lease.token);
                    live = true;
                    held[owner] = Some(lease);
                }
            }
            Op::Claim(owner) => {
                for (lease, _) in store
                    .claim_open(&format!("p{owner}"), 10, TTL)
                    .await
                    .unwrap()
                {
                    if lease.request_id == id {
                        prop_assert!(!live, "claimed a live lease");
                        current = Some(lease.token);
                        live = true;
                        held[owner] = Some(lease);
                    }
                }
            }
            Op::Step(owner, step) => {
                let Some(lease) = held[owner] else { continue };
                let outcome = apply(store, &lease, step, Uuid::new_v4()).await;
                if Some(lease.token) != current {
                    prop_assert!(
                        matches!(outcome, Err(StoreError::LeaseLost(_))),
                        "a stale owner's {step:?} was not refused: {outcome:?}"
                    );
                } else {
                    prop_assert!(
                        matches!(outcome, Ok(_) | Err(StoreError::IllegalTransition { .. })),
                        "the owner's {step:?}: {outcome:?}"
                    );
                    if let Ok(Some(progress)) = &outcome {
                        let stored = store.get(id).await.unwrap();
                        let mut returned = stored.clone();
                        returned.apply(progress.clone());
                        prop_assert_eq!(
                            progress_of(&returned),
                            progress_of(&stored),
                            "{:?} returned what it left",
                            step
                        );
                    }
                    if matches!(step, Move::Park) && outcome.is_ok() {
                        // Parked: the lease is given up with the move.
                        current = None;
                        live = false;
                        held[owner] = None;
                    }
                }
            }
            Op::Crash(owner) => held[owner] = None,
            Op::Decide => {
                let decided = store
                    .decide_approval(id, dynamo_store::Decision::Approved, "admin", None)
                    .await;
                let record = store.load(id).await.unwrap();
                let waiting = record
                    .as_ref()
                    .is_some_and(|r| r.state() == RequestState::AwaitingApproval);
                prop_assert!(
                    decided.is_ok()
                        || !waiting
                        || record.is_some_and(|r| r.approval.decision().is_some()),
                    "a request awaiting approval refused its first decision: {decided:?}"
                );
            }
            Op::Lapse => {
                sqlx::query(
                    "UPDATE dynamo.image_request SET lease_expires_at = now() - interval '1 ms'
                     WHERE id = $1 AND lease_expires_at IS NOT NULL",
                )
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
                live = false;
            }
        }
        let Some(record) = store.load(id).await.unwrap() else {
            continue;
        };
        let state = record.state();
        prop_assert!(rank(state) >= last_rank, "moved backwards to {state}");
        last_rank = rank(state);
        if let Some(end) = final_state {
            prop_assert_eq!(state, end, "an end state changed");
        }
        if state.is_final() {
            final_state = Some(state);
        }
        if let Some(flow) = flow_seen {
            prop_assert_eq!(
                record.ledger_flow_id,
                Some(flow),
                "the recorded debit changed"
            );
        }
        flow_seen = record.ledger_flow_id;
        if record.settled_at.is_some() || record.result_published_at.is_some() {
            prop_assert!(
                state.is_final(),
                "settled or reported before the end ({state})"
            );
        }
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dynamo.image_request
             WHERE id = $1 AND lease_expires_at > now()",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
        prop_assert!(owners <= 1);
        prop_assert_eq!(owners == 1, live, "the model's idea of a live lease");
    }
    Ok(())
}

#[test]
fn interleavings_of_owners_crashes_and_lapses_keep_the_invariants() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(TestDatabase::create());
    let store = Store::new(database.pool().clone());
    let pool = database.pool().clone();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        runtime.block_on(run_case(&store, &pool, ops))?;
    });
    drop(store);
    runtime.block_on(async move { drop(database) });
}
