//! An admin on a 1280 px window: requests arrive and finish live, their
//! details, retrying, filtering and enqueueing from the page.

use crate::browser::Browser;
use crate::common::{Consumer, Server, VIEWER};
use crate::{card, enqueue_body};
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;

/// An admin signed in, with a consumer making the images.
struct Admin {
    browser: Browser,
    server: Server,
    consumer: Consumer,
    token: String,
}

impl Admin {
    async fn sign_in() -> Self {
        let browser = Browser::open(1280, 900).await;
        let server = Server::start().await;
        let consumer = server.start_consumer().await;
        let token = server.admin();
        browser.sign_in(&server.base, "/", &token).await;
        Self {
            browser,
            server,
            consumer,
            token,
        }
    }

    /// Enqueues through the API and waits for the card to succeed.
    async fn succeeded(&self, style: &str, subject: &str) -> String {
        let id = self
            .server
            .enqueue(&self.token, &enqueue_body(style, subject))
            .await;
        self.browser.until_card(&id, "succeeded").await;
        id
    }

    /// Checks the console stayed clean, and stops the consumer.
    async fn done(self) {
        let errors = self.browser.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:?}");
        self.consumer.stop().await;
    }
}

#[tokio::test]
async fn requests_appear_and_finish_on_the_page_without_a_reload() {
    let admin = Admin::sign_in().await;
    let browser = &admin.browser;
    assert_eq!(
        browser
            .eval("!document.getElementById('admin').hidden")
            .await,
        true,
        "an admin gets the enqueue form"
    );

    // Enqueued through the API: the card appears and finishes without a reload.
    let friend = admin
        .server
        .enqueue(
            &admin.token,
            &enqueue_body("friend", "a robot who loves soup"),
        )
        .await;
    browser.eval("window.loadedOnce = true").await;
    browser.until_card(&friend, "succeeded").await;
    assert_eq!(
        browser.eval("window.loadedOnce === true").await,
        true,
        "the page reloaded"
    );
    let width = browser
        .until(
            "the friend image to load",
            &format!(
                "{}.querySelector('img')?.complete && {}.querySelector('img').naturalWidth",
                card(&friend),
                card(&friend)
            ),
        )
        .await;
    assert!(width.as_u64().unwrap() > 0, "{width}");
    let text = browser.eval(&format!("{}.innerText", card(&friend))).await;
    let text = text.as_str().unwrap();
    for expected in [
        "succeeded",
        "a robot who loves soup",
        "wasabimilkshake",
        "friend, orange",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from card {text:?}"
        );
    }
    admin.done().await;
}

#[tokio::test]
async fn a_failed_request_shows_why_and_an_admin_retries_it_from_its_detail() {
    let admin = Admin::sign_in().await;
    let browser = &admin.browser;
    // The gallery as the README's screenshot shows it: a friend, a ghost, a failure.
    admin.succeeded("friend", "a robot who loves soup").await;
    admin.succeeded("ghost", "a seal in a raincoat").await;

    // One that pays and cannot: its debit fails once (a transient error, retried),
    // then the ledger says the viewer is short of points.
    admin.server.world.fakes.with(|fakes| {
        fakes.balances.insert("777".into(), 0);
        fakes.debit_failures = 1;
    });
    let mut short = enqueue_body("ghost", "a very expensive seal");
    short["viewer"] = json!({"twitch_user_id": "777", "twitch_display_name": "brokeviewer"});
    short["free_of_charge"] = json!(false);
    let rejected = admin.server.enqueue(&admin.token, &short).await;
    browser.until_card(&rejected, "failed").await;
    let reason = browser
        .eval(&format!(
            "{}.querySelector('.reason').textContent",
            card(&rejected)
        ))
        .await;
    assert!(reason.as_str().unwrap().contains("points"), "{reason}");
    browser.screenshot("gallery.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    // Its detail shows the retried failure, and an admin may retry it.
    browser.open_detail(&rejected).await;
    let detail = browser
        .eval("document.getElementById('detail').innerText")
        .await;
    let detail = detail.as_str().unwrap();
    for expected in [
        "debit attempt 1 failed",
        "finished: failed",
        "no points taken",
    ] {
        assert!(
            detail.contains(expected),
            "{expected:?} missing from the detail {detail:?}"
        );
    }
    admin
        .server
        .world
        .fakes
        .with(|fakes| fakes.balances.insert("777".into(), 1000));
    browser.click("#detail-body button").await;
    let queued = browser
        .until(
            "the retry to be queued",
            "document.querySelector('#detail-body .status a')?.textContent",
        )
        .await;
    browser
        .until_card(queued.as_str().unwrap(), "succeeded")
        .await;
    browser.close_detail().await;
    admin.done().await;
}

#[tokio::test]
async fn a_requests_detail_shows_prompt_timeline_and_points_and_goes_in_the_url() {
    let admin = Admin::sign_in().await;
    let browser = &admin.browser;
    let friend = admin.succeeded("friend", "a robot who loves soup").await;

    browser.open_detail(&friend).await;
    let detail = browser
        .eval("document.getElementById('detail').innerText")
        .await;
    let detail = detail.as_str().unwrap();
    for expected in [
        "a robot who loves soup",
        "free of charge",
        "image stored",
        "alert shown",
        "finished: succeeded",
    ] {
        assert!(
            detail.contains(expected),
            "{expected:?} missing from the detail {detail:?}"
        );
    }
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap()
            .contains(&format!("request={friend}"))
    );
    browser.screenshot("detail.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    browser.close_detail().await;
    admin.done().await;
}

#[tokio::test]
async fn a_filter_hides_the_other_cards_and_a_filtered_view_can_be_shared() {
    let admin = Admin::sign_in().await;
    let browser = &admin.browser;
    let friend = admin.succeeded("friend", "a robot who loves soup").await;
    let ghost = admin.succeeded("ghost", "a seal in a raincoat").await;

    browser
        .client
        .find(Locator::Css("#filters select[name=style]"))
        .await
        .unwrap()
        .select_by_value("ghost")
        .await
        .unwrap();
    browser
        .until(
            "the friend card to go",
            &format!("!{} && {}", card(&friend), card(&ghost)),
        )
        .await;
    assert_eq!(
        browser.client.current_url().await.unwrap().query(),
        Some("style=ghost")
    );
    let ghosts = browser
        .eval("document.querySelectorAll('.card[data-style=ghost]').length")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.card').length")
            .await,
        ghosts
    );
    let shared = browser.client.current_url().await.unwrap().to_string();
    browser.client.goto(&shared).await.unwrap();
    browser
        .until(
            "the shared view to load",
            &format!(
                "{} && document.querySelectorAll('.card').length === {ghosts} && !document.querySelector('.card[data-style=friend]')",
                card(&ghost)
            ),
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('#filters select[name=style]').value")
            .await,
        "ghost"
    );
    admin.done().await;
}

/// Opens the enqueue form and submits it with an empty subject; returns
/// what the API itself answers to that body.
async fn submit_without_a_subject(admin: &Admin) -> serde_json::Value {
    let (status, refused, _) = admin
        .server
        .post("/requests", &admin.token, &enqueue_body("ghost", ""))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let browser = &admin.browser;
    browser.click("#enqueue-details summary").await;
    browser.fill("#enqueue-user-id", VIEWER).await;
    browser
        .fill("#enqueue-display-name", "wasabimilkshake")
        .await;
    browser.fill("#enqueue-subject", "").await;
    browser.click("#enqueue button[type=submit]").await;
    refused
}

#[tokio::test]
async fn the_enqueue_form_shows_the_apis_own_message_next_to_the_field() {
    let admin = Admin::sign_in().await;
    let browser = &admin.browser;
    let refused = submit_without_a_subject(&admin).await;
    let shown = browser
        .until(
            "the subject error",
            "document.getElementById('enqueue-subject-error').textContent",
        )
        .await;
    assert_eq!(shown, refused["detail"], "the page shows the API's message");
    assert_eq!(
        browser
            .eval("document.getElementById('enqueue-subject').getAttribute('aria-invalid')")
            .await,
        "true"
    );
    // The open form, with its error showing, passes too.
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    // The refusal is the only thing logged (Chromium logs every 4xx answer).
    let errors = browser.console_errors().await;
    assert_eq!(errors.len(), 1, "console errors: {errors:?}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains(
            "/requests - Failed to load resource: the server responded with a status of 400"
        ),
        "{errors:?}"
    );
    admin.done().await;
}

#[tokio::test]
async fn a_corrected_enqueue_form_queues_the_request_and_clears_the_error() {
    let admin = Admin::sign_in().await;
    let browser = &admin.browser;
    submit_without_a_subject(&admin).await;
    browser
        .until(
            "the subject error",
            "document.getElementById('enqueue-subject-error').textContent",
        )
        .await;
    // That refusal's console line (checked above) is not this test's concern.
    browser.console().await;

    browser
        .fill("#enqueue-subject", "a lighthouse keeper")
        .await;
    browser.click("#enqueue button[type=submit]").await;
    browser
        .until(
            "the request to be queued",
            "document.getElementById('enqueue-status').textContent.startsWith('Queued')",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('enqueue-subject-error').textContent")
            .await,
        ""
    );
    browser
        .until(
            "the new card to succeed",
            "[...document.querySelectorAll('.card')].some(c => c.innerText.includes('a lighthouse keeper') && c.dataset.state === 'succeeded')",
        )
        .await;
    admin.done().await;
}

#[tokio::test]
async fn an_admin_sees_todays_spend_and_why_the_fleet_holds() {
    let browser = Browser::open(1280, 900).await;
    let server = Server::start().await;
    let reason = "today's image spend ($0.06) has reached OPENAI_DAILY_BUDGET_USD ($0.05): image calls wait until 00:00 UTC or a higher budget";
    dynamo_store::Store::new(server.world.database.pool().clone())
        .hold("openai-budget", reason, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    browser.sign_in(&server.base, "/", &server.admin()).await;
    let line = browser
        .until(
            "the fleet line",
            "!document.getElementById('fleet').hidden && document.getElementById('fleet').textContent",
        )
        .await;
    let line = line.as_str().unwrap();
    assert!(line.contains("Images today: $0.00"), "{line}");
    assert!(line.contains(reason), "{line}");
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
