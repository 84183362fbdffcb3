//! Issue 28's "Done when", on the fake Twitch with a running dynamo-server
//! and dynamo-consumer (in-process), real PostgreSQL, RabbitMQ and the
//! placeholder image provider: a streamer creates a "sticker" style through
//! the API as the page does, publishes its reward with the page's button
//! (`POST /styles/sticker/reward`), a viewer redeems it, and the sticker
//! plays on the overlay, its redemption FULFILLED — no restart, no
//! environment variable for the style. (The page's "Try it" is the page's
//! own test.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, WAIT};
use dynamo_runtime::Env;
use dynamo_store::{RequestState, Store};
use dynamo_testkit::twitch::{REDEMPTION_TYPE, STREAM_ONLINE_TYPE};
use dynamo_testkit::{FakeTwitch, TestWorld, eventually};
use dynamo_twitch::{SCOPES, TwitchSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The streamer's sticker style, as the page's form sends it.
fn sticker() -> Value {
    json!({
        "id": "sticker",
        "display_name": "Sticker",
        "color": "optional",
        "prompt_template": "{article} {subject} as a die-cut vinyl sticker, with a solid {complement} background",
        "output": "cutout",
        "points_cost": 100,
        "reward": {"title": "dynamo: a sticker", "prompt": "What should the sticker be?",
                   "cost": 100, "cooldown_seconds": 30},
    })
}

/// Signs dynamo in to the fake channel (`dynamoctl twitch login`).
async fn sign_in(twitch: &FakeTwitch, store: Store) {
    let settings = TwitchSettings::from_env(&Env::from_pairs(twitch.env_pairs())).unwrap();
    let helix = dynamo_twitch::helix(&settings, store).unwrap();
    let oauth = helix.tokens().oauth();
    let code = oauth.start_device(SCOPES).await.unwrap();
    let tokens = oauth.wait_for_device(&code, SCOPES).await.unwrap();
    helix.tokens().sign_in(&tokens).await.unwrap();
}

/// The consumer's settings for Twitch: the fake's, the intake on, settled
/// on the redemption. Nothing names a style or a reward.
fn on_twitch(twitch: &FakeTwitch) -> impl FnOnce(Env) -> Env {
    let pairs = twitch.env_pairs();
    move |env| {
        pairs
            .into_iter()
            .fold(env, |env, (k, v)| env.with(&k, v))
            .with("LEDGER", "twitch")
            .with("TWITCH_INTAKE", "true")
    }
}

async fn style(server: &Server, id: &str) -> Value {
    let (status, view) = server
        .get(&format!("/styles/{id}"), Some(&server.admin()))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

#[tokio::test]
async fn a_sticker_style_made_on_the_page_is_redeemed_on_twitch_and_plays_on_the_overlay() {
    let (world, twitch) = tokio::join!(TestWorld::start(), FakeTwitch::start());
    let server = Server::start_in(world, |env| env).await;
    let store = Store::new(server.world.database.pool().clone());
    sign_in(&twitch, store.clone()).await;
    let alerts = server
        .world
        .broker
        .capture(&server.world.broker.topology.alerts_exchange)
        .await;
    // Keepalives far apart: the one session below lasts the whole test.
    twitch.with(|s| s.keepalive_secs = 30);
    let consumer = server.start_consumer_with(on_twitch(&twitch)).await;
    let admin = server.admin();
    // The intake's EventSub session is up (its last subscription is the
    // stream's), with no reward of dynamo's yet.
    let session = eventually("the intake's session", WAIT, || async {
        twitch.with(|s| {
            s.subscriptions
                .iter()
                .find(|sub| sub.kind == STREAM_ONLINE_TYPE && sub.status == "enabled")
                .map(|sub| sub.session_id.clone())
        })
    })
    .await;
    assert_eq!(twitch.enabled_subscriptions_of(REDEMPTION_TYPE), 0);

    // Created on the page, while everything runs.
    let (status, created, _) = server.post("/styles", &admin, &sticker()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["reward_status"], "none");
    assert_eq!(created["reward_error"], Value::Null);

    // Published with the page's button: asked for, then made by the
    // consumer running the intake.
    let (status, asked, _) = server
        .post("/styles/sticker/reward", &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert_eq!(asked["definition"]["id"], "sticker");
    assert!(
        ["requested", "published"].contains(&asked["reward_status"].as_str().unwrap()),
        "{asked}"
    );
    let published = eventually("the sticker's reward published", WAIT, || async {
        let view = style(&server, "sticker").await;
        (view["reward_status"] == "published").then_some(view)
    })
    .await;
    assert_eq!(published["reward_error"], Value::Null);
    let reward_id = published["reward_id"].as_str().unwrap().to_owned();
    let reward = twitch.reward(&reward_id).expect("the reward on Twitch");
    assert_eq!(reward.title, "dynamo: a sticker");
    assert_eq!(reward.cost, 100);
    assert_eq!(reward.global_cooldown, Some(30));
    assert!(reward.is_user_input_required && !reward.is_paused);

    // The running session subscribes to the new reward by itself (not a
    // new session after a reconnect).
    let subscribed_on = eventually("subscribed to the sticker's redemptions", WAIT, || async {
        twitch.with(|s| {
            s.subscriptions
                .iter()
                .find(|sub| {
                    sub.kind == REDEMPTION_TYPE
                        && sub.status == "enabled"
                        && sub.condition["reward_id"] == reward_id.as_str()
                })
                .map(|sub| sub.session_id.clone())
        })
    })
    .await;
    assert_eq!(
        subscribed_on, session,
        "the session open before the reward existed"
    );
    let redemption = twitch.redeem(&reward_id, "90790024", "WasabiMilkshake", "red: a seal");
    let request_id = dynamo_twitch::intake::request_id_for(&redemption);

    server.wait_finished(&request_id.to_string()).await;
    let record = store.get(request_id).await.unwrap();
    assert_eq!(record.state(), RequestState::Succeeded, "{record:?}");
    assert_eq!(record.style.0.as_str(), "sticker");
    assert_eq!(record.inputs, json!({"color": "red", "subject": "a seal"}));

    // The alert, as every alerts service reads it, names the style.
    let alert = server.world.broker.next(&alerts, WAIT).await.unwrap();
    assert_eq!(alert.body["payload"]["type"], "sticker", "{}", alert.body);

    // The overlay plays it: its feed's next alert is the sticker, and the
    // stored cutout is a transparent WEBP.
    let (status, token, _) = server
        .post("/overlay/tokens", &admin, &json!({"label": "OBS"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    let on_air: Value = server
        .http
        .post(format!("{}/overlay/next?token={token}", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(on_air["style"], "sticker", "{on_air}");
    assert_eq!(on_air["image_request_id"], request_id.to_string());
    let image = server
        .http
        .get(on_air["image_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), StatusCode::OK);
    let bytes = image.bytes().await.unwrap();
    let decoded =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("a WEBP");
    assert!(
        decoded.color().has_alpha(),
        "a cutout keeps its transparency"
    );

    eventually("the redemption FULFILLED", WAIT, || async {
        (twitch.status_of(&redemption).as_deref() == Some("FULFILLED")).then_some(())
    })
    .await;
    consumer.stop().await;
}

#[tokio::test]
async fn publishing_answers_404_for_no_style_409_before_sign_in_and_failed_with_twitchs_reason() {
    let (world, twitch) = tokio::join!(TestWorld::start(), FakeTwitch::start());
    let server = Server::start_in(world, |env| env).await;
    let admin = server.admin();
    let (status, _, _) = server.post("/styles", &admin, &sticker()).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body, _) = server
        .post("/styles/sticker/reward", &server.viewer("1"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body, _) = server.post("/styles/nope/reward", &admin, &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body, _) = server
        .post("/styles/Not_A_Slug/reward", &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "style");
    // Not signed in: nothing could make the reward, so it is not asked for.
    let (status, body, _) = server
        .post("/styles/sticker/reward", &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.to_string().contains("dynamoctl twitch login"),
        "{body}"
    );
    assert_eq!(style(&server, "sticker").await["reward_status"], "none");

    // Signed in, but the title is taken by a reward the streamer made by
    // hand: the consumer records Twitch's refusal, readably.
    let store = Store::new(server.world.database.pool().clone());
    sign_in(&twitch, store).await;
    twitch.add_foreign_reward("dynamo: a sticker");
    let consumer = server.start_consumer_with(on_twitch(&twitch)).await;
    let (status, body, _) = server
        .post("/styles/sticker/reward", &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let failed = eventually("the sticker's reward refused", WAIT, || async {
        let view = style(&server, "sticker").await;
        (view["reward_status"] == "failed").then_some(view)
    })
    .await;
    let reason = failed["reward_error"].as_str().unwrap();
    assert!(
        reason.contains("already titled \"dynamo: a sticker\""),
        "{reason}"
    );
    assert_eq!(failed["reward_id"], Value::Null);
    consumer.stop().await;
}
