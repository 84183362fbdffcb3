//! Spend and holds (issue 12 items 3 and 7): each image's cost is recorded
//! from the answer's usage; once the day's spend reaches
//! `OPENAI_DAILY_BUDGET_USD` the fleet holds image calls — requests wait,
//! neither failed nor charged twice — until a higher budget; and while the
//! fleet holds, a new request waits in the queue, not debited.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_testkit::{FlowStatus, IMAGE_INPUT_TOKENS, IMAGE_OUTPUT_TOKENS, TestWorld, eventually};
use std::time::Duration;
use support::{Running, WAIT, ghost};

/// What the fake's usage comes to at gpt-image-2's token prices (medium).
fn one_image_usd() -> f64 {
    (IMAGE_INPUT_TOKENS as f64 * 5.0 + IMAGE_OUTPUT_TOKENS[2].1 as f64 * 30.0) / 1e6
}

async fn spend_rows(running: &Running) -> Vec<(f64, String, Option<i32>)> {
    sqlx::query_as("SELECT cost_usd, priced_by, output_tokens FROM dynamo.image_spend ORDER BY id")
        .fetch_all(running.world.database.pool())
        .await
        .unwrap()
}

async fn state_of(running: &Running, id: uuid::Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT state::text FROM dynamo.image_request WHERE id = $1")
        .bind(id)
        .fetch_optional(running.world.database.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_daily_budget_holds_the_next_image_until_it_is_raised() {
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("UPSTREAM_PROBE_INTERVAL", "1s")
        // Less than one image: the first is bought, the second waits.
        .with("OPENAI_DAILY_BUDGET_USD", "0.05");
    let running = Running::with_health(world, env.clone()).await;
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let rows = spend_rows(&running).await;
    assert_eq!(rows.len(), 1);
    assert!((rows[0].0 - one_image_usd()).abs() < 1e-9, "{rows:?}");
    assert_eq!(rows[0].1, "usage");
    let summary = running.store().spend_summary().await.unwrap();
    assert!((summary.today_usd - one_image_usd()).abs() < 1e-9);
    assert_eq!(summary.broadcast_id, Some(13));
    assert!((summary.broadcast_usd - one_image_usd()).abs() < 1e-9);

    let second = running.send(&ghost("a walrus")).await;
    let hold = eventually("the budget to hold the fleet", WAIT, || async {
        running.store().current_hold("openai-budget").await.unwrap()
    })
    .await;
    assert!(
        hold.reason.contains("OPENAI_DAILY_BUDGET_USD"),
        "{}",
        hold.reason
    );
    // Arriving once the consumer has paused: stays in the queue, unrecorded.
    let readyz = running.readyz.clone().unwrap();
    eventually("the consumer to pause", WAIT, || async {
        let ready: serde_json::Value = reqwest::get(&readyz).await.ok()?.json().await.ok()?;
        (ready["consuming"] == false).then_some(())
    })
    .await;
    let third = running.send(&ghost("an otter")).await;
    // Probes come every second; none may buy an image or end a request.
    assert!(
        running
            .result_within(Duration::from_secs(3))
            .await
            .is_none()
    );
    assert_eq!(running.world.fakes.with(|s| s.image_calls.len()), 1);
    assert_eq!(spend_rows(&running).await.len(), 1, "nothing charged twice");
    assert_ne!(state_of(&running, second).await.as_deref(), Some("failed"));
    assert_eq!(
        state_of(&running, third).await,
        None,
        "taken during the hold"
    );
    let queue = &running.world.broker.topology.requests_queue;
    assert_eq!(
        running.world.broker.depth(queue).await,
        1,
        "waits in the queue"
    );
    let flows = running.world.fakes.flows();
    assert!(
        !flows.iter().any(|f| f.request_id == third.to_string()),
        "not debited while held"
    );
    let world = running.stop().await;

    // A higher budget: the held requests go on by themselves.
    let running = Running::start(world, env.with("OPENAI_DAILY_BUDGET_USD", "1")).await;
    for _ in 0..2 {
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    }
    assert_eq!(running.world.fakes.with(|s| s.image_calls.len()), 3);
    assert_eq!(spend_rows(&running).await.len(), 3, "one charge per image");
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 3, "one debit each");
    assert!(flows.iter().all(|f| f.status == FlowStatus::Accepted));
    assert_eq!(
        running.store().current_hold("openai-budget").await.unwrap(),
        None
    );
    running.stop().await;
}

#[tokio::test]
async fn a_request_arriving_during_a_hold_is_debited_only_after_it_lifts() {
    let outage = Duration::from_secs(10);
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.out_of_credit_until = Some(std::time::Instant::now() + outage);
    });
    let credit_back_at = chrono::Utc::now() + chrono::Duration::from_std(outage).unwrap();
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("UPSTREAM_PROBE_INTERVAL", "2s");
    let running = Running::start(world, env).await;
    let first = running.send(&ghost("a seal")).await;
    eventually("the fleet to hold", WAIT, || async {
        running.store().current_hold("openai").await.unwrap()
    })
    .await;
    let second = running.send(&ghost("a walrus")).await;
    // Two probes fail meanwhile: time for the second request to be taken,
    // if it is (within the moment before every consumer sees the hold).
    let refused = running.world.fakes.with(|s| s.refused_for_credit);
    eventually("two more probes", WAIT, || async {
        let now = running.world.fakes.with(|s| s.refused_for_credit);
        (now >= refused + 2).then_some(())
    })
    .await;
    let waiting = state_of(&running, second).await;
    assert!(
        matches!(waiting.as_deref(), None | Some("received")),
        "in the queue or waiting before its debit: {waiting:?}"
    );
    assert!(
        running
            .store()
            .current_hold("openai")
            .await
            .unwrap()
            .is_some(),
        "still held: the check below means something"
    );
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1, "only the request in flight was debited");
    assert_eq!(flows[0].request_id, first.to_string());

    for _ in 0..2 {
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    }
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 2);
    assert!(flows.iter().all(|f| f.status == FlowStatus::Accepted));
    let late = flows
        .iter()
        .find(|f| f.request_id == second.to_string())
        .unwrap();
    assert!(
        late.created_at >= credit_back_at,
        "debited at {} during the hold (credit back at {credit_back_at})",
        late.created_at
    );
    running.stop().await;
}
