//! The public gallery (`PUBLIC_GALLERY`, off by default): `/gallery`, what
//! aired lately, newest first, and `/gallery/{public_id}`, one image with the
//! OpenGraph and Twitter card tags that make a chat link share well.
//!
//! Both pages are public and the same for everyone: no token, no cookie, no
//! per-viewer state, so a raid's worth of viewers can be answered from a
//! cache (`Cache-Control: public, max-age=30` and an ETag of the body). What
//! counts as aired is the store's rule (`dynamo_store::GalleryImage`); the
//! pages name images only by their opaque public id.

mod html;

use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::page::{self, Cached, etag_of};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::DateTime;
use dynamo_store::{GalleryCursor, GalleryImage};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;

/// Images per page of `/gallery`.
const PAGE: i64 = 24;
/// How long a cache may serve a page without asking again: short enough
/// that a new image shows within half a minute of airing.
const CACHE_CONTROL: &str = "public, max-age=30";
/// No scripts at all; the stylesheet is ours, the images come from storage.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: http: data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the gallery needs to know when it is on.
#[derive(Debug, Clone)]
pub struct Gallery {
    /// `PUBLIC_BASE_URL`, without a trailing slash: og:image and og:url must
    /// be absolute, and storage may give relative image URLs (`/images/…`).
    pub base_url: Arc<str>,
}

impl Gallery {
    fn absolute(&self, url: &str) -> String {
        if url.starts_with("https://") || url.starts_with("http://") {
            url.to_owned()
        } else {
            format!("{}/{}", self.base_url, url.trim_start_matches('/'))
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GalleryQuery {
    /// The cursor of the previous page's "older" link: images older than it.
    #[param(pattern = r"^[0-9]{1,19}\.[0-9a-f]{24}$")]
    pub before: Option<String>,
}

/// The gallery: images that aired during the current and recent broadcasts.
#[utoipa::path(get, path = "/gallery", tag = "gallery", params(GalleryQuery),
    responses((status = 200, description = "the gallery page", content_type = "text/html"),
              (status = 304, description = "unchanged since the ETag in If-None-Match"),
              (status = 404, description = "the gallery is off (PUBLIC_GALLERY)")))]
pub async fn index(
    State(state): State<AppState>,
    Query(query): Query<GalleryQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let gallery = enabled(&state)?;
    let before = query.before.as_deref().map(parse_cursor).transpose()?;
    let page = state.store.gallery_page(before.as_ref(), PAGE).await?;
    let older = (page.len() as i64 == PAGE)
        .then(|| page.last().map(cursor_of))
        .flatten();
    let body = html::index(gallery, &page, older.as_deref(), before.is_some());
    Ok(respond(&headers, body))
}

/// One aired image's page, with OpenGraph and Twitter card tags.
#[utoipa::path(get, path = "/gallery/{public_id}", tag = "gallery",
    params(("public_id" = String, Path, description = "the image's public id, from the gallery")),
    responses((status = 200, description = "the image's page", content_type = "text/html"),
              (status = 304, description = "unchanged since the ETag in If-None-Match"),
              (status = 404, description = "no aired image has this id, or the gallery is off (PUBLIC_GALLERY)")))]
pub async fn image(
    State(state): State<AppState>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let gallery = enabled(&state)?;
    let not_found = || ApiError::NotFound("no such image in the gallery".into());
    if !is_public_id(&public_id) {
        return Err(not_found());
    }
    let image = state
        .store
        .gallery_image(&public_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(respond(&headers, html::image(gallery, &image)))
}

fn enabled(state: &AppState) -> Result<&Gallery, ApiError> {
    state
        .gallery
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the public gallery is off here".into()))
}

fn is_public_id(raw: &str) -> bool {
    raw.len() == 24 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `<microseconds since the epoch>.<public id>` of the last image shown.
fn cursor_of(image: &GalleryImage) -> String {
    format!(
        "{}.{}",
        image.requested_at.timestamp_micros(),
        image.public_id
    )
}

fn parse_cursor(raw: &str) -> Result<GalleryCursor, ApiError> {
    let bad = || {
        ApiError::bad_field(
            "before",
            "expected the cursor of a gallery page's older link",
        )
    };
    let (micros, public_id) = raw.split_once('.').ok_or_else(bad)?;
    let requested_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    if !is_public_id(public_id) {
        return Err(bad());
    }
    Ok(GalleryCursor {
        requested_at,
        public_id: public_id.to_owned(),
    })
}

/// The page with its caching and security headers; 304 when the caller's
/// ETag is current.
fn respond(headers: &HeaderMap, body: String) -> Response {
    let etag = etag_of(body.as_bytes());
    let cached = Cached {
        cache_control: CACHE_CONTROL,
        content_type: "text/html; charset=utf-8",
        csp: CSP,
    };
    page::respond(headers, &etag, cached, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_a_bad_one_names_the_field() {
        let cursor = parse_cursor("1765000000123456.0123456789abcdef01234567").unwrap();
        assert_eq!(
            cursor.requested_at.timestamp_micros(),
            1_765_000_000_123_456
        );
        assert_eq!(cursor.public_id, "0123456789abcdef01234567");
        for bad in [
            "",
            "123",
            "x.0123456789abcdef01234567",
            "1.ABC",
            "1.0123456789abcdef0123456g",
        ] {
            match parse_cursor(bad) {
                Err(ApiError::BadRequest { field, .. }) => {
                    assert_eq!(field.as_deref(), Some("before"))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn relative_image_urls_become_absolute_under_the_base() {
        let gallery = Gallery {
            base_url: "https://dynamo.example".into(),
        };
        assert_eq!(
            gallery.absolute("/images/a.jpg"),
            "https://dynamo.example/images/a.jpg"
        );
        assert_eq!(
            gallery.absolute("images/a.jpg"),
            "https://dynamo.example/images/a.jpg"
        );
        assert_eq!(
            gallery.absolute("https://cdn.example/a.jpg"),
            "https://cdn.example/a.jpg"
        );
    }
}
