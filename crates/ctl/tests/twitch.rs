//! `dynamoctl twitch login` and `dynamoctl twitch setup`, the real binary
//! against the fake Twitch and a real database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_testkit::twitch::BROADCASTER_ID;
use dynamo_testkit::{FakeTwitch, TestDatabase, command, output_within};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamoctl");

/// Runs dynamoctl off the runtime's threads, so the fake keeps answering.
async fn dynamoctl(env: &Env, args: &[&str]) -> (String, String) {
    let env = env.clone();
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        output_within(command(BINARY, &env).args(&owned), Duration::from_secs(60))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_the_grant_and_setup_creates_then_adopts_the_rewards() {
    let (database, twitch) = tokio::join!(TestDatabase::create(), FakeTwitch::start());
    let mut pairs = database.env_pairs();
    pairs.extend(twitch.env_pairs());
    let env = Env::from_pairs(pairs);

    let (stdout, _) = dynamoctl(&env, &["twitch", "login"]).await;
    assert!(stdout.contains("/activate?public=true"), "{stdout}");
    assert!(stdout.contains("enter the code"), "{stdout}");
    assert!(
        stdout.contains(&format!("user id {BROADCASTER_ID}")),
        "{stdout}"
    );
    let grant = dynamo_store::Store::new(database.pool().clone())
        .twitch_grant(dynamo_store::GrantAccount::Broadcaster)
        .await
        .unwrap()
        .expect("the grant is stored");
    assert_eq!(grant.user_id, BROADCASTER_ID);

    let (first, stderr) = dynamoctl(&env, &["twitch", "setup", "--cost", "150"]).await;
    assert!(stderr.contains("created"), "{stderr}");
    // One line per style, by id: style, status, reward id, title.
    let lines: Vec<Vec<&str>> = first.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{first}");
    assert_eq!(lines[0][..2], ["friend", "published"], "{first}");
    assert_eq!(lines[1][..2], ["ghost", "published"], "{first}");
    assert_eq!(lines[1][3], "dynamo: a ghost", "{first}");
    let rewards = twitch.with(|s| s.rewards.clone());
    assert!(
        rewards
            .iter()
            .all(|r| r.cost == 150 && r.is_user_input_required)
    );

    let (again, stderr) = dynamoctl(&env, &["twitch", "setup"]).await;
    assert_eq!(again, first, "the same rewards, adopted");
    assert!(stderr.contains("adopted"), "{stderr}");
    assert_eq!(twitch.with(|s| s.rewards.len()), 2);
}
