//! A generation request's record: recording it and reading it back (the
//! guarded moves of its state are in `moves`).

use crate::{Lease, RequestState, StepFailure, StoreError};
use chrono::{DateTime, Utc};
use dynamo_wire::{
    BroadcastState, GenerationRequest, ImagePayload, StyleId, StyleSettings, Viewer,
};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

/// Access to dynamo's tables. Cheap to clone: it shares one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// A request about to be recorded.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub id: Uuid,
    pub request: &'a GenerationRequest,
    pub prompt: &'a str,
    /// The style's settings it is made with (recorded with the prompt).
    pub settings: &'a StyleSettings,
    pub points_cost: i32,
    pub free_of_charge: bool,
    pub retry_of: Option<Uuid>,
    /// SHA-256 of the message body, for messages without a message_id.
    pub fingerprint: Option<Vec<u8>>,
    /// An admin's try-out of a style: made, never aired (migration 0027).
    pub trial: bool,
}

/// An image as stored for a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoredImage {
    pub index: i32,
    pub url: String,
    /// `#rrggbb`, friends only.
    pub color: Option<String>,
    pub content_type: String,
    pub byte_size: i32,
}

/// A request with everything hanging off it.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    pub record: RequestRecord,
    pub images: Vec<StoredImage>,
    pub failures: Vec<StepFailure>,
}

/// Everything recorded about one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: Uuid,
    pub twitch_user_id: String,
    pub twitch_display_name: String,
    pub broadcast_id: Option<i64>,
    pub screening_id: Option<Uuid>,
    pub tape_id: Option<i64>,
    pub style: StyleColumn,
    pub style_settings: Option<serde_json::Value>,
    pub inputs: serde_json::Value,
    pub prompt: String,
    pub state: StateColumn,
    pub attempts: i32,
    pub points_cost: i32,
    pub free_of_charge: bool,
    pub ledger_flow_id: Option<Uuid>,
    pub error_message: Option<String>,
    pub retry_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub debited_at: Option<DateTime<Utc>>,
    pub named_at: Option<DateTime<Utc>>,
    pub stored_at: Option<DateTime<Utc>>,
    pub alerted_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    pub result_published_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// When a scheduled retry is due (or, while one is being run, its lease ends).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The friend's name, once generated.
    pub name: Option<String>,
    /// Approval before air (`APPROVAL=manual`; all empty otherwise).
    pub approval: crate::Approval,
    /// An admin's try-out of a style: never aired, never charged, no result.
    pub trial: bool,
}

/// Column adapters: the table holds text, the code holds enums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleColumn(pub StyleId);
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateColumn(pub RequestState);

impl RequestRecord {
    /// The request as it was received, rebuilt from the row (to resume it
    /// without its message, or to queue it again). Each column is validated
    /// as the message's field was, and a bad one named as in a message.
    pub fn generation_request(&self) -> Result<GenerationRequest, dynamo_wire::RequestError> {
        let viewer = Viewer::parse(&self.twitch_user_id, &self.twitch_display_name)?;
        let state = BroadcastState {
            broadcast_id: self.broadcast_id.unwrap_or(0),
            screening_id: self.screening_id.unwrap_or_default(),
            tape_id: self.tape_id.unwrap_or(0),
        };
        let payload = ImagePayload::from_inputs(self.style(), self.inputs.clone())?;
        Ok(GenerationRequest::new(viewer, state, payload))
    }

    pub fn style(&self) -> &StyleId {
        &self.style.0
    }

    /// The style's settings the request was recorded with; a request
    /// recorded before styles were data is a ghost or friend as they were.
    pub fn style_settings(&self) -> StyleSettings {
        self.style_settings
            .as_ref()
            .and_then(|json| serde_json::from_value(json.clone()).ok())
            .unwrap_or_else(|| StyleSettings::legacy(self.style()))
    }

    pub fn state(&self) -> RequestState {
        self.state.0
    }
}

/// A request's row as the checked queries read it: [`select_requests!`]
/// fills it, [`RequestRecord`] is made from it.
pub(crate) struct RequestRow {
    pub(crate) id: Uuid,
    pub(crate) twitch_user_id: String,
    pub(crate) twitch_display_name: String,
    pub(crate) broadcast_id: Option<i64>,
    pub(crate) screening_id: Option<Uuid>,
    pub(crate) tape_id: Option<i64>,
    pub(crate) style: StyleColumn,
    pub(crate) style_settings: Option<serde_json::Value>,
    pub(crate) inputs: serde_json::Value,
    pub(crate) prompt: String,
    pub(crate) state: RequestState,
    pub(crate) attempts: i32,
    pub(crate) points_cost: i32,
    pub(crate) free_of_charge: bool,
    pub(crate) ledger_flow_id: Option<Uuid>,
    pub(crate) error_message: Option<String>,
    pub(crate) retry_of: Option<Uuid>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) debited_at: Option<DateTime<Utc>>,
    pub(crate) named_at: Option<DateTime<Utc>>,
    pub(crate) stored_at: Option<DateTime<Utc>>,
    pub(crate) alerted_at: Option<DateTime<Utc>>,
    pub(crate) settled_at: Option<DateTime<Utc>>,
    pub(crate) result_published_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    pub(crate) approval_requested_at: Option<DateTime<Utc>>,
    pub(crate) approval_deadline: Option<DateTime<Utc>>,
    pub(crate) approval_decision: Option<String>,
    pub(crate) approval_decided_by: Option<String>,
    pub(crate) approval_decided_at: Option<DateTime<Utc>>,
    pub(crate) approval_note: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) trial: bool,
    /// Only [`Store::detail`] reads these; the other queries select NULL.
    pub(crate) images: Option<Json<Vec<StoredImage>>>,
    pub(crate) failures: Option<Json<Vec<StepFailure>>>,
    /// Only [`Store::record`] reads these: whether it inserted the row, and
    /// whether it took the lease.
    pub(crate) created: Option<bool>,
    pub(crate) leased: Option<bool>,
}

impl From<RequestRow> for RequestRecord {
    fn from(row: RequestRow) -> Self {
        Self {
            id: row.id,
            twitch_user_id: row.twitch_user_id,
            twitch_display_name: row.twitch_display_name,
            broadcast_id: row.broadcast_id,
            screening_id: row.screening_id,
            tape_id: row.tape_id,
            style: row.style,
            style_settings: row.style_settings,
            inputs: row.inputs,
            prompt: row.prompt,
            state: StateColumn(row.state),
            attempts: row.attempts,
            points_cost: row.points_cost,
            free_of_charge: row.free_of_charge,
            ledger_flow_id: row.ledger_flow_id,
            error_message: row.error_message,
            retry_of: row.retry_of,
            created_at: row.created_at,
            debited_at: row.debited_at,
            named_at: row.named_at,
            stored_at: row.stored_at,
            alerted_at: row.alerted_at,
            settled_at: row.settled_at,
            result_published_at: row.result_published_at,
            finished_at: row.finished_at,
            updated_at: row.updated_at,
            next_attempt_at: row.next_attempt_at,
            name: row.name,
            approval: crate::Approval {
                requested_at: row.approval_requested_at,
                deadline: row.approval_deadline,
                decision_text: row.approval_decision,
                decided_by: row.approval_decided_by,
                decided_at: row.approval_decided_at,
                note: row.approval_note,
            },
            trial: row.trial,
        }
    }
}

/// The one checked SELECT of [`RequestRow`]s, used by every query that reads
/// whole requests: the caller gives the condition (a string literal) and its
/// arguments. `detail` also reads the request's images and step failures.
macro_rules! select_requests {
    (detail: $condition:tt $(, $arg:expr)* $(,)?) => {
        select_requests!(@query
            "",
            r#"coalesce((SELECT json_agg(i ORDER BY i.index) FROM (
                   SELECT index, url, color, content_type, byte_size FROM dynamo.image
                   WHERE image_request_id = r.id) i), '[]')
                   AS "images: sqlx::types::Json<Vec<crate::StoredImage>>",
               coalesce((SELECT json_agg(f ORDER BY f.id) FROM (
                   SELECT id, step, attempt, failed_at, reason FROM dynamo.step_failure
                   WHERE image_request_id = r.id) f), '[]')
                   AS "failures: sqlx::types::Json<Vec<crate::StepFailure>>",
               NULL::bool AS created, NULL::bool AS leased"#,
            "dynamo.image_request",
            $condition $(, $arg)*)
    };
    // `Store::record`: the row as a data-modifying CTE named `recorded`
    // (with `created` and `leased`) left it, in the same statement.
    (recorded: $with:tt $(, $arg:expr)* $(,)?) => {
        select_requests!(@query
            $with,
            r#"NULL::json AS "images: sqlx::types::Json<Vec<crate::StoredImage>>",
               NULL::json AS "failures: sqlx::types::Json<Vec<crate::StepFailure>>",
               r.created, r.leased"#,
            "recorded",
            "" $(, $arg)*)
    };
    // Columns that are never NULL say so (`!`): read from a CTE, PostgreSQL
    // cannot tell sqlx.
    (@query $with:tt, $extra:tt, $from:tt, $condition:tt $(, $arg:expr)*) => {
        sqlx::query_as!(
            crate::requests::RequestRow,
            $with
                + r#"SELECT r.id AS "id!", r.twitch_user_id AS "twitch_user_id!",
                   r.twitch_display_name AS "twitch_display_name!", r.broadcast_id,
                   r.screening_id, r.tape_id, r.style AS "style!: crate::requests::StyleColumn",
                   r.style_settings, r.inputs AS "inputs!", r.prompt AS "prompt!",
                   r.state AS "state!: crate::RequestState", r.attempts AS "attempts!",
                   r.points_cost AS "points_cost!", r.free_of_charge AS "free_of_charge!",
                   r.ledger_flow_id, r.error_message,
                   r.retry_of, r.created_at AS "created_at!", r.debited_at, r.named_at,
                   r.stored_at, r.alerted_at, r.settled_at, r.result_published_at,
                   r.finished_at, r.updated_at AS "updated_at!", r.next_attempt_at,
                   r.approval_requested_at, r.approval_deadline, r.approval_decision,
                   r.approval_decided_by, r.approval_decided_at, r.approval_note,
                   a.value AS "name?", r.trial AS "trial!", "#
                + $extra
                + " FROM "
                + $from
                + " r LEFT JOIN dynamo.answer a ON a.image_request_id = r.id "
                + $condition
            $(, $arg)*
        )
    };
    ($condition:tt $(, $arg:expr)* $(,)?) => {
        select_requests!(@query
            "",
            r#"NULL::json AS "images: sqlx::types::Json<Vec<crate::StoredImage>>",
               NULL::json AS "failures: sqlx::types::Json<Vec<crate::StepFailure>>",
               NULL::bool AS created, NULL::bool AS leased"#,
            "dynamo.image_request",
            $condition $(, $arg)*)
    };
}
pub(crate) use select_requests;

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records a new request, or counts another delivery of one recorded
    /// before (a redelivered message), and takes its lease for `owner` when
    /// nobody else holds it and it is not waiting for a scheduled run — in one
    /// statement, so a new request is never without an owner. Returns the
    /// record as it now stands, whether this call created it, and the lease
    /// (`None`: another process owns it, or it waits for its time).
    pub async fn record(
        &self,
        new: &NewRequest<'_>,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<(RequestRecord, bool, Option<Lease>), StoreError> {
        let request = new.request;
        let style = request.style();
        // A struct of strings and booleans always serialises.
        let settings = serde_json::to_value(new.settings).unwrap_or_default();
        let token = Uuid::new_v4();
        // FREE: nobody holds a live lease, and it is not waiting for its time.
        // Every expression of the update sees the row as it was.
        let row = select_requests!(
            recorded: r#"WITH recorded AS (INSERT INTO dynamo.image_request
                 (id, twitch_user_id, twitch_display_name, broadcast_id, screening_id, tape_id,
                  style, inputs, prompt, points_cost, free_of_charge, retry_of, attempts,
                  message_fingerprint, lease_owner, lease_token, lease_expires_at,
                  style_settings, trial)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15,
                     now() + $16 * interval '1 millisecond', $17, $18)
             ON CONFLICT (id) DO UPDATE SET
                 attempts = dynamo.image_request.attempts
                     + CASE WHEN dynamo.image_request.finished_at IS NULL THEN 1 ELSE 0 END,
                 (lease_owner, lease_token, lease_expires_at) = (
                     SELECT CASE WHEN free THEN EXCLUDED.lease_owner
                                 ELSE dynamo.image_request.lease_owner END,
                            CASE WHEN free THEN EXCLUDED.lease_token
                                 ELSE dynamo.image_request.lease_token END,
                            CASE WHEN free THEN EXCLUDED.lease_expires_at
                                 ELSE dynamo.image_request.lease_expires_at END
                     FROM (SELECT
                         coalesce(dynamo.image_request.lease_expires_at, '-infinity') < now()
                         AND coalesce(dynamo.image_request.next_attempt_at, '-infinity') <= now()
                         AS free) f),
                 updated_at = now()
             RETURNING *, (xmax = 0) AS created,
                       lease_token IS NOT DISTINCT FROM $15 AS leased) "#,
            new.id,
            request.viewer.twitch_user_id.as_str(),
            request.viewer.twitch_display_name.as_str(),
            request.state.broadcast_id(),
            request.state.screening_id(),
            request.state.tape_id(),
            style.as_str(),
            request.payload.inputs_json(),
            new.prompt,
            new.points_cost,
            new.free_of_charge,
            new.retry_of,
            new.fingerprint.as_deref(),
            owner,
            token,
            ttl.as_millis() as f64,
            settings,
            new.trial,
        )
        .fetch_one(&self.pool)
        .await?;
        let (created, leased) = (row.created == Some(true), row.leased == Some(true));
        let lease = leased.then_some(Lease {
            request_id: new.id,
            token,
        });
        Ok((row.into(), created, lease))
    }

    /// The request recorded for a message body with this fingerprint within
    /// `within`, preferring one still in progress: how a redelivered message
    /// without a message_id finds its request.
    pub async fn find_by_fingerprint(
        &self,
        fingerprint: &[u8],
        within: std::time::Duration,
    ) -> Result<Option<Uuid>, StoreError> {
        let id = sqlx::query_scalar!(
            "SELECT id FROM dynamo.image_request
             WHERE message_fingerprint = $1
               AND created_at > now() - $2 * interval '1 millisecond'
             ORDER BY (finished_at IS NULL) DESC, created_at DESC
             LIMIT 1",
            fingerprint,
            within.as_millis() as f64,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn load(&self, id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        let row = select_requests!("WHERE r.id = $1", id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(RequestRecord::from))
    }

    /// A request with its images and logged step failures, in one round trip:
    /// the status API's hot path (three queries took twice as long).
    pub async fn detail(&self, id: Uuid) -> Result<Option<RequestDetail>, StoreError> {
        let row = select_requests!(detail: "WHERE r.id = $1", id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|mut row| {
            let images = row.images.take().map(|json| json.0).unwrap_or_default();
            let failures = row.failures.take().map(|json| json.0).unwrap_or_default();
            RequestDetail {
                record: row.into(),
                images,
                failures,
            }
        }))
    }

    pub async fn get(&self, id: Uuid) -> Result<RequestRecord, StoreError> {
        self.load(id).await?.ok_or(StoreError::NotFound(id))
    }

    pub async fn images(&self, id: Uuid) -> Result<Vec<StoredImage>, StoreError> {
        let images = sqlx::query_as!(
            StoredImage,
            "SELECT index, url, color, content_type, byte_size FROM dynamo.image
             WHERE image_request_id = $1 ORDER BY index",
            id,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(images)
    }

    /// The images of several requests in one query, by request.
    pub async fn images_of(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Vec<StoredImage>>, StoreError> {
        let rows = sqlx::query!(
            "SELECT image_request_id, index, url, color, content_type, byte_size FROM dynamo.image
             WHERE image_request_id = ANY($1) ORDER BY image_request_id, index",
            ids,
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_request: std::collections::HashMap<Uuid, Vec<StoredImage>> =
            std::collections::HashMap::new();
        for row in rows {
            by_request
                .entry(row.image_request_id)
                .or_default()
                .push(StoredImage {
                    index: row.index,
                    url: row.url,
                    color: row.color,
                    content_type: row.content_type,
                    byte_size: row.byte_size,
                });
        }
        Ok(by_request)
    }
}
