//! The live page in a real headless Chromium (see `browser`), against a real
//! server, database, broker and consumer with the placeholder image provider:
//! one test per behaviour, grouped by who is looking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod admin;
mod approval;
mod browser;
mod builder;
#[path = "../common/mod.rs"]
mod common;
mod first_visit;
mod gallery;
mod overlay;
mod reconnect;
mod rules;
mod sounds;
mod speech;
mod styles;
mod viewer;

use common::VIEWER;
use serde_json::{Value, json};

pub fn enqueue_body(style: &str, subject: &str) -> Value {
    let inputs = if style == "friend" {
        json!({"color": "orange", "subject": subject})
    } else {
        json!({"subject": subject})
    };
    json!({
        "viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
        "style": style, "inputs": inputs, "free_of_charge": true,
    })
}

pub fn card(id: &str) -> String {
    format!("document.querySelector('.card[data-id=\"{id}\"]')")
}

/// A fresh server and the live page signed in as its admin, the "On air"
/// panel open.
pub async fn on_air_panel() -> (browser::Browser, common::Server) {
    let browser = browser::Browser::open(1280, 900).await;
    let server = common::Server::start().await;
    browser.sign_in(&server.base, "/", &server.admin()).await;
    browser
        .until(
            "the On air panel",
            "!document.getElementById('onair').hidden",
        )
        .await;
    browser.click("#onair-details summary").await;
    (browser, server)
}
