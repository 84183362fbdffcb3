//! The Styles panel (issue 28, item 2): a streamer creates a style from the
//! page, watches its prompt render as the template is typed, sees the API's
//! refusal next to the field it names, tries the style (one free image, made
//! by a real consumer and never aired) and sees the reward button's answer.

use crate::browser::Browser;
use reqwest::StatusCode;
use serde_json::json;

/// Sets a select's value as a person would (the change event included).
async fn choose(browser: &Browser, id: &str, value: &str) {
    browser
        .eval(&format!(
            "(() => {{ const s = document.getElementById('{id}'); s.value = '{value}';
                       s.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()"
        ))
        .await;
}

/// Clicks `css` once scrolled to the middle (clear of the sticky header).
async fn press(browser: &Browser, css: &str) {
    browser
        .eval(&format!(
            "document.querySelector(\"{css}\").scrollIntoView({{block: 'center'}}) ?? true"
        ))
        .await;
    browser.click(css).await;
}

const TEMPLATE: &str = "{article} {color} {subject} as a die-cut sticker, with a solid {complement} background suitable for chroma keying";

#[tokio::test]
async fn an_admin_creates_a_style_previews_its_prompt_and_tries_it_from_the_page() {
    let browser = Browser::open(1280, 1000).await;
    let server = crate::common::Server::start().await;
    let consumer = server.start_consumer().await;
    let token = server.admin();
    browser.sign_in(&server.base, "/", &token).await;
    browser
        .until(
            "the styles panel with ghost and friend",
            "!document.getElementById('styles').hidden
             && document.querySelector('#styles-list li[data-id=ghost]')
             && document.querySelector('#styles-list li[data-id=friend]')",
        )
        .await;
    browser.click("#styles-details summary").await;

    browser.fill("#style-id", "sticker").await;
    browser.fill("#style-display-name", "Sticker").await;
    choose(&browser, "style-color", "optional").await;
    choose(&browser, "style-output", "cutout").await;
    // A misspelt placeholder: the preview's refusal, next to the template.
    browser
        .fill(
            "#style-template",
            "a die-cut sticker of {subject} in {colour}",
        )
        .await;
    browser
        .until(
            "the template's error",
            "document.getElementById('style-template-error').textContent
                 .includes('unknown placeholder {colour}')",
        )
        .await;
    let invalid = browser
        .eval("document.getElementById('style-template').getAttribute('aria-invalid')")
        .await;
    assert_eq!(invalid, json!("true"));

    // Fixed: the prompt a sample makes, as the consumer would render it.
    browser.fill("#style-template", TEMPLATE).await;
    let expected = "an orange seal wearing a tiny hat as a die-cut sticker, with a solid \
                    sky-blue background suitable for chroma keying";
    browser
        .until(
            "the preview to render",
            &format!("document.getElementById('style-preview').textContent === '{expected}'"),
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('style-template-error').textContent")
            .await,
        json!("")
    );
    choose(&browser, "style-sample-color", "red").await;
    browser
        .until(
            "the preview to follow the sample colour",
            "document.getElementById('style-preview').textContent.startsWith('a red seal')",
        )
        .await;

    // Saved without a reward title: the API's refusal, next to that field.
    press(&browser, "#style-save").await;
    let shown = browser
        .until(
            "the reward title's error",
            "document.getElementById('style-reward-title-error').textContent",
        )
        .await;
    assert!(shown.as_str().unwrap().contains("characters"), "{shown}");
    let (status, _) = server.get("/styles/sticker", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing saved");

    browser
        .fill("#style-reward-title", "dynamo: a sticker")
        .await;
    browser
        .fill("#style-reward-prompt", "What should the sticker be?")
        .await;
    browser.fill("#style-points", "100").await;
    press(&browser, "#style-save").await;
    browser
        .until(
            "the style to be created and listed",
            "document.getElementById('style-status').textContent === 'Created.'
             && document.querySelector('#styles-list li[data-id=sticker]')",
        )
        .await;
    let (status, style) = server.get("/styles/sticker", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(style["definition"]["prompt_template"], TEMPLATE);
    assert_eq!(style["definition"]["color"], "optional");
    assert_eq!(style["definition"]["output"], "cutout");
    assert_eq!(style["definition"]["points_cost"], 100);
    assert_eq!(style["definition"]["reward"]["cost"], 500);
    // The page's other style pickers offer it too, and the enqueue form asks
    // for its optional colour (the style's rule, not friend's).
    browser
        .until(
            "the new style in the enqueue, sound and filter pickers",
            "['enqueue-style', 'onair-sound-style'].every((id) =>
                 [...document.getElementById(id).options].some((o) => o.value === 'sticker'))
             && [...document.querySelector('#filters select[name=style]').options]
                 .some((o) => o.value === 'sticker')",
        )
        .await;
    choose(&browser, "enqueue-style", "sticker").await;
    let color_hidden = browser
        .eval("document.getElementById('enqueue-color-field').hidden")
        .await;
    assert_eq!(color_hidden, false, "a sticker takes an optional colour");
    choose(&browser, "enqueue-style", "ghost").await;
    let color_hidden = browser
        .eval("document.getElementById('enqueue-color-field').hidden")
        .await;
    assert_eq!(color_hidden, true, "a ghost takes none");

    // Try it: one image, shown in the panel once it is made.
    choose(&browser, "style-sample-color", "orange").await;
    press(&browser, "#styles-list li[data-id=sticker] button.try").await;
    browser
        .until(
            "the tried image",
            "!document.getElementById('styles-tried').hidden
             && document.getElementById('styles-tried-image').complete
             && document.getElementById('styles-tried-image').naturalWidth > 0",
        )
        .await;
    let request = browser
        .eval("document.getElementById('styles-tried').dataset.request")
        .await;
    let (_, tried) = server
        .get(
            &format!("/requests/{}", request.as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(tried["trial"], true, "{tried}");
    assert_eq!(tried["state"], "succeeded", "{tried}");
    assert_eq!(tried["images"][0]["content_type"], "image/webp", "{tried}");
    assert_eq!(tried["steps"]["alerted_at"], serde_json::Value::Null);

    // The reward button: nobody signed this server's dynamo in to Twitch,
    // and the row says so (the API's 409), rather than failing silently.
    press(
        &browser,
        "#styles-list li[data-id=sticker] button[aria-label^='Publish']",
    )
    .await;
    let answer = browser
        .until(
            "the reward's answer",
            "document.querySelector('#styles-list li[data-id=sticker] .style-status').textContent",
        )
        .await;
    let answer = answer.as_str().unwrap();
    assert!(
        answer.starts_with("Reward not published: ") && answer.contains("not signed in to Twitch"),
        "{answer}"
    );

    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    // The panel's top, clear of the sticky header.
    browser
        .eval(
            "(() => { document.getElementById('styles').scrollIntoView({block: 'start'});
                      scrollBy(0, -document.querySelector('header.bar').offsetHeight - 8); return true; })()",
        )
        .await;
    let shot = browser.screenshot("styles.png").await;
    // UPDATE_SCREENSHOTS=1 refreshes the committed one.
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::fs::copy(
            shot,
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/styles.png"),
        )
        .unwrap();
    }
    consumer.stop().await;
}
