//! A first visit: before signing in the page is neutral ("signed out", not a
//! red "offline"), names the local stack's token when the server runs with
//! it, and an empty gallery says how to make the first request.

use crate::browser::Browser;
use crate::common::{DEVELOPMENT_TOKEN_SHA256, Server};
use dynamo_testkit::TestWorld;
use fantoccini::Locator;

/// Opens the page with no token and waits for the server's sign-in answer.
async fn visit(browser: &Browser, server: &Server) {
    browser.client.goto(&server.base).await.unwrap();
    browser
        .until(
            "the sign-in form and the server's sign-in answer",
            "!document.getElementById('sign-in').hidden && document.getElementById('sign-in-hint').dataset.answer",
        )
        .await;
}

async fn no_console_errors(browser: &Browser) {
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[tokio::test]
async fn before_signing_in_the_page_says_signed_out_in_a_neutral_colour() {
    let browser = Browser::open(1280, 900).await;
    let server = Server::start().await;
    visit(&browser, &server).await;
    assert_eq!(
        browser
            .eval("document.getElementById('live').dataset.state")
            .await,
        "signed-out"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('live').textContent")
            .await,
        "signed out"
    );
    // The dot takes the muted text colour, not the "bad" red.
    let colours = browser
        .eval(
            "[getComputedStyle(document.getElementById('live'), '::before').color, \
              getComputedStyle(document.documentElement).getPropertyValue('--muted').trim()]",
        )
        .await;
    assert_eq!(colours[0], "rgb(179, 173, 199)", "{colours}"); // --muted, #b3adc7
    assert_eq!(colours[1], "#b3adc7", "{colours}");
    // A Golden VCR server has no development token to mention.
    assert_eq!(
        browser
            .eval("document.getElementById('sign-in-hint').dataset.answer")
            .await,
        "none"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('sign-in-hint').hidden")
            .await,
        true
    );
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    no_console_errors(&browser).await;
}

#[tokio::test]
async fn the_sign_in_box_names_the_development_token_when_the_server_accepts_it() {
    let browser = Browser::open(1280, 900).await;
    // As scripts/dev.sh runs it.
    let server = Server::start_in(TestWorld::start().await, |env| {
        env.with("AUTH_MODE", "standalone")
            .with("ADMIN_TOKEN_SHA256", DEVELOPMENT_TOKEN_SHA256)
    })
    .await;
    visit(&browser, &server).await;
    let hint = browser
        .until(
            "the hint",
            "!document.getElementById('sign-in-hint').hidden && document.getElementById('sign-in-hint').innerText",
        )
        .await;
    assert!(
        hint.as_str().unwrap().contains("paste dev-admin-token"),
        "{hint}"
    );
    browser.screenshot("sign-in-development.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    // And the hint is right: that token signs in as admin.
    browser.fill("#token", "dev-admin-token").await;
    browser.click("#sign-in-form button[type=submit]").await;
    browser
        .until(
            "the admin's view",
            "!document.getElementById('requests').hidden && !document.getElementById('admin').hidden",
        )
        .await;
    no_console_errors(&browser).await;
}

#[tokio::test]
async fn the_sign_in_box_says_nothing_of_a_token_the_server_does_not_accept() {
    let browser = Browser::open(1280, 900).await;
    let server = Server::start_in(TestWorld::start().await, |env| {
        // sha256("test"): a standalone server with a real token of its own.
        env.with("AUTH_MODE", "standalone").with(
            "ADMIN_TOKEN_SHA256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
    })
    .await;
    visit(&browser, &server).await;
    assert_eq!(
        browser
            .eval("document.getElementById('sign-in-hint').dataset.answer")
            .await,
        "none"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('sign-in-hint').hidden")
            .await,
        true
    );
    assert_eq!(
        browser
            .eval("document.body.innerText.includes('dev-admin-token')")
            .await,
        false
    );
    no_console_errors(&browser).await;
}

/// The visible text of the empty gallery, once it shows.
async fn empty_gallery(browser: &Browser) -> String {
    browser
        .until(
            "the empty gallery",
            "document.getElementById('gallery').getAttribute('aria-busy') === 'false' && !document.getElementById('empty').hidden && document.getElementById('empty').innerText",
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_empty_gallery_tells_an_admin_how_to_make_the_first_request() {
    let browser = Browser::open(1280, 900).await;
    let server = Server::start().await;
    browser.sign_in(&server.base, "/", &server.admin()).await;
    let text = empty_gallery(&browser).await;
    for expected in [
        "No requests yet",
        "New request",
        "dynamoctl publish crates/wire/tests/vectors/generation-requests/ghost.json",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from {text:?}"
        );
    }
    assert!(!text.contains("match"), "{text:?}");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    // With a filter, the empty gallery says the filter matched nothing instead.
    browser
        .client
        .find(Locator::Css("#filters select[name=style]"))
        .await
        .unwrap()
        .select_by_value("friend")
        .await
        .unwrap();
    let text = browser
        .until(
            "the filtered empty gallery",
            "!document.getElementById('empty-filtered').hidden && document.getElementById('empty').innerText",
        )
        .await;
    assert_eq!(text, "No requests match these filters.");
    no_console_errors(&browser).await;
}

#[tokio::test]
async fn an_empty_gallery_tells_a_viewer_where_their_requests_come_from() {
    let browser = Browser::open(390, 844).await;
    let server = Server::start().await;
    browser
        .sign_in(&server.base, "/", &server.viewer(crate::common::VIEWER))
        .await;
    let text = empty_gallery(&browser).await;
    assert!(text.contains("No requests of yours yet"), "{text:?}");
    assert!(!text.contains("dynamoctl"), "{text:?}");
    no_console_errors(&browser).await;
}
