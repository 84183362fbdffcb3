//! Enqueueing a request of a streamer's style (issue 28, SPEC §8): refused
//! with the field named until the style exists and is enabled, accepted
//! once it does. A real server over the test world's PostgreSQL and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER};
use dynamo_store::Store;
use dynamo_wire::StyleDefinition;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_request_names_an_enabled_style_or_is_refused_with_the_field() {
    let server = Server::start().await;
    let admin = server.admin();
    let body = json!({"viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
                      "style": "sticker", "inputs": {"subject": "a seal"}});
    let (status, answer, _) = server.post("/requests", &admin, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["field"], "style", "{answer}");

    let store = Store::new(server.world.database.pool().clone());
    let mut sticker: StyleDefinition = serde_json::from_value(json!({
        "id": "sticker", "display_name": "Sticker", "prompt_template": "a sticker of {subject}",
        "output": "photo", "points_cost": 0,
        "reward": {"title": "dynamo: a sticker", "prompt": "What should it be?", "cost": 300},
    }))
    .unwrap();
    store.put_style(&sticker).await.unwrap();
    server.enqueue(&admin, &body).await;

    sticker.enabled = false;
    store.put_style(&sticker).await.unwrap();
    let (status, answer, _) = server.post("/requests", &admin, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["field"], "style", "{answer}");
}
