//! Fleet-wide OpenAI rate limits and the consumer's health port, through the
//! real consumer against the real database, broker and fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::{Env, Shutdown};
use dynamo_testkit::{ImageBehavior, TestWorld, eventually, ghost_request};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn start(env: &Env, shutdown: &Shutdown) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(dynamo_consumer::run(
        ConsumerConfig::from_env(env).unwrap(),
        shutdown.clone(),
    ))
}

#[tokio::test]
async fn two_consumers_together_never_exceed_the_image_limit() {
    let world = TestWorld::start().await;
    let (results, _alerts) = world.broker.capture_outputs().await;
    let window = Duration::from_millis(1200);
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGES_PER_MINUTE", "2")
        .with("RATE_LIMIT_WINDOW", "1200ms")
        .with("MODERATION", "false")
        .with("POINTS_COST", "0")
        .with("VIEWER_MAX_IN_FLIGHT", "0");
    let shutdown = Shutdown::new();
    let consumers = [start(&env, &shutdown), start(&env, &shutdown)];
    for i in 0..6 {
        world
            .broker
            .publish_request(&ghost_request(&format!("seal {i}")), Some(Uuid::new_v4()))
            .await;
    }
    for _ in 0..6 {
        let result = world.broker.next(&results, WAIT).await.unwrap();
        assert_eq!(result.body["state"], "succeeded");
    }
    let times = world.fakes.with(|s| s.image_call_times.clone());
    assert_eq!(times.len(), 6);
    // Arrival times jitter by a few milliseconds around admission times.
    let strict = window - Duration::from_millis(60);
    for (i, t) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .filter(|u| u.duration_since(*t) < strict)
            .count();
        assert!(within <= 2, "{within} image calls within {strict:?}");
    }
    let span = times.last().unwrap().duration_since(times[0]);
    assert!(
        span >= window * 2 - Duration::from_millis(60),
        "6 calls at 2 per window take two windows: {span:?}"
    );
    shutdown.trigger();
    for consumer in consumers {
        consumer.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_429_with_retry_after_holds_the_next_call_back() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script.push_back(ImageBehavior::RateLimited {
            retry_after_ms: 800,
        })
    });
    let (results, _alerts) = world.broker.capture_outputs().await;
    let shutdown = Shutdown::new();
    let consumer = start(&world.consumer_env(), &shutdown);
    world
        .broker
        .publish_request(&ghost_request("a seal"), Some(Uuid::new_v4()))
        .await;
    assert_eq!(
        world.broker.next(&results, WAIT).await.unwrap().body["state"],
        "succeeded"
    );
    let times = world.fakes.with(|s| s.image_call_times.clone());
    assert_eq!(times.len(), 2);
    let gap = times[1].duration_since(times[0]);
    assert!(
        gap >= Duration::from_millis(750),
        "the retry waited as OpenAI asked: {gap:?}"
    );
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}

/// SPEC §3: the `x-ratelimit-remaining-*` headers slow the limiter before a
/// 429 comes. Once dynamo has made its first calls (it learns the budget from
/// answers), the account takes 2 calls per 4 s; dynamo's own limit would
/// admit 50 in that time: every request succeeds, and no call is spent on a 429.
#[tokio::test]
async fn the_remaining_budget_holds_calls_back_before_a_429() {
    let world = TestWorld::start().await;
    let (results, _alerts) = world.broker.capture_outputs().await;
    let env = world
        .consumer_env()
        .with("OPENAI_REQUESTS_PER_MINUTE", "50")
        .with("RATE_LIMIT_WINDOW", "4s")
        .with("MODERATION", "false")
        .with("CONSUMER_PREFETCH", "2")
        .with("POINTS_COST", "0")
        .with("VIEWER_MAX_IN_FLIGHT", "0");
    let shutdown = Shutdown::new();
    let consumer = start(&env, &shutdown);
    let publish = |subject: String| {
        let broker = &world.broker;
        async move {
            broker
                .publish_request(&ghost_request(&subject), Some(Uuid::new_v4()))
                .await;
        }
    };
    publish("the first seal".into()).await;
    let first = world.broker.next(&results, WAIT).await.unwrap();
    assert_eq!(first.body["state"], "succeeded");
    world.fakes.with(|s| {
        s.requests_per_minute = 2;
        s.requests_window = Duration::from_secs(4);
        s.openai_bucket = None;
    });
    let requests = 5;
    for i in 0..requests {
        publish(format!("seal {i}")).await;
    }
    for _ in 0..requests {
        let result = world.broker.next(&results, WAIT).await.unwrap();
        assert_eq!(result.body["state"], "succeeded");
    }
    let (refused, images) = world.fakes.with(|s| (s.requests_429s, s.image_calls.len()));
    assert_eq!(refused, 0, "calls answered 429");
    assert_eq!(images, requests + 1, "one image call per request");
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_health_port_reports_readiness_and_metrics() {
    let world = TestWorld::start().await;
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = health.local_addr().unwrap().port();
    let env = world.consumer_env();
    let (results, _alerts) = world.broker.capture_outputs().await;
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(dynamo_consumer::run_with_health(
        ConsumerConfig::from_env(&env).unwrap(),
        Some(health),
        shutdown.clone(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready: serde_json::Value = eventually("the health port", WAIT, || {
        let request = http.get(format!("{base}/readyz")).send();
        async move { request.await.ok()?.json().await.ok() }
    })
    .await;
    assert_eq!(
        ready,
        json!({"database": true, "broker": true, "held": [], "consuming": true})
    );

    world
        .broker
        .publish_request(&ghost_request("a seal"), Some(Uuid::new_v4()))
        .await;
    world.broker.publish_request(b"not json", None).await;
    assert_eq!(
        world.broker.next(&results, WAIT).await.unwrap().body["state"],
        "succeeded"
    );
    let metrics = eventually(
        "the dead letter and the request to be counted",
        WAIT,
        || {
            let request = http.get(format!("{base}/metrics")).send();
            async move {
                let text = request.await.ok()?.text().await.ok()?;
                // The result is published before the request is counted as finished.
                let counted = text.contains("dynamo_dead_lettered_total 1")
                    && text.contains("dynamo_requests_finished_total{");
                counted.then_some(text)
            }
        },
    )
    .await;
    for expected in [
        "dynamo_requests_finished_total{state=\"succeeded\",style=\"ghost\"} 1",
        "dynamo_openai_calls_total{endpoint=\"images\",outcome=\"ok\"} 1",
        "dynamo_step_total{step=\"image\"} 1",
        "dynamo_queue_depth 0",
        // gpt-4.1-mini, second in the default chat chain, shuts down on 2027-01-14.
        "dynamo_model_shutdown_days{model=\"gpt-4.1-mini\",variable=\"OPENAI_CHAT_MODEL\"}",
    ] {
        assert!(metrics.contains(expected), "missing {expected}:\n{metrics}");
    }
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_long_retry_wait_frees_the_slot_and_survives_a_restart() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_script.push_back(ImageBehavior::ServerError));
    let (results, _alerts) = world.broker.capture_outputs().await;
    let env = world
        .consumer_env()
        .with("CONSUMER_PREFETCH", "1")
        .with("RETRY_MIN_DELAY", "3s")
        .with("RETRY_MAX_DELAY", "3s")
        .with("RETRY_INLINE_MAX", "100ms")
        .with("MODERATION", "false");
    let shutdown = Shutdown::new();
    let consumer = start(&env, &shutdown);
    let waiting = Uuid::new_v4();
    world
        .broker
        .publish_request(&ghost_request("a patient seal"), Some(waiting))
        .await;
    world
        .broker
        .publish_request(&ghost_request("a quick walrus"), Some(Uuid::new_v4()))
        .await;

    // With one slot, the second request can only finish first if the first
    // let go of its slot while waiting for its retry.
    let first = world.broker.next(&results, WAIT).await.unwrap();
    assert_eq!(first.body["description"], "a quick walrus");
    assert_eq!(first.body["state"], "succeeded");

    // Stop before the retry is due: its schedule is in the database, not in
    // the stopped process or the queue.
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
    let due: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT next_attempt_at FROM dynamo.image_request WHERE id = $1")
            .bind(waiting)
            .fetch_one(world.database.pool())
            .await
            .unwrap();
    assert!(due.is_some(), "the retry is scheduled");
    assert_eq!(
        world
            .broker
            .depth(&world.broker.topology.requests_queue)
            .await,
        0,
        "its message is done"
    );

    let shutdown = Shutdown::new();
    let consumer = start(&env, &shutdown);
    let second = world.broker.next(&results, WAIT).await.unwrap();
    assert_eq!(second.body["request_id"], waiting.to_string());
    assert_eq!(second.body["state"], "succeeded");
    assert_eq!(
        world.fakes.with(|s| s.image_calls.len()),
        3,
        "failed once, then once per request"
    );
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn one_viewers_burst_does_not_starve_the_next_viewer() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_delay = Some(Duration::from_millis(300)));
    let (results, _alerts) = world.broker.capture_outputs().await;
    let env = world
        .consumer_env()
        .with("CONSUMER_PREFETCH", "4")
        .with("VIEWER_MAX_IN_FLIGHT", "1")
        .with("POINTS_COST", "0")
        .with("MODERATION", "false");
    for i in 0..8 {
        world
            .broker
            .publish_request(&ghost_request(&format!("burst {i}")), Some(Uuid::new_v4()))
            .await;
    }
    let other = json!({"type":"image",
        "viewer":{"twitch_user_id":"2","twitch_display_name":"next in line"},
        "payload":{"style":"ghost","inputs":{"subject":"my turn"}}});
    world
        .broker
        .publish_request(&serde_json::to_vec(&other).unwrap(), Some(Uuid::new_v4()))
        .await;
    let shutdown = Shutdown::new();
    let consumer = start(&env, &shutdown);
    let mut order = Vec::new();
    for _ in 0..9 {
        let result = world
            .broker
            .next(&results, WAIT)
            .await
            .expect("every request finishes");
        assert_eq!(result.body["state"], "succeeded");
        order.push(
            result.body["viewer"]["twitch_user_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let position = order.iter().position(|viewer| viewer == "2").unwrap();
    assert!(
        position <= 1,
        "the second viewer waited behind the burst: {order:?}"
    );
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}

/// A request waiting for the rate limiter is let go like a scheduled retry:
/// with one consumer slot, a request that needs no image slot is served while
/// another waits a whole window for its turn.
#[tokio::test]
async fn a_request_waiting_for_the_rate_limit_does_not_hold_a_consumer_slot() {
    let world = TestWorld::start().await;
    let (results, _alerts) = world.broker.capture_outputs().await;
    world.fakes.with(|s| {
        s.balances.insert("1".into(), 10_000);
        s.balances.insert("broke".into(), 0);
    });
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGES_PER_MINUTE", "1")
        .with("RATE_LIMIT_WINDOW", "8s")
        .with("MODERATION", "false")
        .with("CONSUMER_PREFETCH", "1")
        .with("VIEWER_MAX_IN_FLIGHT", "0");
    let shutdown = Shutdown::new();
    let consumer = start(&env, &shutdown);
    let first = Uuid::new_v4();
    let waiting = Uuid::new_v4();
    world
        .broker
        .publish_request(&ghost_request("the first seal"), Some(first))
        .await;
    world
        .broker
        .publish_request(&ghost_request("the waiting seal"), Some(waiting))
        .await;
    // Fails at its debit: it needs the consumer, never the image limiter.
    let broke = Uuid::new_v4();
    let broke_body = json!({"type": "image",
        "viewer": {"twitch_user_id": "broke", "twitch_display_name": "Broke"},
        "payload": {"style": "ghost", "inputs": {"subject": "a poor seal"}}});
    world
        .broker
        .publish_request(&serde_json::to_vec(&broke_body).unwrap(), Some(broke))
        .await;

    let mut order = Vec::new();
    for _ in 0..3 {
        let result = world.broker.next(&results, WAIT).await.unwrap();
        order.push((
            result.body["request_id"].as_str().unwrap().to_owned(),
            result.body["state"].clone(),
        ));
    }
    let position = |id: Uuid| {
        order
            .iter()
            .position(|(got, _)| *got == id.to_string())
            .unwrap()
    };
    assert!(
        position(broke) < position(waiting),
        "the slot was free while a request waited for the limiter: {order:?}"
    );
    assert_eq!(order[position(waiting)].1, "succeeded");
    assert_eq!(order[position(first)].1, "succeeded");
    assert_eq!(world.fakes.with(|s| s.image_calls.len()), 2);
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}

/// The pending-debit alert's gauge: a request whose points are debited but
/// not yet settled (its image is slow) shows up with its age, fleet-wide from
/// PostgreSQL; an old one past the alert's 10 minutes; none once settled.
#[tokio::test]
async fn the_oldest_pending_debit_is_reported_with_its_age() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_delay = Some(Duration::from_secs(6)));
    // Handed over bound: no other process can take the port in between.
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = format!("http://{}/metrics", health.local_addr().unwrap());
    let env = world.consumer_env().with("MODERATION", "false");
    let (results, _alerts) = world.broker.capture_outputs().await;
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(dynamo_consumer::run_with_health(
        ConsumerConfig::from_env(&env).unwrap(),
        Some(health),
        shutdown.clone(),
    ));
    let http = reqwest::Client::new();
    let age = || {
        let request = http.get(&metrics).send();
        async move {
            let text = request.await.ok()?.text().await.ok()?;
            text.lines()
                .find_map(|line| line.strip_prefix("dynamo_oldest_pending_debit_age_seconds "))?
                .parse::<f64>()
                .ok()
        }
    };
    assert_eq!(
        eventually("the health port", WAIT, age).await,
        0.0,
        "no debit pending yet"
    );

    let id = Uuid::new_v4();
    let published = std::time::Instant::now();
    world
        .broker
        .publish_request(&ghost_request("a slow seal"), Some(id))
        .await;
    let pool = world.database.pool().clone();
    eventually("the request to be debited", WAIT, || {
        let pool = pool.clone();
        async move {
            let debited: Option<bool> = sqlx::query_scalar(
                "SELECT debited_at IS NOT NULL AND settled_at IS NULL FROM dynamo.image_request WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .ok()?;
            debited.filter(|&d| d)
        }
    })
    .await;
    let pending = eventually("a pending debit to be reported", WAIT, || async {
        age().await.filter(|&age| age > 0.0)
    })
    .await;
    // Debited after it was published: no older than that (an ordering, not a
    // claim about how fast).
    let since_published = published.elapsed().as_secs_f64();
    assert!(
        pending <= since_published,
        "the debit is {pending} s old, published {since_published} s ago"
    );

    // As if it had been pending for 11 minutes: the alert's threshold is 600 s.
    sqlx::query(
        "UPDATE dynamo.image_request SET debited_at = debited_at - interval '11 minutes' WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let old = age().await.unwrap();
    assert!((660.0..670.0).contains(&old), "reported {old}");

    assert_eq!(
        world.broker.next(&results, WAIT).await.unwrap().body["state"],
        "succeeded"
    );
    assert_eq!(
        eventually("the settled debit to leave the gauge", WAIT, || async {
            age().await.filter(|&age| age == 0.0)
        })
        .await,
        0.0
    );
    shutdown.trigger();
    consumer.await.unwrap().unwrap();
}
