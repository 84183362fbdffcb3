//! A live show gone wrong, on purpose (issue 15): 1,000 requests from 25
//! viewers, three of whom burst 100 requests each, through three real
//! `dynamo-consumer` processes while a random one is killed with SIGKILL
//! every 1–3 s for 90 s (and restarted), RabbitMQ and PostgreSQL are each
//! restarted once, and an in-process `dynamo-server` enqueues 50 admin
//! requests meanwhile. Then it waits for every request to end and reports
//! what the show cost: lost requests, requests without one end state, double
//! and pending debits, repeated alerts, images bought twice, and the time from
//! the last fault to the last end state (target ≤ 60 s). One poison
//! message rides along in the middle of the queue (a subject holding U+0000,
//! published raw, past every check): it must change nothing but one dead
//! letter (issue 23).
//!
//! `cargo bench -p dynamo-consumer --bench chaos` runs the show. Under
//! `cargo test` it runs small (100 requests, kills for 10 s) and restarts no
//! service — that would pull the machine's RabbitMQ and PostgreSQL from under
//! every other test; `crates/consumer/tests/*_restart.rs` cover restarts.
//! `CHAOS_RESTARTS=1` adds them to a small run, `CHAOS_REQUESTS` and
//! `CHAOS_SECONDS` size it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is the point

use dynamo_runtime::{Env, Shutdown};
use dynamo_testkit::{
    Expected, FlowStatus, Running, TestWorld, assert_alerts, command, count_by_message_id,
    eventually,
};
use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
const CONSUMERS: usize = 3;
const VIEWERS: usize = 25;
const BURSTERS: usize = 3;
const BURST: usize = 100;
const ADMIN_REQUESTS: usize = 50;
/// Requests one consumer has in flight (CONSUMER_PREFETCH).
const PREFETCH: usize = 8;

/// A small deterministic generator: a failing run can be repeated.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn spawn(env: &Env) -> Running {
    Running::spawn(
        command(BINARY, env)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?} failed");
}

fn restart_rabbitmq() {
    run("rabbitmqctl", &["stop_app"]);
    run("rabbitmqctl", &["start_app"]);
    run("rabbitmqctl", &["await_startup"]);
}

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let version = version.to_string_lossy();
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "restart"],
    );
}

fn body(viewer: usize, n: usize) -> serde_json::Value {
    json!({"type": "image",
        "viewer": {"twitch_user_id": format!("chaos-{viewer}"), "twitch_display_name": format!("Viewer{viewer}")},
        "payload": {"style": if n.is_multiple_of(4) { "friend" } else { "ghost" },
                    "inputs": {"subject": format!("seal {viewer}-{n}"), "color": "orange"}}})
}

#[tokio::main]
async fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let requests = number("CHAOS_REQUESTS", if benchmarking { 1000 } else { 100 });
    let seconds = number("CHAOS_SECONDS", if benchmarking { 90 } else { 10 }) as u64;
    let restarts = benchmarking || std::env::var("CHAOS_RESTARTS").is_ok_and(|v| v == "1");
    if requests < 1000 || seconds < 90 || !restarts {
        println!(
            "chaos: SMOKE RUN ({requests} requests, kills for {seconds} s, restarts: {restarts}); its figures are not the show's"
        );
    }
    let mut world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_delay = Some(Duration::from_millis(150));
        for viewer in 0..VIEWERS {
            s.balances.insert(format!("chaos-{viewer}"), i64::MAX / 4);
        }
        s.balances.insert("90790024".into(), i64::MAX / 4);
    });
    // A durable queue standing in for the alerts service: it outlives the
    // broker's restart, and counts every alert.
    let connection = dynamo_broker::connect(&world.broker.settings, "chaos-alerts")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let alerts = format!(
        "{}.chaos-{}",
        world.broker.topology.alerts_exchange,
        Uuid::new_v4().simple()
    );
    channel
        .queue_declare(
            alerts.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            alerts.as_str().into(),
            world.broker.topology.alerts_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("CONSUMER_PREFETCH", PREFETCH.to_string())
        .with("VIEWER_MAX_IN_FLIGHT", "2")
        .with("LEASE_TTL", "5s")
        .with("RETRY_MAX_ATTEMPTS", "50")
        .with("RETRY_DEADLINE", "5m")
        .with("RETRY_MAX_DELAY", "2s");

    // The requests, all queued at once: the bursters first, as a raid would.
    let mut expected: HashSet<String> = HashSet::new();
    let mut charged: Vec<Expected> = Vec::new();
    let burst = BURST * requests / 1000;
    let others = requests - BURSTERS * burst;
    let (per_other, remainder) = (others / (VIEWERS - BURSTERS), others % (VIEWERS - BURSTERS));
    let mut n = 0;
    let poison_id = format!("chaos-poison-{}", Uuid::new_v4());
    for viewer in 0..VIEWERS {
        let count = match viewer {
            v if v < BURSTERS => burst,
            v if v - BURSTERS < remainder => per_other + 1,
            _ => per_other,
        };
        for _ in 0..count {
            let id = Uuid::new_v4();
            world
                .broker
                .publish_request(&serde_json::to_vec(&body(viewer, n)).unwrap(), Some(id))
                .await;
            expected.insert(id.to_string());
            charged.push(Expected {
                request_id: id,
                viewer: format!("chaos-{viewer}"),
                succeeded: true,
            });
            n += 1;
            if n == requests / 2 {
                let mut poison = body(viewer, n);
                poison["payload"]["inputs"]["subject"] = json!("a seal\u{0}");
                world
                    .broker
                    .publish_raw(
                        &serde_json::to_vec(&poison).unwrap(),
                        &poison_id,
                        "application/json",
                        &[],
                    )
                    .await;
            }
        }
    }

    // dynamo-server, enqueueing admin requests during the show.
    let server_config =
        dynamo_server::ServerConfig::from_env(&env.clone().with("STORAGE_BACKEND", "filesystem"))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server_shutdown = Shutdown::new();
    tokio::spawn(dynamo_server::run(
        server_config,
        listener,
        server_shutdown.clone(),
    ));
    let admin = world.fakes.jwt("a", json!({"gvcr_service": "chaos"}));
    let admin_requests = ADMIN_REQUESTS * requests / 1000;
    let enqueuer = tokio::spawn({
        let base = base.clone();
        let spacing = Duration::from_millis(seconds * 1000 / admin_requests.max(1) as u64);
        async move {
            let http = reqwest::Client::new();
            let mut accepted = Vec::new();
            let mut refused = 0usize;
            for i in 0..admin_requests {
                loop {
                    let answer = http
                        .post(format!("{base}/requests"))
                        .bearer_auth(&admin)
                        .json(&json!({"viewer": {"twitch_user_id": "90790024", "twitch_display_name": "wasabimilkshake"},
                                      "style": "ghost", "inputs": {"subject": format!("an admin's seal {i}")}}))
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                            let body: serde_json::Value = response.json().await.unwrap();
                            accepted.push(body["id"].as_str().unwrap().to_owned());
                            break;
                        }
                        _ => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                tokio::time::sleep(spacing).await;
            }
            (accepted, refused)
        }
    });

    // The show: a random consumer killed every 1-3 s, each restarted; the
    // broker restarted a third of the way in, the database two thirds.
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);
    let mut consumers: Vec<Running> = (0..CONSUMERS).map(|_| spawn(&env)).collect();
    let started = Instant::now();
    let show = Duration::from_secs(seconds);
    let (mut kills, mut broker_restarted, mut database_restarted) = (0, false, false);
    let mut last_fault = Instant::now();
    while started.elapsed() < show {
        tokio::time::sleep(Duration::from_millis(1000 + dice.next(2000))).await; // the moment of the next fault
        let victim = dice.next(CONSUMERS as u64) as usize;
        // Only a consumer holding work is killed (a lease, seen in the
        // database); the kill is checked to be what ended it.
        if world.database.holds_lease(consumers[victim].id()).await {
            consumers[victim].kill_9();
            consumers[victim] = spawn(&env);
            kills += 1;
        }
        if restarts && !broker_restarted && started.elapsed() > show / 3 {
            restart_rabbitmq();
            broker_restarted = true;
        }
        if restarts && !database_restarted && started.elapsed() > show * 2 / 3 {
            restart_postgres();
            database_restarted = true;
        }
        last_fault = Instant::now();
    }
    let (admin_ids, refused_enqueues) = enqueuer.await.unwrap();
    for id in &admin_ids {
        charged.push(Expected {
            request_id: id.parse().unwrap(),
            viewer: "90790024".to_owned(),
            succeeded: true,
        });
    }
    expected.extend(admin_ids);
    let total = expected.len() as i64;

    let pool = world.database.pool().clone();
    eventually(
        "every request to end, settled and reported",
        Duration::from_secs(600),
        || {
            let pool = pool.clone();
            async move {
                let (all, open): (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE finished_at IS NULL OR settled_at IS NULL
                                                    OR result_published_at IS NULL)
                 FROM dynamo.image_request",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
                (all >= total && open == 0).then_some(())
            }
        },
    )
    .await;
    let settled_after_last_fault = last_fault.elapsed();
    drop(consumers);
    server_shutdown.trigger();

    let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, state FROM dynamo.image_request")
        .fetch_all(&pool)
        .await
        .unwrap();
    let recorded: HashSet<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
    let lost = expected.difference(&recorded).count();
    let not_ended = rows
        .iter()
        .filter(|(_, state)| !matches!(state.as_str(), "succeeded" | "rejected" | "failed"))
        .count();
    let succeeded = rows
        .iter()
        .filter(|(_, state)| state == "succeeded")
        .count();
    // Points: a debit counts by who holds it in the database, since a
    // debit whose answer was lost may be adopted by another request of the
    // same viewer (the ledger's history carries no metadata): the viewer is
    // charged once per request either way.
    let held: Vec<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT id, ledger_flow_id FROM dynamo.image_request")
            .fetch_all(&pool)
            .await
            .unwrap();
    let holder: HashMap<Uuid, Uuid> = held
        .iter()
        .filter_map(|(request, flow)| flow.map(|flow| (flow, *request)))
        .collect();
    let flows = world.fakes.with(|s| s.flows.clone());
    let double_debits = flows
        .iter()
        .filter(|(id, f)| f.status == FlowStatus::Accepted && !holder.contains_key(id))
        .count();
    let pending = flows
        .values()
        .filter(|f| f.status == FlowStatus::Pending)
        .count();
    let adopted_across = flows
        .iter()
        .filter(|(id, f)| {
            holder
                .get(id)
                .is_some_and(|r| r.to_string() != f.request_id)
        })
        .count();
    // The broker may have restarted under the show: read on fresh channels
    // (the durable queues kept what was delivered).
    if broker_restarted {
        world.broker.reconnect().await;
    }
    let alerted = count_by_message_id(&world.broker.channel, &alerts).await;
    let _ = world
        .broker
        .channel
        .queue_delete(alerts.as_str().into(), QueueDeleteOptions::default())
        .await;
    let repeated_alerts: usize = alerted.values().map(|n| n - 1).sum();
    let calls = world.fakes.with(|s| s.image_call_log.clone());
    let mut bought: HashMap<&str, usize> = HashMap::new();
    for (prompt, _) in &calls {
        *bought.entry(prompt.as_str()).or_default() += 1;
    }
    let bought_twice = bought.values().filter(|n| **n > 1).count();
    // Parked once, or twice if a kill -9 lost the ack of the first parking.
    let mut dead_letters = Vec::new();
    while let Some(parked) = world
        .broker
        .next(
            &world.broker.topology.dead_letter_queue,
            Duration::from_secs(1),
        )
        .await
    {
        dead_letters.push(parked);
    }
    let parked_ids: HashSet<Option<String>> =
        dead_letters.iter().map(|d| d.message_id.clone()).collect();
    let poison_reason = dead_letters
        .first()
        .and_then(|d| d.header(dynamo_broker::headers::REASON))
        .unwrap_or("")
        .to_owned();

    println!(
        "chaos: {total} requests ({} queued, {} through dynamo-server, {refused_enqueues} enqueue attempts refused while a service was away)",
        total as usize - admin_requests,
        admin_requests
    );
    println!(
        "chaos: {CONSUMERS} consumers, {kills} kill -9 over {seconds} s, RabbitMQ restarted: {broker_restarted}, PostgreSQL restarted: {database_restarted}"
    );
    println!("chaos: lost {lost}; without one end state {not_ended}; succeeded {succeeded}");
    println!(
        "chaos: double debits {double_debits}; pending debits at the end {pending}; lost answers adopted by another request of the viewer {adopted_across}"
    );
    println!(
        "chaos: repeated alerts {repeated_alerts} (the confirm→commit window); images bought twice {bought_twice}"
    );
    println!(
        "chaos: dead letters {} (message ids {parked_ids:?}); reason: {poison_reason}",
        dead_letters.len()
    );
    println!(
        "chaos: last end state {:.1} s after the last fault (target ≤ 60 s)",
        settled_after_last_fault.as_secs_f64()
    );

    assert_eq!(lost, 0, "requests lost");
    assert_eq!(not_ended, 0, "requests without an end state");
    assert_eq!(double_debits, 0, "requests debited twice");
    assert_eq!(pending, 0, "debits left pending");
    assert_eq!(succeeded, rows.len(), "every request succeeded");
    assert_eq!(
        parked_ids,
        HashSet::from([Some(poison_id.clone())]),
        "the poison message, and only it, is parked"
    );
    assert!(
        poison_reason.contains("U+0000"),
        "parked with its reason: {poison_reason}"
    );
    assert_eq!(
        rows.len() as i64,
        total,
        "the poison message never became a request"
    );
    // From outside: the ledger's own records by request and viewer, and
    // the alerts delivered (a repeat only within a kill's confirm→commit window).
    world.fakes.assert_money(&charged);
    // A broker restart can lose the confirms of every consumer's in-flight alerts.
    let windows = kills + usize::from(broker_restarted) * CONSUMERS * PREFETCH;
    assert_alerts(&alerted, &charged, windows);
}
