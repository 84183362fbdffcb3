//! Downloads stay on their host and within their size (issue 23): an image
//! `url` elsewhere than the image server is not fetched, a redirect
//! elsewhere is not followed, and an answer larger than the cap is refused
//! before it is read whole. Each ends the request `failed`, refunded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{FlowStatus, TestWorld};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

use support::{Running, ghost};

/// An HTTP server on another port of the same host that answers every
/// request with a PNG, counting the connections it gets.
async fn elsewhere() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut png = Vec::new();
    image::RgbImage::from_pixel(64, 64, image::Rgb([40, 40, 40]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let png = png.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    png.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&png).await;
            });
        }
    });
    (base, hits)
}

async fn failed_with_refund(running: &Running) -> String {
    let result = running.result().await;
    assert_eq!(result.body["state"], "failed", "{}", result.body);
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].status, FlowStatus::Rejected);
    result.body["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_image_url_on_another_port_is_not_fetched() {
    let world = TestWorld::start().await;
    let (other, hits) = elsewhere().await;
    world
        .fakes
        .serve_answer(&json!({"created": 1, "data": [{"url": format!("{other}/seal.png")}]}));
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let reason = failed_with_refund(&running).await;
    assert!(reason.contains("refused the image URL"), "{reason}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the other server was reached"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_redirect_off_the_image_servers_host_is_not_followed() {
    let world = TestWorld::start().await;
    let (other, hits) = elsewhere().await;
    // The image server's own URL, which redirects to another port.
    let own = world.fakes.url.clone();
    let redirecting = format!("{own}/redirect?to={other}/seal.png");
    world
        .fakes
        .serve_answer(&json!({"created": 1, "data": [{"url": redirecting}]}));
    let running = Running::default(world).await;
    running.send(&ghost("a seal")).await;
    let reason = failed_with_refund(&running).await;
    assert!(reason.contains("redirect refused"), "{reason}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
    running.stop().await;
}

#[tokio::test]
async fn a_b64_answer_over_the_cap_is_refused_before_it_is_read() {
    let world = TestWorld::start().await;
    // 32 MiB of base64 against a 1 MiB image cap (answers up to ~2.3 MiB).
    let huge = "A".repeat(32 * 1024 * 1024);
    world
        .fakes
        .serve_answer(&json!({"created": 1, "data": [{"b64_json": huge}]}));
    let env = world
        .consumer_env()
        .with("OPENAI_MAX_DOWNLOAD_BYTES", (1024 * 1024).to_string());
    let running = Running::start(world, env).await;
    running.send(&ghost("a seal")).await;
    let reason = failed_with_refund(&running).await;
    assert!(reason.contains("the answer is over"), "{reason}");
    assert_eq!(
        running.world.fakes.with(|s| s.image_calls.len()),
        1,
        "an answer too large is not bought again"
    );
    running.stop().await;
}
