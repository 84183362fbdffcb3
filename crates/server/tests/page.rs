//! The live page in a real headless Chromium, driven over WebDriver
//! (chromedriver), against a real server, database, broker and consumer with
//! the placeholder image provider.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them); `CHROMIUM` and `CHROMEDRIVER` override their paths.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use axum::http::Method;
use common::{Server, VIEWER, WAIT};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Browser {
    client: Client,
    driver: Child,
    profile: std::path::PathBuf,
}

impl Browser {
    async fn open(width: u32, height: u32) -> Self {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            std::path::Path::new(&chromium).exists()
                && std::path::Path::new(&chromedriver).exists(),
            "browser tests need {chromium} and {chromedriver}: apt-get install chromium chromium-driver \
             (scripts/test.sh does), or set CHROMIUM and CHROMEDRIVER"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        dynamo_testkit::eventually("chromedriver to answer", WAIT, || {
            let status = http.get(format!("{webdriver}/status")).send();
            async move {
                status
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        let profile =
            std::env::temp_dir().join(format!("dynamo-chromium-{}", uuid::Uuid::new_v4()));
        // The flags keep Chromium off the network (this machine has none) and
        // out of the sandbox, which needs privileges a CI container lacks.
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        // chromedriver speaks plain HTTP on loopback: no TLS connector needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(serde_json::from_value(capabilities).unwrap())
            .connect(&webdriver)
            .await
            .unwrap();
        Self {
            client,
            driver,
            profile,
        }
    }

    /// Polls a JavaScript expression until it is truthy; returns its value.
    async fn until(&self, what: &str, expression: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self
                .client
                .execute(&format!("return ({expression});"), vec![])
                .await
                .unwrap();
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(
                started.elapsed() < WAIT,
                "timed out waiting for {what} ({expression}); at {:?}; console: {:?}",
                self.client.current_url().await.map(|u| u.to_string()),
                self.console().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap()
    }

    async fn fill(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.clear().await.unwrap();
        if !text.is_empty() {
            input.send_keys(text).await.unwrap();
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn sign_in(&self, base: &str, path: &str, token: &str) {
        self.client.goto(&format!("{base}{path}")).await.unwrap();
        self.until(
            "the sign-in form",
            "!document.getElementById('sign-in').hidden",
        )
        .await;
        self.fill("#token", token).await;
        self.click("#sign-in-form button[type=submit]").await;
        self.until(
            "the requests to show",
            "!document.getElementById('requests').hidden && document.getElementById('live').dataset.state === 'live'",
        )
        .await;
    }

    /// Everything the page wrote to the console, via chromedriver's log
    /// endpoint (it also catches failed loads, which `window.onerror` does not).
    async fn console(&self) -> Vec<Value> {
        let logs = self.client.issue_cmd(BrowserLog).await.unwrap();
        logs.as_array().cloned().unwrap_or_default()
    }

    async fn console_errors(&self) -> Vec<Value> {
        self.console()
            .await
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .collect()
    }

    /// Accessibility problems axe-core finds on the page as it is now
    /// (labels, contrast, roles, keyboard traps...). axe-core comes from npm
    /// (`scripts/test.sh` installs it; `AXE_JS` overrides the path).
    async fn accessibility_violations(&self) -> Vec<Value> {
        let path = std::env::var("AXE_JS").unwrap_or_else(|_| {
            format!(
                "{}/.cache/dynamo-node/node_modules/axe-core/axe.min.js",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{path}: {e}; run scripts/test.sh (npm install axe-core) or set AXE_JS"
            )
        });
        self.client.execute(&axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(result => done(
                     result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(' '))}))));",
                vec![],
            )
            .await
            .unwrap();
        found.as_array().cloned().unwrap_or_default()
    }

    /// Waits until the card of request `id` shows `state`.
    async fn until_card(&self, id: &str, state: &str) {
        self.until(
            &format!("the card of {id} to be {state}"),
            &format!("{}?.dataset.state === '{state}'", card(id)),
        )
        .await;
    }

    /// Opens a request's detail by clicking its card.
    async fn open_detail(&self, id: &str) {
        self.click(&format!(".card[data-id=\"{id}\"] .open")).await;
        self.until(
            "the detail",
            "document.getElementById('detail').open && document.querySelector('#detail .prompt')",
        )
        .await;
    }

    async fn close_detail(&self) {
        self.click("#detail-close").await;
        self.until(
            "the detail to close",
            "!document.getElementById('detail').open",
        )
        .await;
    }

    /// Presses a key on whatever has the focus.
    async fn press(&self, key: fantoccini::key::Key) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(&key).await.unwrap();
    }

    async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// chromedriver's `POST /session/{id}/se/log` (Selenium's log command).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

fn enqueue_body(style: &str, subject: &str) -> Value {
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

fn card(id: &str) -> String {
    format!("document.querySelector('.card[data-id=\"{id}\"]')")
}

#[tokio::test]
async fn an_admin_watches_requests_arrive_filters_them_and_enqueues_from_the_page() {
    let server = Server::start().await;
    let consumer = server.start_consumer().await;
    let admin = server.admin();
    let browser = Browser::open(1280, 900).await;
    browser.sign_in(&server.base, "/", &admin).await;
    assert_eq!(
        browser
            .eval("!document.getElementById('admin').hidden")
            .await,
        true
    );

    // Enqueued through the API: the card appears and finishes without a reload.
    let friend = server
        .enqueue(&admin, &enqueue_body("friend", "a robot who loves soup"))
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

    let ghost = server
        .enqueue(&admin, &enqueue_body("ghost", "a seal in a raincoat"))
        .await;
    browser.until_card(&ghost, "succeeded").await;

    // One that pays and cannot: its debit fails once (a transient error, retried),
    // then the ledger says the viewer is short of points.
    server.world.fakes.with(|fakes| {
        fakes.balances.insert("777".into(), 0);
        fakes.debit_failures = 1;
    });
    let mut short = enqueue_body("ghost", "a very expensive seal");
    short["viewer"] = json!({"twitch_user_id": "777", "twitch_display_name": "brokeviewer"});
    short["free_of_charge"] = json!(false);
    let rejected = server.enqueue(&admin, &short).await;
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
    server
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

    // The detail view: prompt, timeline, ledger status.
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

    // A filter hides the other cards, and lives in the URL.
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

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The enqueue form: an empty subject gets the API's own message.
    let (status, refused, _) = server
        .post("/requests", &admin, &enqueue_body("ghost", ""))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    browser.click("#enqueue-details summary").await;
    browser.fill("#enqueue-user-id", VIEWER).await;
    browser
        .fill("#enqueue-display-name", "wasabimilkshake")
        .await;
    browser.fill("#enqueue-subject", "").await;
    browser.click("#enqueue button[type=submit]").await;
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

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    consumer.stop().await;
}

#[tokio::test]
async fn a_viewer_sees_only_their_requests_and_no_admin_controls() {
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

    // A phone-sized window, with a Twitch-style viewer token checked via /access.
    let browser = Browser::open(390, 844).await;
    browser
        .sign_in(&server.base, "/", &format!("twitch-viewer-{VIEWER}"))
        .await;
    browser.until_card(&own, "succeeded").await;
    assert_eq!(
        browser.eval(&format!("!{}", card(&other))).await,
        true,
        "another viewer's request is shown"
    );
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
    browser.open_detail(&own).await;
    assert_eq!(
        browser
            .eval(
                "[...document.querySelectorAll('#detail button')].map(b => b.textContent).join('|')"
            )
            .await,
        "✕",
        "a viewer gets no retry button"
    );
    // Keyboard only: Tab reaches the card, Enter opens it, Escape closes it.
    browser.close_detail().await;
    browser.eval("document.activeElement.blur()").await;
    let mut reached = false;
    for _ in 0..20 {
        browser.press(fantoccini::key::Key::Tab).await;
        if browser
            .eval(&format!(
                "document.activeElement === {}.querySelector('.open')",
                card(&own)
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
    browser.open_detail(&own).await;

    // Nothing overflows sideways on a phone.
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

    // Signing out forgets the token.
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
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    consumer.stop().await;
}

#[tokio::test]
async fn the_page_reconnects_after_a_lost_connection_and_catches_up() {
    let server = Server::start().await;
    let consumer = server.start_consumer().await;
    // The browser reaches the server through a proxy that can drop it.
    let proxy =
        dynamo_testkit::FlakyProxy::start(server.base.trim_start_matches("http://").to_owned(), 0)
            .await;
    let admin = server.admin();
    let browser = Browser::open(1280, 900).await;
    browser.sign_in(&proxy.url, "/", &admin).await;
    browser.eval("window.loadedOnce = true").await;

    // First with no event seen yet (the page reads the list again), then with
    // one (the server replays what was missed after Last-Event-ID).
    for (subject, event_seen) in [
        ("a seal in the dark", false),
        ("a second seal in the dark", true),
    ] {
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
            .enqueue(&admin, &enqueue_body("ghost", subject))
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
    }
    // Failed loads while the proxy was down are expected; nothing else.
    let errors: Vec<Value> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e["message"].as_str().unwrap_or_default().contains("ERR_"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;
    consumer.stop().await;
}
