//! Styles as data (issue 28, SPEC §8) through a running consumer: a style
//! written to the store while the consumer runs is used at once, each output
//! kind is stored as it says (decoded from the bucket) and announced on
//! Discord, an edit never changes a request in progress, and an unknown or
//! disabled style is dead-lettered with the reason. Real PostgreSQL,
//! RabbitMQ and moto; the fake OpenAI, ledger and Discord.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_broker::headers;
use dynamo_testkit::{ImageBehavior, TestWorld, eventually};
use dynamo_wire::StyleDefinition;
use serde_json::{Value, json};
use uuid::Uuid;

mod support;

use support::{Running, WAIT};

fn sticker(template: &str) -> StyleDefinition {
    serde_json::from_value(json!({
        "id": "sticker",
        "display_name": "Sticker",
        "color": "required",
        "prompt_template": template,
        "output": "cutout",
        "points_cost": 50,
        "reward": {"title": "dynamo: a sticker", "prompt": "colour: what should it be?", "cost": 300},
    }))
    .unwrap()
}

const STICKER: &str = "{article} {color} {subject} as a die-cut sticker, with a solid \
{complement} background suitable for chroma keying";

fn request(style: &str, inputs: Value) -> Value {
    json!({"type":"image",
           "viewer":{"twitch_user_id":"90790024","twitch_display_name":"wasabimilkshake"},
           "payload":{"style":style,"inputs":inputs}})
}

async fn prompt_of(running: &Running, id: Uuid) -> String {
    sqlx::query_scalar("SELECT prompt FROM dynamo.image_request WHERE id = $1")
        .bind(id)
        .fetch_one(running.world.database.pool())
        .await
        .unwrap()
}

fn key_of(url: &str, bucket: &str) -> String {
    url.split_once(&format!("/{bucket}/")).unwrap().1.to_owned()
}

#[tokio::test]
async fn a_style_added_while_running_is_used_and_its_cutout_stored_as_transparent_webp() {
    let running = Running::default(TestWorld::start().await).await;
    // Seeded at start: Golden VCR's two, following the settings.
    let seeded = eventually("the seeded styles", WAIT, || async {
        let styles = running.store().styles().await.unwrap();
        (styles.len() == 2).then_some(styles)
    })
    .await;
    assert!(seeded.iter().all(|s| s.follows_settings));

    running.store().put_style(&sticker(STICKER)).await.unwrap();
    let id = running
        .send(&request(
            "sticker",
            json!({"color": "orange", "subject": "a seal"}),
        ))
        .await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(result.body["style"], "sticker");

    let alert = running
        .world
        .broker
        .next(&running.alerts, WAIT)
        .await
        .unwrap();
    assert_eq!(alert.body["payload"]["type"], "sticker");
    let details = &alert.body["payload"]["details"];
    assert_eq!(details["description"], "a seal");
    assert!(details.get("name").is_none(), "no name: {details}");
    assert!(
        details["background_color"]
            .as_str()
            .unwrap()
            .starts_with('#')
    );
    assert_eq!(
        prompt_of(&running, id).await,
        "an orange seal as a die-cut sticker, with a solid sky-blue background suitable for chroma keying"
    );
    let url = details["image_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("{id}-0.webp")), "{url}");
    let bucket = &running.world.bucket;
    let (bytes, content_type, _, _) = bucket.object(&key_of(url, &bucket.name)).await;
    assert_eq!(content_type.as_deref(), Some("image/webp"));
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).unwrap();
    assert_eq!(
        decoded.to_rgba8().get_pixel(5, 5)[3],
        0,
        "the corner is keyed out"
    );
    // Its own points cost, not POINTS_COST.
    assert_eq!(running.world.fakes.flows()[0].points, 50);
    // Announced on Discord like ghosts and friends, on the streamer's
    // styles' channel (DISCORD_STYLES_WEBHOOK_URL).
    let (channel, post) = eventually("the Discord post", WAIT, || {
        let posts = running.world.fakes.with(|s| s.discord_posts.clone());
        async move { posts.first().cloned() }
    })
    .await;
    assert_eq!(channel, "styles", "{post}");
    assert_eq!(post["embeds"][0]["image"]["url"], url, "{post}");
    running.stop().await;
}

#[tokio::test]
async fn a_photo_style_is_stored_as_jpeg_and_an_edit_reaches_the_running_consumer() {
    let running = Running::default(TestWorld::start().await).await;
    let mut portrait = sticker("a pixel-art portrait of {subject}");
    portrait.id = dynamo_wire::StyleId::parse("portrait").unwrap();
    portrait.color = dynamo_wire::ColorInput::None;
    portrait.output = dynamo_wire::Output::Photo;
    portrait.generate_name = true;
    running.store().put_style(&portrait).await.unwrap();
    running
        .send(&request("portrait", json!({"subject": "a seal"})))
        .await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(result.body["name"], "Sealy", "a name, as the style asks");
    let alert = running
        .world
        .broker
        .next(&running.alerts, WAIT)
        .await
        .unwrap();
    assert_eq!(alert.body["payload"]["details"]["name"], "Sealy");
    let url = alert.body["payload"]["details"]["image_url"]
        .as_str()
        .unwrap();
    let bucket = &running.world.bucket;
    let (bytes, content_type, _, _) = bucket.object(&key_of(url, &bucket.name)).await;
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();

    // Edited in the database, no restart: new requests use the new template
    // within seconds (LISTEN/NOTIFY, the version recheck behind it).
    portrait.prompt_template = "a mosaic of {subject}".to_owned();
    running.store().put_style(&portrait).await.unwrap();
    eventually("a request made with the edited template", WAIT, || async {
        let id = running
            .send(&request("portrait", json!({"subject": "a seal"})))
            .await;
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
        (prompt_of(&running, id).await == "a mosaic of a seal").then_some(())
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn an_edit_never_changes_a_request_in_progress() {
    let world = TestWorld::start().await;
    // The rate limit's wait is taken from the database: the image step is
    // run again from the stored request, as after a crash.
    let env = world.consumer_env().with("RETRY_INLINE_MAX", "100ms");
    let running = Running::start(world, env).await;
    running.store().put_style(&sticker(STICKER)).await.unwrap();
    // The first image call is rate limited: the request waits, and the
    // style is edited meanwhile.
    running.world.fakes.with(|s| {
        s.image_script.push_back(ImageBehavior::RateLimited {
            retry_after_ms: 1500,
        })
    });
    running
        .send(&request(
            "sticker",
            json!({"color": "red", "subject": "an owl"}),
        ))
        .await;
    eventually("the first image call", WAIT, || async {
        let attempts = running.world.fakes.with(|s| s.image_attempts.len());
        (attempts >= 1).then_some(())
    })
    .await;
    running
        .store()
        .put_style(&sticker("a {color} {subject}, edited"))
        .await
        .unwrap();
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let prompts: Vec<String> = running.world.fakes.with(|s| {
        s.image_attempts
            .iter()
            .map(|call| call["prompt"].as_str().unwrap_or_default().to_owned())
            .collect()
    });
    assert!(prompts.len() >= 2, "{prompts:?}");
    assert!(
        prompts
            .iter()
            .all(|p| p.starts_with("a red owl as a die-cut sticker")),
        "every try uses the prompt the request was made with: {prompts:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn unknown_disabled_and_mismatched_styles_are_dead_lettered_with_the_reason() {
    let running = Running::default(TestWorld::start().await).await;
    let mut disabled = sticker(STICKER);
    disabled.enabled = false;
    running.store().put_style(&disabled).await.unwrap();
    let broker = &running.world.broker;
    for (body, expected) in [
        (
            request("zombie", json!({"subject": "a seal"})),
            "payload.style: no enabled style zombie",
        ),
        (
            request("sticker", json!({"color": "red", "subject": "a seal"})),
            "payload.style: no enabled style sticker",
        ),
        (request("ghost", json!({"subject": "a seal"})), ""),
    ] {
        running.send(&body).await;
        if expected.is_empty() {
            let result = running.result().await;
            assert_eq!(result.body["state"], "succeeded", "{}", result.body);
            continue;
        }
        let parked = broker
            .next(&broker.topology.dead_letter_queue, WAIT)
            .await
            .expect("a dead-lettered message");
        let reason = parked.header(headers::REASON).unwrap();
        assert!(reason.starts_with(expected), "{reason}");
    }
    // A colour the style requires, missing.
    disabled.enabled = true;
    running.store().put_style(&disabled).await.unwrap();
    running
        .send(&request("sticker", json!({"subject": "a seal"})))
        .await;
    let parked = broker
        .next(&broker.topology.dead_letter_queue, WAIT)
        .await
        .expect("a dead-lettered message");
    let reason = parked.header(headers::REASON).unwrap();
    assert_eq!(reason, "payload.inputs.color: is required by style sticker");
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request WHERE style <> 'ghost'")
            .fetch_one(running.world.database.pool())
            .await
            .unwrap();
    assert_eq!(recorded, 0, "a refused request is never recorded");
    running.stop().await;
}
