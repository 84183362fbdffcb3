//! Rescue of requests left behind by crashed processes, whose messages will
//! not come back: their owner's lease lapses and a live consumer takes over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::Shutdown;
use dynamo_store::{Lease, NewRequest, RequestState, Store};
use dynamo_testkit::{Flow, FlowStatus, TestWorld, eventually};
use dynamo_wire::GenerationRequest;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// A request as a consumer left it, recorded and debited at the fake ledger
/// under a lease of `ttl` that nobody renews: with a short one, a process
/// that crashed; with a long one, a process still at work.
async fn leased(world: &TestWorld, ttl: Duration) -> (Uuid, Uuid, Store, Lease) {
    let store = Store::new(world.database.pool().clone());
    let request = GenerationRequest::from_value(json!({
        "type": "image",
        "viewer": {"twitch_user_id": "42", "twitch_display_name": "crashy"},
        "payload": {"style": "ghost", "inputs": {"subject": "a lost seal"}},
    }))
    .unwrap();
    let id = Uuid::new_v4();
    let (_, _, lease) = store
        .record(
            &NewRequest {
                id,
                request: &request,
                prompt: "a ghostly image of a lost seal, with glitchy VHS artifacts, dark background",
                settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
                points_cost: 200,
                free_of_charge: false,
                retry_of: None,
                fingerprint: None,
                trial: false,
            },
            "a-consumer-that-stops",
            ttl,
        )
        .await
        .unwrap();
    let lease = lease.unwrap();
    let flow_id = Uuid::new_v4();
    world.fakes.with(|s| {
        s.flows.insert(
            flow_id,
            Flow {
                viewer: "42".into(),
                points: 200,
                request_id: id.to_string(),
                style: "ghost".into(),
                status: FlowStatus::Pending,
                created_at: chrono::Utc::now(),
                finalized_at: None,
            },
        )
    });
    store.mark_debited(&lease, Some(flow_id)).await.unwrap();
    (id, flow_id, store, lease)
}

/// The lease of a process that crashed a moment ago.
const CRASHED: Duration = Duration::from_secs(1);

fn start(world: &TestWorld) -> (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>) {
    start_with_health(world, None)
}

fn start_with_health(
    world: &TestWorld,
    health: Option<tokio::net::TcpListener>,
) -> (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let env = world.consumer_env();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(dynamo_consumer::run_with_health(
        ConsumerConfig::from_env(&env).unwrap(),
        health,
        shutdown.clone(),
    ));
    (shutdown, task)
}

#[tokio::test]
async fn a_request_abandoned_mid_way_is_resumed_to_its_end() {
    let world = TestWorld::start().await;
    let (id, flow_id, store, _) = leased(&world, CRASHED).await;
    let alerts = world
        .broker
        .capture(&world.broker.topology.alerts_exchange)
        .await;
    let results = world
        .broker
        .capture(&world.broker.topology.results_exchange)
        .await;
    let (shutdown, task) = start(&world);

    let result = world.broker.next(&results, WAIT).await.unwrap();
    assert_eq!(result.body["request_id"], id.to_string());
    assert_eq!(result.body["state"], "succeeded");
    assert!(world.broker.next(&alerts, WAIT).await.is_some());
    let flow = world.fakes.with(|s| s.flows[&flow_id].clone());
    assert_eq!(flow.status, FlowStatus::Accepted);
    assert_eq!(world.fakes.flows().len(), 1, "no second debit");
    assert_eq!(
        store.get(id).await.unwrap().state(),
        RequestState::Succeeded
    );
    shutdown.trigger();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_ended_request_with_a_pending_debit_is_refunded_and_reported() {
    let world = TestWorld::start().await;
    let (id, flow_id, store, lease) = leased(&world, CRASHED).await;
    store
        .finish_unsuccessfully(&lease, RequestState::Failed, "generating the image failed")
        .await
        .unwrap();
    let results = world
        .broker
        .capture(&world.broker.topology.results_exchange)
        .await;
    let (shutdown, task) = start(&world);

    let result = world.broker.next(&results, WAIT).await.unwrap();
    assert_eq!(result.body["state"], "failed");
    assert_eq!(result.body["reason"], "generating the image failed");
    eventually("the refund", WAIT, || {
        let status = world.fakes.with(|s| s.flows[&flow_id].status);
        async move { (status == FlowStatus::Rejected).then_some(()) }
    })
    .await;
    assert!(
        world.fakes.with(|s| s.image_calls.is_empty()),
        "an ended request is not generated"
    );
    let record = store.get(id).await.unwrap();
    assert!(record.settled_at.is_some() && record.result_published_at.is_some());
    shutdown.trigger();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_request_still_in_progress_is_left_alone() {
    let world = TestWorld::start().await;
    let (id, flow_id, store, _) = leased(&world, Duration::from_secs(3600)).await;
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = health.local_addr().unwrap().port();
    let (shutdown, task) = start_with_health(&world, Some(health));
    // Several looks for unowned work pass while the request's owner is alive.
    let http = reqwest::Client::new();
    eventually("three looks for unowned work", WAIT, || {
        let request = http.get(format!("http://127.0.0.1:{port}/metrics")).send();
        async move {
            let text = request.await.ok()?.text().await.ok()?;
            let sweeps: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("dynamo_recovery_sweeps_total "))?
                .parse()
                .ok()?;
            (sweeps >= 3.0).then_some(())
        }
    })
    .await;
    shutdown.trigger();
    task.await.unwrap().unwrap();
    assert_eq!(store.get(id).await.unwrap().state(), RequestState::Debited);
    assert_eq!(
        world.fakes.with(|s| s.flows[&flow_id].status),
        FlowStatus::Pending
    );
    assert!(world.fakes.with(|s| s.image_calls.is_empty()));
}
