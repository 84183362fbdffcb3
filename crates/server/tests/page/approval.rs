//! Approval before air on the page: with `APPROVAL=manual` on the consumer,
//! the images waiting show first, with Approve and Decline buttons that work
//! at desktop and phone widths.

use crate::browser::Browser;
use crate::common::{Consumer, Server};
use crate::enqueue_body;

struct Streamer {
    browser: Browser,
    server: Server,
    consumer: Consumer,
    token: String,
}

impl Streamer {
    async fn sign_in(width: u32, height: u32) -> Self {
        let browser = Browser::open(width, height).await;
        let server = Server::start().await;
        let consumer = server
            .start_consumer_with(|env| env.with("APPROVAL", "manual"))
            .await;
        let token = server.admin();
        browser.sign_in(&server.base, "/", &token).await;
        Self {
            browser,
            server,
            consumer,
            token,
        }
    }

    /// Enqueues through the API and waits until it waits on the page.
    async fn waiting(&self, style: &str, subject: &str) -> String {
        let id = self
            .server
            .enqueue(&self.token, &enqueue_body(style, subject))
            .await;
        self.browser
            .until(
                &format!("{id} in the approval queue"),
                &format!(
                    "!document.getElementById('approvals').hidden && {}?.querySelector('img')?.complete",
                    waiting(&id)
                ),
            )
            .await;
        id
    }

    async fn done(self) {
        let errors = self.browser.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:?}");
        self.consumer.stop().await;
    }
}

fn waiting(id: &str) -> String {
    format!("document.querySelector('.approval[data-id=\"{id}\"]')")
}

#[tokio::test]
async fn an_admin_approves_and_declines_waiting_images_from_the_top_of_the_page() {
    let streamer = Streamer::sign_in(1280, 900).await;
    let browser = &streamer.browser;
    let friend = streamer.waiting("friend", "a robot who loves soup").await;
    let ghost = streamer.waiting("ghost", "a seal in a raincoat").await;
    browser.until_card(&friend, "awaiting_approval").await;
    assert_eq!(
        browser
            .eval("document.querySelector('main > section:not([hidden])').id")
            .await,
        "approvals",
        "the approval queue comes first"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('approvals-count').textContent")
            .await,
        "(2)"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('approvals-sound').checked")
            .await,
        false,
        "the sound is off until turned on"
    );
    browser.screenshot("approval.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    browser
        .click(&format!(".approval[data-id=\"{friend}\"] .approve"))
        .await;
    browser.until_card(&friend, "succeeded").await;
    browser
        .until(
            "the approved image to leave the queue",
            &format!("!{}", waiting(&friend)),
        )
        .await;

    browser
        .click(&format!(".approval[data-id=\"{ghost}\"] .decline"))
        .await;
    browser.until_card(&ghost, "rejected").await;
    let reason = browser
        .eval(&format!(
            "{}.querySelector('.reason').textContent",
            crate::card(&ghost)
        ))
        .await;
    assert_eq!(reason, "declined by the streamer");
    browser
        .until(
            "the empty queue to hide",
            "document.getElementById('approvals').hidden",
        )
        .await;

    // The timeline says who decided.
    browser.open_detail(&ghost).await;
    let detail = browser
        .eval("document.getElementById('detail').innerText")
        .await;
    let detail = detail.as_str().unwrap();
    for expected in [
        "waiting for approval",
        "declined by service tests",
        "finished: rejected",
    ] {
        assert!(
            detail.contains(expected),
            "{expected:?} missing from {detail:?}"
        );
    }
    browser.close_detail().await;
    streamer.done().await;
}

#[tokio::test]
async fn on_a_phone_the_approve_and_decline_buttons_are_big_and_on_screen() {
    let streamer = Streamer::sign_in(390, 844).await;
    let browser = &streamer.browser;
    let id = streamer.waiting("friend", "a robot who loves soup").await;
    let boxes = browser
        .eval(&format!(
            "[...{}.querySelectorAll('button')].map(b => {{ const r = b.getBoundingClientRect(); \
             return [r.left, r.right, r.top, r.bottom, r.height, window.innerWidth, window.innerHeight]; }})",
            waiting(&id)
        ))
        .await;
    let boxes = boxes.as_array().unwrap();
    assert_eq!(boxes.len(), 2, "{boxes:?}");
    for b in boxes {
        let [left, right, top, bottom, height, width, visible] =
            [0, 1, 2, 3, 4, 5, 6].map(|i| b[i].as_f64().unwrap());
        assert!(left >= 0.0 && right <= width, "inside the width: {b:?}");
        assert!(
            top >= 0.0 && bottom <= visible,
            "on the first screen, no scrolling: {b:?}"
        );
        assert!(height >= 48.0, "a thumb-sized target: {b:?}");
    }
    let overflow = browser
        .eval("document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(overflow, true, "no sideways scrolling");
    browser.screenshot("approval-phone.png").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    browser
        .click(&format!(".approval[data-id=\"{id}\"] .approve"))
        .await;
    browser.until_card(&id, "succeeded").await;
    streamer.done().await;
}

#[tokio::test]
async fn an_admin_declines_from_the_detail_with_a_reason_the_viewer_is_told() {
    let streamer = Streamer::sign_in(1280, 900).await;
    let browser = &streamer.browser;
    let broker = &streamer.server.world.broker;
    let results = broker.capture(&broker.topology.results_exchange).await;
    let id = streamer.waiting("ghost", "a seal in a raincoat").await;
    browser.until_card(&id, "awaiting_approval").await;
    browser.open_detail(&id).await;
    let controls = "#detail .approval-controls";
    browser
        .fill(
            &format!("{controls} .decline-reason input"),
            "not during the sponsor read",
        )
        .await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    browser.click(&format!("{controls} .decline")).await;
    browser.until_card(&id, "rejected").await;
    // The open detail follows the state change: the controls go, the reason shows.
    browser
        .until(
            "the detail to show the end state without the controls",
            &format!("!document.querySelector('{controls}') && document.getElementById('detail').innerText.includes('finished: rejected')"),
        )
        .await;
    let reason = browser
        .eval(&format!(
            "{}.querySelector('.reason').textContent",
            crate::card(&id)
        ))
        .await;
    assert_eq!(
        reason, "declined by the streamer: not during the sponsor read",
        "the viewer's result carries the reason"
    );
    let result = broker
        .next(&results, std::time::Duration::from_secs(10))
        .await
        .expect("the request's result")
        .body;
    assert_eq!(result["request_id"], id.as_str(), "{result}");
    assert_eq!(result["state"], "rejected", "{result}");
    assert_eq!(
        result["reason"], "declined by the streamer: not during the sponsor read",
        "{result}"
    );
    browser.close_detail().await;
    streamer.done().await;
}
