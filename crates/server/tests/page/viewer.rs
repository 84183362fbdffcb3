//! A viewer on a phone-sized window, with a Twitch-style viewer token checked
//! via /access: their own requests only, no admin controls, usable from the
//! keyboard, nothing overflowing.

use crate::browser::Browser;
use crate::common::{Consumer, Server, VIEWER};
use crate::{card, enqueue_body};
use serde_json::{Value, json};

/// A viewer signed in, with one finished request of theirs and one of
/// somebody else's.
struct Viewer {
    browser: Browser,
    _server: Server,
    consumer: Consumer,
    own: String,
    other: String,
}

impl Viewer {
    async fn sign_in() -> Self {
        let browser = Browser::open(390, 844).await;
        let server = Server::start().await;
        let consumer = server.start_consumer().await;
        let admin = server.admin();
        let own = server
            .enqueue(&admin, &enqueue_body("ghost", "my own seal"))
            .await;
        let mut other = enqueue_body("ghost", "someone else's seal");
        other["viewer"]["twitch_user_id"] = json!("555");
        let other = server.enqueue(&admin, &other).await;
        for id in [&own, &other] {
            server.wait_finished(id).await;
        }
        browser
            .sign_in(&server.base, "/", &format!("twitch-viewer-{VIEWER}"))
            .await;
        browser.until_card(&own, "succeeded").await;
        Self {
            browser,
            _server: server,
            consumer,
            own,
            other,
        }
    }

    async fn done(self) {
        let errors = self.browser.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:?}");
        self.consumer.stop().await;
    }
}

#[tokio::test]
async fn a_viewer_sees_only_their_own_requests() {
    let viewer = Viewer::sign_in().await;
    assert_eq!(
        viewer
            .browser
            .eval(&format!("!{}", card(&viewer.other)))
            .await,
        true,
        "another viewer's request is shown"
    );
    viewer.done().await;
}

#[tokio::test]
async fn a_viewer_gets_no_admin_controls() {
    let viewer = Viewer::sign_in().await;
    let browser = &viewer.browser;
    assert_eq!(
        browser
            .eval("document.getElementById('admin').hidden")
            .await,
        true
    );
    assert_eq!(
        browser
            .eval("getComputedStyle(document.getElementById('admin')).display")
            .await,
        "none"
    );
    browser.open_detail(&viewer.own).await;
    assert_eq!(
        browser
            .eval(
                "[...document.querySelectorAll('#detail button')].map(b => b.textContent).join('|')"
            )
            .await,
        "✕",
        "a viewer gets no retry button"
    );
    browser.close_detail().await;
    viewer.done().await;
}

#[tokio::test]
async fn tab_reaches_a_card_enter_opens_it_and_escape_closes_it() {
    let viewer = Viewer::sign_in().await;
    let browser = &viewer.browser;
    browser.eval("document.activeElement.blur()").await;
    let mut reached = false;
    for _ in 0..20 {
        browser.press(fantoccini::key::Key::Tab).await;
        if browser
            .eval(&format!(
                "document.activeElement === {}.querySelector('.open')",
                card(&viewer.own)
            ))
            .await
            == true
        {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the card");
    browser.press(fantoccini::key::Key::Enter).await;
    browser
        .until(
            "the detail to open from the keyboard",
            "document.getElementById('detail').open && document.querySelector('#detail .prompt')",
        )
        .await;
    browser.press(fantoccini::key::Key::Escape).await;
    browser
        .until(
            "Escape to close the detail",
            "!document.getElementById('detail').open",
        )
        .await;
    viewer.done().await;
}

#[tokio::test]
async fn nothing_overflows_sideways_on_a_phone_and_the_gallery_is_accessible() {
    let viewer = Viewer::sign_in().await;
    let browser = &viewer.browser;
    assert_eq!(
        browser.eval("window.innerWidth").await,
        390,
        "a phone-sized window"
    );
    browser.open_detail(&viewer.own).await;
    assert_eq!(
        browser
            .eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true
    );
    browser.close_detail().await;
    browser.screenshot("gallery-phone.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    viewer.done().await;
}

#[tokio::test]
async fn signing_out_forgets_the_token() {
    let viewer = Viewer::sign_in().await;
    let browser = &viewer.browser;
    browser.click("#sign-out").await;
    browser
        .until(
            "the sign-in form",
            "!document.getElementById('sign-in').hidden",
        )
        .await;
    assert_eq!(
        browser.eval("sessionStorage.getItem('dynamo.token')").await,
        Value::Null
    );
    assert_eq!(
        browser
            .eval("document.getElementById('live').dataset.state")
            .await,
        "signed-out"
    );
    viewer.done().await;
}
