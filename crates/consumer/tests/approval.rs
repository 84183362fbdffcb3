//! Approval before air (`APPROVAL=manual`): the real consumer (in-process)
//! against real PostgreSQL, RabbitMQ and moto, with the fake ledger and
//! OpenAI. Decisions are recorded through the store call dynamo-server makes
//! (`Store::decide_approval`); the API in front of it is tested in
//! crates/server/tests/approval.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use chrono::{DateTime, Utc};
use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::{Env, Shutdown};
use dynamo_store::{Decision, DecisionError, Store};
use dynamo_testkit::{Captured, FlowStatus, TestWorld, eventually};
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

struct Consumer {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Consumer {
    fn start(env: &Env) -> Self {
        let config = ConsumerConfig::from_env(env).unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(dynamo_consumer::run(config, shutdown.clone()));
        Self { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
    }
}

struct Setup {
    world: TestWorld,
    store: Store,
    alerts: String,
    results: String,
}

impl Setup {
    async fn new() -> Self {
        let world = TestWorld::start().await;
        let (alerts, results) = (
            world
                .broker
                .capture(&world.broker.topology.alerts_exchange)
                .await,
            world
                .broker
                .capture(&world.broker.topology.results_exchange)
                .await,
        );
        let store = Store::new(world.database.pool().clone());
        Self {
            world,
            store,
            alerts,
            results,
        }
    }

    fn env(&self, timeout: &str, action: &str) -> Env {
        self.world
            .consumer_env()
            .with("APPROVAL", "manual")
            .with("APPROVAL_TIMEOUT", timeout)
            .with("APPROVAL_TIMEOUT_ACTION", action)
    }

    async fn send_ghost(&self, subject: &str) -> Uuid {
        let id = Uuid::new_v4();
        let body = json!({"type":"image",
            "viewer":{"twitch_user_id":"90790024","twitch_display_name":"wasabimilkshake"},
            "payload":{"style":"ghost","inputs":{"subject":subject}}});
        self.world
            .broker
            .publish_request(&serde_json::to_vec(&body).unwrap(), Some(id))
            .await;
        id
    }

    /// Empty until the consumer recorded it.
    async fn state(&self, id: Uuid) -> String {
        let record = self.store.load(id).await.unwrap();
        record
            .map(|r| r.state().as_str().to_owned())
            .unwrap_or_default()
    }

    async fn reaches(&self, id: Uuid, wanted: &str) {
        eventually(&format!("request {id} {wanted}"), WAIT, || async move {
            (self.state(id).await == wanted).then_some(())
        })
        .await;
    }

    fn flow_status(&self) -> FlowStatus {
        let flows = self.world.fakes.flows();
        assert_eq!(flows.len(), 1, "one debit per request: {flows:?}");
        flows[0].status
    }

    async fn next(&self, queue: &str) -> Captured {
        self.world
            .broker
            .next(queue, WAIT)
            .await
            .expect("a message")
    }

    /// Parked: image stored, no alert, points still pending, nobody holding it.
    async fn assert_waiting(&self, id: Uuid) {
        self.reaches(id, "awaiting_approval").await;
        let record = self.store.get(id).await.unwrap();
        assert!(record.stored_at.is_some());
        assert_eq!(self.store.images(id).await.unwrap().len(), 1);
        assert!(record.alerted_at.is_none());
        assert!(record.approval.requested_at.is_some());
        assert!(record.approval.deadline.is_some());
        assert_eq!(self.flow_status(), FlowStatus::Pending);
        assert_eq!(
            self.world.broker.depth(&self.alerts).await,
            0,
            "no alert yet"
        );
        assert_eq!(
            self.world.broker.depth(&self.results).await,
            0,
            "no result yet"
        );
        assert!(
            self.store.lease_holder(id).await.unwrap().is_none(),
            "waiting holds no lease"
        );
    }

    async fn times(&self, id: Uuid) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let record = self.store.get(id).await.unwrap();
        (record.alerted_at, record.settled_at)
    }
}

#[tokio::test]
async fn an_approved_image_airs_then_its_debit_is_accepted() {
    let setup = Setup::new().await;
    let consumer = Consumer::start(&setup.env("10m", "decline"));
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;

    let asked = Instant::now();
    setup
        .store
        .decide_approval(id, Decision::Approved, "broadcaster 1", None)
        .await
        .unwrap();
    let alert = setup.next(&setup.alerts).await;
    let approve_to_alert = asked.elapsed();
    eprintln!("approve -> alert: {approve_to_alert:?}");
    assert_eq!(alert.message_id.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(alert.body["payload"]["details"]["description"], "a seal");

    let result = setup.next(&setup.results).await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert!(result.body["image_url"].is_string());
    setup.reaches(id, "succeeded").await;
    assert_eq!(setup.flow_status(), FlowStatus::Accepted);
    let (alerted, settled) = setup.times(id).await;
    assert!(
        alerted.unwrap() <= settled.unwrap(),
        "the alert before the accept"
    );
    let approval = setup.store.get(id).await.unwrap().approval;
    assert_eq!(approval.decision(), Some(Decision::Approved));
    assert_eq!(approval.decided_by.as_deref(), Some("broadcaster 1"));
    // Carried out on the decision, not on the timeout: `decided_by` says
    // who decided (how soon is a figure for the benches, not a test).

    // Decided and done: a second decision is refused.
    let again = setup
        .store
        .decide_approval(id, Decision::Declined, "broadcaster 1", None)
        .await;
    assert!(
        matches!(again, Err(DecisionError::NotAwaiting { .. })),
        "{again:?}"
    );
    consumer.stop().await;
}

#[tokio::test]
async fn a_declined_image_never_airs_its_points_are_refunded_and_the_viewer_is_told() {
    let setup = Setup::new().await;
    let consumer = Consumer::start(&setup.env("10m", "approve"));
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;

    setup
        .store
        .decide_approval(id, Decision::Declined, "broadcaster 1", None)
        .await
        .unwrap();
    let result = setup.next(&setup.results).await;
    assert_eq!(result.body["request_id"], id.to_string());
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert_eq!(result.body["reason"], "declined by the streamer");
    assert!(
        result.body.get("image_url").is_none_or(|u| u.is_null()),
        "{}",
        result.body
    );

    setup.reaches(id, "rejected").await;
    let record = setup.store.get(id).await.unwrap();
    assert_eq!(
        record.error_message.as_deref(),
        Some("declined by the streamer")
    );
    assert!(record.alerted_at.is_none());
    assert_eq!(setup.flow_status(), FlowStatus::Rejected);
    assert_eq!(
        setup.world.broker.depth(&setup.alerts).await,
        0,
        "never aired"
    );
    consumer.stop().await;
}

#[tokio::test]
async fn the_first_of_two_racing_decisions_wins_and_the_other_is_refused() {
    let setup = Setup::new().await;
    let consumer = Consumer::start(&setup.env("10m", "decline"));
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;

    let (approve, decline) = tokio::join!(
        setup
            .store
            .decide_approval(id, Decision::Approved, "broadcaster 1", None),
        setup
            .store
            .decide_approval(id, Decision::Declined, "service phone", Some("no")),
    );
    assert!(
        approve.is_ok() != decline.is_ok(),
        "exactly one decision: {approve:?} {decline:?}"
    );
    let result = setup.next(&setup.results).await;
    let expected = if approve.is_ok() {
        "succeeded"
    } else {
        "rejected"
    };
    assert_eq!(result.body["state"], expected, "{}", result.body);
    consumer.stop().await;
}

#[tokio::test]
async fn the_timeout_declines_when_so_set() {
    let setup = Setup::new().await;
    let consumer = Consumer::start(&setup.env("1s", "decline"));
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;

    let result = setup.next(&setup.results).await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert_eq!(
        result.body["reason"],
        "declined by the streamer: not approved within 1s"
    );
    assert_eq!(setup.flow_status(), FlowStatus::Rejected);
    let approval = setup.store.get(id).await.unwrap().approval;
    assert_eq!(approval.decided_by.as_deref(), Some("timeout"));
    assert_eq!(setup.world.broker.depth(&setup.alerts).await, 0);
    // The timeout decided: the streamer comes too late.
    let late = setup
        .store
        .decide_approval(id, Decision::Approved, "broadcaster 1", None)
        .await;
    assert!(
        matches!(late, Err(DecisionError::NotAwaiting { .. })),
        "{late:?}"
    );
    consumer.stop().await;
}

#[tokio::test]
async fn the_timeout_approves_when_so_set() {
    let setup = Setup::new().await;
    let consumer = Consumer::start(&setup.env("1s", "approve"));
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;

    let alert = setup.next(&setup.alerts).await;
    assert_eq!(alert.message_id.as_deref(), Some(id.to_string().as_str()));
    let result = setup.next(&setup.results).await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(setup.flow_status(), FlowStatus::Accepted);
    let approval = setup.store.get(id).await.unwrap().approval;
    assert_eq!(approval.decision(), Some(Decision::Approved));
    assert_eq!(approval.decided_by.as_deref(), Some("timeout"));
    consumer.stop().await;
}

#[tokio::test]
async fn a_decision_is_carried_out_by_another_consumer_when_the_first_is_gone() {
    let setup = Setup::new().await;
    let env = setup.env("10m", "decline");
    let first = Consumer::start(&env);
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;
    first.stop().await;

    // Recorded while no consumer runs: nothing may be lost.
    setup
        .store
        .decide_approval(id, Decision::Declined, "broadcaster 1", Some("not tonight"))
        .await
        .unwrap();
    assert_eq!(setup.state(id).await, "awaiting_approval");

    let second = Consumer::start(&env);
    let result = setup.next(&setup.results).await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert_eq!(
        result.body["reason"],
        "declined by the streamer: not tonight"
    );
    assert_eq!(setup.flow_status(), FlowStatus::Rejected);
    assert_eq!(
        setup.world.fakes.with(|s| s.image_calls.len()),
        1,
        "bought once"
    );
    second.stop().await;
}

/// The real binary, frozen (SIGSTOP) while its request waits, so it cannot
/// act on the decision, then killed with SIGKILL: a second process carries
/// the decision out, once.
#[tokio::test]
async fn a_decision_recorded_while_its_consumer_is_frozen_then_killed_is_carried_out_by_another() {
    use std::process::Stdio;
    const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
    let setup = Setup::new().await;
    let env = setup.env("10m", "decline");
    let spawn = || {
        dynamo_testkit::Running::spawn(
            dynamo_testkit::command(BINARY, &env)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    };
    let first = spawn();
    let id = setup.send_ghost("a seal").await;
    setup.assert_waiting(id).await;
    first.signal("STOP");
    setup
        .store
        .decide_approval(id, Decision::Approved, "broadcaster 1", None)
        .await
        .unwrap();
    drop(first); // SIGKILL, frozen or not
    assert_eq!(
        setup.state(id).await,
        "awaiting_approval",
        "the frozen one did nothing"
    );

    let second = spawn();
    let alert = setup.next(&setup.alerts).await;
    assert_eq!(alert.message_id.as_deref(), Some(id.to_string().as_str()));
    let result = setup.next(&setup.results).await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    setup.reaches(id, "succeeded").await;
    assert_eq!(setup.flow_status(), FlowStatus::Accepted);
    assert_eq!(
        setup.world.broker.depth(&setup.alerts).await,
        0,
        "one alert"
    );
    drop(second);
}
