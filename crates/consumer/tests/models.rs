//! Models retire, and dynamo outlives them (issue 12): the model chain fails
//! over at run time, skips what is gone at start-up, copes with a server
//! that lists no models, asks each model only for what it takes, and refuses
//! to start when nothing is left — with the queue untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{FlowStatus, TestWorld, command, eventually};

mod support;

use support::{Running, WAIT, exit_of, friend, ghost};

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");

/// The models of the image calls made so far, refused ones included.
fn attempted_models(running: &Running) -> Vec<String> {
    running.world.fakes.with(|s| {
        s.image_attempts
            .iter()
            .map(|c| c["model"].as_str().unwrap_or_default().to_owned())
            .collect()
    })
}

async fn gone_models(world: &TestWorld) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM dynamo.model WHERE gone_at IS NOT NULL ORDER BY id")
        .fetch_all(world.database.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_model_retired_mid_stream_fails_over_to_the_next_with_one_debit() {
    let world = TestWorld::start().await;
    let env = world.consumer_env().with(
        "OPENAI_IMAGE_MODEL",
        "gpt-image-2.6-sunburst,gpt-image-2.6-flare",
    );
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    assert_eq!(attempted_models(&running), ["gpt-image-2.6-sunburst"]);

    running.world.fakes.retire_model("gpt-image-2.6-sunburst");
    running.send(&ghost("a walrus")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(
        attempted_models(&running),
        [
            "gpt-image-2.6-sunburst",
            "gpt-image-2.6-sunburst",
            "gpt-image-2.6-flare"
        ],
        "one call per model tried"
    );
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 2, "one debit per request");
    assert!(flows.iter().all(|f| f.status == FlowStatus::Accepted));
    assert_eq!(
        gone_models(&running.world).await,
        ["gpt-image-2.6-sunburst"]
    );

    // The fleet learned it: the next request goes straight to flare.
    running.send(&ghost("an otter")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    assert_eq!(
        attempted_models(&running).last().unwrap(),
        "gpt-image-2.6-flare"
    );
    assert_eq!(attempted_models(&running).len(), 4);
    running.stop().await;
}

#[tokio::test]
async fn a_model_gone_at_start_up_is_skipped_and_shown_as_gone() {
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGE_MODEL", "gpt-image-1.5,gpt-image-2.6-sunburst")
        .with("OPENAI_CHAT_MODEL", "gpt-5-mini,gpt-6-luna");
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    assert_eq!(
        attempted_models(&running),
        ["gpt-image-2.6-sunburst"],
        "the retired model is never called"
    );
    let store = dynamo_store::Store::new(running.world.database.pool().clone());
    let models = store.configured_models().await.unwrap();
    let find = |id: &str| models.iter().find(|m| m.id == id).unwrap().clone();
    assert!(find("gpt-image-1.5").gone);
    assert!(!find("gpt-image-2.6-sunburst").gone);
    let chat = find("gpt-5-mini");
    assert_eq!(chat.variable, "OPENAI_CHAT_MODEL");
    assert_eq!(chat.shutdown_date.unwrap().to_string(), "2026-12-11");
    assert!(chat.days_left.is_some() && !chat.gone);
    running.stop().await;
}

#[tokio::test]
async fn a_server_without_a_models_endpoint_is_fine() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| s.no_models_endpoint = true);
    let env = world.consumer_env();
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    assert!(gone_models(&running.world).await.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn ghosts_ask_for_a_jpeg_at_80_and_friends_on_2_6_for_transparency() {
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGE_MODEL", "gpt-image-2.6-sunburst");
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    running.send(&friend("orange", "a robot")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);

    let calls = running.world.fakes.with(|s| s.image_calls.clone());
    assert_eq!(calls[0]["output_format"], "jpeg");
    assert_eq!(calls[0]["output_compression"], 80);
    assert!(calls[0].get("background").is_none());
    assert_eq!(calls[1]["background"], "transparent");
    assert_eq!(calls[1]["output_format"], "webp");
    // Not keyed: the recorded colour is the complement the prompt named.
    let background: String =
        sqlx::query_scalar("SELECT color FROM dynamo.image WHERE color IS NOT NULL")
            .fetch_one(running.world.database.pool())
            .await
            .unwrap();
    let complement = dynamo_wire::Color::Orange.complement().rgb();
    assert_eq!(background, dynamo_imaging::hex_color(complement));
    running.stop().await;
}

#[tokio::test]
async fn a_model_refusing_transparency_loses_the_parameter_fleet_wide_and_is_keyed() {
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGE_MODEL", "gpt-image-2");
    let parameters = "gpt-image-2=quality+output_format+background";
    let running = Running::start(world, env.with("OPENAI_MODEL_PARAMETERS", parameters)).await;
    running.send(&friend("orange", "a robot")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let attempts = running.world.fakes.with(|s| s.image_attempts.clone());
    assert_eq!(attempts.len(), 2, "refused once, then retried at once");
    assert_eq!(attempts[0]["background"], "transparent");
    assert!(attempts[1].get("background").is_none());
    assert_eq!(running.world.fakes.flows().len(), 1, "one debit");
    let refused: Vec<(String, String)> =
        sqlx::query_as("SELECT model, parameter FROM dynamo.model_parameter_refusal")
            .fetch_all(running.world.database.pool())
            .await
            .unwrap();
    assert_eq!(
        refused,
        [("gpt-image-2".to_owned(), "background".to_owned())]
    );

    running.send(&friend("red", "a fox")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    let attempts = running.world.fakes.with(|s| s.image_attempts.clone());
    assert_eq!(attempts.len(), 3, "not asked again");
    running.stop().await;
}

#[tokio::test]
async fn with_every_image_model_gone_the_consumer_refuses_to_start_and_consumes_nothing() {
    let world = TestWorld::start().await;
    world
        .broker
        .publish_request(
            &serde_json::to_vec(&ghost("a seal")).unwrap(),
            Some(uuid::Uuid::new_v4()),
        )
        .await;
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGE_MODEL", "gpt-image-1.5");
    // Before the fix the consumer started and consumed: a timeout, not a hang.
    let (code, stderr) = exit_of(&env).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("OPENAI_IMAGE_MODEL") && stderr.contains("gpt-image-2.6-sunburst"),
        "{stderr}"
    );
    assert_eq!(world.fakes.with(|s| s.image_attempts.len()), 0);
    eventually("the request still queued", WAIT, || {
        let broker = &world.broker;
        async move { (broker.depth(&broker.topology.requests_queue).await == 1).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_model_gone_at_start_up_is_reported_in_one_error_line_naming_the_setting() {
    use tokio::io::AsyncBufReadExt;
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGE_MODEL", "gpt-image-1.5,gpt-image-2.6-sunburst");
    let mut child = tokio::process::Command::from(command(BINARY, &env))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut start_up = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let ready = line.contains("dynamo-consumer ready");
            start_up.push(line);
            if ready {
                break;
            }
        }
    })
    .await
    .expect("the consumer gets ready");
    let reports: Vec<&String> = start_up
        .iter()
        .filter(|line| line.contains("gpt-image-1.5"))
        .filter(|line| !line.contains("dynamo-consumer ready"))
        .collect();
    assert_eq!(reports.len(), 1, "{start_up:#?}");
    assert!(
        reports[0].contains("ERROR") && reports[0].contains("OPENAI_IMAGE_MODEL"),
        "{}",
        reports[0]
    );
    child.kill().await.unwrap();
}
