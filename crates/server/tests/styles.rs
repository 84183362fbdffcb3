//! The streamer's styles (issue 28, SPEC §8): a request names an enabled
//! style or is refused with the field named; admins create, edit, switch
//! and delete styles through `/styles`, every bad field named; a style
//! created through the API is used by a running consumer at once. A real
//! server and consumer over the test world's PostgreSQL, RabbitMQ and fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER, WAIT};
use dynamo_store::{NewRequest, Store};
use dynamo_wire::{GenerationRequest, StyleDefinition};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

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

/// A change to a definition, and the field it makes wrong.
type Edit = fn(&mut Value);

fn sticker() -> Value {
    json!({
        "id": "sticker",
        "display_name": "Sticker",
        "color": "optional",
        "prompt_template": "a die-cut sticker of {subject}",
        "output": "photo",
        "points_cost": 0,
        "reward": {"title": "dynamo: a sticker", "prompt": "What should the sticker be?", "cost": 300},
    })
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    server.send_as_admin(method, path, body).await
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let server = Server::start().await;
    let admin = server.admin();
    let cases: [(Edit, &str); 9] = [
        (
            |s| s["reward"]["title"] = json!("x".repeat(46)),
            "reward.title",
        ),
        (
            |s| s["prompt_template"] = json!("a {subject} in {colour}"),
            "prompt_template",
        ),
        (|s| s["id"] = json!("Sticker!"), "id"),
        (|s| s["output"] = json!("hologram"), "output"),
        (
            |s| s["reward"]["prompt"] = json!("x".repeat(201)),
            "reward.prompt",
        ),
        (|s| s["image_size"] = json!("huge"), "image_size"),
        (
            |s| s["display_name"] = json!("Sti\u{0}cker"),
            "display_name",
        ),
        (
            |s| s["points_cost"] = json!(3_000_000_000u32),
            "points_cost",
        ),
        (|s| s["reward"]["colour"] = json!("red"), "reward.colour"),
    ];
    for (edit, field) in cases {
        let mut body = sticker();
        edit(&mut body);
        let (status, answer, _) = server.post("/styles", &admin, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, _, _) = server
        .post("/styles", &server.viewer(VIEWER), &sticker())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &server,
        reqwest::Method::PUT,
        "/styles/other",
        Some(&sticker()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the body's id must be the path's"
    );
    let (status, answer) = send(
        &server,
        reqwest::Method::GET,
        "/styles/Not%20a%20slug",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["field"], "style", "{answer}");
}

#[tokio::test]
async fn put_takes_the_id_from_its_path_and_edits_in_place() {
    let server = Server::start().await;
    let mut body = sticker();
    body.as_object_mut().unwrap().remove("id");
    let (status, created) = send(
        &server,
        reqwest::Method::PUT,
        "/styles/sticker",
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["definition"]["id"], "sticker");
    let version = created["version"].as_i64().unwrap();

    body["prompt_template"] = json!("a holographic sticker of {subject}");
    let (status, edited) = send(
        &server,
        reqwest::Method::PUT,
        "/styles/sticker",
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        edited["definition"]["prompt_template"],
        "a holographic sticker of {subject}"
    );
    assert_eq!(edited["version"], version + 1);

    // The same definition again, id and all (as an export has it): unchanged.
    let (status, same) = send(
        &server,
        reqwest::Method::PUT,
        "/styles/sticker",
        Some(&edited["definition"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["version"], version + 1);

    // The sound routes know it too: it exists, it has no sound yet.
    let (status, answer) = server
        .get("/styles/sticker/sound", Some(&server.admin()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["detail"], "sticker has no sound", "{answer}");
}

#[tokio::test]
async fn a_style_made_through_the_api_is_used_by_a_running_consumer() {
    let server = Server::start().await;
    let consumer = server.start_consumer().await;
    let admin = server.admin();
    let (status, created, _) = server.post("/styles", &admin, &sticker()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["definition"]["id"], "sticker");
    assert_eq!(created["definition"]["enabled"], true);
    let (status, _, _) = server.post("/styles", &admin, &sticker()).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let id = server
        .enqueue(
            &admin,
            &json!({"viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
                    "style": "sticker", "inputs": {"subject": "a seal"}}),
        )
        .await;
    server.wait_finished(&id).await;
    let (_, view) = server.get(&format!("/requests/{id}"), Some(&admin)).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["style"], "sticker");

    let (status, disabled) = send(
        &server,
        reqwest::Method::POST,
        "/styles/sticker/disable",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disabled["definition"]["enabled"], false);
    let (status, listed) = server.get("/styles", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["definition"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["friend", "ghost", "sticker"]);
    consumer.stop().await;
}

#[tokio::test]
async fn a_style_with_requests_in_progress_is_not_deleted() {
    let server = Server::start().await;
    let (status, _, _) = server.post("/styles", &server.admin(), &sticker()).await;
    assert_eq!(status, StatusCode::CREATED);
    let store = Store::new(server.world.database.pool().clone());
    let request = GenerationRequest::from_value(json!({
        "type": "image",
        "viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
        "payload": {"style": "sticker", "inputs": {"subject": "a seal"}},
    }))
    .unwrap();
    let id = Uuid::new_v4();
    store
        .record(
            &NewRequest {
                id,
                request: &request,
                prompt: "a die-cut sticker of a seal",
                settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
                points_cost: 0,
                free_of_charge: true,
                retry_of: None,
                fingerprint: None,
                trial: false,
            },
            "test",
            WAIT,
        )
        .await
        .unwrap();
    let (status, answer) = send(&server, reqwest::Method::DELETE, "/styles/sticker", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    sqlx::query(
        "UPDATE dynamo.image_request SET state = 'failed', error_message = 'test', finished_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(server.world.database.pool())
    .await
    .unwrap();
    let (status, _) = send(&server, reqwest::Method::DELETE, "/styles/sticker", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get("/styles/sticker", Some(&server.admin())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// With no consumer started yet, the server's styles list (the page's
/// *Styles* panel) has Golden VCR's two, following the settings; the
/// server's seeding creates what is missing and never changes a style.
#[tokio::test]
async fn a_server_started_first_lists_the_seeded_styles_and_leaves_edits_alone() {
    let server = Server::start().await;
    let admin = server.admin();
    let listed = dynamo_testkit::eventually("the seeded styles", WAIT, || async {
        let (status, listed) = server.get("/styles", Some(&admin)).await;
        (status == StatusCode::OK && listed.as_array().is_some_and(|l| l.len() == 2))
            .then_some(listed)
    })
    .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed[0]["definition"]["id"], "friend");
    assert_eq!(listed[1]["definition"]["id"], "ghost");
    assert!(listed.iter().all(|s| s["follows_settings"] == true));
    assert_eq!(
        listed[1]["definition"]["prompt_template"],
        dynamo_store::golden_vcr::DEFAULT_GHOST
    );

    let store = Store::new(server.world.database.pool().clone());
    let mut ghost = store
        .style(&dynamo_wire::Style::Ghost.into())
        .await
        .unwrap()
        .unwrap();
    ghost.definition.points_cost = 7;
    store.put_style(&ghost.definition).await.unwrap();
    dynamo_store::golden_vcr::seed(
        &store,
        &dynamo_store::golden_vcr::PromptTemplates::default(),
        200,
        dynamo_store::golden_vcr::Seeding::CreateMissing,
    )
    .await
    .unwrap();
    let ghost = store
        .style(&dynamo_wire::Style::Ghost.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ghost.definition.points_cost, 7);
    assert!(!ghost.follows_settings);
}
