//! Alert sounds per style (issue 30): the admin uploads a style's sound
//! (`PUT /styles/{style}/sound`, the file itself as the body), it is stored with
//! the images, and the overlay plays it with the alert's entrance at its
//! volume. The format is told by the file's content, never its name.
//!
//! Styles are `ghost` and `friend` today; the sound is keyed by the style's
//! id as text so it joins the styles table once styles are data.

mod format;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use dynamo_store::{NewStyleSound, StyleSound};
use dynamo_wire::{Style, StyleId};
use futures::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use format::detect;

/// Whether `path` is a sound upload, whose body may be larger than
/// `MAX_BODY_BYTES` (up to `SOUND_MAX_BYTES`).
pub fn is_upload(path: &str) -> bool {
    path.strip_prefix("/styles/")
        .and_then(|rest| rest.strip_suffix("/sound"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The style named in the path, if it is one (404 otherwise): ghost or
/// friend (known before a consumer first seeds them), or one of the
/// streamer's own in `dynamo.styles`.
async fn known_style(state: &AppState, id: &str) -> Result<String, ApiError> {
    let missing = || ApiError::NotFound(format!("no style {id:?}"));
    let style = StyleId::parse(id).map_err(|_| missing())?;
    if Style::parse(id).is_some() || state.store.style(&style).await?.is_some() {
        Ok(style.to_string())
    } else {
        Err(missing())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// How loud the overlay plays it, 0..100 (default 100).
    #[param(minimum = 0, maximum = 100)]
    volume: Option<i16>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeChange {
    /// How loud the overlay plays it, 0..100.
    #[schema(minimum = 0, maximum = 100)]
    volume_percent: i16,
}

fn volume(field: &str, value: i16) -> Result<i16, ApiError> {
    if (0..=100).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::bad_field(field, "a volume from 0 to 100"))
    }
}

/// Reads the whole body, refusing it as soon as it passes `max` bytes.
async fn read_capped(body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad("the upload was interrupted"))?;
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Uploads style `id`'s alert sound (replacing any earlier one): the file
/// itself is the body (mp3, ogg or wav, at most `SOUND_MAX_BYTES`; its
/// Content-Type and name are not trusted: the content says what it is).
#[utoipa::path(put, path = "/styles/{style}/sound", tag = "sounds",
    params(("style" = String, Path, description = "a style id: ghost, friend or one of the streamer's own"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
                 description = "the sound file (mp3, ogg or wav)"),
    responses((status = 200, description = "stored: {style_id, url, content_type, bytes, volume_percent, uploaded_at}"),
              (status = 400, description = "a volume out of 0..100 (`field`: volume)"),
              (status = 404, description = "no such style"),
              (status = 413, description = "larger than SOUND_MAX_BYTES"),
              (status = 415, description = "not an mp3, ogg or wav file (the detail says what it is instead), or a form instead of the file"),
              (status = 503, description = "the database or storage is unavailable; try again shortly")),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StyleSound>, ApiError> {
    let style = known_style(&state, &id).await?;
    let style = style.as_str();
    let volume_percent = volume("volume", query.volume.unwrap_or(100))?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    if form {
        return Err(ApiError::UnsupportedMediaType(
            "send the sound file itself as the body, not a form".into(),
        ));
    }
    let bytes = read_capped(body, state.sound_max_bytes).await?;
    let format = detect(&bytes).map_err(ApiError::UnsupportedMediaType)?;
    let size = i32::try_from(bytes.len()).map_err(|_| ApiError::PayloadTooLarge)?;
    // A new key per upload: browsers and CDNs keep objects for a year.
    let object_key = format!("sounds/{style}-{}.{}", Uuid::new_v4(), format.extension());
    let url = state
        .storage
        .put(&object_key, bytes, format.content_type())
        .await
        .map_err(|error| ApiError::unavailable("storage is unavailable", error))?;
    let stored = state
        .store
        .put_style_sound(&NewStyleSound {
            style_id: style,
            object_key: &object_key,
            url: &url,
            content_type: format.content_type(),
            bytes: size,
            volume_percent,
        })
        .await?;
    tracing::info!(style, key = %object_key, bytes = size, volume_percent, by = ?caller, "alert sound uploaded");
    Ok(Json(stored))
}

/// Every style's alert sound, by style id (styles without one are absent).
#[utoipa::path(get, path = "/overlay/sounds", tag = "sounds",
    responses((status = 200, description = "[{style_id, url, content_type, bytes, volume_percent, uploaded_at}]")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<StyleSound>>, ApiError> {
    Ok(Json(state.store.style_sounds().await?))
}

/// Style `id`'s alert sound.
#[utoipa::path(get, path = "/styles/{style}/sound", tag = "sounds",
    params(("style" = String, Path, description = "style id")),
    responses((status = 200, description = "{style_id, url, content_type, bytes, volume_percent, uploaded_at}"),
              (status = 404, description = "no such style, or it has no sound")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<StyleSound>, ApiError> {
    let style = known_style(&state, &id).await?;
    let style = style.as_str();
    match state.store.style_sound(style).await? {
        Some(sound) => Ok(Json(sound)),
        None => Err(ApiError::NotFound(format!("{style} has no sound"))),
    }
}

/// Changes how loud style `id`'s sound plays.
#[utoipa::path(patch, path = "/styles/{style}/sound", tag = "sounds",
    params(("style" = String, Path, description = "style id")),
    request_body(content = VolumeChange, content_type = "application/json"),
    responses((status = 200, description = "the sound, changed"),
              (status = 404, description = "no such style, or it has no sound")),
    security(("bearer" = [])))]
pub async fn set_volume(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Json(change): Json<VolumeChange>,
) -> Result<Json<StyleSound>, ApiError> {
    let style = known_style(&state, &id).await?;
    let style = style.as_str();
    let percent = volume("volume_percent", change.volume_percent)?;
    match state.store.set_style_sound_volume(style, percent).await? {
        Some(sound) => {
            tracing::info!(
                style,
                volume_percent = percent,
                "alert sound volume changed"
            );
            Ok(Json(sound))
        }
        None => Err(ApiError::NotFound(format!("{style} has no sound"))),
    }
}

/// Removes style `id`'s sound: its alerts play silent. Idempotent: a
/// style with no sound is already silent (204 all the same).
#[utoipa::path(delete, path = "/styles/{style}/sound", tag = "sounds",
    params(("style" = String, Path, description = "style id")),
    responses((status = 204, description = "removed, or there was none"),
              (status = 404, description = "no such style")),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let style = known_style(&state, &id).await?;
    let style = style.as_str();
    if state.store.delete_style_sound(style).await? {
        tracing::info!(style, "alert sound removed");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sound_route_takes_large_bodies() {
        assert!(is_upload("/styles/ghost/sound"));
        assert!(!is_upload("/styles//sound"));
        assert!(!is_upload("/styles/a/b/sound"));
        assert!(!is_upload("/requests"));
    }
}
