//! The public gallery in a real browser, with real aired images (the
//! consumer's placeholder provider): both pages pass axe, and a declined
//! image is not among them.

use crate::browser::Browser;
use crate::common::{Server, WAIT};
use dynamo_store::{Decision, Store};
use dynamo_testkit::{TestWorld, eventually};
use uuid::Uuid;

#[tokio::test]
async fn the_gallery_and_an_image_page_pass_axe_and_never_show_a_declined_image() {
    let server = Server::start_in(TestWorld::start().await, |env| {
        env.with("PUBLIC_GALLERY", "true")
            .with("PUBLIC_BASE_URL", "https://dynamo.example")
    })
    .await;
    let admin = server.admin();
    let consumer = server.start_consumer().await;
    for subject in [
        "a seal in a tuxedo",
        "a lighthouse at dusk",
        "a tiny dragon",
    ] {
        let id = server
            .enqueue(&admin, &crate::enqueue_body("ghost", subject))
            .await;
        server.wait_finished(&id).await;
    }
    consumer.stop().await;
    // A declined one: held for approval, then declined by the streamer.
    let consumer = server
        .start_consumer_with(|env| env.with("APPROVAL", "manual"))
        .await;
    let mut body = crate::enqueue_body("ghost", "a declined walrus");
    body["viewer"]["twitch_display_name"] = "DeclinedViewer".into();
    let declined = server.enqueue(&admin, &body).await;
    let store = Store::new(server.world.database.pool().clone());
    let id: Uuid = declined.parse().unwrap();
    eventually("the request to await approval", WAIT, || {
        let store = store.clone();
        async move { (store.get(id).await.ok()?.state().as_str() == "awaiting_approval").then_some(()) }
    })
    .await;
    store
        .decide_approval(id, Decision::Declined, "streamer", None)
        .await
        .unwrap();
    server.wait_finished(&declined).await;
    consumer.stop().await;

    let browser = Browser::open(1280, 800).await;
    browser
        .client
        .goto(&format!("{}/gallery", server.base))
        .await
        .unwrap();
    browser
        .until(
            "three images to load",
            "[...document.images].length === 3 && [...document.images].every(i => i.complete && i.naturalWidth > 0)",
        )
        .await;
    let text = browser.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(text.contains("a seal in a tuxedo"), "{text}");
    assert!(
        !text.contains("walrus") && !text.contains("DeclinedViewer"),
        "{text}"
    );
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "gallery accessibility: {violations:#?}"
    );
    let shot = browser.screenshot("gallery-public.png").await;
    // UPDATE_SCREENSHOTS=1 refreshes the committed one.
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::fs::copy(
            shot,
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/gallery-public.png"),
        )
        .unwrap();
    }

    browser.click(".images li:first-child p a").await;
    browser
        .until(
            "the image page",
            "document.querySelector('meta[property=\"og:image\"]') && document.images[0].complete && document.images[0].naturalWidth > 0",
        )
        .await;
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "image page accessibility: {violations:#?}"
    );
    let errors = browser.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors (a CSP refusal, say): {errors:?}"
    );
}
