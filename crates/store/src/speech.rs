//! Spoken captions (migration 0025, issue 30): the audio of a request's
//! alert caption, or why it aired without one. What it cost goes into
//! `image_spend` (item `speech`), so the daily budget counts it.

use crate::{Lease, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A request's spoken caption as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptionSpeech {
    /// The text read aloud.
    pub caption: String,
    /// Where the overlay plays it from; none when it failed.
    pub url: Option<String>,
    pub content_type: Option<String>,
    pub byte_size: Option<i32>,
    /// The speech model that answered, if one did.
    pub model: Option<String>,
    /// Why the alert aired without it; none when spoken.
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The stored audio of a spoken caption.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenFile<'a> {
    pub url: &'a str,
    pub object_key: &'a str,
    pub content_type: &'a str,
    pub byte_size: i32,
}

/// What the speech call cost (its `image_spend` row).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechCost<'a> {
    pub model: &'a str,
    pub cost_usd: f64,
    /// `price` or `free`.
    pub priced_by: &'a str,
}

impl Store {
    /// The request's spoken caption, if one was recorded (spoken or failed).
    pub async fn caption_speech(&self, id: Uuid) -> Result<Option<CaptionSpeech>, StoreError> {
        let found = sqlx::query_as!(
            CaptionSpeech,
            "SELECT caption, url, content_type, byte_size, model, failure, created_at
             FROM dynamo.caption_speech WHERE image_request_id = $1",
            id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(found)
    }

    /// Records the caption as spoken and stored, with what it cost, in one
    /// statement. The spend is recorded even when the lease was lost
    /// meanwhile (the money is spent); the caption only under the lease.
    pub async fn record_speech(
        &self,
        lease: &Lease,
        caption: &str,
        file: &SpokenFile<'_>,
        cost: &SpeechCost<'_>,
    ) -> Result<(), StoreError> {
        // A data-modifying CTE runs whether or not the statement reads it.
        let done = sqlx::query!(
            "WITH spent AS (
                 INSERT INTO dynamo.image_spend (image_request_id, model, cost_usd, priced_by, item)
                 VALUES ($1, $8, $9, $10, 'speech'))
             INSERT INTO dynamo.caption_speech
                 (image_request_id, caption, url, object_key, content_type, byte_size, model)
             SELECT id, $3, $4, $5, $6, $7, $8 FROM dynamo.image_request
             WHERE id = $1 AND lease_token = $2
             ON CONFLICT (image_request_id) DO NOTHING",
            lease.request_id,
            lease.token,
            caption,
            file.url,
            file.object_key,
            file.content_type,
            file.byte_size,
            cost.model,
            cost.cost_usd,
            cost.priced_by,
        )
        .execute(self.pool())
        .await?;
        self.under_lease(lease, done.rows_affected()).await
    }

    /// Records why the alert airs without its spoken caption, and what the
    /// speech cost if it was bought before the failure (an upload that
    /// failed), in one statement.
    pub async fn record_speech_failure(
        &self,
        lease: &Lease,
        caption: &str,
        failure: &str,
        cost: Option<&SpeechCost<'_>>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query!(
            "WITH spent AS (
                 INSERT INTO dynamo.image_spend (image_request_id, model, cost_usd, priced_by, item)
                 SELECT $1, $5, $6, $7, 'speech' WHERE $5::text IS NOT NULL)
             INSERT INTO dynamo.caption_speech (image_request_id, caption, failure, model)
             SELECT id, $3, $4, $5 FROM dynamo.image_request
             WHERE id = $1 AND lease_token = $2
             ON CONFLICT (image_request_id) DO NOTHING",
            lease.request_id,
            lease.token,
            caption,
            failure,
            cost.map(|c| c.model),
            cost.map_or(0.0, |c| c.cost_usd),
            cost.map_or("free", |c| c.priced_by),
        )
        .execute(self.pool())
        .await?;
        self.under_lease(lease, done.rows_affected()).await
    }

    /// Nothing inserted: either the caption was recorded already (a resumed
    /// run; fine) or the lease is gone.
    async fn under_lease(&self, lease: &Lease, inserted: u64) -> Result<(), StoreError> {
        if inserted == 1 {
            return Ok(());
        }
        let held = sqlx::query_scalar!(
            r#"SELECT count(*) AS "held!" FROM dynamo.image_request
             WHERE id = $1 AND lease_token = $2"#,
            lease.request_id,
            lease.token
        )
        .fetch_one(self.pool())
        .await?;
        match held {
            1 => Ok(()),
            _ => Err(StoreError::LeaseLost(lease.request_id)),
        }
    }
}
