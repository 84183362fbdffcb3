//! Alert sounds per style over a real socket: uploaded by admins, stored
//! with the images (the directory this server serves), checked by content.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, wav_tone};
use dynamo_testkit::TestWorld;
use reqwest::StatusCode;
use serde_json::json;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00";

#[tokio::test]
async fn an_admin_uploads_a_sound_that_is_stored_with_the_images_and_changes_its_volume() {
    let server = Server::start().await;
    let admin = server.admin();
    let tone = wav_tone(300);

    let (status, sound) = server
        .upload_sound("ghost", "?volume=40", &admin, tone.clone(), "audio/wav")
        .await;
    assert_eq!(status, StatusCode::OK, "{sound}");
    assert_eq!(sound["style_id"], "ghost");
    assert_eq!(sound["content_type"], "audio/wav");
    assert_eq!(sound["volume_percent"], 40);
    assert_eq!(sound["bytes"], tone.len());
    let url = sound["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/images/sounds/ghost-", server.base)),
        "{url}"
    );
    let served = server.http.get(url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().as_ref(), tone.as_slice());

    let (status, read) = server.get("/styles/ghost/sound", Some(&admin)).await;
    assert_eq!((status, &read), (StatusCode::OK, &sound));
    let (status, _) = server.get("/styles/friend/sound", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "friend has none yet");
    let (status, all) = server.get("/overlay/sounds", Some(&admin)).await;
    assert_eq!((status, all), (StatusCode::OK, json!([sound])));

    let changed = server
        .http
        .patch(format!("{}/styles/ghost/sound", server.base))
        .bearer_auth(&admin)
        .json(&json!({"volume_percent": 75}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(changed["volume_percent"], 75);
    assert_eq!(changed["url"], sound["url"]);

    let removed = server
        .http
        .delete(format!("{}/styles/ghost/sound", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let (status, _) = server.get("/styles/ghost/sound", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_uploads_are_refused_naming_the_problem() {
    let server = Server::start_in(TestWorld::start().await, |env| {
        env.with("SOUND_MAX_BYTES", "4096")
    })
    .await;
    let admin = server.admin();

    // A PNG named as an mp3 and sent as one is still a PNG.
    let (status, body) = server
        .upload_sound("ghost", "", &admin, PNG.to_vec(), "audio/mpeg")
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("a PNG image, not a sound"),
        "{body}"
    );

    let (status, body) = server
        .upload_sound("ghost", "", &admin, b"just some text".to_vec(), "audio/ogg")
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("mp3, ogg or wav"),
        "{body}"
    );

    let (status, body) = server
        .upload_sound("ghost", "", &admin, wav_tone(1000), "audio/wav")
        .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "8 kB over a 4 kB cap: {body}"
    );
    assert_eq!(body["error"], "payload_too_large");

    let (status, body) = server
        .upload_sound("ghost", "?volume=101", &admin, wav_tone(100), "audio/wav")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "volume");

    let (status, body) = server
        .upload_sound("sticker", "", &admin, wav_tone(100), "audio/wav")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("sticker"),
        "{body}"
    );

    let (status, _) = server
        .upload_sound("ghost", "", &server.viewer("5"), wav_tone(100), "audio/wav")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers upload nothing");

    // Nothing of the refused uploads was kept.
    let (status, _) = server.get("/styles/ghost/sound", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sound_larger_than_the_json_limit_is_taken_up_to_its_own_cap() {
    // MAX_BODY_BYTES is 64 kB in these tests; an alert sound is often more.
    let server = Server::start().await;
    let tone = wav_tone(12_000); // 96 kB
    let (status, body) = server
        .upload_sound(
            "friend",
            "",
            &server.admin(),
            tone,
            "application/octet-stream",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content_type"], "audio/wav");
}
