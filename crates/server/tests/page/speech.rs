//! Spoken captions (issue 30, item 2) in a real Chromium playing the OBS
//! overlay (autoplay allowed, as OBS does): an alert arrives with its sound
//! and then its caption read aloud (the fake OpenAI's real MP3); an alert
//! whose speech file is gone still shows, in its turn; and a speech call
//! that failed is shown on the live page. A real consumer (placeholder
//! images, speech from the fake OpenAI), server, database and broker.

use crate::browser::Browser;
use crate::common::{Consumer, Server, WAIT, wav_tone};
use dynamo_testkit::{SpeechBehavior, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A style that reads its caption aloud, made through the styles API.
fn herald() -> Value {
    json!({
        "id": "herald",
        "display_name": "Herald",
        "prompt_template": "a ghostly image of {subject}, with glitchy VHS artifacts, dark background",
        "output": "photo",
        "points_cost": 0,
        "reward": {"title": "dynamo: a herald", "prompt": "what should it be?", "cost": 300},
        "on_air": {"duration_ms": 8000, "speak_caption": true},
    })
}

fn herald_request(subject: &str) -> Value {
    let mut body = crate::enqueue_body("ghost", subject);
    body["style"] = json!("herald");
    body
}

/// A server with the herald style, a consumer speaking through the fake
/// OpenAI, and an overlay token's path.
async fn world() -> (Server, Consumer, String) {
    let server = Server::start().await;
    let (status, created) = server
        .send_as_admin(reqwest::Method::POST, "/styles", Some(&herald()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, style) = server.get("/styles/herald", Some(&server.admin())).await;
    assert_eq!(
        style["definition"]["on_air"]["speak_caption"], true,
        "{style}"
    );
    let consumer = server
        .start_consumer_with(|env| env.with("SPEECH_PROVIDER", "openai"))
        .await;
    let (status, token, _) = server
        .post(
            "/overlay/tokens",
            &server.admin(),
            &json!({"label": "tests"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let path = token["overlay_path"].as_str().unwrap().to_owned();
    (server, consumer, path)
}

async fn open_overlay(browser: &Browser, server: &Server, path: &str, params: &str) {
    browser
        .client
        .goto(&format!("{}{path}{params}", server.base))
        .await
        .unwrap();
    browser
        .until(
            "the overlay to connect",
            "['live', 'paused'].includes(document.body.dataset.status)",
        )
        .await;
}

/// Enqueues a herald request and waits until its caption is recorded
/// (spoken or not); returns the request's id.
async fn spoken(server: &Server, subject: &str) -> String {
    let id = server
        .enqueue(&server.admin(), &herald_request(subject))
        .await;
    let store = dynamo_store::Store::new(server.world.database.pool().clone());
    let uuid = id.parse().unwrap();
    eventually("the caption to be recorded", WAIT, || {
        let store = store.clone();
        async move { store.caption_speech(uuid).await.unwrap() }
    })
    .await;
    id
}

/// The overlay's log of `event`s as (request, event), in order.
async fn log(browser: &Browser) -> Vec<(String, String)> {
    let log = browser.eval("window.overlayLog").await;
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

#[tokio::test]
async fn an_alert_arrives_with_its_sound_then_its_spoken_caption() {
    let browser = Browser::open(1280, 720).await;
    let (server, consumer, path) = world().await;
    let (status, sound) = server
        .upload_sound("herald", "", &server.admin(), wav_tone(400), "audio/wav")
        .await;
    assert_eq!(status, StatusCode::OK, "{sound}");
    open_overlay(&browser, &server, &path, "&duration=4").await;
    let id = spoken(&server, "a seal").await;
    let (_, view) = server
        .get(&format!("/requests/{id}"), Some(&server.admin()))
        .await;
    let caption = &view["spoken_caption"];
    assert_eq!(caption["caption"], "a seal, from wasabimilkshake", "{view}");
    assert_eq!(caption["failure"], Value::Null, "{view}");
    assert_eq!(caption["content_type"], "audio/mpeg");

    let played = browser
        .until(
            "the spoken caption to have played a while",
            "(() => { const s = document.getElementById('alert-speech');
                      return s.played.length > 0 && s.played.end(0) > 0.3
                        && {src: s.currentSrc, start: s.played.start(0)}; })()",
        )
        .await;
    assert_eq!(played["src"], caption["url"], "{played}");
    assert_eq!(played["start"].as_f64(), Some(0.0), "from its beginning");
    let sound_played = browser
        .eval(
            "(() => { const s = document.getElementById('alert-sound');
                      return s.played.length > 0 && s.played.end(0); })()",
        )
        .await;
    assert!(
        sound_played.as_f64().is_some_and(|end| end > 0.3),
        "the entrance sound played to its end: {sound_played}"
    );
    // In order: the entrance, its sound, then the caption read aloud.
    let events: Vec<String> = log(&browser)
        .await
        .into_iter()
        .filter(|(request, _)| *request == id)
        .map(|(_, event)| event)
        .collect();
    assert_eq!(events[..3], ["start", "sound", "speech"], "{events:?}");
    browser
        .until(
            "the alert to leave",
            "window.overlayLog.some(e => e.event === 'end')",
        )
        .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    consumer.stop().await;
}

#[tokio::test]
async fn an_alert_whose_speech_file_is_gone_still_shows_in_its_turn() {
    let browser = Browser::open(1280, 720).await;
    let (server, consumer, path) = world().await;
    let (status, _, _) = server
        .post("/overlay/queue/pause", &server.admin(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = spoken(&server, "a quiet seal").await;
    let second = spoken(&server, "a loud seal").await;
    // The first's speech file goes missing from storage: it answers 404.
    let key = format!("{first}/{first}-0-caption.mp3");
    std::fs::remove_file(server.images.join(&key)).unwrap();
    open_overlay(&browser, &server, &path, "&duration=2&gap=0").await;
    let (status, _, _) = server
        .post("/overlay/queue/resume", &server.admin(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    browser
        .until(
            "both alerts to play out",
            "window.overlayLog.filter(e => e.event === 'end').length === 2",
        )
        .await;
    let events = log(&browser).await;
    let shown: Vec<_> = events
        .iter()
        .filter(|(_, event)| event == "start" || event == "end")
        .cloned()
        .collect();
    let pair = |id: &str| {
        [
            (id.to_owned(), "start".to_owned()),
            (id.to_owned(), "end".to_owned()),
        ]
    };
    assert_eq!(shown, [pair(&first), pair(&second)].concat());
    let speech: Vec<_> = events
        .iter()
        .filter(|(_, event)| event.starts_with("speech"))
        .cloned()
        .collect();
    assert_eq!(
        speech,
        [
            (first.clone(), "speech-failed".to_owned()),
            (second.clone(), "speech".to_owned())
        ],
        "the missing file failed, the next one spoke"
    );
    // The browser logs the missing file's 404 itself; nothing else went wrong.
    let errors = browser.console_errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| m.contains("404"))),
        "console errors: {errors:?}"
    );
    consumer.stop().await;
}

#[tokio::test]
async fn the_page_says_an_alert_aired_without_its_spoken_caption() {
    let browser = Browser::open(1280, 900).await;
    let (server, consumer, _) = world().await;
    server
        .world
        .fakes
        .with(|s| s.speech_script.push_back(SpeechBehavior::ServerError));
    let id = spoken(&server, "a shy seal").await;
    server.wait_finished(&id).await;
    let (_, view) = server
        .get(&format!("/requests/{id}"), Some(&server.admin()))
        .await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let failure = view["spoken_caption"]["failure"].as_str().unwrap();
    assert!(failure.contains("speech call failed"), "{view}");
    assert_eq!(view["spoken_caption"]["url"], Value::Null);

    browser.sign_in(&server.base, "/", &server.admin()).await;
    browser.until_card(&id, "succeeded").await;
    browser.open_detail(&id).await;
    let shown = browser
        .until(
            "the spoken caption's fate",
            "[...document.querySelectorAll('#detail dd')].map(d => d.textContent)
               .find(t => t.includes('aired without its spoken caption'))",
        )
        .await;
    assert!(shown.as_str().unwrap().contains("500"), "{shown}");
    consumer.stop().await;
}
