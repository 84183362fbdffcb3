//! The spoken caption (issue 30, item 2) through a running consumer, with
//! real PostgreSQL, RabbitMQ and moto and the fake OpenAI: a style that
//! reads its caption aloud gets the audio stored beside its image and its
//! cost counted in the spend; a speech call that fails (500, every model
//! gone) never fails the request, and the reason is recorded; a style that
//! does not ask makes no speech call.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_testkit::{SpeechBehavior, TestWorld, eventually};
use dynamo_wire::StyleDefinition;
use serde_json::{Value, json};
use support::{Running, WAIT, ghost};
use uuid::Uuid;

/// A style that reads its caption aloud.
fn herald() -> StyleDefinition {
    serde_json::from_value(json!({
        "id": "herald",
        "display_name": "Herald",
        "prompt_template": "a ghostly image of {subject}, with glitchy VHS artifacts, dark background",
        "output": "photo",
        "points_cost": 200,
        "reward": {"title": "dynamo: a herald", "prompt": "what should it be?", "cost": 300},
        "on_air": {"speak_caption": true},
    }))
    .unwrap()
}

fn herald_request(subject: &str) -> Value {
    let mut body = ghost(subject);
    body["payload"]["style"] = json!("herald");
    body
}

/// A consumer with the herald style in its store.
async fn running(extra: &[(&str, &str)]) -> Running {
    let world = TestWorld::start().await;
    let mut env = world.consumer_env().with("MODERATION", "false");
    for &(name, value) in extra {
        env = env.with(name, value);
    }
    let running = Running::start(world, env).await;
    running.store().put_style(&herald()).await.unwrap();
    running
}

async fn succeeded(running: &Running, id: Uuid) {
    let result = running.result().await;
    assert_eq!(result.body["request_id"], id.to_string(), "{}", result.body);
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
}

async fn spend_rows(running: &Running) -> Vec<(String, String, f64)> {
    sqlx::query_as("SELECT item, model, cost_usd FROM dynamo.image_spend ORDER BY id")
        .fetch_all(running.world.database.pool())
        .await
        .unwrap()
}

fn speech_calls(running: &Running) -> Vec<Value> {
    running.world.fakes.with(|s| s.speech_calls.clone())
}

#[tokio::test]
async fn the_caption_is_spoken_stored_beside_the_image_and_counted_in_spend() {
    let running = running(&[]).await;
    // Golden VCR's ghost does not speak: no speech call at all.
    let plain = running.send(&ghost("a walrus")).await;
    succeeded(&running, plain).await;
    assert_eq!(speech_calls(&running), Vec::<Value>::new());
    assert_eq!(running.store().caption_speech(plain).await.unwrap(), None);

    let id = running.send(&herald_request("a seal")).await;
    succeeded(&running, id).await;
    let calls = speech_calls(&running);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["input"], "a seal, from wasabimilkshake");
    assert_eq!(calls[0]["model"], "gpt-4o-mini-tts");
    assert_eq!(calls[0]["voice"], "alloy");
    assert_eq!(calls[0]["response_format"], "mp3");

    let speech = running.store().caption_speech(id).await.unwrap().unwrap();
    assert_eq!(speech.caption, "a seal, from wasabimilkshake");
    assert_eq!(speech.failure, None);
    assert_eq!(speech.model.as_deref(), Some("gpt-4o-mini-tts"));
    assert_eq!(speech.content_type.as_deref(), Some("audio/mpeg"));
    // Beside the image, in the same bucket.
    let key = format!("{id}/{id}-0-caption.mp3");
    assert!(speech.url.as_deref().unwrap().ends_with(&key), "{speech:?}");
    let (bytes, content_type, _, _) = running.world.bucket.object(&key).await;
    assert_eq!(content_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(&bytes[..2], &[0xFF, 0xFB], "an MPEG audio frame");
    assert_eq!(Some(bytes.len() as i32), speech.byte_size);
    assert!(
        running
            .world
            .bucket
            .keys()
            .await
            .contains(&format!("{id}/{id}-0.jpg")),
        "the image it goes with"
    );

    // Its cost is spend (counted in the daily budget), not an image.
    let rows = spend_rows(&running).await;
    let spoken: Vec<_> = rows.iter().filter(|r| r.0 == "speech").collect();
    assert_eq!(spoken.len(), 1, "{rows:?}");
    let chars = "a seal, from wasabimilkshake".chars().count() as f64;
    assert_eq!(spoken[0].1, "gpt-4o-mini-tts");
    assert!((spoken[0].2 - 15.0 * chars / 1e6).abs() < 1e-12, "{rows:?}");
    let summary = running.store().spend_summary().await.unwrap();
    assert_eq!(summary.images_today, 2);
    let total: f64 = rows.iter().map(|r| r.2).sum();
    assert!((summary.today_usd - total).abs() < 1e-9, "{summary:?}");
    running.stop().await;
}

#[tokio::test]
async fn a_failed_speech_call_never_fails_the_request_and_the_reason_is_kept() {
    let running = running(&[("OPENAI_SPEECH_MODELS", "gpt-4o-mini-tts")]).await;
    running
        .world
        .fakes
        .with(|s| s.speech_script.push_back(SpeechBehavior::ServerError));
    let first = running.send(&herald_request("a seal")).await;
    succeeded(&running, first).await;
    let alert = running.world.broker.next(&running.alerts, WAIT).await;
    assert!(alert.is_some(), "aired without it");
    let speech = running
        .store()
        .caption_speech(first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(speech.url, None);
    let failure = speech.failure.unwrap();
    assert!(failure.contains("speech call failed"), "{failure}");
    assert!(failure.contains("500"), "{failure}");
    assert_eq!(speech_calls(&running).len(), 1, "one attempt, no retry");

    // Every speech model gone: the alert airs without it, and OpenAI is not
    // held for it (images go on).
    running.world.fakes.retire_model("gpt-4o-mini-tts");
    let second = running.send(&herald_request("an otter")).await;
    succeeded(&running, second).await;
    let failure = running
        .store()
        .caption_speech(second)
        .await
        .unwrap()
        .unwrap()
        .failure
        .unwrap();
    assert!(failure.contains("OPENAI_SPEECH_MODELS"), "{failure}");
    assert_eq!(running.store().current_hold("openai").await.unwrap(), None);
    let third = running.send(&herald_request("a puffin")).await;
    succeeded(&running, third).await;
    let rows = spend_rows(&running).await;
    assert!(
        rows.iter().all(|r| r.0 == "image"),
        "nothing bought: {rows:?}"
    );
    eventually("both alerts queued", WAIT, || async {
        let queued: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dynamo.image_request WHERE alerted_at IS NOT NULL",
        )
        .fetch_one(running.world.database.pool())
        .await
        .unwrap();
        (queued == 3).then_some(())
    })
    .await;
    running.stop().await;
}
