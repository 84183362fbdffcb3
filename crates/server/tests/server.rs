//! dynamo-server over a real socket, against the real database and broker.

#![allow(clippy::unwrap_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::{Env, Shutdown};
use dynamo_server::ServerConfig;
use dynamo_testkit::TestWorld;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_and_stored_images_are_served() {
    let world = TestWorld::start().await;
    let dir = std::env::temp_dir().join(format!("dynamo-server-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("abc")).unwrap();
    std::fs::write(dir.join("abc/abc-0.webp"), b"RIFF-image-bytes").unwrap();
    let mut pairs = world.database.env_pairs();
    pairs.push(("STORAGE_BACKEND".into(), "filesystem".into()));
    pairs.push(("STORAGE_DIR".into(), dir.to_string_lossy().into_owned()));
    let config = ServerConfig::from_env(&Env::from_pairs(pairs)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let server = tokio::spawn(dynamo_server::run(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();

    let health: Value = dynamo_testkit::eventually(
        "the server to answer",
        std::time::Duration::from_secs(30),
        || {
            let request = http.get(format!("{base}/healthz")).send();
            async move { request.await.ok()?.json().await.ok() }
        },
    )
    .await;
    assert_eq!(health["status"], "ok");

    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready, serde_json::json!({"database": true, "broker": true}));

    let image = http
        .get(format!("{base}/images/abc/abc-0.webp"))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.bytes().await.unwrap().as_ref(), b"RIFF-image-bytes");

    let missing = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    shutdown.trigger();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
