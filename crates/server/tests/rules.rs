//! `/rules` over a real socket against the real database (issue 29): who may
//! read and change the content rules, what a change needs (a precise 400
//! naming the field), blocklist entries added and removed in any spelling
//! the matcher treats as one, and an admin's request that bypasses the rules
//! and says so in its detail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.send_as_admin(method, path, body.as_ref()).await
}

#[tokio::test]
async fn only_an_admin_reads_or_changes_the_rules() {
    let server = Server::start().await;
    let viewer = server.viewer(VIEWER);
    let (status, _) = server.get("/rules", Some(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = server
        .post("/rules/blocklist", &viewer, &json!({"phrase": "seal"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, rules) = server.get("/rules", Some(&server.admin())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rules["cooldown_seconds"], 0);
    assert_eq!(rules["max_per_broadcast"], 0);
    assert_eq!(rules["broadcast_window_minutes"], 720);
    assert_eq!(rules["blocklist"], json!([]));
}

#[tokio::test]
async fn bad_numbers_and_phrases_are_refused_naming_the_field() {
    let server = Server::start().await;
    let put = |body: Value| send(&server, reqwest::Method::PUT, "/rules", Some(body));
    for (body, field) in [
        (
            json!({"cooldown_seconds": 86401, "max_per_broadcast": 0, "broadcast_window_minutes": 60}),
            "cooldown_seconds",
        ),
        (
            json!({"cooldown_seconds": 0, "max_per_broadcast": -1, "broadcast_window_minutes": 60}),
            "max_per_broadcast",
        ),
        (
            json!({"cooldown_seconds": 0, "max_per_broadcast": 0, "broadcast_window_minutes": 0}),
            "broadcast_window_minutes",
        ),
    ] {
        let (status, answer) = put(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, answer) = put(json!({"cooldown_seconds": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    for phrase in ["  !!! ", "two\nlines"] {
        let (status, answer, _) = server
            .post(
                "/rules/blocklist",
                &server.admin(),
                &json!({"phrase": phrase}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["field"], "phrase", "{answer}");
    }
    // Nothing changed.
    let (_, rules) = server.get("/rules", Some(&server.admin())).await;
    assert_eq!(rules["cooldown_seconds"], 0);
    assert_eq!(rules["blocklist"], json!([]));

    let (status, rules) = put(
        json!({"cooldown_seconds": 30, "max_per_broadcast": 3, "broadcast_window_minutes": 240}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    assert_eq!(
        (
            rules["cooldown_seconds"].clone(),
            rules["max_per_broadcast"].clone(),
            rules["broadcast_window_minutes"].clone()
        ),
        (json!(30), json!(3), json!(240))
    );
}

#[tokio::test]
async fn one_phrase_in_two_spellings_is_one_entry() {
    let server = Server::start().await;
    let admin = server.admin();
    let (status, rules, _) = server
        .post(
            "/rules/blocklist",
            &admin,
            &json!({"phrase": " Héllo Wörld "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rules}");
    assert_eq!(rules["blocklist"], json!(["Héllo Wörld"]));
    let (status, rules, _) = server
        .post(
            "/rules/blocklist",
            &admin,
            &json!({"phrase": "h3llo world"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "blocked already: {rules}");
    assert_eq!(rules["blocklist"], json!(["Héllo Wörld"]));

    let (status, rules) = send(
        &server,
        reqwest::Method::DELETE,
        "/rules/blocklist/HELLO%20w0rld",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    assert_eq!(rules["blocklist"], json!([]));
    let (status, answer) = send(
        &server,
        reqwest::Method::DELETE,
        "/rules/blocklist/hello%20world",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn an_admins_request_bypasses_the_rules_and_its_detail_says_so() {
    let server = Server::start().await;
    let consumer = server.start_consumer().await;
    let admin = server.admin();
    server
        .post("/rules/blocklist", &admin, &json!({"phrase": "seal"}))
        .await;
    let body = |bypass: bool| {
        json!({"viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
               "style": "ghost", "inputs": {"subject": "a seal"},
               "free_of_charge": true, "bypass_rules": bypass})
    };
    let bypassed = server.enqueue(&admin, &body(true)).await;
    server.wait_finished(&bypassed).await;
    let (_, detail) = server
        .get(&format!("/requests/{bypassed}"), Some(&admin))
        .await;
    assert_eq!(detail["state"], "succeeded", "{detail}");
    assert_eq!(detail["content_rules"], "bypassed", "{detail}");

    let judged = server.enqueue(&admin, &body(false)).await;
    server.wait_finished(&judged).await;
    let (_, detail) = server
        .get(&format!("/requests/{judged}"), Some(&admin))
        .await;
    assert_eq!(detail["state"], "rejected", "{detail}");
    assert_eq!(detail["content_rules"], "blocklist", "{detail}");
    consumer.stop().await;
}
