//! The public gallery (`PUBLIC_GALLERY`): what aired, for viewers.
//!
//! An image *aired* when its request succeeded (the alert was published,
//! and, under `APPROVAL=manual`, approved) and — once an overlay has ever
//! played an alert, so the overlay's record is the truth — an overlay took
//! its entry on air. Before any overlay played (Golden VCR shows alerts from
//! `onscreen-events` itself), a published alert counts as aired. Declined,
//! rejected, failed and waiting requests never qualify, nor an admin's
//! try-out of a style (`trial`: it never aired). Only the last
//! [`RECENT_DAYS`] are shown: the current and recent broadcasts.
//!
//! Each image is named by an opaque public id (the first 96 bits of the
//! SHA-256 of the request id, in hex): it cannot be turned back into the
//! request id, so the gallery's links open nothing in the API.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};

/// How far back the gallery reaches, in days.
pub const RECENT_DAYS: i32 = 7;

/// One aired image, as viewers see it: no ids but the public one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryImage {
    pub public_id: String,
    /// The viewer's Twitch display name.
    pub viewer_name: String,
    /// The viewer's subject.
    pub description: String,
    /// The friend's generated name (friends only).
    pub friend_name: Option<String>,
    /// `ghost` or `friend`.
    pub style: String,
    /// As storage gave it: absolute (S3) or relative (`/images/…`).
    pub image_url: String,
    pub requested_at: DateTime<Utc>,
}

/// Where a page of the gallery starts: just older than this image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryCursor {
    pub requested_at: DateTime<Utc>,
    pub public_id: String,
}

/// The checked query of aired [`GalleryImage`]s: its one SELECT, then the
/// caller's extra condition and tail (a string literal) and its arguments.
macro_rules! select_aired {
    ($tail:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            GalleryImage,
            r#"SELECT g.public_id AS "public_id!", g.viewer_name, g.description AS "description!",
                g.friend_name AS "friend_name?", g.style, g.image_url, g.requested_at
            FROM (
                SELECT dynamo.gallery_public_id(r.id) AS public_id,
                    r.twitch_display_name AS viewer_name,
                    coalesce(r.inputs->>'subject', '') AS description,
                    a.value AS friend_name, r.style, i.url AS image_url,
                    r.created_at AS requested_at
                FROM dynamo.image_request r
                JOIN dynamo.image i ON i.image_request_id = r.id AND i.index = 0
                LEFT JOIN dynamo.answer a ON a.image_request_id = r.id
                WHERE r.state = 'succeeded' AND NOT r.trial
                  AND r.approval_decision IS DISTINCT FROM 'declined'
                  AND r.created_at > now() - make_interval(days => $1)
                  AND (EXISTS (SELECT 1 FROM dynamo.overlay_alert q
                               WHERE q.image_request_id = r.id AND q.started_at IS NOT NULL)
                       OR NOT EXISTS (SELECT 1 FROM dynamo.overlay_alert q
                                      WHERE q.started_at IS NOT NULL))
            ) g "#
                + $tail,
            RECENT_DAYS
            $(, $arg)*
        )
    };
}

impl Store {
    /// Up to `limit` aired images, newest first, older than `before` if given.
    pub async fn gallery_page(
        &self,
        before: Option<&GalleryCursor>,
        limit: i64,
    ) -> Result<Vec<GalleryImage>, StoreError> {
        let (at, id) = match before {
            Some(cursor) => (Some(cursor.requested_at), Some(cursor.public_id.as_str())),
            None => (None, None),
        };
        let page = select_aired!(
            "WHERE $2::timestamptz IS NULL
                OR (g.requested_at, g.public_id) < ($2, $3::text)
             ORDER BY g.requested_at DESC, g.public_id DESC LIMIT $4",
            at,
            id,
            limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(page)
    }

    /// The aired image named `public_id`, if there is one.
    pub async fn gallery_image(&self, public_id: &str) -> Result<Option<GalleryImage>, StoreError> {
        let image = select_aired!("WHERE g.public_id = $2", public_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(image)
    }
}
