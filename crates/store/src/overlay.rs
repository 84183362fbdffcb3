//! The overlay's play-out queue, its controls and its tokens (migration 0016).
//!
//! Entries air in id order, one at a time: an overlay takes the next one on
//! air ([`Store::overlay_take_next`]) and reports it finished. The database
//! records what aired, so an overlay that reloads mid-queue resumes after it.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The channel that announces queue, control and token changes.
pub const OVERLAY_CHANNEL: &str = "dynamo_overlay";

/// One entry of the queue, with what the overlay shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayAlert {
    pub id: i64,
    pub image_request_id: Uuid,
    pub replay_of: Option<i64>,
    /// `ghost` or `friend`.
    pub style: String,
    pub viewer_name: String,
    /// The viewer's subject.
    pub description: String,
    /// The friend's generated name (friends only).
    pub friend_name: Option<String>,
    pub image_url: Option<String>,
    /// The style's alert sound (migration 0023), if it has one.
    pub sound_url: Option<String>,
    /// Its volume, 0..100.
    pub sound_volume_percent: Option<i16>,
    /// The alert's spoken caption (migration 0025), when its style reads it
    /// aloud and it was generated.
    pub speech_url: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `played`, `skipped`, `cleared` or `interrupted` once finished.
    pub outcome: Option<String>,
}

/// What is on air and what waits.
#[derive(Debug, Clone, Serialize)]
pub struct OverlayQueue {
    pub paused: bool,
    pub on_air: Option<OverlayAlert>,
    pub waiting: Vec<OverlayAlert>,
    /// The latest finished entries, newest first.
    pub recent: Vec<OverlayAlert>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayToken {
    pub id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The checked query of [`OverlayAlert`]s: its one SELECT, followed by the
/// caller's condition (a string literal) and its arguments.
macro_rules! select_alerts {
    ($condition:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            OverlayAlert,
            r#"SELECT q.id, q.image_request_id, q.replay_of, r.style,
                r.twitch_display_name AS viewer_name,
                coalesce(r.inputs->>'subject', '') AS "description!",
                a.value AS "friend_name?",
                (SELECT url FROM dynamo.image i WHERE i.image_request_id = r.id
                 ORDER BY i.index LIMIT 1) AS image_url,
                s.url AS "sound_url?", s.volume_percent AS "sound_volume_percent?",
                c.url AS "speech_url?",
                q.enqueued_at, q.started_at, q.finished_at, q.outcome
            FROM dynamo.overlay_alert q
            JOIN dynamo.image_request r ON r.id = q.image_request_id
            LEFT JOIN dynamo.answer a ON a.image_request_id = r.id
            LEFT JOIN dynamo.style_sounds s ON s.style_id = r.style
            LEFT JOIN dynamo.caption_speech c ON c.image_request_id = r.id "#
                + $condition
            $(, $arg)*
        )
    };
}

impl Store {
    /// Takes the next waiting entry on air, unless playback is paused. An
    /// entry still on air is one the overlay never reported finished (it
    /// reloaded mid-alert): it was shown, so it ends as `interrupted`
    /// instead of airing again. One overlay plays the queue at a time.
    pub async fn overlay_take_next(&self) -> Result<Option<OverlayAlert>, StoreError> {
        let mut tx = self.pool().begin().await?;
        // The control row serialises takers, so two calls never take one entry.
        let paused: bool =
            sqlx::query_scalar!("SELECT paused FROM dynamo.overlay_control FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        if paused {
            tx.commit().await?;
            return Ok(None);
        }
        sqlx::query!(
            "UPDATE dynamo.overlay_alert SET finished_at = now(), outcome = 'interrupted'
             WHERE started_at IS NOT NULL AND finished_at IS NULL"
        )
        .execute(&mut *tx)
        .await?;
        let next: Option<i64> = sqlx::query_scalar!(
            "UPDATE dynamo.overlay_alert SET started_at = now()
             WHERE id = (SELECT id FROM dynamo.overlay_alert
                         WHERE started_at IS NULL AND finished_at IS NULL ORDER BY id LIMIT 1)
             RETURNING id"
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match next {
            Some(id) => self.overlay_alert(id).await,
            None => Ok(None),
        }
    }

    pub async fn overlay_alert(&self, id: i64) -> Result<Option<OverlayAlert>, StoreError> {
        let alert = select_alerts!("WHERE q.id = $1", id)
            .fetch_optional(self.pool())
            .await?;
        Ok(alert)
    }

    /// The overlay finished playing entry `id`; false if it was not on air
    /// (skipped meanwhile, say).
    pub async fn overlay_finish(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query!(
            "UPDATE dynamo.overlay_alert SET finished_at = now(), outcome = 'played'
             WHERE id = $1 AND started_at IS NOT NULL AND finished_at IS NULL",
            id
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends the entry on air; its id, or None when nothing is on air.
    pub async fn overlay_skip(&self) -> Result<Option<i64>, StoreError> {
        let id = sqlx::query_scalar!(
            "UPDATE dynamo.overlay_alert SET finished_at = now(), outcome = 'skipped'
             WHERE started_at IS NOT NULL AND finished_at IS NULL RETURNING id"
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(id)
    }

    /// Removes every waiting entry from the queue; how many.
    pub async fn overlay_clear(&self) -> Result<u64, StoreError> {
        let cleared = sqlx::query!(
            "UPDATE dynamo.overlay_alert SET finished_at = now(), outcome = 'cleared'
             WHERE started_at IS NULL AND finished_at IS NULL"
        )
        .execute(self.pool())
        .await?;
        Ok(cleared.rows_affected())
    }

    /// Queues entry `id`'s alert again, at the end; the new entry, or None
    /// when there is no such entry.
    pub async fn overlay_replay(&self, id: i64) -> Result<Option<OverlayAlert>, StoreError> {
        let new: Option<i64> = sqlx::query_scalar!(
            "INSERT INTO dynamo.overlay_alert (image_request_id, replay_of)
             SELECT image_request_id, id FROM dynamo.overlay_alert WHERE id = $1
             RETURNING id",
            id
        )
        .fetch_optional(self.pool())
        .await?;
        match new {
            Some(new) => self.overlay_alert(new).await,
            None => Ok(None),
        }
    }

    pub async fn overlay_paused(&self) -> Result<bool, StoreError> {
        let paused = sqlx::query_scalar!("SELECT paused FROM dynamo.overlay_control")
            .fetch_one(self.pool())
            .await?;
        Ok(paused)
    }

    pub async fn set_overlay_paused(&self, paused: bool) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.overlay_control SET paused = $1, changed_at = now()
             WHERE paused IS DISTINCT FROM $1",
            paused
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// What an overlay follows, in one query: paused, the entry on air, the
    /// highest entry ever taken on air, and how many entries wait.
    pub async fn overlay_play_state(
        &self,
    ) -> Result<(bool, Option<i64>, Option<i64>, i64), StoreError> {
        let state = sqlx::query!(
            r#"SELECT (SELECT paused FROM dynamo.overlay_control) AS "paused!",
                    (SELECT min(id) FROM dynamo.overlay_alert
                     WHERE started_at IS NOT NULL AND finished_at IS NULL) AS on_air,
                    (SELECT max(id) FROM dynamo.overlay_alert WHERE started_at IS NOT NULL)
                        AS highest_taken,
                    (SELECT count(*) FROM dynamo.overlay_alert
                     WHERE started_at IS NULL AND finished_at IS NULL) AS "waiting!""#
        )
        .fetch_one(self.pool())
        .await?;
        Ok((
            state.paused,
            state.on_air,
            state.highest_taken,
            state.waiting,
        ))
    }

    /// The id of the entry on air, if any.
    pub async fn overlay_on_air(&self) -> Result<Option<i64>, StoreError> {
        let id = sqlx::query_scalar!(
            "SELECT id FROM dynamo.overlay_alert
             WHERE started_at IS NOT NULL AND finished_at IS NULL ORDER BY id LIMIT 1"
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(id)
    }

    /// The queue as the admin sees it: on air, waiting, and the `recent`
    /// latest finished entries.
    pub async fn overlay_queue(&self, recent: i64) -> Result<OverlayQueue, StoreError> {
        let paused = self.overlay_paused().await?;
        let unfinished = select_alerts!("WHERE q.finished_at IS NULL ORDER BY q.id")
            .fetch_all(self.pool())
            .await?;
        let recent = select_alerts!(
            "WHERE q.finished_at IS NOT NULL ORDER BY q.finished_at DESC, q.id DESC LIMIT $1",
            recent
        )
        .fetch_all(self.pool())
        .await?;
        let (on_air, waiting): (Vec<_>, Vec<_>) = unfinished
            .into_iter()
            .partition(|alert| alert.started_at.is_some());
        Ok(OverlayQueue {
            paused,
            on_air: on_air.into_iter().next(),
            waiting,
            recent,
        })
    }

    pub async fn create_overlay_token(
        &self,
        label: &str,
        token_sha256: &[u8; 32],
    ) -> Result<OverlayToken, StoreError> {
        let token = sqlx::query_as!(
            OverlayToken,
            "INSERT INTO dynamo.overlay_token (id, label, token_sha256) VALUES ($1, $2, $3)
             RETURNING id, label, created_at, revoked_at",
            Uuid::new_v4(),
            label,
            &token_sha256[..],
        )
        .fetch_one(self.pool())
        .await?;
        Ok(token)
    }

    /// Every token, newest first (revoked ones too, marked).
    pub async fn overlay_tokens(&self) -> Result<Vec<OverlayToken>, StoreError> {
        let tokens = sqlx::query_as!(
            OverlayToken,
            "SELECT id, label, created_at, revoked_at FROM dynamo.overlay_token
             ORDER BY created_at DESC, id"
        )
        .fetch_all(self.pool())
        .await?;
        Ok(tokens)
    }

    /// Revokes a token; false if there is no such token.
    pub async fn revoke_overlay_token(&self, id: Uuid) -> Result<bool, StoreError> {
        let found = sqlx::query!("UPDATE dynamo.overlay_token SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id)
        .execute(self.pool())
        .await?;
        Ok(found.rows_affected() == 1)
    }

    /// Whether a token with this SHA-256 exists and is not revoked.
    pub async fn overlay_token_valid(&self, token_sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let valid = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM dynamo.overlay_token
                            WHERE token_sha256 = $1 AND revoked_at IS NULL) AS "valid!""#,
            &token_sha256[..]
        )
        .fetch_one(self.pool())
        .await?;
        Ok(valid)
    }
}
