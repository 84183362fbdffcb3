//! The real `dynamoctl` binary: its help, and the commands against a real broker.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_testkit::{TestWorld, command, output_within};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamoctl");

fn help(args: &[&str]) -> String {
    let output = output_within(
        command(BINARY, &Env::default()).args(args),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(0), "{args:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_lists_the_commands_and_the_broker_settings() {
    let stdout = help(&["--help"]);
    for expected in [
        "publish",
        "watch",
        "dead-letters",
        "RMQ_HOST=localhost",
        "RMQ_PASSWORD=guest",
        ".env.example",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing from:\n{stdout}"
        );
    }
}

#[test]
fn every_command_has_help_with_examples() {
    for (command, example) in [
        ("publish", "dynamoctl publish - < request.json"),
        ("watch", "dynamoctl watch"),
        ("dead-letters", "dynamoctl dead-letters --requeue"),
    ] {
        // Against no broker at all: help must not connect.
        let stdout = help(&[command, "--help"]);
        assert!(stdout.contains("Examples:"), "{command}: {stdout}");
        assert!(stdout.contains(example), "{command}: {stdout}");
    }
}

#[test]
fn the_styles_commands_have_help_with_examples() {
    for (args, example) in [
        (
            ["styles", "export"],
            "dynamoctl styles export > styles.toml",
        ),
        (
            ["styles", "apply"],
            "dynamoctl styles apply --dry-run styles.toml",
        ),
    ] {
        // Against no database at all: help must not connect.
        let stdout = help(&[args[0], args[1], "--help"]);
        assert!(stdout.contains("Examples:"), "{args:?}: {stdout}");
        assert!(stdout.contains(example), "{args:?}: {stdout}");
    }
}

#[test]
fn version_prints_the_version() {
    assert_eq!(
        help(&["--version"]).trim(),
        format!("dynamoctl {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn wrong_arguments_print_the_usage_and_exit_2() {
    for args in [&[][..], &["publish"], &["fly"]] {
        let output = output_within(
            command(BINARY, &Env::default()).args(args),
            Duration::from_secs(10),
        );
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("Usage: dynamoctl"), "{args:?}: {stderr}");
    }
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
    let env = world.consumer_env();
    let listed = command(BINARY, &env).arg("dead-letters").output().unwrap();
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

    let requeued = command(BINARY, &env)
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
