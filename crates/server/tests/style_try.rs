//! The page's help for writing a style (issue 28, item 2): the prompt a
//! template makes of a sample (`POST /style-preview`, rendered by the same
//! code as a request's prompt), and *Try it* (`POST /styles/{style}/try`):
//! one free image made by a real consumer through the normal pipeline and
//! never aired. A real server and consumer over the test world's
//! PostgreSQL, RabbitMQ and fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, WAIT};
use dynamo_store::Store;
use dynamo_testkit::TestWorld;
use dynamo_testkit::eventually;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

fn sticker(enabled: bool) -> Value {
    json!({
        "id": "sticker",
        "display_name": "Sticker",
        "color": "optional",
        "prompt_template": "{article} {color} {subject} as a die-cut sticker",
        "output": "photo",
        "points_cost": 250,
        "reward": {"title": "dynamo: a sticker", "prompt": "What should it be?", "cost": 300},
        "enabled": enabled,
    })
}

async fn preview(server: &Server, body: Value) -> (StatusCode, Value) {
    server
        .send_as_admin(Method::POST, "/style-preview", Some(&body))
        .await
}

#[tokio::test]
async fn the_preview_renders_a_sample_as_a_request_would_be_and_names_a_bad_field() {
    let server = Server::start().await;
    let (status, answer) = preview(
        &server,
        json!({"prompt_template": "{article} {color} {subject} on {complement}", "color": "optional",
               "sample": {"subject": "an owl", "color": "orange"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"prompt": "an orange owl on sky-blue"}));

    // The friend's own template, as PROMPT_FRIEND has it, renders as a friend's prompt.
    let (status, styles) = server.send_as_admin(Method::GET, "/styles", None).await;
    assert_eq!(status, StatusCode::OK);
    let friend = styles
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["definition"]["id"] == "friend");
    if let Some(friend) = friend {
        let (status, answer) = preview(
            &server,
            json!({"prompt_template": friend["definition"]["prompt_template"], "color": "required",
                   "sample": {"subject": "a robot", "color": "red"}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            answer["prompt"]
                .as_str()
                .unwrap()
                .starts_with("a red robot"),
            "{answer}"
        );
    }

    let cases = [
        (
            json!({"prompt_template": "a sticker of {subject} in {colour}", "color": "optional",
                   "sample": {"subject": "an owl"}}),
            "prompt_template",
            "unknown placeholder {colour}",
        ),
        (
            json!({"prompt_template": "a sticker", "sample": {"subject": "an owl"}}),
            "prompt_template",
            "{subject}",
        ),
        (
            json!({"prompt_template": "{color} {subject}", "color": "none", "sample": {"subject": "an owl"}}),
            "prompt_template",
            "takes no colour",
        ),
        (
            json!({"prompt_template": "{subject}", "color": "required", "sample": {"subject": "an owl"}}),
            "sample.color",
            "is required",
        ),
        (
            json!({"prompt_template": "{subject}", "sample": {"subject": "an owl", "color": "red"}}),
            "sample.color",
            "is not taken",
        ),
        (
            json!({"prompt_template": "{subject}", "sample": {"subject": "   "}}),
            "sample.subject",
            "empty",
        ),
        (
            json!({"prompt_template": "{subject}", "sample": {"subject": "x".repeat(121)}}),
            "sample.subject",
            "121",
        ),
        (
            json!({"prompt_template": "{subject}", "sample": {"subject": "an owl", "color": "mauve"}}),
            "sample.color",
            "unknown variant",
        ),
        (
            json!({"prompt_template": "{subject}", "color": "sometimes", "sample": {"subject": "an owl"}}),
            "color",
            "unknown variant",
        ),
    ];
    for (body, field, says) in cases {
        let (status, answer) = preview(&server, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }

    let (status, _) = server
        .get("/style-preview", Some(&server.viewer("1")))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = server
        .post(
            "/style-preview",
            &server.viewer("1"),
            &json!({"prompt_template": "{subject}", "sample": {"subject": "an owl"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_try_names_its_bad_field_and_queues_nothing() {
    let server = Server::start().await;
    for (id, color) in [
        ("sticker", "optional"),
        ("plain", "none"),
        ("framed", "required"),
    ] {
        let mut style = sticker(true);
        style["id"] = id.into();
        style["color"] = color.into();
        style["prompt_template"] = "a die-cut sticker of {subject}".into();
        let (status, answer) = server
            .send_as_admin(Method::POST, "/styles", Some(&style))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    // A queue on the requests exchange sees whatever a try would queue.
    let requests = server
        .world
        .broker
        .capture(&server.world.broker.topology.requests_exchange)
        .await;
    let cases = [
        ("/styles/sticker/try", json!({"subject": ""}), "subject"),
        (
            "/styles/sticker/try",
            json!({"subject": "an owl", "color": "mauve"}),
            "color",
        ),
        (
            "/styles/plain/try",
            json!({"subject": "an owl", "color": "red"}),
            "color",
        ),
        ("/styles/framed/try", json!({"subject": "an owl"}), "color"),
        ("/styles/Sticker/try", json!({"subject": "an owl"}), "style"),
        (
            "/styles/sticker/try",
            json!({"subject": "an owl", "viewer": "me"}),
            "viewer",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = server.send_as_admin(Method::POST, path, Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["field"], field, "{path} {body}: {answer}");
    }
    let (status, answer) = server
        .send_as_admin(
            Method::POST,
            "/styles/pixel-portrait/try",
            Some(&json!({"subject": "an owl"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, _, _) = server
        .post(
            "/styles/sticker/try",
            &server.viewer("1"),
            &json!({"subject": "an owl"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.world.broker.depth(&requests).await, 0);
}

/// A try-out of a disabled style, with approval on and the content rules
/// blocking its subject: made through the normal pipeline (its image
/// stored, its spend counted), yet never aired — nothing on onscreen-events
/// or generation-results, nothing in the overlay's queue or the gallery,
/// no approval asked — and nothing debited at the ledger.
#[tokio::test]
async fn a_try_makes_one_free_image_that_never_airs() {
    let server = Server::start_in(TestWorld::start().await, |env| {
        env.with("PUBLIC_GALLERY", "true")
            .with("PUBLIC_BASE_URL", "https://dynamo.example")
    })
    .await;
    let (status, _) = server
        .send_as_admin(Method::POST, "/styles", Some(&sticker(false)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = server
        .post(
            "/rules/blocklist",
            &server.admin(),
            &json!({"phrase": "owl"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (results, alerts) = server.world.broker.capture_outputs().await;
    let consumer = server
        .start_consumer_with(|env| env.with("APPROVAL", "manual"))
        .await;

    let response = server
        .http
        .post(format!("{}/styles/sticker/try", server.base))
        .bearer_auth(server.admin())
        .json(&json!({"subject": "an owl", "color": "orange"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let answer: Value = response.json().await.unwrap();
    let id = answer["request_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/requests/{id}"));
    assert_eq!(answer["location"], location);

    server.wait_finished(&id).await;
    let (status, view) = server.get(&location, Some(&server.admin())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["trial"], true, "{view}");
    assert_eq!(view["style"], "sticker");
    assert_eq!(view["prompt"], "an orange owl as a die-cut sticker");
    assert_eq!(view["ledger_status"], "free", "{view}");
    assert_eq!(view["content_rules"], "bypassed", "{view}");
    assert_eq!(view["approval"], Value::Null, "{view}");
    assert_eq!(view["steps"]["alerted_at"], Value::Null, "{view}");
    let image = view["images"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(view["images"][0]["content_type"], "image/jpeg");
    let fetched = server.http.get(&image).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK, "{image}");

    // Spend is counted like any image's.
    let (_, stats) = server.get("/stats", Some(&server.admin())).await;
    assert_eq!(stats["spend"]["images_today"], 1, "{stats}");

    // Never aired, never told, never charged. Once its run is over (its
    // report recorded), whatever it published would be in these queues.
    let store = Store::new(server.world.database.pool().clone());
    let uuid = id.parse().unwrap();
    eventually("the try-out's run to end", WAIT, || {
        let store = store.clone();
        async move { store.get(uuid).await.ok()?.result_published_at.map(|_| ()) }
    })
    .await;
    let now = Duration::ZERO;
    assert!(server.world.broker.next(&alerts, now).await.is_none());
    assert!(server.world.broker.next(&results, now).await.is_none());
    assert!(server.world.fakes.flows().is_empty());
    let (_, queue) = server.get("/overlay/queue", Some(&server.admin())).await;
    assert_eq!(queue["waiting"], json!([]), "{queue}");
    assert_eq!(queue["recent"], json!([]), "{queue}");
    assert_eq!(queue["on_air"], Value::Null, "{queue}");
    let html = server
        .http
        .get(format!("{}/gallery", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("an owl"), "{html}");
    assert!(!html.contains(&image), "{html}");
    let (_, waiting) = server
        .get("/requests?state=awaiting_approval", Some(&server.admin()))
        .await;
    assert_eq!(waiting["requests"], json!([]));
    // The style stays as it was: a try does not enable it.
    let (_, style) = server
        .send_as_admin(Method::GET, "/styles/sticker", None)
        .await;
    assert_eq!(style["definition"]["enabled"], false);
    consumer.stop().await;
}
