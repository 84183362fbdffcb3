//! The ledger as strict as the real one (SPEC §3), against the in-process
//! consumer: a flow is settled only with its own viewer's token. (A debit
//! whose answer was lost, found in a history on the ledger's own clock and
//! among other services' flows: pipeline.rs and crash.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{Expected, ImageBehavior, TestWorld};
use serde_json::json;

mod support;

use support::Running;

fn from_viewer(id: &str, subject: &str) -> serde_json::Value {
    json!({"type":"image",
           "viewer":{"twitch_user_id":id,"twitch_display_name":format!("Viewer{id}")},
           "payload":{"style":"ghost","inputs":{"subject":subject}}})
}

/// Two viewers' requests interleave: the first's image is slow, so the
/// second is debited, alerted and accepted while the first still waits.
/// Each debit is accepted with its own viewer's token: the ledger answers
/// 404 to any other (and a token reused across viewers would leave the
/// first request's debit unaccepted).
#[tokio::test]
async fn each_debit_is_settled_with_its_own_viewers_token() {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_script
            .extend([ImageBehavior::Slow { millis: 1500 }, ImageBehavior::Base64])
    });
    let env = world.consumer_env().with("MODERATION", "false");
    let running = Running::start(world, env).await;
    let slow = running.send(&from_viewer("101", "a slow seal")).await;
    let quick = running.send(&from_viewer("202", "a quick seal")).await;
    for _ in 0..2 {
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    }
    let refused = running.world.fakes.with(|s| s.finalized_by_another_viewer);
    assert_eq!(refused, 0, "a flow was settled with another viewer's token");
    running.world.fakes.assert_money(&[
        Expected {
            request_id: slow,
            viewer: "101".to_owned(),
            succeeded: true,
        },
        Expected {
            request_id: quick,
            viewer: "202".to_owned(),
            succeeded: true,
        },
    ]);
    running.stop().await;
}

/// The auth service's token (an RS256 JWT, ~15 min) serves a viewer's
/// debits and settlements while it is valid: one token for a viewer's two
/// requests (four ledger calls), and a fresh one once it has expired.
#[tokio::test]
async fn a_viewers_service_token_is_reused_while_valid_and_renewed_after() {
    let world = TestWorld::start().await;
    let env = world.consumer_env().with("MODERATION", "false");
    let running = Running::start(world, env).await;
    let fakes = &running.world.fakes;
    let issued = || fakes.with(|s| s.tokens_issued);
    for subject in ["a seal", "a second seal"] {
        running.send(&from_viewer("303", subject)).await;
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    }
    assert_eq!(issued(), 1, "one token for the viewer's debits and accepts");

    // Another viewer's tokens last two seconds: once the first has expired
    // (a time, so waited for as such), the next request takes a new one.
    fakes.with(|s| s.token_lifetime = Some(std::time::Duration::from_secs(2)));
    running.send(&from_viewer("404", "a brief seal")).await;
    let asked = tokio::time::Instant::now();
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let before = issued();
    assert!(before > 1, "the second viewer has a token of its own");
    tokio::time::sleep_until(asked + std::time::Duration::from_secs(3)).await;
    running.send(&from_viewer("404", "a later seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert!(
        issued() > before,
        "an expired token was used again ({} tokens issued)",
        issued()
    );
    running.stop().await;
}
