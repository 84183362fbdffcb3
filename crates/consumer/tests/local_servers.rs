//! dynamo against the OpenAI-compatible image servers a streamer runs
//! locally (issues 12 and 24): stable-diffusion.cpp's sd-server, LocalAI and
//! Ollama, each a fake speaking that server's wire format. With no API key,
//! the whole pipeline runs and no request carries an `Authorization` header;
//! moderation is skipped where the server has none (learned once), a friend
//! is named after its subject where there is no chat endpoint, `url` and
//! `b64_json` answers both work, and each server's error shape ends in a
//! clear reason. The README's settings for each server are run as written,
//! and a model Ollama has not pulled stops start-up with a line that says
//! what it has and how to pull.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_runtime::Env;
use dynamo_testkit::{CompatServer, Flavor, FlowStatus, TestWorld};
use support::{Running, exit_of, friend, ghost};

async fn start(flavor: Flavor) -> (Running, CompatServer) {
    let world = TestWorld::start().await;
    let server = CompatServer::start(flavor).await;
    let mut env = world.consumer_env();
    for (name, value) in server.env_pairs() {
        env = env.with(&name, value);
    }
    (Running::start(world, env).await, server)
}

/// A ghost and a friend through the whole pipeline, then the server's
/// moderation endpoint asked once; returns the friend's name.
async fn ghost_and_friend(running: &Running, server: &CompatServer) -> String {
    let name = generates(running, server, server.flavor.image_model()).await;
    // Asked once, learned that there is none, never asked again.
    let missing = server.with(|s| s.missing_calls.clone());
    let moderations = missing.iter().filter(|c| *c == "POST /v1/moderations");
    assert_eq!(moderations.count(), 1, "{missing:?}");
    name
}

/// A ghost and a friend drawn by `image_model`, one debit each, free, and
/// no credentials sent; returns the friend's name.
async fn generates(running: &Running, server: &CompatServer, image_model: &str) -> String {
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
    // No key was configured: no header at all, not an empty bearer token.
    let auths = server.with(|s| s.authorizations.clone());
    assert!(
        auths.len() >= 3,
        "models, images, chat or its 404: {auths:?}"
    );
    assert!(auths.iter().all(Option::is_none), "{auths:?}");
    // Sent as configured: the server resolves the name.
    let sent = server.with(|s| s.image_calls.clone());
    assert!(sent.iter().all(|c| c["model"] == image_model), "{sent:?}");
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
            .all(|(model, usd, by)| model == image_model && *usd == 0.0 && by == "free")
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
    assert_eq!(
        chat[0]["model"], "llama3.2:latest",
        "spelled as Ollama lists it"
    );
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

/// The `sh` block of the README's bullet for `server` under "Local image
/// servers", as its settings: comments and blank lines dropped.
fn readme_block(server: &str) -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("\n### Local image servers\n").nth(1).unwrap();
    let section = section.split("\n### ").next().unwrap();
    let bullet = section
        .split("\n- ")
        .find(|b| b.lines().next().unwrap().contains(server))
        .unwrap_or_else(|| panic!("no README bullet for {server}"));
    let block = bullet.split("```sh\n").nth(1).unwrap();
    let block = block.split("```").next().unwrap();
    block
        .lines()
        .map(|line| line.split(" #").next().unwrap().trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The README's settings for `server`, pointed at `fake` (only the host and
/// port of `OPENAI_BASE_URL` change), on top of the test world's
/// infrastructure with its own OpenAI settings taken out.
fn readme_env(world: &TestWorld, server: &str, fake: &CompatServer) -> Env {
    let block = readme_block(server);
    let taken_out = ["OPENAI_BASE_URL", "OPENAI_API_KEY", "IMAGE_PROVIDER"];
    let infra = world
        .consumer_env()
        .pairs()
        .filter(|(name, _)| !taken_out.contains(name))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect::<Vec<_>>();
    let mut env = Env::from_pairs(infra);
    for (name, value) in block {
        let value = match name.as_str() {
            "OPENAI_BASE_URL" => {
                let path = value
                    .strip_prefix("http://127.0.0.1:")
                    .and_then(|rest| rest.split_once('/'))
                    .map(|(_, path)| path)
                    .unwrap_or_else(|| panic!("a local URL: {value}"));
                format!("{}/{path}", fake.url)
            }
            _ => value,
        };
        env = env.with(&name, value);
    }
    env
}

/// Starts the consumer as the README says for `server`, against a fake of
/// `flavor`, and generates a ghost and a friend with the block's image
/// model; returns the friend's name.
async fn readme_block_generates(server: &str, flavor: Flavor) -> (Running, CompatServer, String) {
    let world = TestWorld::start().await;
    let fake = CompatServer::start(flavor).await;
    let env = readme_env(&world, server, &fake);
    let running = Running::start(world, env).await;
    let image_model = readme_setting(server, "OPENAI_IMAGE_MODEL");
    let name = generates(&running, &fake, &image_model).await;
    (running, fake, name)
}

#[tokio::test]
async fn the_readme_sd_server_block_works_as_written() {
    let (running, server, name) = readme_block_generates("sd-server", Flavor::SdServer).await;
    assert_eq!(name, "Sealy", "no chat: named after the subject");
    let missing = server.with(|s| s.missing_calls.clone());
    assert!(
        !missing.contains(&"POST /v1/moderations".to_owned()),
        "MODERATION=false: {missing:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn the_readme_localai_block_works_as_written() {
    let (running, _, name) = readme_block_generates("LocalAI", Flavor::LocalAi).await;
    assert_eq!(name, "Captain Flipper", "named by LocalAI's chat model");
    running.stop().await;
}

#[tokio::test]
async fn the_readme_ollama_block_works_as_written() {
    let (running, server, name) = readme_block_generates("Ollama", Flavor::Ollama).await;
    assert_eq!(name, "Captain Flipper", "named by Ollama's chat model");
    let chat = server.with(|s| s.chat_calls.clone());
    let configured = readme_setting("Ollama", "OPENAI_CHAT_MODEL");
    assert_eq!(chat[0]["model"], configured, "sent as configured");
    running.stop().await;
}

fn readme_setting(server: &str, name: &str) -> String {
    readme_block(server)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("the README's {server} block sets no {name}"))
}

#[tokio::test]
async fn a_model_ollama_has_not_pulled_stops_start_up_saying_what_it_has_and_how_to_pull() {
    let world = TestWorld::start().await;
    let fake = CompatServer::start(Flavor::Ollama).await;
    let env = readme_env(&world, "Ollama", &fake).with("OPENAI_IMAGE_MODEL", "x/flux2");
    let (code, stderr) = exit_of(&env).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for said in [
        "OPENAI_IMAGE_MODEL",
        "x/z-image-turbo:latest",
        "llama3.2:latest",
        "ollama pull x/flux2",
    ] {
        assert!(stderr.contains(said), "{said:?} missing from {stderr}");
    }
    assert!(
        !stderr.contains("gpt-"),
        "no OpenAI model for Ollama: {stderr}"
    );
    assert!(!stderr.contains("shut down"), "{stderr}");
    assert_eq!(fake.with(|s| s.image_calls.len()), 0);
}

#[tokio::test]
async fn a_key_given_for_a_local_server_is_sent_as_given() {
    let world = TestWorld::start().await;
    let server = CompatServer::start(Flavor::SdServer).await;
    let mut env = world.consumer_env();
    for (name, value) in server.env_pairs() {
        env = env.with(&name, value);
    }
    let running = Running::start(world, env.with("OPENAI_API_KEY", "sk-local key")).await;
    running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    let auths = server.with(|s| s.authorizations.clone());
    assert!(auths.len() >= 2, "models and images: {auths:?}");
    assert!(
        auths
            .iter()
            .all(|a| a.as_deref() == Some("Bearer sk-local key")),
        "{auths:?}"
    );
    running.stop().await;
}
