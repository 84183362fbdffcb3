//! SPEC §6.11: the server keeps serving status while RabbitMQ or PostgreSQL
//! is away, answers 503 with a clear reason for what needs them, and
//! recovers by itself when they are back — no restart.
//!
//! Each test puts a TCP proxy between the server and the real service and
//! cuts it: the machine's RabbitMQ and PostgreSQL keep running for everyone else.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, WAIT};
use dynamo_testkit::{FlakyProxy, TestWorld, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// How soon a service that is back must be used again: the broker crate's
/// backoff is capped at 5 s plus jitter.
const HEALS_WITHIN: Duration = Duration::from_secs(20);

/// `timeoutSeconds` of the readiness probe in deploy/kubernetes/base/server.yaml
/// (crates/runtime/tests/deploy_files.rs checks they agree). The pool gives
/// up on the database after `dynamo_store::SERVE_ACQUIRE_TIMEOUT` (1 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn ghost_body() -> Value {
    json!({"viewer": {"twitch_user_id": common::VIEWER, "twitch_display_name": "wasabimilkshake"},
           "style": "ghost", "inputs": {"subject": "a seal"}})
}

fn port_of(proxy: &FlakyProxy) -> String {
    proxy.url.rsplit(':').next().unwrap_or_default().to_owned()
}

/// A server whose RabbitMQ connection goes through a proxy.
async fn server_behind_broker_proxy(down_at_start: bool) -> (Server, FlakyProxy) {
    let world = TestWorld::start().await;
    let settings = &world.broker.settings;
    let proxy = FlakyProxy::start(format!("{}:{}", settings.host, settings.port), 0).await;
    proxy.set_down(down_at_start);
    let port = port_of(&proxy);
    let server = Server::start_in(world, |env| {
        env.with("RMQ_HOST", "127.0.0.1").with("RMQ_PORT", port)
    })
    .await;
    (server, proxy)
}

/// While the broker is away: status is served, enqueueing and retrying
/// answer a JSON 503 naming the broker, and `/readyz` says why while staying
/// ready (200): Kubernetes keeps the pod in the Service, so the page and the
/// overlay stay up (issue 25 item 2).
async fn assert_broker_away(server: &Server) {
    let admin = server.admin();
    let (status, body) = server.get("/requests", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "status is served: {body}");

    let (status, body) = eventually("POST /requests to answer 503", WAIT, || async {
        let (status, body, _) = server.post("/requests", &admin, &ghost_body()).await;
        (status != StatusCode::ACCEPTED).then_some((status, body))
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("message broker"),
        "names the broker: {body}"
    );
    assert!(
        !detail.contains("127.0.0.1") && !detail.contains("IO error"),
        "tells no internals: {body}"
    );

    let (status, body) = server.get("/readyz", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["broker"], false, "{body}");
    assert_eq!(body["database"], true, "{body}");
    let why = body["unavailable"].to_string();
    assert!(why.contains("message broker"), "says why: {body}");
    let (status, body) = server.get("/livez", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Once the broker is back: enqueueing works again within seconds and the
/// message really is in the request queue.
async fn assert_broker_back(server: &Server) {
    let admin = server.admin();
    let id = eventually(
        "POST /requests to answer 202 again",
        HEALS_WITHIN,
        || async {
            let (status, body, _) = server.post("/requests", &admin, &ghost_body()).await;
            (status == StatusCode::ACCEPTED).then(|| body["id"].as_str().map(str::to_owned))?
        },
    )
    .await;
    let broker = &server.world.broker;
    let arrived = broker
        .next(&broker.topology.requests_queue, WAIT)
        .await
        .expect("the enqueued request reaches the request queue");
    assert_eq!(arrived.message_id.as_deref(), Some(id.as_str()));
    assert_eq!(arrived.body["payload"]["inputs"]["subject"], "a seal");

    let (status, body) = server.get("/readyz", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["broker"], true, "{body}");
    assert_eq!(body["unavailable"], json!([]), "{body}");
}

#[tokio::test]
async fn a_server_started_while_the_broker_is_away_serves_status_then_enqueues_once_it_is_back() {
    let (server, proxy) = server_behind_broker_proxy(true).await;
    assert_broker_away(&server).await;
    proxy.set_down(false);
    assert_broker_back(&server).await;
}

#[tokio::test]
async fn a_broker_lost_after_start_answers_503_and_heals_without_a_restart() {
    let (server, proxy) = server_behind_broker_proxy(false).await;
    assert_broker_back(&server).await;
    proxy.set_down(true);
    assert_broker_away(&server).await;
    proxy.set_down(false);
    assert_broker_back(&server).await;
}

#[tokio::test]
async fn a_database_lost_after_start_answers_503_and_heals_without_a_restart() {
    let world = TestWorld::start().await;
    let settings = &world.database.settings;
    let proxy = FlakyProxy::start(format!("{}:{}", settings.host, settings.port), 0).await;
    let port = port_of(&proxy);
    let server = Server::start_in(world, |env| {
        env.with("PGHOST", "127.0.0.1").with("PGPORT", port)
    })
    .await;
    let admin = server.admin();
    // The broker connects in the background; be fully ready before the cut.
    ready(&server).await;

    proxy.set_down(true);
    let (status, body) = eventually("GET /requests to answer 503", WAIT, || async {
        let (status, body) = server.get("/requests", Some(&admin)).await;
        (status != StatusCode::OK).then_some((status, body))
    })
    .await;
    assert!(proxy.dropped() > 0, "the server really met the outage");
    // As a readiness probe asks: an answer within its timeout, not a hang
    // until the pool's acquire gives up (10 s before the fix).
    for path in ["/readyz", "/requests"] {
        let answer = server
            .http
            .get(format!("{}{path}", server.base))
            .bearer_auth(&admin)
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} gave no answer within the probe's timeout: {e}"));
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body.to_string().contains("database"), "{path}: {body}");
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("database"),
        "names the database: {body}"
    );
    let (status, body) = server.get("/readyz", Some(&admin)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], false, "{body}");
    assert!(
        body["unavailable"].to_string().contains("database"),
        "{body}"
    );

    proxy.set_down(false);
    eventually(
        "GET /requests to answer 200 again",
        HEALS_WITHIN,
        || async {
            let (status, _) = server.get("/requests", Some(&admin)).await;
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;
    ready(&server).await;
}

async fn ready(server: &Server) {
    let admin = server.admin();
    eventually("/readyz to answer 200", HEALS_WITHIN, || async {
        let (status, _) = server.get("/readyz", Some(&admin)).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_server_started_while_the_database_is_away_serves_health_then_everything_once_it_is_back()
{
    let world = TestWorld::start().await;
    let settings = &world.database.settings;
    let proxy = FlakyProxy::start(format!("{}:{}", settings.host, settings.port), 0).await;
    proxy.set_down(true);
    let port = port_of(&proxy);
    let server = Server::start_in(world, |env| {
        env.with("PGHOST", "127.0.0.1").with("PGPORT", port)
    })
    .await;
    let admin = server.admin();

    let (status, body) = server.get("/readyz", Some(&admin)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], false, "{body}");
    let (status, body) = server.get("/requests", Some(&admin)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("database"), "names the database: {body}");
    assert!(!detail.contains("schema"), "tells no internals: {body}");
    assert!(proxy.dropped() > 0, "the server really tried the database");

    proxy.set_down(false);
    ready(&server).await;
    let (status, body) = server.get("/requests", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // And what needs both services works.
    let (status, body, _) = server.post("/requests", &admin, &ghost_body()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// The usual order of a fresh deploy: the server starts before any consumer
/// has declared the request queue. `/stats` says so, polled as a dashboard
/// would, and enqueueing says so too, with the broker connection kept
/// (issue 25 item 6; `crates/broker/tests/first_start.rs` counts the
/// connections).
#[tokio::test]
async fn a_server_started_before_any_consumer_says_so_and_keeps_its_broker() {
    let world = TestWorld::start().await;
    // No consumer yet: the world's request queue is not there.
    world
        .broker
        .channel
        .queue_delete(
            world.broker.topology.requests_queue.as_str().into(),
            Default::default(),
        )
        .await
        .unwrap();
    let server = Server::start_in(world, |env| env).await;
    let admin = server.admin();
    eventually("the broker to connect", WAIT, || async {
        let (_, body) = server.get("/readyz", Some(&admin)).await;
        (body["broker"] == true).then_some(())
    })
    .await;
    for poll in 0..20 {
        let (status, stats) = server.get("/stats", Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "poll {poll}: {stats}");
        assert_eq!(stats["queue"], "no_consumer_yet", "poll {poll}: {stats}");
        assert_eq!(stats["queue_depth"], Value::Null, "poll {poll}: {stats}");
    }
    let (status, body, _) = server.post("/requests", &admin, &ghost_body()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no consumer has bound a queue"),
        "{body}"
    );
    let (_, ready) = server.get("/readyz", Some(&admin)).await;
    assert_eq!(ready["broker"], true, "{ready}");
}
