//! The page after a lost connection: it reconnects by itself and catches up
//! on what it missed, without a reload.

use crate::browser::Browser;
use crate::common::Server;
use crate::{card, enqueue_body};
use serde_json::Value;

/// Cuts the page off while a request comes and finishes, then lets it back.
/// `event_seen`: whether the page had received an event before the drop
/// (then the server replays what came after it; otherwise the page reads
/// the list again).
async fn catches_up_after_a_drop(event_seen: bool) {
    let browser = Browser::open(1280, 900).await;
    let server = Server::start().await;
    let consumer = server.start_consumer().await;
    // The browser reaches the server through a proxy that can drop it.
    let proxy =
        dynamo_testkit::FlakyProxy::start(server.base.trim_start_matches("http://").to_owned(), 0)
            .await;
    let admin = server.admin();
    browser.sign_in(&proxy.url, "/", &admin).await;
    browser.eval("window.loadedOnce = true").await;
    if event_seen {
        let seen = server
            .enqueue(&admin, &enqueue_body("ghost", "a seal in the light"))
            .await;
        browser.until_card(&seen, "succeeded").await;
    }

    proxy.set_down(true);
    browser
        .until(
            "the page to notice",
            "document.getElementById('live').dataset.state === 'reconnecting'",
        )
        .await;
    // A request comes and finishes while the page is cut off.
    let id = server
        .enqueue(&admin, &enqueue_body("ghost", "a seal in the dark"))
        .await;
    server.wait_finished(&id).await;
    assert_eq!(browser.eval(&format!("!{}", card(&id))).await, true);

    proxy.set_down(false);
    browser.until_card(&id, "succeeded").await;
    assert_eq!(
        browser
            .eval("document.getElementById('live').dataset.state")
            .await,
        "live"
    );
    assert_eq!(
        browser.eval("window.loadedOnce === true").await,
        true,
        "the page reloaded"
    );
    // Failed loads while the proxy was down are expected; nothing else.
    let errors: Vec<Value> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e["message"].as_str().unwrap_or_default().contains("ERR_"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    consumer.stop().await;
}

#[tokio::test]
async fn after_a_drop_before_any_event_the_page_reads_the_list_again() {
    catches_up_after_a_drop(false).await;
}

#[tokio::test]
async fn after_a_drop_the_server_replays_what_came_after_the_last_event() {
    catches_up_after_a_drop(true).await;
}
