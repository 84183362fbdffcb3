//! The live page at `/`: static files under `assets/`, embedded in the binary
//! so the server needs nothing at run time. The page itself fetches
//! everything through the JSON API with the user's token.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

use crate::error::ApiError;

struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        Self::bytes(body.as_bytes(), content_type)
    }

    fn bytes(body: &'static [u8], content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            etag: etag_of(body),
        }
    }

    /// Revalidated on every load (`no-cache` + ETag), so a new release shows
    /// at once while an unchanged page costs a 304.
    fn respond(&self, headers: &HeaderMap) -> Response {
        // Images come from wherever storage serves them (S3 or /images).
        respond(
            headers,
            &self.etag,
            Cached {
                cache_control: "no-cache",
                content_type: self.content_type,
                csp: "default-src 'self'; img-src 'self' https: http: data:; \
                      media-src 'self' https: http:; \
                      object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
            },
            self.body,
        )
    }
}

/// The ETag of `body`: a digest, so it changes exactly when the body does.
pub(crate) fn etag_of(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let etag = format!("\"{}\"", hex::encode(&digest[..12]));
    // A quoted hex string is always a valid header value.
    HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// How a page or asset may be cached, what it is, and what it may load.
pub(crate) struct Cached {
    pub cache_control: &'static str,
    pub content_type: &'static str,
    pub csp: &'static str,
}

/// `body` with its caching and security headers, or 304 when the caller's
/// If-None-Match is `etag`.
pub(crate) fn respond(
    headers: &HeaderMap,
    etag: &HeaderValue,
    cached: Cached,
    body: impl IntoResponse,
) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag == etag);
    let common = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cached.cache_control),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(cached.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(cached.csp),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/index.html"),
        "text/html; charset=utf-8",
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../assets/app.css"), "text/css; charset=utf-8"));
static ICON: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../assets/favicon.svg"), "image/svg+xml"));

static ON_AIR: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/onair.js"),
        "text/javascript; charset=utf-8",
    )
});
static RULES: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/rules.js"),
        "text/javascript; charset=utf-8",
    )
});
static SOUNDS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/sounds.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLES: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/styles.js"),
        "text/javascript; charset=utf-8",
    )
});
static BUILDER: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/builder.js"),
        "text/javascript; charset=utf-8",
    )
});
/// The URL builder's preview: a sample alert over a sample stream frame.
static SAMPLE_ALERT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../assets/sample-alert.svg"), "image/svg+xml"));
static SAMPLE_FRAME: LazyLock<Asset> = LazyLock::new(|| {
    Asset::bytes(
        include_bytes!("../../../docs/sample-stream-frame.png"),
        "image/png",
    )
});
/// The public gallery's stylesheet (`gallery`).
static GALLERY_STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/gallery.css"),
        "text/css; charset=utf-8",
    )
});
static OVERLAY: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/overlay.html"),
        "text/html; charset=utf-8",
    )
});
static OVERLAY_SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/overlay.js"),
        "text/javascript; charset=utf-8",
    )
});
static OVERLAY_STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/overlay.css"),
        "text/css; charset=utf-8",
    )
});

async fn index(headers: HeaderMap) -> Response {
    INDEX.respond(&headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let asset = match name.as_str() {
        "app.js" => &SCRIPT,
        "app.css" => &STYLE,
        "favicon.svg" => &ICON,
        "onair.js" => &ON_AIR,
        "rules.js" => &RULES,
        "sounds.js" => &SOUNDS,
        "styles.js" => &STYLES,
        "builder.js" => &BUILDER,
        "sample-alert.svg" => &SAMPLE_ALERT,
        "sample-stream-frame.png" => &SAMPLE_FRAME,
        "overlay.js" => &OVERLAY_SCRIPT,
        "overlay.css" => &OVERLAY_STYLE,
        "gallery.css" => &GALLERY_STYLE,
        _ => return ApiError::NotFound(format!("no asset {name}")).into_response(),
    };
    asset.respond(&headers)
}

/// The OBS overlay's page (`/overlay?token=…`). It holds no data; the token in its URL opens the
/// overlay's own endpoints (see `overlay`), and is not checked here.
#[utoipa::path(get, path = "/overlay", tag = "overlay",
    responses((status = 200, description = "the overlay page", content_type = "text/html"),
              (status = 304, description = "unchanged since the ETag in If-None-Match")))]
pub async fn overlay(headers: HeaderMap) -> Response {
    OVERLAY.respond(&headers)
}

/// `/`, `/assets/{name}` and the icon; open to everyone, since the page
/// holds no data. (`/overlay` is in the API's router, which documents it.)
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route(
            "/favicon.ico",
            get(|headers: HeaderMap| async move { ICON.respond(&headers) }),
        )
}
