//! The guarded moves of a request's state: each step's write, applied only
//! from the state the step expects and only under the request's lease, and
//! what the write left in the row ([`Progress`]).

use crate::requests::{RequestRecord, StateColumn, StoredImage};
use crate::{Lease, RequestState, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::sync::LazyLock;
use uuid::Uuid;

/// What a step's write left in the request's row, as stored (`RETURNING`):
/// the columns the steps move, so a run keeps its copy of the request
/// current without reading the row again ([`RequestRecord::apply`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Progress {
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
        let (mut tx, progress) = self
            .begin_advance(lease, RequestState::Named, "named_at = now()", |q| q)
            .await?;
        // The statement's snapshot does not see its own insert: the union is
        // the new row or the one there before, never both.
        let stored = sqlx::query_scalar!(
            r#"WITH new AS (
                 INSERT INTO dynamo.answer (image_request_id, prompt, value) VALUES ($1, $2, $3)
                 ON CONFLICT (image_request_id) DO NOTHING
                 RETURNING value)
             SELECT value AS "value!" FROM new
             UNION ALL SELECT value FROM dynamo.answer WHERE image_request_id = $1"#,
            lease.request_id,
            prompt,
            name,
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((progress, stored))
    }

    /// The image is uploaded: record where, and drop the kept answer. Returns
    /// the image as stored: a repeat of the step keeps the image recorded
    /// first. The move, the image and the kept answer's end are one
    /// statement (the image step's tail is the pipeline's hot path); only
    /// when the move does not apply (a repeat, a lost lease) is the slower
    /// transaction asked what happened.
    pub async fn record_image(
        &self,
        lease: &Lease,
        image: &StoredImage,
    ) -> Result<(Progress, StoredImage), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Recorded {
            #[sqlx(flatten)]
            progress: Progress,
            index: i32,
            url: String,
            color: Option<String>,
            content_type: String,
            byte_size: i32,
        }
        // Runtime-checked, as `advance_in`: the move is built as every move
        // is. The statement's snapshot does not see its own insert, so the
        // union is the new image or the one recorded before, never both.
        static RECORD: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH moved AS ({move_}),
                 new AS (
                     INSERT INTO dynamo.image
                         (image_request_id, index, url, color, content_type, byte_size)
                     SELECT $1, $4, $5, $6, $7, $8 FROM moved
                     ON CONFLICT (image_request_id, index) DO NOTHING
                     RETURNING index, url, color, content_type, byte_size),
                 forgotten AS (
                     DELETE FROM dynamo.generated_image
                     WHERE image_request_id = $1 AND EXISTS (SELECT FROM moved))
                 SELECT moved.*, i.* FROM moved, (
                     SELECT index, url, color, content_type, byte_size FROM new
                     UNION ALL
                     SELECT index, url, color, content_type, byte_size FROM dynamo.image
                     WHERE image_request_id = $1 AND index = $4) i
                 LIMIT 1",
                move_ = advance_sql(RequestState::Stored, "stored_at = now()"),
            )
        });
        let recorded: Option<Recorded> = sqlx::query_as(sqlx::AssertSqlSafe(RECORD.as_str()))
            .bind(lease.request_id)
            .bind(state_names(RequestState::Stored.predecessors()))
            .bind(lease.token)
            .bind(image.index)
            .bind(&image.url)
            .bind(&image.color)
            .bind(&image.content_type)
            .bind(image.byte_size)
            .fetch_optional(self.pool())
            .await?;
        match recorded {
            Some(r) => Ok((
                r.progress,
                StoredImage {
                    index: r.index,
                    url: r.url,
                    color: r.color,
                    content_type: r.content_type,
                    byte_size: r.byte_size,
                },
            )),
            None => self.record_image_again(lease, image).await,
        }
    }

    /// `record_image` when its move did not apply: a repeat of the step
    /// returns what was recorded; a lost lease or a wrong state is an error.
    async fn record_image_again(
        &self,
        lease: &Lease,
        image: &StoredImage,
    ) -> Result<(Progress, StoredImage), StoreError> {
        let (mut tx, progress) = self
            .begin_advance(lease, RequestState::Stored, "stored_at = now()", |q| q)
            .await?;
        // As in `record_name`: the new row or the one there before.
        let stored = sqlx::query_as!(
            StoredImage,
            r#"WITH new AS (
                 INSERT INTO dynamo.image
                     (image_request_id, index, url, color, content_type, byte_size)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (image_request_id, index) DO NOTHING
                 RETURNING index, url, color, content_type, byte_size)
             SELECT index AS "index!", url AS "url!", color, content_type AS "content_type!",
                    byte_size AS "byte_size!" FROM new
             UNION ALL SELECT index, url, color, content_type, byte_size FROM dynamo.image
                 WHERE image_request_id = $1 AND index = $2"#,
            lease.request_id,
            image.index,
            image.url,
            image.color,
            image.content_type,
            image.byte_size,
        )
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

    /// A try-out's image is stored: it is done, without an alert (it is
    /// never aired) and without a debit to settle (it is free). The one way
    /// to `succeeded` that skips `alerted`, so it is guarded by the request
    /// being a try-out (migration 0027) besides its state and lease.
    pub async fn mark_tried(&self, lease: &Lease) -> Result<Progress, StoreError> {
        // Runtime-checked, as `advance`: its columns are PROGRESS.
        static TRIED: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE dynamo.image_request SET state = 'succeeded', updated_at = now(),
                     step_attempts = 0, step_failing_since = NULL, next_attempt_at = NULL,
                     finished_at = now(), settled_at = now(), error_message = NULL
                 WHERE id = $1 AND state = 'stored' AND trial AND lease_token = $2
                 RETURNING {PROGRESS}"
            )
        });
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(TRIED.as_str()))
            .bind(lease.request_id)
            .bind(lease.token)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok(Progress::from_row(&row)?),
            None => refused(&mut conn, lease, RequestState::Succeeded).await,
        }
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
        let (mut tx, progress) = self
            .begin_advance(
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
        self.mark_once(lease, "settled_at", "").await
    }

    /// The broker confirmed the generation-results message.
    pub async fn mark_result_published(&self, lease: &Lease) -> Result<Progress, StoreError> {
        self.mark_once(lease, "result_published_at", "").await
    }

    /// The broker confirmed the generation-results message, the request's
    /// last step: recorded and the lease given up in one statement, so a
    /// run's end costs no extra round trip.
    pub async fn mark_result_published_and_release(
        &self,
        lease: &Lease,
    ) -> Result<Progress, StoreError> {
        self.mark_once(
            lease,
            "result_published_at",
            ", lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
               next_attempt_at = NULL",
        )
        .await
    }

    /// Sets a timestamp column once, under the lease, and only once the
    /// request has ended: refunds and results come after the end state.
    /// `also` is more of the SET clause (empty, or starting with a comma).
    async fn mark_once(
        &self,
        lease: &Lease,
        column: &'static str,
        also: &'static str,
    ) -> Result<Progress, StoreError> {
        // Runtime-checked: `column` and `also` are the callers' constants.
        let sql = format!(
            "UPDATE dynamo.image_request SET {column} = coalesce({column}, now()), updated_at = now(){also}
             WHERE id = $1 AND lease_token = $2 AND finished_at IS NOT NULL
             RETURNING {PROGRESS}"
        );
        let done: Option<Progress> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(lease.request_id)
            .bind(lease.token)
            .fetch_optional(self.pool())
            .await?;
        if let Some(progress) = done {
            return Ok(progress);
        }
        let current = crate::lease::state_and_lease(self.pool(), lease.request_id).await?;
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

    /// A step's guarded move as the first statement of a transaction, for
    /// the steps that record more beside it (a name, an image, the end of a
    /// kept answer): the caller adds its statements and commits.
    async fn begin_advance<F>(
        &self,
        lease: &Lease,
        to: RequestState,
        set: &str,
        bind: F,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Progress), StoreError>
    where
        F: for<'a> FnOnce(PgQuery<'a>) -> PgQuery<'a>,
    {
        let mut tx = self.pool().begin().await?;
        let progress = advance_in(&mut tx, lease, to, set, bind).await?;
        Ok((tx, progress))
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
        let mut conn = self.pool().acquire().await?;
        advance_in(&mut conn, lease, to, set, bind).await
    }
}

type PgQuery<'a> = sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The guarded move to `to` with `set` (binds: $1 id, $2 the predecessors'
/// names, $3 the lease token, then the SET clause's own), returning its
/// [`Progress`].
fn advance_sql(to: RequestState, set: &str) -> String {
    format!(
        "UPDATE dynamo.image_request SET state = '{to}', updated_at = now(),
             step_attempts = 0, step_failing_since = NULL, next_attempt_at = NULL, {set}
         WHERE id = $1 AND state = ANY($2) AND lease_token = $3
         RETURNING {PROGRESS}"
    )
}

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
    // Runtime-checked: the SET clause and its binds are each step's own.
    let sql = advance_sql(to, set);
    let predecessors = state_names(to.predecessors());
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&predecessors)
        .bind(lease.token);
    if let Some(row) = bind(query).fetch_optional(&mut *conn).await? {
        return Ok(Progress::from_row(&row)?);
    }
    refused(conn, lease, to).await
}

/// Why a guarded move to `to` changed no row: the request is gone, its
/// lease is another's, it is there already (a repeat: its progress), or it
/// is in a state `to` cannot follow.
async fn refused(
    conn: &mut sqlx::PgConnection,
    lease: &Lease,
    to: RequestState,
) -> Result<Progress, StoreError> {
    let id = lease.request_id;
    #[derive(sqlx::FromRow)]
    struct Current {
        lease_token: Option<Uuid>,
        #[sqlx(flatten)]
        progress: Progress,
    }
    // Runtime-checked, as the update above: its columns are PROGRESS.
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
