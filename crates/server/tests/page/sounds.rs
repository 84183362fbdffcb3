//! An admin gives a style its alert sound from the live page's "On air"
//! panel: the file goes to the API as it is, a bad file's refusal shows.

use crate::browser::Browser;
use crate::common::{Server, wav_tone};
use fantoccini::Locator;
use reqwest::StatusCode;

/// Opens the "On air" panel of the page, signed in as an admin.
async fn panel() -> (Browser, Server) {
    let (browser, server) = crate::on_air_panel().await;
    browser
        .until(
            "the sounds to be listed",
            "document.querySelectorAll('#onair-sounds li').length === 2",
        )
        .await;
    (browser, server)
}

/// Chooses `path` in the file input and submits the upload form.
async fn upload(browser: &Browser, style: &str, path: &std::path::Path, volume: u32) {
    browser
        .eval(&format!(
            "(() => {{ document.getElementById('onair-sound-style').value = '{style}';
                       document.getElementById('onair-sound-volume').value = '{volume}'; }})()"
        ))
        .await;
    let input = browser
        .client
        .find(Locator::Id("onair-sound-file"))
        .await
        .unwrap();
    input.send_keys(&path.to_string_lossy()).await.unwrap();
    browser.click("#onair-sound-form button[type=submit]").await;
}

#[tokio::test]
async fn an_admin_uploads_a_styles_sound_from_the_page_and_a_bad_file_is_refused_there() {
    let (browser, server) = panel().await;
    let dir = std::env::temp_dir().join(format!("dynamo-sounds-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let tone = dir.join("chime.wav");
    std::fs::write(&tone, wav_tone(400)).unwrap();
    let fake = dir.join("chime.mp3");
    std::fs::write(&fake, b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR").unwrap();

    upload(&browser, "friend", &tone, 30).await;
    browser
        .until(
            "friend's sound to be listed",
            "document.querySelector('#onair-sounds li[data-style=friend] audio') !== null",
        )
        .await;
    let (status, sound) = server
        .get("/styles/friend/sound", Some(&server.admin()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sound["content_type"], "audio/wav");
    assert_eq!(sound["volume_percent"], 30);
    let listed = browser
        .eval("document.querySelector('#onair-sounds li[data-style=friend]').textContent")
        .await;
    assert!(listed.as_str().unwrap().contains("wav"), "{listed}");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");

    upload(&browser, "ghost", &fake, 100).await;
    let error = browser
        .until(
            "the refusal to show",
            "document.getElementById('onair-error').textContent || false",
        )
        .await;
    assert!(
        error.as_str().unwrap().contains("a PNG image, not a sound"),
        "{error}"
    );
    let (status, _) = server
        .get("/styles/ghost/sound", Some(&server.admin()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
    std::fs::remove_dir_all(&dir).unwrap();
}
