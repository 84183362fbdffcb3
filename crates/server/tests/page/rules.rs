//! The content rules panel (issue 29): an admin sets the cooldown and the
//! cap, blocks a phrase, and sees a request refused by it — with the rule as
//! its reason, never the word — without leaving the page.

use crate::browser::Browser;
use crate::common::VIEWER;
use crate::{card, enqueue_body};
use reqwest::StatusCode;

#[tokio::test]
async fn an_admin_sets_the_rules_and_blocks_a_phrase_from_the_page() {
    let browser = Browser::open(1280, 900).await;
    let server = crate::common::Server::start().await;
    let consumer = server.start_consumer().await;
    let token = server.admin();
    browser.sign_in(&server.base, "/", &token).await;
    browser
        .until(
            "the rules panel",
            "!document.getElementById('rules').hidden && document.getElementById('rules-window').value === '720'",
        )
        .await;
    browser.click("#rules-details summary").await;

    // A number out of range: the API's message, next to its field.
    browser.fill("#rules-cooldown", "-5").await;
    browser.click("#rules-form button[type=submit]").await;
    let shown = browser
        .until(
            "the cooldown's error",
            "document.getElementById('rules-cooldown-error').textContent",
        )
        .await;
    assert!(
        shown.as_str().unwrap().contains("between 0 and 86400"),
        "{shown}"
    );

    browser.fill("#rules-cooldown", "0").await;
    browser.fill("#rules-cap", "5").await;
    browser.click("#rules-form button[type=submit]").await;
    browser
        .until(
            "the rules saved",
            "document.getElementById('rules-status').textContent === 'Saved.'",
        )
        .await;
    browser.fill("#blocklist-phrase", "walrus").await;
    browser.click("#blocklist-form button[type=submit]").await;
    browser
        .until(
            "the phrase listed",
            "document.getElementById('blocklist').innerText.includes('walrus')",
        )
        .await;
    let (status, rules) = server.get("/rules", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rules["max_per_broadcast"], 5, "{rules}");
    assert_eq!(rules["cooldown_seconds"], 0, "{rules}");
    assert_eq!(rules["blocklist"], serde_json::json!(["walrus"]));

    // A request that names it, spelled otherwise, is refused on the page.
    let mut body = enqueue_body("ghost", "a W4LRUS on ice");
    body["viewer"]["twitch_user_id"] = VIEWER.into();
    let refused = server.enqueue(&token, &body).await;
    browser.until_card(&refused, "rejected").await;
    let reason = browser
        .eval(&format!(
            "{}.querySelector('.reason').textContent",
            card(&refused)
        ))
        .await;
    let reason = reason.as_str().unwrap();
    assert!(reason.contains("content rules"), "{reason}");
    assert!(!reason.to_lowercase().contains("walrus"), "{reason}");
    browser.screenshot("rules.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    // Removed from the page: gone from the API too.
    browser.click("#blocklist .unblock").await;
    browser
        .until(
            "the blocklist emptied",
            "!document.getElementById('blocklist-empty').hidden",
        )
        .await;
    let (_, rules) = server.get("/rules", Some(&token)).await;
    assert_eq!(rules["blocklist"], serde_json::json!([]));

    // The one console error is the refused save (Chromium logs every 4xx).
    let errors = browser.console_errors().await;
    assert!(errors.len() <= 1, "console errors: {errors:?}");
    consumer.stop().await;
}
