//! The overlay URL builder on the live page: the URL it copies carries the
//! settings its preview plays with, and a fresh token that opens the overlay.

use reqwest::StatusCode;
use std::collections::BTreeMap;

/// The query of `url` without `skip`, sorted.
fn settings(url: &str, skip: &[&str]) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .filter(|(name, _)| !skip.contains(&name.as_ref()))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[tokio::test]
async fn the_copied_url_reproduces_the_preview_and_its_fresh_token_opens_the_overlay() {
    let (browser, server) = crate::on_air_panel().await;
    // The streamer's choices, as a user makes them (each field fires change).
    browser
        .eval(
            "(() => { const set = (id, value) => { const field = document.getElementById(id);
                          field.value = value; field.dispatchEvent(new Event('change', {bubbles: true})); };
                      set('builder-position', 'bottom-right'); set('builder-layout', 'side');
                      set('builder-theme', 'vhs'); set('builder-size', '30'); set('builder-caption', '5');
                      set('builder-duration', '12'); set('builder-volume', '35');
                      document.getElementById('builder-fresh').checked = true; return true; })()",
        )
        .await;
    browser.click("#builder button[type=submit]").await;
    let url = browser
        .until(
            "the URL to be built",
            "document.getElementById('builder-url').value || false",
        )
        .await;
    let url = url.as_str().unwrap().to_owned();
    let preview = browser
        .eval("document.getElementById('builder-preview').src")
        .await;
    let preview = preview.as_str().unwrap().to_owned();
    let chosen = settings(&url, &["token"]);
    assert_eq!(
        chosen,
        [
            ("caption", "5"),
            ("duration", "12"),
            ("layout", "side"),
            ("position", "bottom-right"),
            ("size", "30"),
            ("theme", "vhs"),
            ("volume", "35")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into(),
        "{url}"
    );
    assert_eq!(
        settings(&preview, &["preview"]),
        chosen,
        "{preview} vs {url}"
    );

    // The preview is the overlay itself, playing a sample alert with them.
    browser
        .until(
            "the preview to play its sample",
            "(() => { const page = document.getElementById('builder-preview').contentDocument;
                      return page && page.body.dataset.playing === '0'; })()",
        )
        .await;
    let look = browser
        .eval(
            "(() => { const page = document.getElementById('builder-preview').contentDocument;
                      const root = page.defaultView.getComputedStyle(page.documentElement);
                      return {theme: page.body.dataset.theme, position: page.body.dataset.position,
                              layout: page.body.dataset.layout, size: root.getPropertyValue('--size').trim(),
                              caption: root.getPropertyValue('--caption-size').trim()}; })()",
        )
        .await;
    assert_eq!(
        look,
        serde_json::json!({"theme": "vhs", "position": "bottom-right", "layout": "side",
                           "size": "30vh", "caption": "5vh"})
    );

    // The copied URL's fresh token is a real overlay token.
    let token = settings(&url, &[])["token"].clone();
    assert!(token.starts_with("ovl_"), "{url}");
    let next = server
        .http
        .post(format!("{}/overlay/next?token={token}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        next.status(),
        StatusCode::NO_CONTENT,
        "the token opens the overlay"
    );

    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
