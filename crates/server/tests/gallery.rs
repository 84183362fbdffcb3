//! The public gallery (`PUBLIC_GALLERY`) over a real socket against the real
//! database: only what aired is shown — never a declined, rejected, failed or
//! waiting request — with display names only, share tags with absolute URLs,
//! caching headers, pages, and 404 everywhere while it is off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER};
use dynamo_store::{Decision, Lease, NewRequest, RequestState, Store, StoredImage};
use dynamo_testkit::TestWorld;
use dynamo_wire::GenerationRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const BASE: &str = "https://dynamo.example";

async fn gallery_server() -> Server {
    Server::start_in(TestWorld::start().await, |env| {
        env.with("PUBLIC_GALLERY", "true")
            .with("PUBLIC_BASE_URL", BASE)
    })
    .await
}

fn store(server: &Server) -> Store {
    Store::new(server.world.database.pool().clone())
}

/// A request recorded, debited and with its image stored (relative URL, as
/// filesystem storage gives it), still holding its lease. (The pipeline's
/// storage keys embed the request id, which the gallery cannot hide without
/// serving the images itself; here the key is another id, so that the
/// assertions see whether the gallery's own text leaks a request id.)
async fn stored(store: &Store, viewer: &str, subject: &str) -> (Uuid, Lease) {
    let request = GenerationRequest::from_value(json!({
        "type": "image",
        "viewer": {"twitch_user_id": VIEWER, "twitch_display_name": viewer},
        "payload": {"style": "ghost", "inputs": {"subject": subject}},
    }))
    .unwrap();
    let id = Uuid::new_v4();
    let new = NewRequest {
        id,
        request: &request,
        prompt: "p",
        settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
        points_cost: 200,
        free_of_charge: false,
        retry_of: None,
        fingerprint: None,
        trial: false,
    };
    let (_, _, lease) = store
        .record(&new, "test", Duration::from_secs(3600))
        .await
        .unwrap();
    let lease = lease.unwrap();
    store
        .mark_debited(&lease, Some(Uuid::new_v4()))
        .await
        .unwrap();
    let image = StoredImage {
        index: 0,
        url: format!("/images/{}.jpg", Uuid::new_v4()),
        color: None,
        content_type: "image/jpeg".into(),
        byte_size: 1,
    };
    store.record_image(&lease, &image).await.unwrap();
    (id, lease)
}

/// A request whose alert was published and whose debit was accepted.
async fn succeeded(store: &Store, viewer: &str, subject: &str) -> Uuid {
    let (id, lease) = stored(store, viewer, subject).await;
    store.mark_alerted(&lease).await.unwrap();
    store.mark_succeeded(&lease).await.unwrap();
    id
}

async fn page(server: &Server, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The public ids the page links to, in order.
fn linked_ids(html: &str) -> Vec<String> {
    let mut ids: Vec<String> = html
        .split("href=\"/gallery/")
        .skip(1)
        .map(|rest| rest[..24].to_owned())
        .collect();
    ids.dedup();
    ids
}

fn meta<'a>(html: &'a str, key: &str) -> &'a str {
    let start = html
        .find(&format!("=\"{key}\" content=\""))
        .unwrap_or_else(|| panic!("no {key} in {html}"));
    let rest = &html[start + key.len() + 13..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn only_aired_images_are_shown_never_declined_rejected_failed_or_waiting_ones() {
    let server = gallery_server().await;
    let store = store(&server);
    let aired = succeeded(&store, "AiredViewer", "a seal <script>alert(1)</script>").await;

    let (declined, lease) = stored(&store, "DeclinedViewer", "a declined walrus").await;
    store
        .park_for_approval(&lease, Duration::from_secs(600))
        .await
        .unwrap();
    store
        .decide_approval(declined, Decision::Declined, "streamer", None)
        .await
        .unwrap();
    let (waiting, lease) = stored(&store, "WaitingViewer", "a waiting otter").await;
    store
        .park_for_approval(&lease, Duration::from_secs(600))
        .await
        .unwrap();
    let (rejected, lease) = stored(&store, "RejectedViewer", "a rejected crab").await;
    store
        .finish_unsuccessfully(&lease, RequestState::Rejected, "declined by the streamer")
        .await
        .unwrap();
    let (failed, lease) = stored(&store, "FailedViewer", "a failed eel").await;
    store
        .finish_unsuccessfully(&lease, RequestState::Failed, "the image service failed")
        .await
        .unwrap();
    let (in_flight, lease) = stored(&store, "InFlightViewer", "an in-flight squid").await;
    store.mark_alerted(&lease).await.unwrap();

    let (status, _, html) = page(&server, "/gallery").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("AiredViewer"), "{html}");
    assert!(
        html.contains("a seal &lt;script&gt;alert(1)&lt;/script&gt;"),
        "the subject is escaped: {html}"
    );
    assert!(!html.contains("<script"), "{html}");
    for absent in [
        "DeclinedViewer",
        "declined walrus",
        "WaitingViewer",
        "waiting otter",
        "RejectedViewer",
        "rejected crab",
        "FailedViewer",
        "failed eel",
        "InFlightViewer",
        "in-flight squid",
    ] {
        assert!(!html.contains(absent), "{absent} is shown: {html}");
    }
    for id in [aired, declined, waiting, rejected, failed, in_flight] {
        assert!(
            !html.contains(&id.to_string()),
            "request id {id} is in the page"
        );
        assert!(!html.contains(&id.simple().to_string()));
    }
    assert!(!html.to_lowercase().contains("token"), "{html}");
    assert_eq!(linked_ids(&html).len(), 1, "{html}");
    assert!(
        html.contains("loading=\"lazy\""),
        "images load lazily: {html}"
    );

    // A declined or failed image has no page of its own either: its public
    // id is the hash the aired one's is made of.
    let aired_id = linked_ids(&html).remove(0);
    let (status, _, _) = page(&server, &format!("/gallery/{aired_id}")).await;
    assert_eq!(status, StatusCode::OK);
    for hidden in [declined, waiting, rejected, failed, in_flight] {
        let public = public_id(&store, hidden).await;
        let (status, _, body) = page(&server, &format!("/gallery/{public}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "not_found"
        );
    }
}

/// The public id of request `id`, as the database computes it.
async fn public_id(store: &Store, id: Uuid) -> String {
    sqlx::query_scalar::<_, String>(
        "SELECT left(encode(sha256(convert_to($1::text, 'UTF8')), 'hex'), 24)",
    )
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn once_an_overlay_plays_only_what_it_took_on_air_counts_as_aired() {
    let server = gallery_server().await;
    let store = store(&server);
    succeeded(&store, "PlayedViewer", "a played seal").await;
    let played = store.overlay_take_next().await.unwrap().unwrap();
    store.overlay_finish(played.id).await.unwrap();
    succeeded(&store, "QueuedViewer", "a queued seal").await;
    succeeded(&store, "ClearedViewer", "a cleared seal").await;
    // The queued one stays waiting; then the cleared one is cleared with
    // everything else waiting, so the queued one is put back after it.
    store.overlay_clear().await.unwrap();
    succeeded(&store, "QueuedViewer2", "a queued again seal").await;

    let (status, _, html) = page(&server, "/gallery").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("PlayedViewer"), "{html}");
    for absent in ["QueuedViewer", "ClearedViewer", "QueuedViewer2"] {
        assert!(!html.contains(absent), "{absent} never aired: {html}");
    }
}

#[tokio::test]
async fn an_image_page_shares_well_with_absolute_urls() {
    let server = gallery_server().await;
    let store = store(&server);
    let id = succeeded(&store, "wasabimilkshake", "Sealy \"the seal\"").await;
    let public = public_id(&store, id).await;

    let (status, headers, html) = page(&server, &format!("/gallery/{public}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let stored = &store.images(id).await.unwrap()[0].url;
    assert!(stored.starts_with("/images/"), "{stored}");
    assert_eq!(meta(&html, "og:image"), format!("{BASE}{stored}"));
    assert_eq!(meta(&html, "twitter:image"), format!("{BASE}{stored}"));
    assert_eq!(meta(&html, "og:url"), format!("{BASE}/gallery/{public}"));
    assert_eq!(
        meta(&html, "og:title"),
        "Sealy &quot;the seal&quot;, from wasabimilkshake"
    );
    assert!(meta(&html, "og:description").contains("wasabimilkshake"));
    assert_eq!(meta(&html, "twitter:card"), "summary_large_image");
    assert!(!html.contains(&id.to_string()), "no request id: {html}");
}

#[tokio::test]
async fn pages_are_cacheable_and_revalidate_with_their_etag() {
    let server = gallery_server().await;
    let store = store(&server);
    succeeded(&store, "CachedViewer", "a cached seal").await;
    let (status, headers, _) = page(&server, "/gallery").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "public, max-age=30");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(headers.get("set-cookie").is_none());
    let etag = headers["etag"].clone();
    let again = server
        .http
        .get(format!("{}/gallery", server.base))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A new image changes the page, so the old ETag no longer matches.
    succeeded(&store, "NewViewer", "a newer seal").await;
    let changed = server
        .http
        .get(format!("{}/gallery", server.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert!(changed.text().await.unwrap().contains("NewViewer"));
}

#[tokio::test]
async fn the_gallery_pages_newest_first_with_a_before_cursor() {
    let server = gallery_server().await;
    let store = store(&server);
    for n in 0..27 {
        succeeded(
            &store,
            &format!("Viewer{n:02}"),
            &format!("seal number {n}"),
        )
        .await;
    }
    let (status, _, first) = page(&server, "/gallery").await;
    assert_eq!(status, StatusCode::OK);
    let first_ids = linked_ids(&first);
    assert_eq!(first_ids.len(), 24);
    assert!(first.find("Viewer26").unwrap() < first.find("Viewer25").unwrap());
    let older = first.split("href=\"/gallery?before=").nth(1).unwrap();
    let cursor = &older[..older.find('"').unwrap()];
    let (status, _, second) = page(&server, &format!("/gallery?before={cursor}")).await;
    assert_eq!(status, StatusCode::OK);
    let second_ids = linked_ids(&second);
    assert_eq!(second_ids.len(), 3, "{second}");
    assert!(second.contains("Viewer00") && second.contains("Viewer02"));
    assert!(second_ids.iter().all(|id| !first_ids.contains(id)));
    assert!(!second.contains("before="), "no older page after the last");

    let (status, _, body) = page(&server, "/gallery?before=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["field"],
        "before"
    );
}

#[tokio::test]
async fn while_off_the_gallery_routes_answer_404() {
    let server = Server::start().await;
    let store = store(&server);
    let id = succeeded(&store, "AiredViewer", "a seal").await;
    let public = public_id(&store, id).await;
    for path in ["/gallery".to_owned(), format!("/gallery/{public}")] {
        let (status, _, body) = page(&server, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "not_found"
        );
        assert!(!body.contains("AiredViewer"));
    }
}
