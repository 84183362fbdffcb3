//! dynamo against the OpenAI-compatible image servers a streamer runs
//! locally (issue 12 item 6): stable-diffusion.cpp's sd-server, LocalAI and
//! Ollama, each a fake speaking that server's wire format. With no API key,
//! the whole pipeline runs: moderation is skipped where the server has none
//! (learned once), a friend is named after its subject where there is no
//! chat endpoint, `url` and `b64_json` answers both work, and each server's
//! error shape ends in a clear reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_testkit::{CompatServer, Flavor, FlowStatus, TestWorld};
use support::{Running, friend, ghost};

async fn start(flavor: Flavor) -> (Running, CompatServer) {
    let world = TestWorld::start().await;
    let server = CompatServer::start(flavor).await;
    let mut env = world.consumer_env();
    for (name, value) in server.env_pairs() {
        env = env.with(&name, value);
    }
    (Running::start(world, env).await, server)
}

/// A ghost and a friend through the whole pipeline; returns the friend's name.
async fn ghost_and_friend(running: &Running, server: &CompatServer) -> String {
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    running.send(&friend("orange", "a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);

    assert_eq!(server.with(|s| s.image_calls.len()), 2);
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 2, "one debit each");
    assert!(flows.iter().all(|f| f.status == FlowStatus::Accepted));
    // No key was configured, and none was made up.
    let auths = server.with(|s| s.authorizations.clone());
    assert!(
        auths
            .iter()
            .all(|a| a.as_deref().is_none_or(|a| a.trim() == "Bearer")),
        "{auths:?}"
    );
    // Asked once, learned that there is none, never asked again.
    let missing = server.with(|s| s.missing_calls.clone());
    let moderations = missing.iter().filter(|c| *c == "POST /v1/moderations");
    assert_eq!(moderations.count(), 1, "{missing:?}");
    // A local model costs nothing, and says so.
    let spend: Vec<(String, f64, String)> =
        sqlx::query_as("SELECT model, cost_usd, priced_by FROM dynamo.image_spend ORDER BY id")
            .fetch_all(running.world.database.pool())
            .await
            .unwrap();
    assert_eq!(spend.len(), 2);
    assert!(
        spend
            .iter()
            .all(|(model, usd, by)| model == server.flavor.image_model()
                && *usd == 0.0
                && by == "free")
    );
    result.body["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sd_server_runs_the_whole_pipeline_without_moderation_or_chat() {
    let (running, server) = start(Flavor::SdServer).await;
    let name = ghost_and_friend(&running, &server).await;
    assert_eq!(
        name, "Sealy",
        "named after the subject: sd-server has no chat"
    );
    running.send(&friend("red", "the horse")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(result.body["name"], "Horsey");
    let chats = server.with(|s| {
        s.missing_calls
            .iter()
            .filter(|c| *c == "POST /v1/chat/completions")
            .count()
    });
    assert_eq!(chats, 1, "the missing chat endpoint is learned once");
    running.stop().await;
}

#[tokio::test]
async fn localai_answers_with_a_url_that_is_downloaded() {
    let (running, server) = start(Flavor::LocalAi).await;
    let name = ghost_and_friend(&running, &server).await;
    assert_eq!(name, "Captain Flipper", "LocalAI has a chat endpoint");
    running.stop().await;
}

#[tokio::test]
async fn ollama_answers_b64_json_and_names_friends_with_its_chat_model() {
    let (running, server) = start(Flavor::Ollama).await;
    let name = ghost_and_friend(&running, &server).await;
    assert_eq!(name, "Captain Flipper");
    let chat = server.with(|s| s.chat_calls.clone());
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0]["model"], "llama3.2");
    running.stop().await;
}

#[tokio::test]
async fn sd_server_errors_end_in_their_own_words() {
    let (running, server) = start(Flavor::SdServer).await;
    // A refusal of the request: no retry.
    server.with(|s| {
        s.image_errors
            .push_back((400, r#"{"error":"invalid params"}"#.to_owned()))
    });
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "failed", "{}", result.body);
    let reason = result.body["reason"].as_str().unwrap();
    assert!(reason.contains("invalid params"), "{reason}");
    assert_eq!(server.with(|s| s.image_calls.len()), 1, "not retried");

    // A server error: retried, then failed with the server's message.
    let oom = r#"{"error":"server_error","message":"CUDA out of memory"}"#.to_owned();
    server.with(|s| {
        s.image_errors
            .extend([(500, oom.clone()), (500, oom.clone()), (500, oom)])
    });
    running.send(&ghost("a walrus")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "failed", "{}", result.body);
    let reason = result.body["reason"].as_str().unwrap();
    assert!(reason.contains("CUDA out of memory"), "{reason}");
    assert!(
        !reason.contains("server_error\""),
        "read, not dumped: {reason}"
    );
    assert_eq!(
        server.with(|s| s.image_calls.len()),
        4,
        "RETRY_MAX_ATTEMPTS"
    );
    let flows = running.world.fakes.flows();
    assert!(
        flows.iter().all(|f| f.status == FlowStatus::Rejected),
        "refunded"
    );
    running.stop().await;
}
