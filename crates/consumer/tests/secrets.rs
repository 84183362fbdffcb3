//! No secret in a log line (SPEC §4, issue 23): a Discord webhook that
//! cannot be reached is logged without its token.
//!
//! The logs are captured by one global subscriber for this test binary, so
//! its tests live apart from the others (tracing's interest cache makes a
//! per-thread subscriber miss events another thread registered first).

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{CapturedLogs, TestWorld, eventually};
use std::sync::LazyLock;

mod support;

use support::{Running, WAIT, ghost};

/// Everything logged in this test binary, at every level (but the AMQP
/// and TLS libraries' frame-by-frame chatter, which carries no URL).
static LOGS: LazyLock<CapturedLogs> = LazyLock::new(|| {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace,lapin=info,amq_protocol=info,rustls=info,h2=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    logs
});

#[tokio::test]
async fn an_unreachable_discord_webhook_is_logged_without_its_token() {
    let logs = &*LOGS;
    // A Discord that is not there: a port held bound but never listening,
    // so connections are refused and no other test can take it meanwhile.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = held.local_addr().unwrap();
    let token = "Zq9vLrT3kWm8NpXc2HbYf7GsDj4AeK1uVo6RiQl5EtUy0IwOa-n_MhBgSzCxPd";
    let webhook = format!("http://{closed}/api/webhooks/112233445566778899/{token}");
    let world = TestWorld::start().await;
    let env = world
        .consumer_env()
        .with("DISCORD_GHOSTS_WEBHOOK_URL", webhook.as_str());
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    assert_eq!(running.result().await.body["state"], "succeeded");
    // The fault happened: the post failed and said so.
    let line = eventually("the failed Discord post logged", WAIT, || async {
        logs.text()
            .lines()
            .find(|line| line.contains("could not reach the Discord webhook"))
            .map(str::to_owned)
    })
    .await;
    running.stop().await;
    let all = logs.text();
    assert!(
        !all.contains(token),
        "the webhook token was logged:\n{}",
        all.lines()
            .filter(|line| line.contains(token))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        line.contains("/api/webhooks/112233445566778899/***"),
        "the line says which webhook: {line}"
    );
}
