//! Every request has a live owner (SPEC §6.8), against the real
//! `dynamo-consumer` binary: a frozen owner is taken over and cannot commit
//! when it wakes, and a viewer's burst survives repeated kill -9 (each while
//! the process holds a lease) with every request charged and alerted once,
//! counted from the ledger's records and the alerts delivered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_testkit::{
    Expected, ImageBehavior, Running, TestWorld, assert_alerts, command, drain_by_message_id,
    eventually,
};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");

/// id, state, ledger flow id, deliveries, reason
type Row = (Uuid, String, Option<Uuid>, i32, Option<String>);
const WAIT: Duration = Duration::from_secs(120);

fn spawn_logging_to(env: &Env, log: &std::path::Path) -> Running {
    let file = std::fs::File::create(log).unwrap();
    Running::spawn(
        command(BINARY, env)
            .stdout(file.try_clone().unwrap())
            .stderr(file),
    )
}

fn spawn_quiet(env: &Env) -> Running {
    Running::spawn(
        command(BINARY, env)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

async fn open_requests(world: &TestWorld) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM dynamo.image_request
         WHERE finished_at IS NULL OR settled_at IS NULL OR result_published_at IS NULL",
    )
    .fetch_one(world.database.pool())
    .await
    .unwrap()
}

/// SIGSTOP a consumer in the middle of generating, past its lease: another
/// consumer takes the request over and finishes it, without its message.
/// SIGCONT the first: it wakes to find the lease gone and changes nothing.
#[tokio::test]
async fn a_frozen_owner_is_taken_over_and_cannot_commit_when_it_wakes() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script
            .push_back(ImageBehavior::Slow { millis: 4000 })
    });
    let (results, alerts) = world.broker.capture_outputs().await;
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("LEASE_TTL", "2s");
    let dir = tempdir();
    let frozen_log = dir.join("frozen.log");
    let mut frozen = spawn_logging_to(&env, &frozen_log);
    let id = Uuid::new_v4();
    world
        .broker
        .publish_request(&dynamo_testkit::ghost_request("a frozen seal"), Some(id))
        .await;
    eventually("the first consumer's image call", WAIT, || {
        let calls = world.fakes.with(|s| s.image_calls.len());
        async move { (calls == 1).then_some(()) }
    })
    .await;
    frozen.signal("STOP");

    let mut rescuer = spawn_quiet(&env);
    // Within seconds of the lease lapsing, not when the broker gives up on
    // the frozen consumer's connection and redelivers (a minute or more).
    let result = world
        .broker
        .next(&results, Duration::from_secs(30))
        .await
        .expect("the request to be taken over and finished");
    assert_eq!(result.body["request_id"], id.to_string());
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);

    frozen.signal("CONT");
    // The frozen process's image answer arrives when it wakes: it must find
    // its lease gone instead of storing, alerting or settling.
    eventually(
        "the woken consumer to notice its lease is gone",
        WAIT,
        || {
            let log = std::fs::read_to_string(&frozen_log).unwrap_or_default();
            async move { log.contains("lease was lost").then_some(()) }
        },
    )
    .await;
    frozen.signal("TERM");
    frozen.wait();
    rescuer.signal("TERM");
    rescuer.wait();

    let flows = world.fakes.flows();
    assert_eq!(flows.len(), 1, "one debit: {flows:?}");
    world.fakes.assert_money(&[Expected {
        request_id: id,
        viewer: "1".to_owned(),
        succeeded: true,
    }]);
    let alert = world.broker.next(&alerts, WAIT).await.expect("an alert");
    assert_eq!(alert.message_id.as_deref(), Some(id.to_string().as_str()));
    assert!(
        world
            .broker
            .next(&alerts, Duration::from_millis(500))
            .await
            .is_none(),
        "one alert"
    );
    assert!(
        world
            .broker
            .next(&results, Duration::from_millis(500))
            .await
            .is_none(),
        "one result"
    );
    let images: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dynamo.image WHERE image_request_id = $1")
            .bind(id)
            .fetch_one(world.database.pool())
            .await
            .unwrap();
    assert_eq!(images, 1);
    assert_eq!(open_requests(&world).await, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// One viewer redeems 30 times in a burst while the consumer is killed every
/// 1.5–3 s: every request succeeds, charged once and alerted once, nothing
/// left pending. (Before leases, two requests sat in `debited` with nobody
/// working on them and the viewer's other requests waited behind them for
/// RECOVERY_STALE_AFTER, an hour.)
#[tokio::test]
async fn one_viewers_burst_survives_kill_9_with_each_request_charged_and_alerted_once() {
    const REQUESTS: usize = 30;
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_delay = Some(Duration::from_millis(300));
        s.balances.insert("777".into(), 1_000_000);
    });
    let (_results, alerts) = world.broker.capture_outputs().await;
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("VIEWER_MAX_IN_FLIGHT", "2")
        .with("LEASE_TTL", "3s");
    let mut expected = Vec::new();
    for i in 0..REQUESTS {
        let body = json!({"type":"image",
            "viewer":{"twitch_user_id":"777","twitch_display_name":"BurstyViewer"},
            "payload":{"style":"ghost","inputs":{"subject": format!("seal number {i}")}}});
        let id = Uuid::new_v4();
        world
            .broker
            .publish_request(&serde_json::to_vec(&body).unwrap(), Some(id))
            .await;
        expected.push(Expected {
            request_id: id,
            viewer: "777".to_owned(),
            succeeded: true,
        });
    }
    // A fixed sequence of crash moments between 1.5 and 3 s, so a failure reproduces.
    let delays: Vec<Duration> = (0..8u64)
        .map(|i| Duration::from_millis(1500 + (i * 733) % 1500))
        .collect();
    let mut kills = 0;
    for delay in delays {
        let mut child = spawn_quiet(&env);
        tokio::time::sleep(delay).await; // the moment of the crash, not a wait for a condition
        if open_requests(&world).await == 0 {
            break; // nothing left to crash in the middle of
        }
        child.kill_9_while_working(&world.database, WAIT).await;
        kills += 1;
    }
    let _last = spawn_quiet(&env);
    eventually(
        "every request to end, settled and reported",
        WAIT,
        || async {
            let all: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request")
                .fetch_one(world.database.pool())
                .await
                .unwrap();
            (all == REQUESTS as i64 && open_requests(&world).await == 0).then_some(())
        },
    )
    .await;

    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, state, ledger_flow_id, attempts, error_message FROM dynamo.image_request",
    )
    .fetch_all(world.database.pool())
    .await
    .unwrap();
    for (id, state, _, _, reason) in &rows {
        assert_eq!(state, "succeeded", "{id}: {reason:?}");
    }
    // From the ledger's own records and what the alerts service got: one
    // accepted debit per request, none pending, one alert per request but
    // for the confirm→commit window.
    let money = world.fakes.assert_money(&expected);
    let alerted = drain_by_message_id(&world.broker, &alerts).await;
    let repeats = assert_alerts(&alerted, &expected, kills);
    let most_attempts = rows.iter().map(|r| r.3).max().unwrap_or(0);
    println!(
        "one viewer, {REQUESTS} requests, kill -9 x{kills} (each while holding a lease): \
         {} succeeded, {} debits accepted, {} refunded, 0 pending, {repeats} repeated alerts, \
         at most {most_attempts} deliveries of one request",
        rows.len(),
        money.accepted,
        money.rejected,
    );
    assert!(
        (most_attempts as usize) <= kills + 2,
        "waiting for the viewer's turn counts no attempts: {most_attempts}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dynamo-ownership-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An image is bought once (SPEC §6.9): storage unreachable, kill -9 once the
/// image was answered and its upload began, restart with storage back — the
/// request finishes from the kept answer with one image call in all.
#[tokio::test]
async fn an_image_answered_before_a_crash_is_not_bought_again() {
    let world = TestWorld::start().await;
    let (results, _alerts) = world.broker.capture_outputs().await;
    // Storage that accepts connections and hangs up at once, counting them.
    let unreachable = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unreachable_url = format!("http://{}", unreachable.local_addr().unwrap());
    let (tried, mut upload_tried) = tokio::sync::watch::channel(0usize);
    tokio::spawn(async move {
        while let Ok((socket, _)) = unreachable.accept().await {
            drop(socket);
            tried.send_modify(|n| *n += 1);
        }
    });
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("LEASE_TTL", "2s");
    let storage_down = env
        .clone()
        .with("SPACES_ENDPOINT_URL", &unreachable_url)
        .with("RETRY_MAX_ATTEMPTS", "1000")
        .with("RETRY_DEADLINE", "10m")
        .with("RETRY_MAX_DELAY", "200ms");
    let mut first = spawn_quiet(&storage_down);
    let id = Uuid::new_v4();
    world
        .broker
        .publish_request(
            &dynamo_testkit::ghost_request("a seal bought once"),
            Some(id),
        )
        .await;
    tokio::time::timeout(WAIT, upload_tried.wait_for(|n| *n > 0))
        .await
        .expect("an upload to be tried")
        .unwrap();
    // SIGKILL with the image answered and not stored, the request leased.
    first.kill_9_while_working(&world.database, WAIT).await;
    assert_eq!(world.fakes.with(|s| s.image_calls.len()), 1);

    let mut second = spawn_quiet(&env);
    let result = world.broker.next(&results, WAIT).await.expect("a result");
    second.kill();
    assert_eq!(result.body["request_id"], id.to_string());
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(
        world.fakes.with(|s| s.image_calls.len()),
        1,
        "the image was bought once"
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.generated_image")
        .fetch_one(world.database.pool())
        .await
        .unwrap();
    assert_eq!(
        kept, 0,
        "the kept answer is dropped once the image is stored"
    );
}
