//! kill -9: the real `dynamo-consumer` binary is killed at arbitrary moments
//! while requests flow, and restarted. Afterwards every request has exactly
//! one end state, every debit dynamo knows of is settled, and nothing was
//! generated again once stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use chrono::{DateTime, Utc};
use dynamo_testkit::{FlowStatus, TestWorld, command, eventually};
use serde_json::json;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use uuid::Uuid;

/// id, state, ledger flow id, stored at, prompt
type Row = (Uuid, String, Option<Uuid>, Option<DateTime<Utc>>, String);

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
const REQUESTS: usize = 200;
const KILLS: usize = 20;

/// A fixed sequence of kill delays, so a failure can be reproduced.
fn kill_delays() -> Vec<Duration> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..KILLS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(300 + x % 900)
        })
        .collect()
}

#[tokio::test]
async fn requests_survive_repeated_kill_9_with_one_end_state_each() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_delay = Some(Duration::from_millis(120)));
    let alerts = world
        .broker
        .capture(&world.broker.topology.alerts_exchange)
        .await;
    let env = world
        .consumer_env()
        .with("CONSUMER_PREFETCH", "4")
        .with("MODERATION", "false");

    let mut ids = Vec::new();
    for i in 0..REQUESTS {
        let body = json!({"type":"image",
            "viewer":{"twitch_user_id": format!("viewer{i}"),"twitch_display_name": format!("Viewer{i}")},
            "payload":{"style": if i % 3 == 0 { "friend" } else { "ghost" },
                       "inputs":{"subject": format!("seal number {i}"), "color": "orange"}}});
        let id = Uuid::new_v4();
        world
            .broker
            .publish_request(&serde_json::to_vec(&body).unwrap(), Some(id))
            .await;
        ids.push(id);
    }

    for delay in kill_delays() {
        let mut child = command(BINARY, &env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await; // the moment of the crash, not a wait for a condition
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let mut last = command(BINARY, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pool = world.database.pool().clone();
    eventually(
        "every request to end, settled and reported",
        Duration::from_secs(120),
        || {
            let pool = pool.clone();
            async move {
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM dynamo.image_request
                 WHERE finished_at IS NULL OR settled_at IS NULL OR result_published_at IS NULL",
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                let all: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (open == 0 && all == REQUESTS as i64).then_some(())
            }
        },
    )
    .await;
    last.kill().unwrap();
    last.wait().unwrap();

    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, state, ledger_flow_id, stored_at, prompt FROM dynamo.image_request",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        REQUESTS,
        "each message became exactly one request"
    );
    let succeeded = rows.iter().filter(|r| r.1 == "succeeded").count();
    assert_eq!(succeeded, REQUESTS, "every request succeeded: {rows:?}");

    // Points: every debit dynamo recorded is settled the right way.
    let flows = world.fakes.with(|s| s.flows.clone());
    for (id, state, flow_id, _, _) in &rows {
        let flow = flows[&flow_id.expect("a debit was recorded")].clone();
        assert_eq!(flow.request_id, id.to_string());
        assert_eq!(
            (state.as_str(), flow.status),
            ("succeeded", FlowStatus::Accepted)
        );
    }
    let recorded: Vec<Uuid> = rows.iter().filter_map(|r| r.2).collect();
    let orphans: Vec<_> = flows
        .iter()
        .filter(|(id, _)| !recorded.contains(id))
        .collect();
    // A kill between the ledger's answer and our commit leaves a debit we
    // never learn the id of (the ledger has no lookup or idempotency key).
    assert!(
        orphans.len() <= KILLS,
        "more orphan debits than kills: {orphans:?}"
    );

    // Alerts: one per request, but for the accepted window between the
    // broker's confirm and our commit.
    let mut alerts_by_id: HashMap<String, usize> = HashMap::new();
    while let Some(alert) = world.broker.next(&alerts, Duration::from_millis(300)).await {
        *alerts_by_id.entry(alert.message_id.unwrap()).or_default() += 1;
    }
    assert_eq!(alerts_by_id.len(), REQUESTS, "every request was alerted");
    let repeats: usize = alerts_by_id.values().map(|n| n - 1).sum();
    assert!(repeats <= KILLS, "{repeats} repeated alerts");

    // Nothing was generated again after its image was stored.
    let calls = world.fakes.with(|s| s.image_call_log.clone());
    for (_, _, _, stored_at, prompt) in &rows {
        let stored_at = stored_at.unwrap();
        let late = calls
            .iter()
            .filter(|(p, at)| p == prompt && DateTime::<Utc>::from(*at) > stored_at)
            .count();
        assert_eq!(late, 0, "{prompt} was generated again after it was stored");
    }
    let regenerated = calls.len() - REQUESTS;
    println!(
        "kill -9 x{KILLS}: {REQUESTS} requests, {succeeded} succeeded, {} accepted debits, \
         {} orphan debits, {repeats} repeated alerts, {regenerated} images regenerated after a crash mid-generation",
        flows
            .values()
            .filter(|f| f.status == FlowStatus::Accepted)
            .count(),
        orphans.len(),
    );
}

#[tokio::test]
async fn a_redelivered_message_without_a_message_id_resumes_its_request() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script
            .push_back(dynamo_testkit::ImageBehavior::Slow { millis: 3000 })
    });
    let (results, _alerts) = world.broker.capture_outputs().await;
    let env = world.consumer_env().with("MODERATION", "false");
    // As the Golden VCR pipeline publishes: no message_id.
    world
        .broker
        .publish_request(&dynamo_testkit::ghost_request("an anonymous seal"), None)
        .await;

    let mut first = command(BINARY, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the image call", Duration::from_secs(60), || {
        let calls = world.fakes.with(|s| s.image_calls.len());
        async move { (calls == 1).then_some(()) }
    })
    .await;
    first.kill().unwrap(); // SIGKILL mid-generation: the message is redelivered
    first.wait().unwrap();

    let mut second = command(BINARY, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let result = world
        .broker
        .next(&results, Duration::from_secs(60))
        .await
        .unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(result.body["state"], "succeeded");
    let rows: Vec<(Uuid, i32, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, attempts, message_fingerprint FROM dynamo.image_request")
            .fetch_all(world.database.pool())
            .await
            .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the redelivery resumed the request instead of making another"
    );
    assert_eq!(rows[0].1, 2, "two attempts at one request");
    assert!(rows[0].2.is_some());
    assert_eq!(result.body["request_id"], rows[0].0.to_string());
    assert_eq!(world.fakes.flows().len(), 1, "one debit");
}
