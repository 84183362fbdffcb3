//! Reading and advancing generation requests.

use crate::{Lease, RequestState, StepFailure, StoreError};
use chrono::{DateTime, Utc};
use dynamo_wire::{BroadcastState, GenerationRequest, ImagePayload, Style, Viewer};
use sqlx::{FromRow, PgPool};
use std::sync::LazyLock;
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
    pub points_cost: i32,
    pub free_of_charge: bool,
    pub retry_of: Option<Uuid>,
    /// SHA-256 of the message body, for messages without a message_id.
    pub fingerprint: Option<Vec<u8>>,
}

/// An image as stored for a request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
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
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRecord {
    pub id: Uuid,
    pub twitch_user_id: String,
    pub twitch_display_name: String,
    pub broadcast_id: Option<i64>,
    pub screening_id: Option<Uuid>,
    pub tape_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub style: StyleColumn,
    pub inputs: serde_json::Value,
    pub prompt: String,
    #[sqlx(try_from = "String")]
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
    #[sqlx(default)]
    pub name: Option<String>,
    /// Approval before air (`APPROVAL=manual`; all empty otherwise).
    #[sqlx(flatten)]
    pub approval: crate::Approval,
}

/// Column adapters: the table holds text, the code holds enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StyleColumn(pub Style);
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateColumn(pub RequestState);

impl TryFrom<String> for StyleColumn {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Style::parse(&raw)
            .map(StyleColumn)
            .ok_or_else(|| format!("unknown style {raw:?}"))
    }
}

impl TryFrom<String> for StateColumn {
    type Error = crate::state::UnknownState;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse().map(StateColumn)
    }
}

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

    pub fn style(&self) -> Style {
        self.style.0
    }

    pub fn state(&self) -> RequestState {
        self.state.0
    }
}

/// The columns of a [`RequestRecord`], from `r` (the request) and `a` (its answer).
macro_rules! request_columns {
    () => {
        "r.id, r.twitch_user_id, r.twitch_display_name, r.broadcast_id, r.screening_id,
         r.tape_id, r.style, r.inputs, r.prompt, r.state, r.attempts, r.points_cost,
         r.free_of_charge, r.ledger_flow_id, r.error_message, r.retry_of, r.created_at,
         r.debited_at, r.named_at, r.stored_at, r.alerted_at, r.settled_at,
         r.result_published_at, r.finished_at, r.updated_at, r.next_attempt_at,
         r.approval_requested_at, r.approval_deadline, r.approval_decision,
         r.approval_decided_by, r.approval_decided_at, r.approval_note,
         a.value AS name"
    };
}

pub(crate) const SELECT_REQUEST: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM dynamo.image_request r
    LEFT JOIN dynamo.answer a ON a.image_request_id = r.id"
);

/// What a step's write left in the request's row, as stored (`RETURNING`):
/// the columns the steps move, so a run keeps its copy of the request
/// current without reading the row again ([`RequestRecord::apply`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Progress {
    #[sqlx(try_from = "String")]
    pub state: StateColumn,
    pub ledger_flow_id: Option<Uuid>,
    pub error_message: Option<String>,
    pub debited_at: Option<DateTime<Utc>>,
    pub named_at: Option<DateTime<Utc>>,
    pub stored_at: Option<DateTime<Utc>>,
    pub alerted_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    pub result_published_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The columns of a [`Progress`].
const PROGRESS: &str = "state, ledger_flow_id, error_message, debited_at, named_at, stored_at,
    alerted_at, settled_at, result_published_at, finished_at, updated_at, next_attempt_at";

impl RequestRecord {
    /// Takes in what a write returned.
    pub fn apply(&mut self, progress: Progress) {
        let Progress {
            state,
            ledger_flow_id,
            error_message,
            debited_at,
            named_at,
            stored_at,
            alerted_at,
            settled_at,
            result_published_at,
            finished_at,
            updated_at,
            next_attempt_at,
        } = progress;
        self.state = state;
        self.ledger_flow_id = ledger_flow_id;
        self.error_message = error_message;
        self.debited_at = debited_at;
        self.named_at = named_at;
        self.stored_at = stored_at;
        self.alerted_at = alerted_at;
        self.settled_at = settled_at;
        self.result_published_at = result_published_at;
        self.finished_at = finished_at;
        self.updated_at = updated_at;
        self.next_attempt_at = next_attempt_at;
    }
}

fn state_names(states: &[RequestState]) -> Vec<String> {
    states.iter().map(|s| s.as_str().to_owned()).collect()
}

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
    /// statement, so a new request is never without an owner, and a run needs
    /// no second read to know it. Returns the record as it now stands,
    /// whether this call created it, and the lease (`None`: another process
    /// owns it, or it waits for its time).
    pub async fn record(
        &self,
        new: &NewRequest<'_>,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<(RequestRecord, bool, Option<Lease>), StoreError> {
        let request = new.request;
        let token = Uuid::new_v4();
        // Nobody holds a live lease, and it is not waiting for its time.
        const FREE: &str = "coalesce(dynamo.image_request.lease_expires_at, '-infinity') < now()
            AND coalesce(dynamo.image_request.next_attempt_at, '-infinity') <= now()";
        static QUERY: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH r AS (INSERT INTO dynamo.image_request
                 (id, twitch_user_id, twitch_display_name, broadcast_id, screening_id, tape_id,
                  style, inputs, prompt, points_cost, free_of_charge, retry_of, attempts,
                  message_fingerprint, lease_owner, lease_token, lease_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15,
                     now() + $16 * interval '1 millisecond')
             ON CONFLICT (id) DO UPDATE SET
                 attempts = dynamo.image_request.attempts
                     + CASE WHEN dynamo.image_request.finished_at IS NULL THEN 1 ELSE 0 END,
                 -- Every expression here sees the row as it was.
                 lease_owner = CASE WHEN {FREE} THEN EXCLUDED.lease_owner
                                    ELSE dynamo.image_request.lease_owner END,
                 lease_token = CASE WHEN {FREE} THEN EXCLUDED.lease_token
                                    ELSE dynamo.image_request.lease_token END,
                 lease_expires_at = CASE WHEN {FREE} THEN EXCLUDED.lease_expires_at
                                         ELSE dynamo.image_request.lease_expires_at END,
                 updated_at = now()
             RETURNING *, (xmax = 0) AS created, lease_token IS NOT DISTINCT FROM $15 AS leased)
             SELECT {COLUMNS}, r.created, r.leased
             FROM r LEFT JOIN dynamo.answer a ON a.image_request_id = r.id",
                COLUMNS = request_columns!()
            )
        });
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            record: RequestRecord,
            created: bool,
            leased: bool,
        }
        let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(QUERY.as_str()))
            .bind(new.id)
            .bind(request.viewer.twitch_user_id.as_str())
            .bind(request.viewer.twitch_display_name.as_str())
            .bind(request.state.broadcast_id())
            .bind(request.state.screening_id())
            .bind(request.state.tape_id())
            .bind(request.style().as_str())
            .bind(request.payload.inputs_json())
            .bind(new.prompt)
            .bind(new.points_cost)
            .bind(new.free_of_charge)
            .bind(new.retry_of)
            .bind(&new.fingerprint)
            .bind(owner)
            .bind(token)
            .bind(ttl.as_millis() as f64)
            .fetch_one(&self.pool)
            .await?;
        let lease = row.leased.then_some(Lease {
            request_id: new.id,
            token,
        });
        Ok((row.record, row.created, lease))
    }

    /// The request recorded for a message body with this fingerprint within
    /// `within`, preferring one still in progress: how a redelivered message
    /// without a message_id finds its request.
    pub async fn find_by_fingerprint(
        &self,
        fingerprint: &[u8],
        within: std::time::Duration,
    ) -> Result<Option<Uuid>, StoreError> {
        let id = sqlx::query_scalar(
            "SELECT id FROM dynamo.image_request
             WHERE message_fingerprint = $1
               AND created_at > now() - $2 * interval '1 millisecond'
             ORDER BY (finished_at IS NULL) DESC, created_at DESC
             LIMIT 1",
        )
        .bind(fingerprint)
        .bind(within.as_millis() as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn load(&self, id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        let record = sqlx::query_as::<_, RequestRecord>(sqlx::AssertSqlSafe(format!(
            "{SELECT_REQUEST} WHERE r.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(record)
    }

    /// A request with its images and logged step failures, in one round trip:
    /// the status API's hot path (three queries took twice as long).
    pub async fn detail(&self, id: Uuid) -> Result<Option<RequestDetail>, StoreError> {
        static QUERY: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT d.*,
                    coalesce((SELECT json_agg(i ORDER BY i.index) FROM (
                        SELECT index, url, color, content_type, byte_size FROM dynamo.image
                        WHERE image_request_id = d.id) i), '[]') AS images,
                    coalesce((SELECT json_agg(f ORDER BY f.id) FROM (
                        SELECT id, step, attempt, failed_at, reason FROM dynamo.step_failure
                        WHERE image_request_id = d.id) f), '[]') AS failures
                 FROM ({SELECT_REQUEST} WHERE r.id = $1) d"
            )
        });
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            record: RequestRecord,
            images: sqlx::types::Json<Vec<StoredImage>>,
            failures: sqlx::types::Json<Vec<StepFailure>>,
        }
        let row = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(QUERY.as_str()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| RequestDetail {
            record: row.record,
            images: row.images.0,
            failures: row.failures.0,
        }))
    }

    pub async fn get(&self, id: Uuid) -> Result<RequestRecord, StoreError> {
        self.load(id).await?.ok_or(StoreError::NotFound(id))
    }

    pub async fn images(&self, id: Uuid) -> Result<Vec<StoredImage>, StoreError> {
        let images = sqlx::query_as::<_, StoredImage>(
            "SELECT index, url, color, content_type, byte_size FROM dynamo.image
             WHERE image_request_id = $1 ORDER BY index",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(images)
    }

    /// The images of several requests in one query, by request.
    pub async fn images_of(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Vec<StoredImage>>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            image_request_id: Uuid,
            #[sqlx(flatten)]
            image: StoredImage,
        }
        let rows = sqlx::query_as::<_, Row>(
            "SELECT image_request_id, index, url, color, content_type, byte_size FROM dynamo.image
             WHERE image_request_id = ANY($1) ORDER BY image_request_id, index",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut by_request: std::collections::HashMap<Uuid, Vec<StoredImage>> =
            std::collections::HashMap::new();
        for row in rows {
            by_request
                .entry(row.image_request_id)
                .or_default()
                .push(row.image);
        }
        Ok(by_request)
    }

    /// The pending outflow exists (`flow_id` is None for free requests).
    pub async fn mark_debited(
        &self,
        lease: &Lease,
        flow_id: Option<Uuid>,
    ) -> Result<Progress, StoreError> {
        self.advance(
            lease,
            RequestState::Debited,
            "ledger_flow_id = $4, debited_at = now()",
            |q| q.bind(flow_id),
        )
        .await
    }

    /// The friend's name is known. Returns the name as stored: a repeat of
    /// the step keeps the name recorded first.
    pub async fn record_name(
        &self,
        lease: &Lease,
        prompt: &str,
        name: &str,
    ) -> Result<(Progress, String), StoreError> {
        let mut tx = self.pool.begin().await?;
        let progress = advance_in(
            &mut tx,
            lease,
            RequestState::Named,
            "named_at = now()",
            |q| q,
        )
        .await?;
        // The statement's snapshot does not see its own insert: the union is
        // the new row or the one there before, never both.
        let stored: String = sqlx::query_scalar(
            "WITH new AS (
                 INSERT INTO dynamo.answer (image_request_id, prompt, value) VALUES ($1, $2, $3)
                 ON CONFLICT (image_request_id) DO NOTHING
                 RETURNING value)
             SELECT value FROM new
             UNION ALL SELECT value FROM dynamo.answer WHERE image_request_id = $1",
        )
        .bind(lease.request_id)
        .bind(prompt)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((progress, stored))
    }

    /// The image is uploaded: record where. Returns the image as stored: a
    /// repeat of the step keeps the image recorded first.
    pub async fn record_image(
        &self,
        lease: &Lease,
        image: &StoredImage,
    ) -> Result<(Progress, StoredImage), StoreError> {
        let mut tx = self.pool.begin().await?;
        let progress = advance_in(
            &mut tx,
            lease,
            RequestState::Stored,
            "stored_at = now()",
            |q| q,
        )
        .await?;
        // As in `record_name`: the new row or the one there before.
        let stored: StoredImage = sqlx::query_as(
            "WITH new AS (
                 INSERT INTO dynamo.image
                     (image_request_id, index, url, color, content_type, byte_size)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (image_request_id, index) DO NOTHING
                 RETURNING index, url, color, content_type, byte_size)
             SELECT * FROM new
             UNION ALL SELECT index, url, color, content_type, byte_size FROM dynamo.image
                 WHERE image_request_id = $1 AND index = $2",
        )
        .bind(lease.request_id)
        .bind(image.index)
        .bind(&image.url)
        .bind(&image.color)
        .bind(&image.content_type)
        .bind(image.byte_size)
        .fetch_one(&mut *tx)
        .await?;
        crate::generated::forget_generated(&mut tx, lease.request_id).await?;
        tx.commit().await?;
        Ok((progress, stored))
    }

    /// The broker confirmed the alert.
    pub async fn mark_alerted(&self, lease: &Lease) -> Result<Progress, StoreError> {
        self.advance(lease, RequestState::Alerted, "alerted_at = now()", |q| q)
            .await
    }

    /// The outflow was accepted (or there was none): the request is done.
    pub async fn mark_succeeded(&self, lease: &Lease) -> Result<Progress, StoreError> {
        self.advance(
            lease,
            RequestState::Succeeded,
            "finished_at = now(), settled_at = now(), error_message = NULL",
            |q| q,
        )
        .await
    }

    /// Ends the request unsuccessfully with a reason a viewer can read. The
    /// refund follows separately ([`Store::mark_settled`]) so that a crash in
    /// between leaves a record that recovery can finish.
    pub async fn finish_unsuccessfully(
        &self,
        lease: &Lease,
        end: RequestState,
        reason: &str,
    ) -> Result<Progress, StoreError> {
        debug_assert!(matches!(end, RequestState::Failed | RequestState::Rejected));
        let mut tx = self.pool.begin().await?;
        let progress = advance_in(
            &mut tx,
            lease,
            end,
            "finished_at = now(), error_message = $4,
             settled_at = CASE WHEN ledger_flow_id IS NULL AND debit_requested_at IS NULL
                               THEN now() ELSE settled_at END",
            |q| q.bind(reason),
        )
        .await?;
        crate::generated::forget_generated(&mut tx, lease.request_id).await?;
        tx.commit().await?;
        Ok(progress)
    }

    /// The pending outflow was rejected (refunded).
    pub async fn mark_settled(&self, lease: &Lease) -> Result<Progress, StoreError> {
        self.mark_once(lease, "settled_at").await
    }

    /// The broker confirmed the generation-results message.
    pub async fn mark_result_published(&self, lease: &Lease) -> Result<Progress, StoreError> {
        self.mark_once(lease, "result_published_at").await
    }

    /// Sets a timestamp column once, under the lease, and only once the
    /// request has ended: refunds and results come after the end state.
    async fn mark_once(&self, lease: &Lease, column: &'static str) -> Result<Progress, StoreError> {
        let sql = format!(
            "UPDATE dynamo.image_request SET {column} = coalesce({column}, now()), updated_at = now()
             WHERE id = $1 AND lease_token = $2 AND finished_at IS NOT NULL
             RETURNING {PROGRESS}"
        );
        let done: Option<Progress> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(lease.request_id)
            .bind(lease.token)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(progress) = done {
            return Ok(progress);
        }
        let current: Option<(String, Option<Uuid>)> =
            sqlx::query_as("SELECT state, lease_token FROM dynamo.image_request WHERE id = $1")
                .bind(lease.request_id)
                .fetch_optional(&self.pool)
                .await?;
        match current {
            None => Err(StoreError::NotFound(lease.request_id)),
            Some((_, token)) if token != Some(lease.token) => {
                Err(StoreError::LeaseLost(lease.request_id))
            }
            Some((state, _)) => Err(StoreError::IllegalTransition {
                id: lease.request_id,
                from: state,
                to: column,
            }),
        }
    }

    async fn advance<'q, F>(
        &self,
        lease: &Lease,
        to: RequestState,
        set: &str,
        bind: F,
    ) -> Result<Progress, StoreError>
    where
        F: for<'a> FnOnce(PgQuery<'a>) -> PgQuery<'a>,
    {
        let mut conn = self.pool.acquire().await?;
        advance_in(&mut conn, lease, to, set, bind).await
    }
}

type PgQuery<'a> = sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Moves a request to `to`, but only from one of its legal predecessors and
/// only under its lease, and returns the row's progress as it then stands. A
/// repeat of a move already made is a no-op, so steps are idempotent; a write
/// without the lease is refused (`LeaseLost`).
async fn advance_in<F>(
    conn: &mut sqlx::PgConnection,
    lease: &Lease,
    to: RequestState,
    set: &str,
    bind: F,
) -> Result<Progress, StoreError>
where
    F: for<'a> FnOnce(PgQuery<'a>) -> PgQuery<'a>,
{
    let id = lease.request_id;
    let sql = format!(
        "UPDATE dynamo.image_request SET state = '{to}', updated_at = now(),
             step_attempts = 0, step_failing_since = NULL, next_attempt_at = NULL, {set}
         WHERE id = $1 AND state = ANY($2) AND lease_token = $3
         RETURNING {PROGRESS}"
    );
    let predecessors = state_names(to.predecessors());
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&predecessors)
        .bind(lease.token);
    if let Some(row) = bind(query).fetch_optional(&mut *conn).await? {
        return Ok(Progress::from_row(&row)?);
    }
    #[derive(sqlx::FromRow)]
    struct Current {
        lease_token: Option<Uuid>,
        #[sqlx(flatten)]
        progress: Progress,
    }
    static CURRENT: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT lease_token, {PROGRESS} FROM dynamo.image_request WHERE id = $1")
    });
    let current: Option<Current> = sqlx::query_as(sqlx::AssertSqlSafe(CURRENT.as_str()))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match current {
        None => Err(StoreError::NotFound(id)),
        Some(current) if current.lease_token != Some(lease.token) => Err(StoreError::LeaseLost(id)),
        Some(current) if current.progress.state.0 == to => Ok(current.progress),
        Some(current) => Err(StoreError::IllegalTransition {
            id,
            from: current.progress.state.0.as_str().to_owned(),
            to: to.as_str(),
        }),
    }
}
