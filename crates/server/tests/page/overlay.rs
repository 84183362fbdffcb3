//! The OBS overlay at `/overlay` in a real Chromium: alerts made by a real
//! consumer (placeholder images) reach the queue through the database and
//! play one at a time; the admin pauses, skips, replays and revokes.

use crate::browser::Browser;
use crate::common::{Consumer, Server, WAIT};
use crate::enqueue_body;
use dynamo_testkit::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

struct OnAir {
    browser: Browser,
    server: Server,
    consumer: Consumer,
    admin: String,
    /// `/overlay?token=...` of a fresh overlay token.
    overlay_path: String,
    token: String,
    /// The canvas: the viewport the overlay gets, as in OBS.
    canvas: (u32, u32),
}

impl OnAir {
    async fn start(width: u32, height: u32) -> Self {
        let browser = Browser::open(width, height).await;
        let server = Server::start().await;
        let consumer = server.start_consumer().await;
        let admin = server.admin();
        let (status, created, _) = server
            .post("/overlay/tokens", &admin, &json!({"label": "tests"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        Self {
            browser,
            server,
            consumer,
            admin,
            overlay_path: created["overlay_path"].as_str().unwrap().to_owned(),
            token: created["token"].as_str().unwrap().to_owned(),
            canvas: (width, height),
        }
    }

    /// Opens the overlay with extra URL parameters and waits for its stream.
    async fn open_overlay(&self, params: &str) {
        self.browser
            .client
            .goto(&format!(
                "{}{}{params}",
                self.server.base, self.overlay_path
            ))
            .await
            .unwrap();
        self.browser
            .until(
                "the overlay to connect",
                "['live', 'paused'].includes(document.body.dataset.status)",
            )
            .await;
        self.fit_canvas().await;
    }

    /// Grows the window by its chrome, so the viewport is the canvas.
    async fn fit_canvas(&self) {
        let (width, height) = self.canvas;
        let inner = self.browser.eval("[innerWidth, innerHeight]").await;
        let (w, h) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
        if (w, h) != (u64::from(width), u64::from(height)) {
            let extra =
                |want: u32, got: u64| want + (u64::from(want) - got.min(u64::from(want))) as u32;
            self.browser
                .client
                .set_window_size(extra(width, w), extra(height, h))
                .await
                .unwrap();
            self.browser
                .until(
                    "the viewport to be the canvas",
                    &format!("innerWidth === {width} && innerHeight === {height}"),
                )
                .await;
        }
    }

    async fn control(&self, action: &str) -> Value {
        let (status, body, _) = self
            .server
            .post(&format!("/overlay/queue/{action}"), &self.admin, &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        body
    }

    /// Enqueues a request and waits until its alert is confirmed (and so
    /// queued for the overlay); returns its id and when that was seen.
    async fn alert(&self, subject: &str) -> (Uuid, Instant) {
        let id: Uuid = self
            .server
            .enqueue(&self.admin, &enqueue_body("ghost", subject))
            .await
            .parse()
            .unwrap();
        let pool = self.server.world.database.pool().clone();
        eventually("the alert to be queued", WAIT, || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT id FROM dynamo.overlay_alert WHERE image_request_id = $1",
                )
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
            }
        })
        .await;
        (id, Instant::now())
    }

    /// What the overlay played: (request id, "start"/"end") in order.
    async fn played(&self) -> Vec<(String, String)> {
        let log = self.browser.eval("window.overlayLog").await;
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["request"].as_str().unwrap().to_owned(),
                    e["event"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn outcomes(&self, id: Uuid) -> Vec<Option<String>> {
        sqlx::query_scalar(
            "SELECT outcome FROM dynamo.overlay_alert WHERE image_request_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.server.world.database.pool())
        .await
        .unwrap()
    }

    async fn done(self) {
        let errors = self.browser.console_errors().await;
        assert!(errors.is_empty(), "console errors: {errors:?}");
        self.consumer.stop().await;
    }
}

fn starts_and_ends(ids: &[Uuid]) -> Vec<(String, String)> {
    ids.iter()
        .flat_map(|id| {
            [
                (id.to_string(), "start".to_owned()),
                (id.to_string(), "end".to_owned()),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_published_alert_appears_and_its_image_renders() {
    let on_air = OnAir::start(1280, 720).await;
    on_air.open_overlay("&duration=4").await;
    let browser = &on_air.browser;
    assert_eq!(
        browser
            .eval("document.getElementById('alert').hidden && getComputedStyle(document.body).backgroundColor")
            .await,
        json!("rgba(0, 0, 0, 0)"),
        "a transparent page that shows nothing until an alert plays"
    );
    // Pushed to the open page: it plays without a reload, within the
    // browser's deadline (how soon is a figure, not a test's claim).
    let (id, _) = on_air.alert("a seal in a tiny hat").await;
    browser
        .until("the alert to play", "document.body.dataset.playing")
        .await;
    let shown = browser
        .eval(
            "({image: document.getElementById('alert-image').naturalWidth,
               title: document.getElementById('alert-title').textContent,
               viewer: document.getElementById('alert-viewer').textContent,
               visible: getComputedStyle(document.getElementById('alert')).display !== 'none'})",
        )
        .await;
    assert!(
        shown["image"].as_u64().unwrap() > 0,
        "the image renders: {shown}"
    );
    assert_eq!(shown["title"], "a seal in a tiny hat");
    assert_eq!(shown["viewer"], "wasabimilkshake");
    assert_eq!(shown["visible"], true);
    browser
        .until(
            "the alert to leave",
            "window.overlayLog.length === 2 && document.getElementById('alert').hidden",
        )
        .await;
    assert_eq!(on_air.played().await, starts_and_ends(&[id]));
    let pool = on_air.server.world.database.pool().clone();
    eventually("the alert to be recorded as played", WAIT, || {
        let outcomes = on_air.outcomes(id);
        async move { (outcomes.await == [Some("played".to_owned())]).then_some(()) }
    })
    .await;
    drop(pool);
    on_air.done().await;
}

#[tokio::test]
async fn paused_nothing_plays_and_resumed_the_queue_plays_in_order_one_at_a_time() {
    let on_air = OnAir::start(1280, 720).await;
    on_air.open_overlay("&duration=1&gap=0").await;
    on_air.control("pause").await;
    let (first, _) = on_air.alert("the first ghost").await;
    let (second, _) = on_air.alert("the second ghost").await;
    let (third, _) = on_air.alert("the third ghost").await;
    // The overlay knows three wait, and plays none of them while paused.
    on_air
        .browser
        .until(
            "the paused overlay to see three waiting",
            "document.body.dataset.status === 'paused' && document.body.dataset.waiting === '3'",
        )
        .await;
    assert_eq!(on_air.played().await, vec![], "nothing plays while paused");
    assert_eq!(on_air.outcomes(first).await, [None]);

    on_air.control("resume").await;
    on_air
        .browser
        .until("all three to play", "window.overlayLog.length === 6")
        .await;
    // Strictly start, end, start, end...: never two at once, in queue order.
    assert_eq!(
        on_air.played().await,
        starts_and_ends(&[first, second, third])
    );
    on_air.done().await;
}

#[tokio::test]
async fn skip_ends_the_alert_on_air() {
    let on_air = OnAir::start(1280, 720).await;
    on_air.open_overlay("&duration=120").await;
    let (id, _) = on_air.alert("a ghost that will not wait").await;
    on_air
        .browser
        .until("the alert to play", "document.body.dataset.playing")
        .await;
    let skipped = on_air.control("skip").await;
    // It plays for 120 s, longer than the browser's deadline: it can only
    // leave in time because of the skip.
    on_air
        .browser
        .until(
            "the skipped alert to leave",
            "window.overlayLog.length === 2",
        )
        .await;
    assert_eq!(on_air.played().await, starts_and_ends(&[id]));
    assert_eq!(on_air.outcomes(id).await, [Some("skipped".to_owned())]);
    assert!(skipped["skipped"].is_i64(), "{skipped}");
    // Nothing on air any more: a second skip says so.
    let (status, body, _) = on_air
        .server
        .post("/overlay/queue/skip", &on_air.admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    on_air.done().await;
}

#[tokio::test]
async fn replay_plays_a_past_alert_again() {
    let on_air = OnAir::start(1280, 720).await;
    on_air.open_overlay("&duration=1&gap=0").await;
    let (id, _) = on_air.alert("a ghost worth seeing twice").await;
    on_air
        .browser
        .until("the alert to play once", "window.overlayLog.length === 2")
        .await;
    let (_, queue) = on_air
        .server
        .get("/overlay/queue", Some(&on_air.admin))
        .await;
    let entry = queue["recent"][0]["id"].as_i64().unwrap();
    let (status, replay, _) = on_air
        .server
        .post(
            &format!("/overlay/alerts/{entry}/replay"),
            &on_air.admin,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{replay}");
    assert_eq!(replay["replay_of"], entry);
    on_air
        .browser
        .until("the replay to play", "window.overlayLog.length === 4")
        .await;
    assert_eq!(on_air.played().await, starts_and_ends(&[id, id]));
    on_air.done().await;
}

#[tokio::test]
async fn a_revoked_tokens_open_overlay_stops() {
    let on_air = OnAir::start(1280, 720).await;
    on_air.open_overlay("&duration=1").await;
    let (_, tokens) = on_air
        .server
        .get("/overlay/tokens", Some(&on_air.admin))
        .await;
    let token_id = tokens[0]["id"].as_str().unwrap().to_owned();
    let response = on_air
        .server
        .http
        .delete(format!("{}/overlay/tokens/{token_id}", on_air.server.base))
        .bearer_auth(&on_air.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Told while open (within the browser's deadline), not at its next load.
    on_air
        .browser
        .until(
            "the overlay to stop",
            "document.body.dataset.status === 'revoked'",
        )
        .await;
    // An alert made now is not shown, and the token opens nothing.
    let (_, _) = on_air.alert("a ghost for nobody").await;
    let response = on_air
        .server
        .http
        .post(format!(
            "{}/overlay/next?token={}",
            on_air.server.base, on_air.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(on_air.played().await, vec![]);
    assert_eq!(
        on_air
            .browser
            .eval("document.getElementById('alert').hidden")
            .await,
        true
    );
    on_air.consumer.stop().await;
}

#[tokio::test]
async fn an_obs_reload_mid_queue_replays_nothing_already_shown() {
    let on_air = OnAir::start(1280, 720).await;
    let params = "&duration=3&gap=0";
    on_air.open_overlay(params).await;
    on_air.control("pause").await;
    let (first, _) = on_air.alert("shown before the reload").await;
    let (second, _) = on_air.alert("on air during the reload").await;
    let (third, _) = on_air.alert("shown after the reload").await;
    on_air.control("resume").await;
    on_air
        .browser
        .until(
            "the second alert to be on air",
            &format!(
                "window.overlayLog.length === 3 && window.overlayLog[2].request === '{second}'"
            ),
        )
        .await;
    // OBS reloads the browser source mid-alert.
    on_air.open_overlay(params).await;
    on_air
        .browser
        .until(
            "the third alert to play after the reload",
            "window.overlayLog.length === 2",
        )
        .await;
    assert_eq!(on_air.played().await, starts_and_ends(&[third]));
    assert_eq!(on_air.outcomes(first).await, [Some("played".to_owned())]);
    assert_eq!(
        on_air.outcomes(second).await,
        [Some("interrupted".to_owned())],
        "the alert on air at the reload was shown: it does not play again"
    );
    let pool = on_air.server.world.database.pool().clone();
    eventually("the third to be recorded as played", WAIT, || {
        let outcomes = on_air.outcomes(third);
        async move { (outcomes.await == [Some("played".to_owned())]).then_some(()) }
    })
    .await;
    drop(pool);
    on_air.done().await;
}

#[tokio::test]
async fn the_live_page_creates_an_overlay_url_and_controls_the_queue() {
    let on_air = OnAir::start(1280, 900).await;
    let browser = &on_air.browser;
    browser
        .sign_in(&on_air.server.base, "/", &on_air.admin)
        .await;
    browser.click("#onair-details summary").await;
    browser.fill("#onair-token-label", "studio PC").await;
    browser.click("#onair-token-form button[type=submit]").await;
    let url = browser
        .until(
            "the overlay URL",
            "!document.getElementById('onair-token-created').hidden && document.getElementById('onair-token-url').value",
        )
        .await;
    let url = url.as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/overlay?token=ovl_", on_air.server.base)),
        "{url}"
    );
    browser
        .until(
            "the token in the list",
            "[...document.querySelectorAll('#onair-tokens li')].some(li => li.textContent.includes('studio PC'))",
        )
        .await;
    browser.click("#onair-pause").await;
    browser
        .until(
            "paused",
            "document.getElementById('onair-status').textContent === 'paused'",
        )
        .await;
    let (_, queue) = on_air
        .server
        .get("/overlay/queue", Some(&on_air.admin))
        .await;
    assert_eq!(queue["paused"], true);
    browser.click("#onair-resume").await;
    browser
        .until(
            "resumed",
            "document.getElementById('onair-status').textContent !== 'paused'",
        )
        .await;
    let (_, queue) = on_air
        .server
        .get("/overlay/queue", Some(&on_air.admin))
        .await;
    assert_eq!(queue["paused"], false);
    on_air.done().await;
}

/// The screenshot of docs/overlay.png: the overlay playing a friend at 1920 x 1080, over a
/// sample stream frame standing in for OBS's scene (the overlay itself is
/// transparent; the frame is this test's page background, nothing else).
#[tokio::test]
async fn screenshot_of_the_overlay_over_a_stream_frame() {
    let on_air = OnAir::start(1920, 1080).await;
    let frame = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sample-stream-frame.png"
    );
    std::fs::create_dir_all(&on_air.server.images).unwrap();
    std::fs::copy(frame, on_air.server.images.join("stream-frame.png")).unwrap();
    on_air
        .open_overlay("&duration=120&position=top-right&size=42")
        .await;
    let browser = &on_air.browser;
    browser
        .eval(
            "(() => { const s = document.documentElement.style;
                s.background = 'url(/images/stream-frame.png) center / 100% 100% no-repeat';
                return true; })()",
        )
        .await;
    let id: Uuid = on_air
        .server
        .enqueue(
            &on_air.admin,
            &enqueue_body("friend", "a robot who loves soup"),
        )
        .await
        .parse()
        .unwrap();
    browser
        .until(
            "the friend to play, its entrance over",
            &format!(
                "window.overlayLog.length === 1 && window.overlayLog[0].request === '{id}'
                 && document.getElementById('alert-image').naturalWidth > 0
                 && document.getElementById('alert').getAnimations().every(a => a.playState === 'finished')"
            ),
        )
        .await;
    let size = browser.eval("[innerWidth, innerHeight]").await;
    assert_eq!(size, json!([1920, 1080]), "a 1920 x 1080 canvas");
    let shot = browser.screenshot("overlay.png").await;
    // UPDATE_SCREENSHOTS=1 refreshes the committed one.
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::fs::copy(
            &shot,
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/overlay.png"),
        )
        .unwrap();
    }
    on_air.done().await;
}

/// What the overlay logged of `kind` ("sound", "sound-failed"), in order.
async fn logged(on_air: &OnAir, kind: &str) -> Vec<String> {
    let log = on_air.browser.eval("window.overlayLog").await;
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["request"].as_str().unwrap().to_owned())
        .collect()
}

/// Gives ghosts a `ms`-long tone as their sound (`query`: its volume).
async fn ghost_sound(on_air: &OnAir, query: &str, ms: u32) -> Value {
    let tone = crate::common::wav_tone(ms);
    let (status, sound) = on_air
        .server
        .upload_sound("ghost", query, &on_air.admin, tone, "audio/wav")
        .await;
    assert_eq!(status, StatusCode::OK, "{sound}");
    sound
}

#[tokio::test]
async fn the_styles_sound_plays_with_the_alerts_entrance_at_its_volume() {
    let on_air = OnAir::start(1280, 720).await;
    let sound = ghost_sound(&on_air, "?volume=40", 1500).await;
    on_air.open_overlay("&duration=3&volume=50").await;
    let (id, _) = on_air.alert("a seal with a trumpet").await;
    let browser = &on_air.browser;
    browser
        .until(
            "the sound to have played a while",
            "(() => { const s = document.getElementById('alert-sound');
                      return s.played.length > 0 && s.played.end(0) > 0.2; })()",
        )
        .await;
    let audio = browser
        .eval(
            "(() => { const s = document.getElementById('alert-sound');
                      return {src: s.currentSrc, volume: s.volume, start: s.played.start(0)}; })()",
        )
        .await;
    assert_eq!(audio["src"], sound["url"]);
    assert_eq!(
        audio["start"].as_f64(),
        Some(0.0),
        "played from its beginning: {audio}"
    );
    // The style's 40 % times the overlay URL's 50 %.
    assert!(
        (audio["volume"].as_f64().unwrap() - 0.2).abs() < 1e-6,
        "{audio}"
    );
    assert_eq!(logged(&on_air, "sound").await, [id.to_string()]);
    let log = browser.eval("window.overlayLog.map(e => e.event)").await;
    assert_eq!(log[0], "start", "the sound starts with the entrance: {log}");
    browser
        .until("the alert to leave", "document.getElementById('alert').hidden && window.overlayLog.some(e => e.event === 'end')")
        .await;
    on_air.done().await;
}

#[tokio::test]
async fn a_sound_that_cannot_load_does_not_delay_or_stop_the_alert() {
    let on_air = OnAir::start(1280, 720).await;
    let sound = ghost_sound(&on_air, "", 500).await;
    // The file goes missing from storage (a bucket emptied by hand, say).
    let key = sound["url"]
        .as_str()
        .unwrap()
        .split("/images/")
        .nth(1)
        .unwrap()
        .to_owned();
    std::fs::remove_file(on_air.server.images.join(&key)).unwrap();
    on_air.open_overlay("&duration=1").await;
    let (first, _) = on_air.alert("a quiet seal").await;
    let (second, _) = on_air.alert("another quiet seal").await;
    on_air
        .browser
        .until(
            "both alerts to play out",
            "window.overlayLog.filter(e => e.event === 'end').length === 2",
        )
        .await;
    let played: Vec<_> = on_air
        .played()
        .await
        .into_iter()
        .filter(|(_, event)| event == "start" || event == "end")
        .collect();
    assert_eq!(played, starts_and_ends(&[first, second]));
    assert_eq!(
        logged(&on_air, "sound-failed").await,
        [first.to_string(), second.to_string()]
    );
    // The browser logs the missing file's 404 itself; nothing else went wrong.
    let errors = on_air.browser.console_errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| m.contains("404"))),
        "console errors: {errors:?}"
    );
    on_air.consumer.stop().await;
}

/// Each built-in theme renders (its own fonts, colours and caption box,
/// through the documented custom properties) over a sample stream frame;
/// the screenshots are docs/theme-*.png (UPDATE_SCREENSHOTS=1 refreshes them).
#[tokio::test]
async fn each_theme_renders_its_look_over_a_stream_frame() {
    let on_air = OnAir::start(1280, 720).await;
    let frame = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sample-stream-frame.png"
    );
    std::fs::create_dir_all(&on_air.server.images).unwrap();
    std::fs::copy(frame, on_air.server.images.join("stream-frame.png")).unwrap();
    let id: Uuid = on_air
        .server
        .enqueue(
            &on_air.admin,
            &enqueue_body("friend", "a robot who loves soup"),
        )
        .await
        .parse()
        .unwrap();
    on_air.server.wait_finished(&id.to_string()).await;
    // (theme, the title's font family contains, the caption's background)
    let themes = [
        ("clean", "system-ui", "rgba(0, 0, 0, 0)"),
        ("vhs", "monospace", "rgba(0, 0, 0, 0)"),
        ("comic", "Comic", "rgb(255, 251, 230)"),
    ];
    let mut entry: Option<i64> = None;
    for (theme, font, background) in themes {
        if let Some(previous) = entry {
            // The same alert again, for the next theme.
            let (status, replay, _) = on_air
                .server
                .post(
                    &format!("/overlay/alerts/{previous}/replay"),
                    &on_air.admin,
                    &json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{replay}");
        }
        on_air
            .open_overlay(&format!(
                "&duration=120&position=center&size=45&caption=6&theme={theme}"
            ))
            .await;
        let browser = &on_air.browser;
        browser
            .eval(
                "(() => { document.documentElement.style.background =
                    'url(/images/stream-frame.png) center / 100% 100% no-repeat'; return true; })()",
            )
            .await;
        let playing = browser
            .until(
                "the friend to play, its entrance over",
                "document.body.dataset.playing
                 && document.getElementById('alert-image').naturalWidth > 0
                 && document.getElementById('alert').getAnimations().every(a => a.playState === 'finished')
                 && document.body.dataset.playing",
            )
            .await;
        entry = Some(playing.as_str().unwrap().parse().unwrap());
        let look = browser
            .eval(
                "(() => { const title = getComputedStyle(document.getElementById('alert-title'));
                          const caption = getComputedStyle(document.querySelector('figcaption'));
                          return {theme: document.body.dataset.theme, font: title.fontFamily,
                                  size: title.fontSize, background: caption.backgroundColor}; })()",
            )
            .await;
        assert_eq!(look["theme"], theme, "{look}");
        assert!(
            look["font"].as_str().unwrap().contains(font),
            "{theme}: {look}"
        );
        assert_eq!(look["background"], background, "{theme}: {look}");
        // caption=6: 6 % of the 720 px canvas.
        assert_eq!(look["size"], "43.2px", "{theme}: {look}");
        let name = format!("theme-{theme}.png");
        let shot = browser.screenshot(&name).await;
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
            std::fs::copy(&shot, docs.join(&name)).unwrap();
        }
    }
    on_air.done().await;
}
