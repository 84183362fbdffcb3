//! The real `dynamo-consumer` binary: its help, start-up errors and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_testkit::{ImageBehavior, TestWorld, assert_version, command, eventually, help_of};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");

#[test]
fn help_lists_the_settings_and_starts_nothing_without_any_environment() {
    // With no environment at all, starting would fail on OPENAI_API_KEY (exit
    // 2); --help must not get that far.
    let stdout = help_of(BINARY);
    for setting in [
        "PGHOST=localhost",
        "RMQ_HOST=localhost",
        "IMAGE_PROVIDER=openai",
        "OPENAI_API_KEY=",
        "STORAGE_BACKEND=s3",
        "CONSUMER_PREFETCH=4",
        "LOG_FORMAT=text",
    ] {
        assert!(
            stdout.contains(setting),
            "{setting} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains(".env.example"), "{stdout}");
    assert!(
        !stdout.contains("LISTEN_PORT"),
        "the server's settings are not the consumer's"
    );
}

#[test]
fn version_prints_the_version() {
    assert_version(BINARY, "dynamo-consumer");
}

#[test]
fn a_malformed_setting_stops_start_up_with_one_line_naming_it() {
    let env = Env::from_pairs([
        ("IMAGE_PROVIDER", "placeholder"),
        ("STORAGE_BACKEND", "filesystem"),
        ("POINTS_COST", "0"),
        ("PGPORT", "five"),
    ]);
    let output = command(BINARY, &env).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PGPORT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_api_key_says_what_to_do() {
    let env = Env::from_pairs([("STORAGE_BACKEND", "filesystem"), ("POINTS_COST", "0")]);
    let output = command(BINARY, &env).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("OPENAI_API_KEY") && stderr.contains("IMAGE_PROVIDER=placeholder"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_and_keeps_the_rest_queued() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script
            .push_back(ImageBehavior::Slow { millis: 1500 })
    });
    let (results, _alerts) = world.broker.capture_outputs().await;
    let env = world.consumer_env().with("CONSUMER_PREFETCH", "1");
    let mut child = tokio::process::Command::from(command(BINARY, &env))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let request = |subject: &str| {
        json!({"type":"image",
               "viewer":{"twitch_user_id":"1","twitch_display_name":"viewer"},
               "payload":{"style":"ghost","inputs":{"subject":subject}}})
    };
    for subject in ["a slow seal", "a waiting walrus"] {
        world
            .broker
            .publish_request(
                &serde_json::to_vec(&request(subject)).unwrap(),
                Some(uuid::Uuid::new_v4()),
            )
            .await;
    }
    eventually("the first image call", Duration::from_secs(60), || {
        let calls = world.fakes.with(|s| s.image_calls.len());
        async move { (calls == 1).then_some(()) }
    })
    .await;

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the consumer exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let result = world
        .broker
        .next(&results, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(result.body["state"], "succeeded");
    assert_eq!(result.body["description"], "a slow seal");
    assert_eq!(
        world.fakes.with(|s| s.image_calls.len()),
        1,
        "the second request was not started"
    );
    assert_eq!(
        world
            .broker
            .depth(&world.broker.topology.requests_queue)
            .await,
        1,
        "the request not started stays queued for the next consumer"
    );
}
