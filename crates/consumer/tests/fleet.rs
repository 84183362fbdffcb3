//! A fleet on this machine (issue 18): three `dynamo-consumer` processes and
//! two `dynamo-server` processes against one broker and one database. One
//! consumer and one server are killed with SIGKILL mid-run. Every request
//! still ends exactly once, is debited once, the fleet-wide image limit
//! holds summed over the consumers, and the surviving server still enqueues.
//!
//! The servers are this test binary run again as a child (`server_process`
//! below), since cargo builds only this crate's binary for its tests. Alone in
//! its own test binary: it looks at when image calls arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use chrono::{DateTime, Utc};
use dynamo_runtime::{Env, Shutdown};
use dynamo_testkit::{
    Expected, Running, TestWorld, assert_alerts, command, drain_by_message_id, eventually,
};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use uuid::Uuid;

const CONSUMER: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
const WAIT: Duration = Duration::from_secs(180);
/// Published to the broker directly, as the Twitch intake does.
const FROM_THE_BROKER: usize = 40;
/// Enqueued by an admin through each server.
const THROUGH_EACH_SERVER: usize = 10;
const REQUESTS: usize = FROM_THE_BROKER + 2 * THROUGH_EACH_SERVER;
const IMAGES_PER_WINDOW: usize = 20;
const WINDOW: Duration = Duration::from_secs(10);
const PREFETCH: usize = 4;

/// Set in a server child's environment: it is one.
const SERVER_CHILD: &str = "DYNAMO_FLEET_SERVER";
/// What a server child prints first, followed by the address it listens on.
const LISTENING: &str = "listening on ";

/// Not a test of its own: the body of a server child process. Without
/// [`SERVER_CHILD`] (a plain `cargo test -- --ignored`) it does nothing. It
/// binds a port of its own choosing and says which: no port is picked free
/// and dropped for another process to take in between.
#[test]
#[ignore = "run by the fleet test as a dynamo-server process"]
fn server_process() {
    if std::env::var(SERVER_CHILD).is_err() {
        return;
    }
    let env = Env::from_process().unwrap();
    let config = dynamo_server::ServerConfig::from_env(&env).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{LISTENING}{}", listener.local_addr().unwrap());
            dynamo_server::run(config, listener, Shutdown::on_signals()).await
        })
        .unwrap();
}

struct Server {
    process: Running,
    base: String,
}

fn spawn_server(env: &Env) -> Server {
    use std::io::BufRead;
    let me = std::env::current_exe().unwrap();
    let env = env.clone().with(SERVER_CHILD, "1");
    let mut process = Running::spawn(
        command(me.to_str().unwrap(), &env)
            .args(["server_process", "--exact", "--ignored", "--nocapture"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    // The test harness prints its own lines first; the address is on ours.
    let mut lines = std::io::BufReader::new(process.take_stdout().unwrap()).lines();
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix(LISTENING).map(str::to_owned))
        .expect("the server child says where it listens");
    // Keep reading (and dropping) its output so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server {
        process,
        base: format!("http://{address}"),
    }
}

fn expected_success(request_id: Uuid, i: usize) -> Expected {
    Expected {
        request_id,
        viewer: format!("viewer{i}"),
        succeeded: true,
    }
}

fn request_body(i: usize) -> Value {
    json!({"viewer": {"twitch_user_id": format!("viewer{i}"), "twitch_display_name": format!("Viewer{i}")},
           "style": "ghost", "inputs": {"subject": format!("fleet seal {i}")}})
}

/// Enqueues through `server`; `None` when it does not answer 202.
async fn enqueue(http: &reqwest::Client, server: &str, admin: &str, i: usize) -> Option<Uuid> {
    let response = http
        .post(format!("{server}/requests"))
        .bearer_auth(admin)
        .json(&request_body(i))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        return None;
    }
    let answer: Value = response.json().await.ok()?;
    answer["id"].as_str()?.parse().ok()
}

/// id, state, ledger flow id, stored at, prompt
type Row = (Uuid, String, Option<Uuid>, Option<DateTime<Utc>>, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_consumers_and_two_servers_survive_losing_one_of_each() {
    let started = Instant::now();
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_delay = Some(Duration::from_millis(150)));
    let alerts = world
        .broker
        .capture(&world.broker.topology.alerts_exchange)
        .await;
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("CONSUMER_PREFETCH", PREFETCH.to_string())
        .with("VIEWER_MAX_IN_FLIGHT", "0")
        .with("OPENAI_IMAGES_PER_MINUTE", IMAGES_PER_WINDOW.to_string())
        .with("RATE_LIMIT_WINDOW", format!("{}s", WINDOW.as_secs()))
        // The killed consumer's requests are taken over this soon.
        .with("LEASE_TTL", "3s");
    let mut consumers: Vec<Running> = (0..3)
        .map(|_| {
            Running::spawn(
                command(CONSUMER, &env)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
        })
        .collect();
    let mut servers = [spawn_server(&env), spawn_server(&env)];

    let http = reqwest::Client::new();
    let admin = world.fakes.jwt("a", json!({"gvcr_service": "tests"}));
    for server in &servers {
        let base = server.base.clone();
        eventually("the server to answer", WAIT, || {
            let request = http.get(format!("{base}/healthz")).send();
            async move { request.await.ok()?.status().is_success().then_some(()) }
        })
        .await;
    }

    let mut ids = Vec::new();
    for i in 0..FROM_THE_BROKER {
        let id = Uuid::new_v4();
        let body = request_body(i);
        let message = json!({"type": "image", "viewer": body["viewer"],
                             "payload": {"style": "ghost", "inputs": body["inputs"]}});
        world
            .broker
            .publish_request(&serde_json::to_vec(&message).unwrap(), Some(id))
            .await;
        ids.push(expected_success(id, i));
    }
    // Half of each server's share before the kills, half after.
    let mut next = FROM_THE_BROKER;
    for server in &servers {
        for _ in 0..THROUGH_EACH_SERVER / 2 {
            let base = server.base.clone();
            let id = eventually("the server to enqueue", WAIT, || {
                enqueue(&http, &base, &admin, next)
            })
            .await;
            ids.push(expected_success(id, next));
            next += 1;
        }
    }

    // Mid-run: a third of the images bought, the rest still to do.
    eventually("a third of the images", WAIT, || {
        let calls = world.fakes.with(|s| s.image_calls.len());
        async move { (calls >= REQUESTS / 3).then_some(()) }
    })
    .await;
    // The consumer dies holding work (a request's lease), not idle.
    consumers[0]
        .kill_9_while_working(&world.database, WAIT)
        .await;
    servers[0].process.kill_9();
    let killed_at = started.elapsed();

    // The dead server refuses; the surviving one answers every enqueue.
    assert!(
        enqueue(&http, &servers[0].base, &admin, next)
            .await
            .is_none(),
        "the killed server is gone"
    );
    for _ in 0..THROUGH_EACH_SERVER {
        let id = enqueue(&http, &servers[1].base, &admin, next)
            .await
            .expect("the surviving server still enqueues");
        ids.push(expected_success(id, next));
        next += 1;
    }
    assert_eq!(ids.len(), REQUESTS);

    let pool = world.database.pool().clone();
    eventually("every request to end, settled and reported", WAIT, || {
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
            (all == REQUESTS as i64 && open == 0).then_some(())
        }
    })
    .await;
    let finished_in = started.elapsed();
    for consumer in &mut consumers[1..] {
        assert!(consumer.is_running(), "the other consumers are still up");
    }
    assert!(servers[1].process.is_running(), "the other server is up");
    drop(consumers);
    drop(servers);

    // Every request, once, and succeeded.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, state, ledger_flow_id, stored_at, prompt FROM dynamo.image_request",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut stored: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    stored.sort();
    let mut sent: Vec<Uuid> = ids.iter().map(|e| e.request_id).collect();
    sent.sort();
    assert_eq!(stored, sent, "each request became exactly one row");
    assert!(
        rows.iter().all(|r| r.1 == "succeeded"),
        "every request succeeded: {rows:?}"
    );

    // From the ledger's own records: one accepted debit per request, in its
    // viewer's name, none pending.
    let accepted = world.fakes.assert_money(&ids).accepted;
    // From what the alerts service got: one per request; a repeat only for
    // the killed consumer's requests in the confirm→commit window.
    let alerted = drain_by_message_id(&world.broker, &alerts).await;
    let repeated_alerts = assert_alerts(&alerted, &ids, PREFETCH);

    // Images: never bought again once stored; a purchase the killed consumer
    // had in flight (bought, not yet kept) is the only repeat allowed.
    let calls = world.fakes.with(|s| s.image_call_log.clone());
    for (_, _, _, stored_at, prompt) in &rows {
        let stored_at = stored_at.unwrap();
        let late = calls
            .iter()
            .filter(|(p, at)| p == prompt && DateTime::<Utc>::from(*at) > stored_at)
            .count();
        assert_eq!(late, 0, "{prompt} was generated again after it was stored");
    }
    let repeated_images = calls.len() - REQUESTS;
    assert!(
        repeated_images <= PREFETCH,
        "{repeated_images} images bought twice"
    );

    // The image limit held over the whole fleet: no window saw more calls.
    let times = world.fakes.with(|s| s.image_call_times.clone());
    let strict = WINDOW - Duration::from_millis(60);
    let busiest = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            times[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < strict)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= IMAGES_PER_WINDOW,
        "{busiest} image calls within one {WINDOW:?} window"
    );
    println!(
        "fleet: 3 consumers + 2 servers, {REQUESTS} requests ({FROM_THE_BROKER} from the broker, \
         {} through the servers), kill -9 of one consumer and one server at {killed_at:.1?}; \
         all {REQUESTS} succeeded in {finished_in:.1?}, {accepted} debits accepted, \
         {repeated_images} images and {repeated_alerts} alerts repeated, busiest {WINDOW:?} window \
         {busiest} images (limit {IMAGES_PER_WINDOW})",
        REQUESTS - FROM_THE_BROKER,
    );
}
