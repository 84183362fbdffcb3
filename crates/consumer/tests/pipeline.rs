//! dynamo-consumer end to end: the real consumer (in-process, via `run`)
//! against real PostgreSQL, RabbitMQ and moto, with fake auth, ledger, OpenAI
//! and Discord servers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::Shutdown;
use dynamo_store::StepFailure;
use dynamo_testkit::{Captured, Expected, FlowStatus, ImageBehavior, TestWorld, eventually};
use image::GenericImageView;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

mod support;

use support::{Running, WAIT, ghost};

fn friend(color: &str, subject: &str) -> Value {
    json!({"type":"image",
           "viewer":{"twitch_user_id":"41252365","twitch_display_name":"TapeHead_99"},
           "state":{"broadcast_id":0,"screening_id":"00000000-0000-0000-0000-000000000000","tape_id":0},
           "payload":{"style":"friend","inputs":{"color":color,"subject":subject}}})
}

fn key_of(url: &str, bucket: &str) -> String {
    url.split_once(&format!("/{bucket}/")).unwrap().1.to_owned()
}

#[tokio::test]
async fn a_ghost_becomes_a_public_jpeg_an_alert_and_a_final_debit() {
    let running = Running::default(TestWorld::start().await).await;
    let id = running.send(&ghost("a seal")).await;

    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(result.message_id.as_deref(), Some(id.to_string().as_str()));

    let alert = running
        .world
        .broker
        .next(&running.alerts, WAIT)
        .await
        .unwrap();
    assert!(alert.persistent);
    assert_eq!(alert.message_id.as_deref(), Some(id.to_string().as_str()));
    let url = alert.body["payload"]["details"]["image_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        alert.body,
        json!({"type":"image","payload":{"type":"ghost",
            "viewer":{"twitch_user_id":"90790024","twitch_display_name":"wasabimilkshake"},
            "details":{"image_url": url, "description":"a seal"}}})
    );
    assert!(url.ends_with(&format!("{id}/{id}-0.jpg")), "{url}");

    let bucket = &running.world.bucket;
    let (bytes, content_type, public, cache) = bucket.object(&key_of(&url, &bucket.name)).await;
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    assert!(public, "the object must be public-read");
    assert!(cache.unwrap_or_default().contains("max-age"));
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (1024, 1024));

    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].status, FlowStatus::Accepted);
    assert_eq!(flows[0].points, 200);
    assert_eq!(flows[0].request_id, id.to_string());

    let calls = running.world.fakes.with(|s| s.image_calls.clone());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["user"], "90790024");
    assert_eq!(calls[0]["size"], "1024x1024");
    assert!(
        calls[0].get("response_format").is_none(),
        "GPT-image models refuse response_format"
    );
    assert_eq!(
        calls[0]["prompt"],
        "a ghostly image of a seal, with glitchy VHS artifacts, dark background"
    );

    let row: (String, Option<i64>, Option<Uuid>, Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT state, broadcast_id, screening_id, tape_id, error_message FROM dynamo.image_request WHERE id = $1",
    )
    .bind(id)
    .fetch_one(running.world.database.pool())
    .await
    .unwrap();
    assert_eq!(row.0, "succeeded");
    assert_eq!(row.1, Some(13));
    assert_eq!(row.3, Some(124));
    assert_eq!(row.4, None);

    let posted = eventually("the Discord post", WAIT, || {
        let posts = running.world.fakes.with(|s| s.discord_posts.clone());
        async move { posts.first().cloned() }
    })
    .await;
    assert_eq!(posted.0, "ghosts");
    running.stop().await;
}

#[tokio::test]
async fn a_friend_is_named_keyed_and_stored_as_webp_with_alpha() {
    let running = Running::default(TestWorld::start().await).await;
    let id = running
        .send(&friend("orange", "a robot who loves soup"))
        .await;

    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(result.body["name"], "Sealy");

    let alert = running
        .world
        .broker
        .next(&running.alerts, WAIT)
        .await
        .unwrap();
    let details = &alert.body["payload"]["details"];
    assert_eq!(alert.body["payload"]["type"], "friend");
    assert_eq!(details["name"], "Sealy");
    assert_eq!(details["description"], "a robot who loves soup");
    let background = details["background_color"].as_str().unwrap();
    // The fake draws sky-blue (the complement of orange) behind the figure.
    let expected = dynamo_wire::Color::SkyBlue.rgb();
    let hex = |i: usize| u8::from_str_radix(&background[1 + 2 * i..3 + 2 * i], 16).unwrap();
    for (i, channel) in expected.iter().enumerate() {
        assert!(
            hex(i).abs_diff(*channel) <= 8,
            "{background} vs {expected:?}"
        );
    }

    let url = details["image_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("{id}-0.webp")));
    let bucket = &running.world.bucket;
    let (bytes, content_type, public, _) = bucket.object(&key_of(url, &bucket.name)).await;
    assert_eq!(content_type.as_deref(), Some("image/webp"));
    assert!(public);
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).unwrap();
    assert!(decoded.color().has_alpha());
    let rgba = decoded.to_rgba8();
    assert_eq!(
        rgba.get_pixel(5, 5)[3],
        0,
        "the corner (background) is transparent"
    );
    assert_eq!(rgba.get_pixel(512, 560)[3], 255, "the figure stays opaque");
    let transparent = rgba.pixels().filter(|p| p[3] == 0).count() as f64 / (1024.0 * 1024.0);
    assert!(
        transparent > 0.5,
        "most of the picture is background: {transparent}"
    );

    let prompt: String =
        sqlx::query_scalar("SELECT prompt FROM dynamo.image_request WHERE id = $1")
            .bind(id)
            .fetch_one(running.world.database.pool())
            .await
            .unwrap();
    assert!(
        prompt.starts_with("an orange robot who loves soup"),
        "{prompt}"
    );
    assert!(prompt.contains("solid sky-blue background"), "{prompt}");
    let answer: (String, String) =
        sqlx::query_as("SELECT prompt, value FROM dynamo.answer WHERE image_request_id = $1")
            .bind(id)
            .fetch_one(running.world.database.pool())
            .await
            .unwrap();
    assert_eq!(answer.1, "Sealy");
    assert!(answer.0.contains("a robot who loves soup"));
    let (color, screening): (Option<String>, Option<Uuid>) = sqlx::query_as(
        "SELECT i.color, r.screening_id FROM dynamo.image i JOIN dynamo.image_request r ON r.id = i.image_request_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_one(running.world.database.pool())
    .await
    .unwrap();
    assert_eq!(color.as_deref(), Some(background));
    assert_eq!(
        screening, None,
        "an all-zero screening id is stored as NULL"
    );
    running.stop().await;
}

/// OpenAI shuts models down (gpt-image-1.5 went on 2026-12-01): with the
/// defaults, against a fake that answers as OpenAI does today, both styles
/// work, and every model named has no shutdown announced.
#[tokio::test]
async fn the_default_models_are_current_at_openai() {
    let running = Running::default(TestWorld::start().await).await;
    running.send(&ghost("a seal")).await;
    let ghost_result = running.result().await;
    assert_eq!(
        ghost_result.body["state"], "succeeded",
        "{}",
        ghost_result.body
    );
    running.send(&friend("red", "a robot")).await;
    let friend_result = running.result().await;
    assert_eq!(
        friend_result.body["state"], "succeeded",
        "{}",
        friend_result.body
    );

    let (named, catalogue) = running.world.fakes.with(|state| {
        let named: Vec<String> = state
            .image_calls
            .iter()
            .chain(&state.chat_calls)
            .chain(&state.moderation_calls)
            .map(|call| call["model"].as_str().unwrap().to_owned())
            .collect();
        (named, state.models.clone())
    });
    assert_eq!(
        named.len(),
        5,
        "two images, a name, two screenings: {named:?}"
    );
    for model in named {
        let known = catalogue.iter().find(|m| m.id == model);
        assert!(
            known.is_some_and(|m| !m.gone && m.shutdown_date.is_none()),
            "{model} is not a current model: {known:?}"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn not_enough_points_makes_no_openai_call() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.balances.insert("90790024".into(), 50));
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;

    let result = running.result().await;
    assert_eq!(result.body["state"], "failed");
    assert_eq!(result.body["reason"], "not enough points");
    assert_eq!(result.body["image_url"], Value::Null);
    assert!(running.world.fakes.with(|s| s.image_calls.is_empty()));
    assert!(running.world.fakes.flows().is_empty());
    assert!(running.world.bucket.keys().await.is_empty());
    assert!(
        running
            .world
            .broker
            .next(&running.alerts, Duration::from_millis(200))
            .await
            .is_none()
    );
    running.stop().await;
}

async fn assert_refunded_without_alert(running: &Running, state: &str) -> Captured {
    let result = running.result().await;
    assert_eq!(result.body["state"], state, "{}", result.body);
    assert!(
        result.body["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[0].status,
        FlowStatus::Rejected,
        "the points come back"
    );
    assert!(
        running
            .world
            .broker
            .next(&running.alerts, Duration::from_millis(200))
            .await
            .is_none()
    );
    result
}

#[tokio::test]
async fn a_content_policy_refusal_is_rejected_and_refunded() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_script.push_back(ImageBehavior::ContentPolicy));
    let running = Running::default(world).await;
    running.send(&ghost("something awful")).await;
    let result = assert_refunded_without_alert(&running, "rejected").await;
    assert!(
        result.body["reason"]
            .as_str()
            .unwrap()
            .contains("content policy")
    );
    assert_eq!(
        running.world.fakes.with(|s| s.image_calls.len()),
        1,
        "no retry"
    );
    running.stop().await;
}

/// DALL-E models refused with `content_policy_violation`, as a compatible
/// server still may: the same end as today's `moderation_blocked`.
#[tokio::test]
async fn a_legacy_content_policy_refusal_is_rejected_too() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_script.push_back(ImageBehavior::LegacyContentPolicy));
    let running = Running::default(world).await;
    running.send(&ghost("something awful")).await;
    assert_refunded_without_alert(&running, "rejected").await;
    assert_eq!(
        running.world.fakes.with(|s| s.image_calls.len()),
        1,
        "no retry"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_flagged_prompt_is_rejected_before_an_image_is_paid_for() {
    let running = Running::default(TestWorld::start().await).await;
    running.send(&ghost("a forbidden thing")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert!(result.body["reason"].as_str().unwrap().contains("violence"));
    assert!(running.world.fakes.with(|s| s.image_calls.is_empty()));
    // Screened before the debit: nothing to refund.
    assert!(running.world.fakes.flows().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn image_errors_that_persist_fail_with_a_refund() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_script.extend([ImageBehavior::ServerError; 3]));
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let result = assert_refunded_without_alert(&running, "failed").await;
    assert!(
        result.body["reason"]
            .as_str()
            .unwrap()
            .contains("generating the image")
    );
    assert_eq!(
        running.world.fakes.with(|s| s.image_calls.len()),
        3,
        "RETRY_MAX_ATTEMPTS"
    );
    running.stop().await;
}

#[tokio::test]
async fn transient_image_errors_are_retried_to_success() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script.extend([
            ImageBehavior::ServerError,
            ImageBehavior::RateLimited { retry_after_ms: 20 },
        ])
    });
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded");
    assert_eq!(running.world.fakes.with(|s| s.image_calls.len()), 3);
    // Each retried failure is logged with its reason, for the operators.
    let failures = step_failures(&running, &result).await;
    let logged = steps_and_attempts(&failures);
    assert_eq!(logged, [("image", 1), ("image", 2)]);
    assert!(failures[0].reason.contains("500"), "{:?}", failures[0]);
    assert!(failures[1].reason.contains("rate"), "{:?}", failures[1]);
    running.stop().await;
}

/// Running out of credit says nothing about the viewer's prompt (SPEC
/// §6.10): the fleet holds, one probe at a time tries again, and work resumes
/// once credit is back. No request fails, and only a few calls are refused.
#[tokio::test]
async fn running_out_of_credit_holds_requests_until_credit_is_back() {
    const REQUESTS: usize = 6;
    let outage = Duration::from_secs(25);
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.out_of_credit_until = Some(std::time::Instant::now() + outage);
        s.balances.insert("90790024".into(), 100_000);
    });
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("UPSTREAM_PROBE_INTERVAL", "5s");
    let running = Running::start(world, env).await;
    for i in 0..REQUESTS {
        running.send(&ghost(&format!("seal number {i}"))).await;
    }
    let store = dynamo_store::Store::new(running.world.database.pool().clone());
    let hold = eventually("the fleet to hold", WAIT, || async {
        store.current_hold("openai").await.unwrap()
    })
    .await;
    assert!(hold.reason.contains("out of credit"), "{}", hold.reason);

    for _ in 0..REQUESTS {
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    }
    let refused = running.world.fakes.with(|s| s.refused_for_credit);
    // Those in flight when credit ran out (prefetch 4), then one probe per
    // interval over the outage.
    let most = 4 + (outage.as_secs() / 5) as usize + 1;
    assert!((1..=most).contains(&refused), "{refused} calls refused");
    assert_eq!(
        store.current_hold("openai").await.unwrap(),
        None,
        "the hold ended"
    );
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), REQUESTS, "one debit each");
    assert!(flows.iter().all(|f| f.status == FlowStatus::Accepted));
    running.stop().await;
}

#[tokio::test]
async fn a_url_answer_is_downloaded() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_script.push_back(ImageBehavior::Url));
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    running.stop().await;
}

#[tokio::test]
async fn a_download_that_is_not_an_image_fails_with_a_refund() {
    let world = TestWorld::start().await;
    world
        .fakes
        .with(|s| s.image_script.push_back(ImageBehavior::UrlNotAnImage));
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let result = assert_refunded_without_alert(&running, "failed").await;
    assert!(
        result.body["reason"]
            .as_str()
            .unwrap()
            .contains("not an image"),
        "{}",
        result.body
    );
    running.stop().await;
}

#[tokio::test]
async fn a_chat_failure_fails_a_friend_with_a_refund() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| s.chat_refuses = true);
    let running = Running::default(world).await;
    running.send(&friend("red", "a fox")).await;
    assert_refunded_without_alert(&running, "failed").await;
    assert!(running.world.fakes.with(|s| s.image_calls.is_empty()));
    running.stop().await;
}

#[tokio::test]
async fn an_upload_failure_fails_with_a_refund() {
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("SPACES_BUCKET_NAME", "no-such-bucket-here");
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    let result = assert_refunded_without_alert(&running, "failed").await;
    assert!(
        result.body["reason"]
            .as_str()
            .unwrap()
            .contains("storing the image")
    );
    running.stop().await;
}

#[tokio::test]
async fn an_alert_nobody_receives_is_never_counted_as_shown() {
    let world = TestWorld::start().await;
    // Results are captured; the alerts exchange has no queue bound at all.
    let results = world
        .broker
        .capture(&world.broker.topology.results_exchange)
        .await;
    let config = ConsumerConfig::from_env(&world.consumer_env()).unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(dynamo_consumer::run(config, shutdown.clone()));
    world
        .broker
        .publish_request(
            &serde_json::to_vec(&ghost("a seal")).unwrap(),
            Some(Uuid::new_v4()),
        )
        .await;
    let result = world.broker.next(&results, WAIT).await.unwrap();
    assert_eq!(result.body["state"], "failed");
    assert!(
        result.body["reason"].as_str().unwrap().contains("alert"),
        "{}",
        result.body
    );
    assert_eq!(world.fakes.flows()[0].status, FlowStatus::Rejected);
    shutdown.trigger();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_ledger_that_fails_to_accept_is_retried_until_the_debit_is_final() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| s.accept_failures = 2);
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(
        running.world.fakes.with(|s| s.accept_failures),
        0,
        "the ledger refused both accepts it was set to refuse"
    );
    let failures = step_failures(&running, &result).await;
    let logged = steps_and_attempts(&failures);
    assert_eq!(logged, [("accept", 1), ("accept", 2)], "{failures:?}");
    assert_eq!(running.world.fakes.flows()[0].status, FlowStatus::Accepted);
    assert!(
        running
            .world
            .broker
            .next(&running.alerts, WAIT)
            .await
            .is_some()
    );
    running.stop().await;
}

#[tokio::test]
async fn invalid_messages_are_dead_lettered_while_valid_ones_succeed() {
    let running = Running::default(TestWorld::start().await).await;
    let broker = &running.world.broker;
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not valid JSON"),
        (b"".to_vec(), "empty"),
        (
            serde_json::to_vec(&ghost("   ")).unwrap(),
            "payload.inputs.subject",
        ),
        (
            serde_json::to_vec(&friend("mauve", "a cat")).unwrap(),
            "payload.inputs.color",
        ),
        (
            serde_json::to_vec(&json!({"type":"video"})).unwrap(),
            "type",
        ),
        (vec![b' '; 2 * 1024 * 1024], "empty"),
    ];
    for (index, (body, _)) in bad.iter().enumerate() {
        broker.publish_request(body, None).await;
        if index == 2 {
            running.send(&ghost("a seal")).await;
        }
    }
    running.send(&ghost("a walrus")).await;

    for _ in 0..2 {
        assert_eq!(running.result().await.body["state"], "succeeded");
    }
    let mut reasons = Vec::new();
    for _ in 0..bad.len() {
        let parked = broker
            .next(&broker.topology.dead_letter_queue, WAIT)
            .await
            .expect("a dead-lettered message");
        let reason = parked
            .headers
            .iter()
            .find(|(k, _)| k == dynamo_broker::headers::REASON)
            .map(|(_, v)| v.clone())
            .expect("the reason header");
        reasons.push((parked.raw, reason));
    }
    for (body, expected) in &bad {
        let found = reasons
            .iter()
            .find(|(raw, _)| raw == body)
            .expect("each bad message is parked as sent");
        assert!(
            found.1.contains(expected),
            "{:?} should mention {expected}",
            found.1
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn the_placeholder_provider_and_filesystem_storage_run_the_whole_pipeline() {
    let world = TestWorld::start().await;
    let dir = std::env::temp_dir().join(format!("dynamo-test-{}", Uuid::new_v4()));
    let env = world
        .consumer_env()
        .with("IMAGE_PROVIDER", "placeholder")
        .with("STORAGE_BACKEND", "filesystem")
        .with("STORAGE_DIR", dir.to_string_lossy())
        .with("STORAGE_PUBLIC_URL", "http://localhost:8080/images");
    let running = Running::start(world, env).await;
    let id = running.send(&friend("green", "a frog")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(
        result.body["image_url"],
        format!("http://localhost:8080/images/{id}/{id}-0.webp")
    );
    let stored = std::fs::read(dir.join(format!("{id}/{id}-0.webp"))).unwrap();
    let decoded = image::load_from_memory(&stored).unwrap();
    assert!(decoded.color().has_alpha());
    assert!(
        running
            .world
            .fakes
            .with(|s| s.image_calls.is_empty() && s.chat_calls.is_empty())
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_redelivered_request_is_not_generated_or_charged_twice() {
    let first = Running::default(TestWorld::start().await).await;
    let id = first.send(&ghost("a seal")).await;
    assert_eq!(first.result().await.body["state"], "succeeded");
    let alerts = first.alerts.clone();
    // Stopped, so that nothing of the first delivery is still at work.
    let world = first.stop().await;
    let pool = world.database.pool().clone();
    let updated_at = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "SELECT updated_at FROM dynamo.image_request WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = updated_at(pool.clone()).await;
    // The same message again, as after a crash between commit and ack,
    // taken by another consumer.
    world
        .broker
        .publish_request(&serde_json::to_vec(&ghost("a seal")).unwrap(), Some(id))
        .await;
    let queue = world.broker.topology.requests_queue.clone();
    assert_eq!(world.broker.depth(&queue).await, 1);
    let second = Running::default(world).await;
    eventually("the second consumer to take the message", WAIT, || {
        let pool = pool.clone();
        async move { (updated_at(pool).await > before).then_some(()) }
    })
    .await;
    // A graceful stop waits for the message in hand to be handled; one
    // still unacknowledged would go back to the queue.
    let second_alerts = second.alerts.clone();
    let world = second.stop().await;
    assert_eq!(world.fakes.with(|s| s.image_calls.len()), 1);
    assert_eq!(world.fakes.flows().len(), 1);
    assert_eq!(
        world.broker.depth(&queue).await,
        0,
        "the redelivered message was handled and acknowledged"
    );
    assert!(world.broker.next(&alerts, WAIT).await.is_some());
    assert!(world.broker.next(&alerts, Duration::ZERO).await.is_none());
    assert!(
        world
            .broker
            .next(&second_alerts, Duration::ZERO)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_timed_out_image_call_is_retried() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script
            .push_back(ImageBehavior::Slow { millis: 2000 })
    });
    let env = world.consumer_env().with("OPENAI_TIMEOUT", "500ms");
    let running = Running::start(world, env).await;
    running.send(&ghost("a slow seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    assert_eq!(
        running.world.fakes.with(|s| s.image_calls.len()),
        2,
        "timed out once, then answered"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_ledger_briefly_down_is_waited_for() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| s.debit_failures = 2);
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(
        running.world.fakes.with(|s| s.debit_failures),
        0,
        "the ledger refused both debits it was set to refuse"
    );
    let failures = step_failures(&running, &result).await;
    let logged = steps_and_attempts(&failures);
    assert_eq!(logged, [("debit", 1), ("debit", 2)], "{failures:?}");
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].status, FlowStatus::Accepted);
    running.stop().await;
}

/// The ledger made the debit but its answer never reached us (a gateway
/// timeout): the retry finds it in the ledger's history and adopts it
/// instead of debiting the viewer a second time (SPEC §6.3).
#[tokio::test]
async fn a_debit_whose_answer_was_lost_is_adopted_not_made_again() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| s.debit_answers_lost = 1);
    let running = Running::default(world).await;
    let id = running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let (lost_left, history_reads) = running
        .world
        .fakes
        .with(|s| (s.debit_answers_lost, s.history_reads));
    assert_eq!(lost_left, 0, "the ledger really lost an answer");
    assert!(history_reads >= 1, "the history was read");
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1, "one debit, adopted: {flows:?}");
    // Its own, found in a history 20 s behind our clock, beside another
    // service's look-alike pending debit, which stays untouched.
    running.world.fakes.assert_money(&[Expected {
        request_id: id,
        viewer: "90790024".to_owned(),
        succeeded: true,
    }]);
    running.stop().await;
}

/// The ledger made the debit, its answer was lost, and the history could
/// not be read before the request gave up: the debit must not stay pending.
/// Settling finds it in the history and refunds it (SPEC §6.3).
#[tokio::test]
async fn a_debit_never_heard_of_is_refunded_when_its_request_gives_up() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.debit_answers_lost = 1;
        s.history_failures = 5;
    });
    let running = Running::default(world).await;
    let id = running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "failed", "{}", result.body);
    let (lost_left, history_failures_left) = running
        .world
        .fakes
        .with(|s| (s.debit_answers_lost, s.history_failures));
    assert_eq!(lost_left, 0, "the ledger really lost an answer");
    assert!(
        history_failures_left < 5,
        "the history really failed ({history_failures_left} failures left)"
    );
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1, "one debit: {flows:?}");
    assert_eq!(flows[0].status, FlowStatus::Rejected, "refunded: {flows:?}");
    running.world.fakes.assert_money(&[Expected {
        request_id: id,
        viewer: "90790024".to_owned(),
        succeeded: false,
    }]);
    running.stop().await;
}

#[tokio::test]
async fn faults_that_never_clear_end_failed_with_a_refund() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script
            .extend([ImageBehavior::RateLimited { retry_after_ms: 10 }; 3])
    });
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let result = assert_refunded_without_alert(&running, "failed").await;
    assert!(
        result.body["reason"]
            .as_str()
            .unwrap()
            .contains("rate limiting"),
        "{}",
        result.body
    );
    running.stop().await;
}

/// The step failures logged for the request a result message reports.
async fn step_failures(running: &Running, result: &Captured) -> Vec<StepFailure> {
    let id = result.message_id.clone().unwrap().parse().unwrap();
    dynamo_store::Store::new(running.world.database.pool().clone())
        .step_failures(id)
        .await
        .unwrap()
}

fn steps_and_attempts(failures: &[StepFailure]) -> Vec<(&str, i32)> {
    failures
        .iter()
        .map(|f| (f.step.as_str(), f.attempt))
        .collect()
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn dropped_connections_to_openai_are_retried() {
    let world = TestWorld::start().await;
    let proxy = dynamo_testkit::FlakyProxy::start(host_port(&world.fakes.url), 2).await;
    let env = world
        .consumer_env()
        .with("OPENAI_BASE_URL", format!("{}/openai/v1", proxy.url))
        .with("MODERATION", "false");
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    assert_eq!(proxy.dropped(), 2);
    running.stop().await;
}

#[tokio::test]
async fn a_consumer_cut_off_from_the_broker_subscribes_again_and_loses_nothing() {
    let world = TestWorld::start().await;
    let settings = &world.broker.settings;
    let proxy =
        dynamo_testkit::FlakyProxy::start(format!("{}:{}", settings.host, settings.port), 0).await;
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    let env = world
        .consumer_env()
        .with("RMQ_HOST", "127.0.0.1")
        .with("RMQ_PORT", port);
    let running = Running::start(world, env).await;
    let first = running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");

    proxy.set_down(true);
    // Published straight to RabbitMQ while the consumer cannot reach it: the
    // request waits in the queue, taken by nobody. (The first one may wait
    // there too: the cut can come before its acknowledgement reached the
    // broker, and then RabbitMQ hands it out again.)
    let id = running.send(&ghost("a second seal")).await;
    let broker = &running.world.broker;
    dynamo_testkit::eventually("the request to wait in the queue", WAIT, || async {
        (broker.depth(&broker.topology.requests_queue).await >= 1).then_some(())
    })
    .await;

    proxy.set_down(false);
    let result = loop {
        let result = running.result().await;
        if result.message_id.as_deref() == Some(id.to_string().as_str()) {
            break result;
        }
        // A redelivered first request is answered again, never run again.
        assert_eq!(
            result.message_id.as_deref(),
            Some(first.to_string().as_str())
        );
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    };
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(running.world.fakes.with(|s| s.image_calls.len()), 2);
    running.stop().await;
}

#[tokio::test]
async fn storage_briefly_down_is_waited_for() {
    let world = TestWorld::start().await;
    let proxy = dynamo_testkit::FlakyProxy::start(host_port(&world.bucket.endpoint), 2).await;
    let env = world
        .consumer_env()
        .with("SPACES_ENDPOINT_URL", proxy.url.clone());
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(proxy.dropped(), 2);
    assert_eq!(running.world.bucket.keys().await.len(), 1);
    // Retried in place, and still on the request's timeline.
    let failures = step_failures(&running, &result).await;
    let logged = steps_and_attempts(&failures);
    assert_eq!(logged, [("upload", 1), ("upload", 2)], "{failures:?}");
    running.stop().await;
}
