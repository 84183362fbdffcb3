//! kill -9: the real `dynamo-consumer` binary is killed at arbitrary moments
//! while it holds work, and restarted. Afterwards every request has exactly
//! one end state; the ledger's own records hold one accepted debit per
//! request and none pending; the alerts service got one alert per request
//! (a repeat only for a kill in the confirm→commit window); and nothing was
//! generated again once stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use chrono::{DateTime, Utc};
use dynamo_testkit::{
    Expected, FlowStatus, Running, TestWorld, assert_alerts, command, drain_by_message_id,
    eventually,
};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use uuid::Uuid;

/// id, state, ledger flow id, stored at, prompt
type Row = (Uuid, String, Option<Uuid>, Option<DateTime<Utc>>, String);

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
const REQUESTS: usize = 200;
const KILLS: usize = 20;
const WAIT: Duration = Duration::from_secs(60);

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

async fn open_requests(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM dynamo.image_request
         WHERE finished_at IS NULL OR settled_at IS NULL OR result_published_at IS NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

fn spawn_quiet(env: &dynamo_runtime::Env) -> Running {
    Running::spawn(
        command(BINARY, env)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
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

    let mut expected = Vec::new();
    for i in 0..REQUESTS {
        let viewer = format!("viewer{i}");
        let body = json!({"type":"image",
            "viewer":{"twitch_user_id": viewer,"twitch_display_name": format!("Viewer{i}")},
            "payload":{"style": if i % 3 == 0 { "friend" } else { "ghost" },
                       "inputs":{"subject": format!("seal number {i}"), "color": "orange"}}});
        let id = Uuid::new_v4();
        world
            .broker
            .publish_request(&serde_json::to_vec(&body).unwrap(), Some(id))
            .await;
        expected.push(Expected {
            request_id: id,
            viewer,
            succeeded: true,
        });
    }

    let pool = world.database.pool().clone();
    let mut kills = 0;
    for delay in kill_delays() {
        let mut child = spawn_quiet(&env);
        tokio::time::sleep(delay).await; // the moment of the crash, not a wait for a condition
        if open_requests(&pool).await == 0 {
            break; // nothing left to crash in the middle of
        }
        child.kill_9_while_working(&world.database, WAIT).await;
        kills += 1;
    }
    assert!(kills > KILLS / 2, "only {kills} kills landed on work");
    let _last = spawn_quiet(&env);
    eventually(
        "every request to end, settled and reported",
        Duration::from_secs(120),
        || {
            let pool = pool.clone();
            async move {
                let all: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (open_requests(&pool).await == 0 && all == REQUESTS as i64).then_some(())
            }
        },
    )
    .await;

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

    // Points, from the ledger's own records: one accepted debit per request,
    // in its viewer's name, and none left pending (SPEC §6.3).
    let money = world.fakes.assert_money(&expected);
    // Alerts, as the alerts service got them: one per request, a repeat only
    // where a kill fell between the broker's confirm and the commit.
    let alerted = drain_by_message_id(&world.broker, &alerts).await;
    let repeats = assert_alerts(&alerted, &expected, kills);

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
        "kill -9 x{kills} (each while holding a lease): {REQUESTS} requests, {succeeded} succeeded, \
         {} accepted debits, {} refunded, 0 pending, {repeats} repeated alerts, \
         {regenerated} images regenerated after a crash mid-generation",
        money.accepted, money.rejected,
    );
}

/// A crash after the ledger made the debit and before dynamo heard its
/// answer (SPEC §6.3): the ledger's answer is lost and its history cannot be
/// read, so the consumer is stuck with an unheard debit when it is killed.
/// The next consumer finds that debit in the history, whose clock is 20 s
/// behind ours and which holds another service's look-alike debit, and
/// leaves nothing pending and nobody else's flow touched.
#[tokio::test]
async fn a_debit_unheard_at_a_crash_is_not_left_pending() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.debit_answers_lost = 1;
        s.history_failures = usize::MAX;
    });
    let alerts = world
        .broker
        .capture(&world.broker.topology.alerts_exchange)
        .await;
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("LEASE_TTL", "2s")
        .with("RETRY_MAX_ATTEMPTS", "1000")
        .with("RETRY_DEADLINE", "10m")
        .with("RETRY_MAX_DELAY", "100ms");
    let id = Uuid::new_v4();
    world
        .broker
        .publish_request(&dynamo_testkit::ghost_request("an unheard seal"), Some(id))
        .await;
    let pool = world.database.pool().clone();
    let mut first = spawn_quiet(&env);
    eventually(
        "the debit made, its answer lost, the history failing",
        WAIT,
        || {
            let (flows, lost, history_failures) = world
                .fakes
                .with(|s| (s.flows.len(), s.debit_answers_lost, s.history_failures));
            async move { (flows == 1 && lost == 0 && history_failures < usize::MAX).then_some(()) }
        },
    )
    .await;
    first.kill_9_while_working(&world.database, WAIT).await;
    assert_eq!(
        world.fakes.flows()[0].status,
        FlowStatus::Pending,
        "the crash left the debit pending"
    );

    world.fakes.with(|s| s.history_failures = 0);
    let _second = spawn_quiet(&env);
    eventually("the request to end, settled and reported", WAIT, || async {
        (open_requests(&pool).await == 0).then_some(())
    })
    .await;
    let expected = [Expected {
        request_id: id,
        viewer: "1".to_owned(),
        succeeded: true,
    }];
    world.fakes.assert_money(&expected);
    let alerted = drain_by_message_id(&world.broker, &alerts).await;
    assert_alerts(&alerted, &expected, 0);
}

/// The alert is confirmed and committed; the consumer is stuck accepting
/// the debit (the ledger answers 503) when it is killed, its message
/// unacknowledged. The redelivery resumes at the accept: the viewer's
/// alert is not shown a second time (SPEC §6.4: only the confirm→commit
/// window may repeat one, and this crash is outside it).
#[tokio::test]
async fn a_redelivery_after_the_alert_was_committed_does_not_alert_again() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| s.accept_failures = usize::MAX);
    let alerts = world
        .broker
        .capture(&world.broker.topology.alerts_exchange)
        .await;
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("LEASE_TTL", "2s")
        .with("RETRY_MAX_ATTEMPTS", "1000")
        .with("RETRY_DEADLINE", "10m")
        .with("RETRY_MAX_DELAY", "100ms");
    let id = Uuid::new_v4();
    world
        .broker
        .publish_request(
            &dynamo_testkit::ghost_request("a seal shown once"),
            Some(id),
        )
        .await;
    let pool = world.database.pool().clone();
    let mut first = spawn_quiet(&env);
    eventually("the alert committed and the accept failing", WAIT, || {
        let pool = pool.clone();
        let accepts_failing = world.fakes.with(|s| s.accept_failures < usize::MAX);
        async move {
            let alerted: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT alerted_at FROM dynamo.image_request WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&pool)
                    .await
                    .ok()
                    .flatten()
                    .flatten();
            (alerted.is_some() && accepts_failing).then_some(())
        }
    })
    .await;
    first.kill_9_while_working(&world.database, WAIT).await;
    assert_eq!(
        drain_by_message_id(&world.broker, &alerts)
            .await
            .get(&id.to_string()),
        Some(&1),
        "one alert before the crash"
    );

    world.fakes.with(|s| s.accept_failures = 0);
    let _second = spawn_quiet(&env);
    eventually("the request to end, settled and reported", WAIT, || async {
        (open_requests(&pool).await == 0).then_some(())
    })
    .await;
    let expected = [Expected {
        request_id: id,
        viewer: "1".to_owned(),
        succeeded: true,
    }];
    world.fakes.assert_money(&expected);
    let after = drain_by_message_id(&world.broker, &alerts).await;
    assert!(after.is_empty(), "alerted again after the crash: {after:?}");
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

    let mut first = spawn_quiet(&env);
    eventually("the image call", WAIT, || {
        let calls = world.fakes.with(|s| s.image_calls.len());
        async move { (calls == 1).then_some(()) }
    })
    .await;
    // SIGKILL mid-generation: the message is redelivered.
    first.kill_9_while_working(&world.database, WAIT).await;

    let mut second = spawn_quiet(&env);
    let result = world
        .broker
        .next(&results, Duration::from_secs(60))
        .await
        .unwrap();
    second.kill();
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
