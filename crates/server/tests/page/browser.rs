//! One headless Chromium for the whole test binary, driven over WebDriver
//! (chromedriver). Starting chromedriver and Chromium takes seconds, so the
//! tests share one session and take turns with it ([`Browser::open`] waits
//! for the turn); each test gets a fresh tab.
//!
//! The session lives on a runtime of its own: each `#[tokio::test]` has a
//! runtime that ends with the test, and the session's connection task must
//! outlive every test. A watchdog shell ends chromedriver and Chromium and
//! removes the profile once this process is gone.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them); `CHROMIUM` and `CHROMEDRIVER` override their paths.

use crate::card;
use crate::common::WAIT;
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Url;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

static DRIVER: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});
static SESSION: OnceCell<Client> = OnceCell::const_new();
/// One test at a time drives the browser.
static TURN: Mutex<()> = Mutex::const_new(());

/// The shared browser, for one test's turn.
pub struct Browser {
    pub client: Client,
    _turn: MutexGuard<'static, ()>,
}

/// Starts chromedriver and a Chromium session (1280 x 900 until a test sets
/// its size).
async fn start_session() -> Client {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromedriver =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&chromium).exists() && std::path::Path::new(&chromedriver).exists(),
        "browser tests need {chromium} and {chromedriver}: apt-get install chromium chromium-driver \
         (scripts/test.sh does), or set CHROMIUM and CHROMEDRIVER"
    );
    let profile = std::env::temp_dir().join(format!("dynamo-chromium-{}", uuid::Uuid::new_v4()));
    // chromedriver picks its own free port (--port=0) and says which in its
    // log: no port is taken from the kernel and handed on, free for anyone
    // else to take in between.
    let log = profile.with_extension("log");
    // chromedriver and Chromium must not outlive the test process: in a
    // process group of their own (setsid), a watchdog stops the whole group
    // (itself excepted) once this process is gone, then removes the profile.
    let script = format!(
        "\"$0\" --port=0 >'{log}' 2>&1 & \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
         trap '' TERM; kill -TERM 0; sleep 1; rm -rf '{profile}' '{log}'",
        parent = std::process::id(),
        profile = profile.display(),
        log = log.display(),
    );
    // The watchdog ends by itself with this process; nothing waits on it.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("setsid")
        .args(["sh", "-c", &script, &chromedriver])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {chromedriver} (with setsid): {e}"));
    let port: u16 = dynamo_testkit::eventually("chromedriver to say its port", WAIT, || {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        async move {
            // "ChromeDriver was started successfully on port 43781."
            let (_, rest) = said.split_once("started successfully on port ")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        }
    })
    .await;
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
    // The flags keep Chromium off the network (this machine has none) and
    // out of the sandbox, which needs privileges a CI container lacks.
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                // As OBS's browser source does: alerts play their sound unprompted.
                "--autoplay-policy=no-user-gesture-required",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    // chromedriver speaks plain HTTP on loopback: no TLS connector needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(serde_json::from_value(capabilities).unwrap())
        .connect(&webdriver)
        .await
        .unwrap()
}

impl Browser {
    /// Waits for this test's turn with the shared browser, then gives it a
    /// fresh tab (empty session storage, so no token of an earlier test's
    /// server on a reused port) at `width` x `height`, with the console read
    /// empty.
    pub async fn open(width: u32, height: u32) -> Self {
        let turn = TURN.lock().await;
        let client = SESSION
            .get_or_init(|| async {
                // On the browser's own runtime: see the module's comment.
                DRIVER
                    .spawn(start_session())
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            })
            .await
            .clone();
        let previous = client.window().await.unwrap();
        let tab = client.new_window(true).await.unwrap();
        client.close_window().await.unwrap();
        client.switch_to_window(tab.handle).await.unwrap();
        assert_ne!(client.window().await.unwrap(), previous);
        client.set_window_size(width, height).await.unwrap();
        let browser = Self {
            client,
            _turn: turn,
        };
        browser.console().await;
        browser
    }

    /// Polls a JavaScript expression until it is truthy; returns its value.
    pub async fn until(&self, what: &str, expression: &str) -> Value {
        // A deadline whose passing is the failure, not a claim about time.
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self
                .client
                .execute(&format!("return ({expression});"), vec![])
                .await
                .unwrap();
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what} ({expression}); at {:?}; console: {:?}",
                    self.client.current_url().await.map(|u| u.to_string()),
                    self.console().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.clear().await.unwrap();
        if !text.is_empty() {
            input.send_keys(text).await.unwrap();
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub async fn sign_in(&self, base: &str, path: &str, token: &str) {
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
    pub async fn console(&self) -> Vec<Value> {
        let logs = self.client.issue_cmd(BrowserLog).await.unwrap();
        logs.as_array().cloned().unwrap_or_default()
    }

    pub async fn console_errors(&self) -> Vec<Value> {
        self.console()
            .await
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .collect()
    }

    /// Accessibility problems axe-core finds on the page as it is now
    /// (labels, contrast, roles, keyboard traps...). axe-core comes from npm
    /// (`scripts/test.sh` installs it; `AXE_JS` overrides the path).
    pub async fn accessibility_violations(&self) -> Vec<Value> {
        let path = std::env::var("AXE_JS").unwrap_or_else(|_| {
            format!(
                "{}/.cache/dynamo-node/node_modules/axe-core/axe.min.js",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{path}: {e}; run scripts/test.sh (npm install axe-core) or set AXE_JS")
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
    pub async fn until_card(&self, id: &str, state: &str) {
        self.until(
            &format!("the card of {id} to be {state}"),
            &format!("{}?.dataset.state === '{state}'", card(id)),
        )
        .await;
    }

    /// Opens a request's detail by clicking its card.
    pub async fn open_detail(&self, id: &str) {
        self.click(&format!(".card[data-id=\"{id}\"] .open")).await;
        self.until(
            "the detail",
            "document.getElementById('detail').open && document.querySelector('#detail .prompt')",
        )
        .await;
    }

    pub async fn close_detail(&self) {
        self.click("#detail-close").await;
        self.until(
            "the detail to close",
            "!document.getElementById('detail').open",
        )
        .await;
    }

    /// Presses a key on whatever has the focus.
    pub async fn press(&self, key: fantoccini::key::Key) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(&key).await.unwrap();
    }

    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
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
