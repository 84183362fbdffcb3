//! The content rules (issue 29) and moderation, applied before anything is
//! paid for: the real consumer against real PostgreSQL and RabbitMQ, the
//! fake OpenAI's and the fake ledger's own records counting what was
//! called and charged. The rules are changed in the database while the
//! consumer runs: the next request goes by them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::{RuleNumbers, RuleVerdict};
use dynamo_testkit::TestWorld;
use dynamo_wire::BlockedPhrase;
use std::time::Duration;

mod support;

use support::{Running, friend, ghost};

/// Nothing was called at OpenAI but moderation, and nothing was debited.
fn assert_nothing_paid(running: &Running) {
    let (chats, images) = running
        .world
        .fakes
        .with(|s| (s.chat_calls.len(), s.image_calls.len()));
    assert_eq!((chats, images), (0, 0), "no name, no image");
    assert!(running.world.fakes.flows().is_empty(), "nothing debited");
}

async fn block(running: &Running, phrase: &str) {
    let phrase = BlockedPhrase::parse(phrase).unwrap();
    assert!(
        running
            .store()
            .block_phrase(&phrase.key(), phrase.as_str())
            .await
            .unwrap()
    );
}

async fn set_numbers(running: &Running, cooldown_seconds: i32, max_per_broadcast: i32) {
    running
        .store()
        .set_rule_numbers(RuleNumbers {
            cooldown_seconds,
            max_per_broadcast,
            broadcast_window_minutes: 720,
        })
        .await
        .unwrap();
}

/// Moderation used to come after the debit and after the friend's name:
/// a refused friend cost a chat call and a debit and its refund.
#[tokio::test]
async fn a_flagged_friend_costs_no_chat_call_and_no_debit() {
    let running = Running::default(TestWorld::start().await).await;
    running.send(&friend("red", "a forbidden robot")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert!(
        result.body["reason"].as_str().unwrap().contains("violence"),
        "{}",
        result.body
    );
    assert_eq!(running.world.fakes.with(|s| s.moderation_calls.len()), 1);
    assert_nothing_paid(&running);
    running.stop().await;
}

#[tokio::test]
async fn a_blocked_word_ends_the_request_before_any_call_without_naming_the_word() {
    let running = Running::default(TestWorld::start().await).await;
    block(&running, "seal").await;
    let id = running.send(&ghost("a GIANT S3AL!")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    let reason = result.body["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "refused by the content rules: it contains a word or phrase the streamer blocked"
    );
    assert!(!reason.to_lowercase().contains("seal"));
    assert_eq!(running.world.fakes.with(|s| s.moderation_calls.len()), 0);
    assert_nothing_paid(&running);
    assert_eq!(
        running.store().rules_verdict(id).await.unwrap(),
        Some(RuleVerdict::Blocklist)
    );

    // Whole words only: "seals" and "sealant" are not "seal".
    running.send(&ghost("two seals and some sealant")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    running.stop().await;
}

#[tokio::test]
async fn a_viewer_over_the_cap_or_within_the_cooldown_is_refused_and_others_are_not() {
    let running = Running::default(TestWorld::start().await).await;
    set_numbers(&running, 0, 2).await;
    let mut states = Vec::new();
    for subject in ["a seal", "a second seal", "a third seal"] {
        running.send(&ghost(subject)).await;
        let result = running.result().await;
        states.push(result.body["state"].as_str().unwrap().to_owned());
        if result.body["state"] == "rejected" {
            assert_eq!(
                result.body["reason"],
                "refused by the content rules: at most 2 requests per viewer per broadcast"
            );
        }
    }
    assert_eq!(states, ["succeeded", "succeeded", "rejected"]);
    // Another viewer is not held to the first one's count.
    running.send(&friend("blue", "a robot")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");

    // A rule changed while the consumer runs applies to the next request.
    set_numbers(&running, 3600, 0).await;
    running.send(&friend("green", "another robot")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert_eq!(
        result.body["reason"],
        "refused by the content rules: one request per viewer every 3600 s"
    );
    // Two succeeded images each were debited once; the refused ones never.
    assert_eq!(running.world.fakes.flows().len(), 3);
    running.stop().await;
}

#[tokio::test]
async fn an_admins_request_may_bypass_the_rules_and_says_so() {
    let running = Running::default(TestWorld::start().await).await;
    block(&running, "seal").await;
    let id = uuid::Uuid::new_v4();
    running
        .world
        .broker
        .publish_raw(
            &serde_json::to_vec(&ghost("a seal")).unwrap(),
            &id.to_string(),
            "application/json",
            &[("x-dynamo-bypass-rules", "true")],
        )
        .await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(
        running.store().rules_verdict(id).await.unwrap(),
        Some(RuleVerdict::Bypassed)
    );
    // Without the header the same request is refused.
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "rejected", "{}", result.body);
    assert!(
        running
            .world
            .broker
            .next(&running.alerts, Duration::from_millis(200))
            .await
            .is_some(),
        "the bypassing request aired"
    );
    running.stop().await;
}
