//! Values no database can hold are 400s naming the field, never 500s
//! (issue 23 item 5): cursors, dates and event ids out of range, and text
//! PostgreSQL cannot store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Asserts `response` is a JSON 400 that names `field`.
async fn assert_names(response: reqwest::Response, field: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
    assert_eq!(body["error"], "bad_request", "{body}");
    assert_eq!(body["field"], field, "{body}");
}

#[tokio::test]
async fn out_of_range_cursors_and_dates_are_400s_naming_the_field() {
    let server = Server::start().await;
    let admin = server.admin();
    // 300 billion seconds before 1970: a date chrono reads, PostgreSQL cannot hold.
    let ancient_micros = "-300000000000000000";
    let cases = [
        (
            format!("cursor={ancient_micros}_6f1c3a0e9b8d4c2a8e7f5d3b1a9c7e5d"),
            "cursor",
        ),
        ("since=-9999-01-01T00:00:00Z".to_owned(), "since"),
        ("until=-9999-01-01T00:00:00Z".to_owned(), "until"),
        ("twitch_user_id=a%00b".to_owned(), "twitch_user_id"),
    ];
    for (query, field) in cases {
        for token in [&admin, &server.viewer(VIEWER)] {
            let response = server
                .http
                .get(format!("{}/requests?{query}", server.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_names(response, field).await;
        }
    }
    for last_event_id in [ancient_micros, "not-a-number"] {
        let response = server
            .http
            .get(format!("{}/events", server.base))
            .bearer_auth(&admin)
            .header("last-event-id", last_event_id)
            .send()
            .await
            .unwrap();
        assert_names(response, "Last-Event-ID").await;
    }
}

#[tokio::test]
async fn an_overlay_label_postgres_cannot_store_is_a_400() {
    let server = Server::start().await;
    let (status, body, _) = server
        .post(
            "/overlay/tokens",
            &server.admin(),
            &json!({"label": "main\u{0}OBS"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "label", "{body}");
}
