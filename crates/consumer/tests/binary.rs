//! The real `dynamo-consumer` binary: start-up errors and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_testkit::{ImageBehavior, TestWorld, command, eventually};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");

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

#[tokio::test]
async fn dynamoctl_lists_parked_messages_and_requeues_them() {
    let world = TestWorld::start().await;
    let topology = &world.broker.topology;
    for (body, reason) in [
        (&b"{oops"[..], "message is not valid JSON"),
        (&b"[]"[..], "message: invalid type"),
    ] {
        world
            .broker
            .publisher
            .publish_json(
                &topology.dead_letter_exchange,
                body,
                dynamo_broker::Envelope {
                    message_id: None,
                    mandatory: true,
                    headers: vec![(dynamo_broker::headers::REASON.to_owned(), reason.to_owned())],
                },
            )
            .await
            .unwrap();
    }
    let ctl = env!("CARGO_BIN_EXE_dynamoctl");
    let env = world.consumer_env();
    let listed = command(ctl, &env).arg("dead-letters").output().unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let stdout = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.contains("message is not valid JSON\t{oops"),
        "{stdout}"
    );
    assert_eq!(
        world.broker.depth(&topology.dead_letter_queue).await,
        2,
        "listing leaves them parked"
    );

    let requeued = command(ctl, &env)
        .args(["dead-letters", "--requeue"])
        .output()
        .unwrap();
    assert!(requeued.status.success());
    assert_eq!(world.broker.depth(&topology.dead_letter_queue).await, 0);
    assert_eq!(
        world.broker.depth(&topology.requests_queue).await,
        2,
        "back in the request queue"
    );
}
