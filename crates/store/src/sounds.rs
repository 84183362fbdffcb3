//! Alert sounds per style (migration 0023): where each style's sound is
//! stored and how loud the overlay plays it. The file itself is in storage.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A style's alert sound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StyleSound {
    pub style_id: String,
    /// The public URL the overlay plays it from.
    pub url: String,
    /// `audio/mpeg`, `audio/ogg` or `audio/wav`, as detected from its content.
    pub content_type: String,
    pub bytes: i32,
    /// 0..100.
    pub volume_percent: i16,
    pub uploaded_at: DateTime<Utc>,
}

/// A sound just stored, to record.
#[derive(Debug, Clone)]
pub struct NewStyleSound<'a> {
    pub style_id: &'a str,
    pub object_key: &'a str,
    pub url: &'a str,
    pub content_type: &'a str,
    pub bytes: i32,
    pub volume_percent: i16,
}

impl Store {
    /// Records `sound` as its style's sound, replacing any earlier one.
    pub async fn put_style_sound(
        &self,
        sound: &NewStyleSound<'_>,
    ) -> Result<StyleSound, StoreError> {
        let stored = sqlx::query_as!(
            StyleSound,
            "INSERT INTO dynamo.style_sounds
                (style_id, object_key, url, content_type, bytes, volume_percent)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (style_id) DO UPDATE SET
                object_key = EXCLUDED.object_key, url = EXCLUDED.url,
                content_type = EXCLUDED.content_type, bytes = EXCLUDED.bytes,
                volume_percent = EXCLUDED.volume_percent, uploaded_at = now()
             RETURNING style_id, url, content_type, bytes, volume_percent, uploaded_at",
            sound.style_id,
            sound.object_key,
            sound.url,
            sound.content_type,
            sound.bytes,
            sound.volume_percent,
        )
        .fetch_one(self.pool())
        .await?;
        Ok(stored)
    }

    pub async fn style_sound(&self, style_id: &str) -> Result<Option<StyleSound>, StoreError> {
        let sound = sqlx::query_as!(
            StyleSound,
            "SELECT style_id, url, content_type, bytes, volume_percent, uploaded_at
             FROM dynamo.style_sounds WHERE style_id = $1",
            style_id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(sound)
    }

    /// Every style's sound, by style id.
    pub async fn style_sounds(&self) -> Result<Vec<StyleSound>, StoreError> {
        let sounds = sqlx::query_as!(
            StyleSound,
            "SELECT style_id, url, content_type, bytes, volume_percent, uploaded_at
             FROM dynamo.style_sounds ORDER BY style_id"
        )
        .fetch_all(self.pool())
        .await?;
        Ok(sounds)
    }

    /// Changes a sound's volume; None when the style has no sound.
    pub async fn set_style_sound_volume(
        &self,
        style_id: &str,
        volume_percent: i16,
    ) -> Result<Option<StyleSound>, StoreError> {
        let sound = sqlx::query_as!(
            StyleSound,
            "UPDATE dynamo.style_sounds SET volume_percent = $2, uploaded_at = now()
             WHERE style_id = $1
             RETURNING style_id, url, content_type, bytes, volume_percent, uploaded_at",
            style_id,
            volume_percent
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(sound)
    }

    /// Removes a style's sound (its alerts play silent); false when it had none.
    /// The stored file stays: alerts already handed out may still play it.
    pub async fn delete_style_sound(&self, style_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query!(
            "DELETE FROM dynamo.style_sounds WHERE style_id = $1",
            style_id
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
