//! Overlay tokens, the queue's controls and the server's exposure, over a
//! real socket with the fake auth service (which counts its `/access` calls).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::Server;
use dynamo_testkit::TestWorld;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn delete(server: &Server, path: &str, token: &str) -> StatusCode {
    server
        .http
        .delete(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn next_with(server: &Server, token: &str) -> StatusCode {
    server
        .http
        .post(format!("{}/overlay/next?token={token}", server.base))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn overlay_tokens_are_created_and_revoked_by_admins_and_open_only_the_overlay() {
    let server = Server::start().await;
    let admin = server.admin();
    let viewer = server.viewer("5");

    let (status, body, _) = server
        .post("/overlay/tokens", &viewer, &json!({"label": "mine"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body, _) = server
        .post(
            "/overlay/tokens",
            &admin,
            &json!({"label": "x".repeat(101)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "label");

    let (status, created, _) = server
        .post("/overlay/tokens", &admin, &json!({"label": "main OBS"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("ovl_") && token.len() == 4 + 64,
        "{token}"
    );
    assert_eq!(created["overlay_path"], format!("/overlay?token={token}"));

    // Listed without its secret; stored only as a hash.
    let (status, list) = server.get("/overlay/tokens", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["label"], "main OBS");
    assert!(!list.to_string().contains(&token), "{list}");
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT token_sha256 FROM dynamo.overlay_token WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(server.world.database.pool())
            .await
            .unwrap();
    assert_ne!(stored, token.as_bytes(), "the token is not stored as it is");

    // The overlay's endpoints take it; nothing else does.
    assert_eq!(next_with(&server, &token).await, StatusCode::NO_CONTENT);
    for path in [
        "/requests",
        "/overlay/queue",
        "/overlay/tokens",
        "/me",
        "/stats",
    ] {
        let (status, body) = server.get(path, Some(&token)).await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "{path} with an overlay token as bearer: {status} {body}"
        );
        let (status, body) = server.get(&format!("{path}?token={token}"), None).await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "{path}?token=: {status} {body}"
        );
    }
    let (status, body, _) = server
        .post("/overlay/queue/pause", &token, &json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Revoked: the overlay's endpoints refuse it too.
    assert_eq!(
        delete(&server, &format!("/overlay/tokens/{id}"), &viewer).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        delete(&server, &format!("/overlay/tokens/{id}"), &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(next_with(&server, &token).await, StatusCode::UNAUTHORIZED);
    let (_, list) = server.get("/overlay/tokens", Some(&admin)).await;
    assert!(list[0]["revoked_at"].is_string(), "{list}");
    assert_eq!(
        delete(
            &server,
            &format!("/overlay/tokens/{}", uuid::Uuid::new_v4()),
            &admin
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        next_with(&server, "ovl_guessed").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn queue_controls_are_admin_only_and_answer_clearly() {
    let server = Server::start().await;
    let admin = server.admin();
    let viewer = server.viewer("5");
    for action in ["pause", "resume", "skip", "clear"] {
        let (status, body, _) = server
            .post(&format!("/overlay/queue/{action}"), &viewer, &json!({}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
    }
    let (status, queue, _) = server
        .post("/overlay/queue/pause", &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["paused"], true);
    let (_, queue) = server.get("/overlay/queue", Some(&admin)).await;
    assert_eq!(
        queue,
        json!({"paused": true, "on_air": null, "waiting": [], "recent": []})
    );
    let (_, queue, _) = server
        .post("/overlay/queue/resume", &admin, &json!({}))
        .await;
    assert_eq!(queue["paused"], false);
    let (status, body, _) = server.post("/overlay/queue/skip", &admin, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");
    let (status, body, _) = server
        .post("/overlay/queue/clear", &admin, &json!({}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"cleared": 0})));
    let (status, body, _) = server
        .post("/overlay/alerts/12345/replay", &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn failed_authentications_from_one_address_are_answered_429() {
    let world = TestWorld::start().await;
    let server = Server::start_in(world, |env| {
        env.with("AUTH_FAILURE_LIMIT", "5")
            .with("AUTH_FAILURE_WINDOW", "60s")
    })
    .await;
    for attempt in 0..5 {
        let (status, _) = server
            .get("/requests", Some(&format!("not-a-token-{attempt}")))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let calls_before = server.world.fakes.with(|s| s.access_calls);
    let response = server
        .http
        .get(format!("{}/requests", server.base))
        .bearer_auth("not-a-token-6")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests", "{body}");
    // Limited before any token is looked at: even a good one, and no call
    // reaches the auth service.
    let (status, _) = server.get("/requests", Some(&server.admin())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(server.world.fakes.with(|s| s.access_calls), calls_before);
    // Overlay tokens count too: guessing them is limited the same way.
    let response = server
        .http
        .post(format!("{}/overlay/next?token=ovl_guess", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_rejected_token_costs_one_auth_call_however_often_it_is_sent() {
    let world = TestWorld::start().await;
    // Limiting off, so every request reaches the authenticator.
    let server = Server::start_in(world, |env| env.with("AUTH_FAILURE_LIMIT", "0")).await;
    let calls = || server.world.fakes.with(|s| s.access_calls);
    assert_eq!(calls(), 0);
    for _ in 0..20 {
        let (status, _) = server.get("/requests", Some("a-rejected-token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(calls(), 1, "sequential requests with one bad token");
    // At the same time, too: the first call's answer serves the others.
    let concurrent = (0..20).map(|_| server.get("/requests", Some("another-rejected-token")));
    for (status, _) in futures::future::join_all(concurrent).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(calls(), 2, "concurrent requests with one bad token");
    // Accepted tokens are remembered as before.
    for _ in 0..5 {
        let (status, _) = server.get("/me", Some("twitch-viewer-77")).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(calls(), 3);
}
