//! The guarded moves of a request's state: each step's write, applied only
//! from the state the step expects and only under the request's lease, and
//! what the write left in the row ([`Progress`]). Each move is a checked
//! query (`guarded_move!`, `mark_once!`): its text is whole at compile time
//! and checked against the schema, like `select_requests!`.

use crate::requests::{RequestRecord, StateColumn, StoredImage};
use crate::{Lease, RequestState, Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a step's write left in the request's row, as stored (`RETURNING`):
/// the columns the steps move, so a run keeps its copy of the request
/// current without reading the row again ([`RequestRecord::apply`]).
#[derive(Debug, Clone)]
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

/// A checked query with the columns of a [`Progress`] between `$head` and
/// `$tail` (each a `+` concatenation of string literals): the one place
/// they are listed, each named and typed as its field, so the text reads
/// the same from a table or from a CTE. `query_as (Progress,)` reads a
/// [`Progress`]; `query ()` a record with more columns beside it, made one
/// with [`progress_of!`].
macro_rules! with_progress {
    ($kind:ident ($($row:tt)*) [$($head:tt)+] [$($tail:tt)+] $(, $arg:expr)* $(,)?) => {
        sqlx::$kind!(
            $($row)*
            $($head)+
                + r#"state AS "state!: crate::requests::StateColumn",
                   ledger_flow_id AS "ledger_flow_id?", error_message AS "error_message?",
                   debited_at AS "debited_at?", named_at AS "named_at?",
                   stored_at AS "stored_at?", alerted_at AS "alerted_at?",
                   settled_at AS "settled_at?", result_published_at AS "result_published_at?",
                   finished_at AS "finished_at?", updated_at AS "updated_at!",
                   next_attempt_at AS "next_attempt_at?""#
                + $($tail)+
            $(, $arg)*
        )
    };
}

/// The [`Progress`] in a record read by `with_progress!(query ...)`.
macro_rules! progress_of {
    ($row:ident) => {
        Progress {
            state: $row.state,
            ledger_flow_id: $row.ledger_flow_id,
            error_message: $row.error_message,
            debited_at: $row.debited_at,
            named_at: $row.named_at,
            stored_at: $row.stored_at,
            alerted_at: $row.alerted_at,
            settled_at: $row.settled_at,
            result_published_at: $row.result_published_at,
            finished_at: $row.finished_at,
            updated_at: $row.updated_at,
            next_attempt_at: $row.next_attempt_at,
        }
    };
}

/// A guarded move, checked at compile time: to `$to` (a [`RequestState`])
/// from its predecessors (or from `from:`), under `$lease`, with `$set` more
/// of the SET clause and `$arg` its binds from `$5` on. The states are bound
/// from [`RequestState`] (`$2` the target's name, `$3` the names it may
/// follow; `$1` is the request, `$4` the lease token), so the text names
/// none and cannot drift from the enum. `and:` adds to the WHERE clause.
///
/// The move alone is a `Result<Progress, StoreError>`: a move that changed
/// no row asks [`refused`] why (a repeat returns the progress as it stands).
/// `moved:` makes the move a CTE `moved` (the whole row), `then:` the rest
/// of the statement up to its `SELECT `, and `columns:` what it selects after
/// the [`Progress`] columns: a `Result<Option<record>, sqlx::Error>`.
macro_rules! guarded_move {
    (@query $kind:ident ($($row:tt)*) [$($before:tt)*] $set:tt [$($and:tt)+] [$($after:tt)+]
     [$($tail:tt)+], $lease:ident, $to:ident, $predecessors:ident $(, $arg:expr)*) => {
        with_progress!($kind ($($row)*)
            [$($before)* "UPDATE dynamo.image_request SET state = $2, updated_at = now(),
                 step_attempts = 0, step_failing_since = NULL, next_attempt_at = NULL, "
                + $set
                + " WHERE id = $1 AND state = ANY($3) AND lease_token = $4"
                + $($and)+
                + $($after)+]
            [$($tail)+],
            $lease.request_id, $to.as_str(), $predecessors.as_slice(), $lease.token $(, $arg)*)
    };
    (@from $to:ident) => { $to.predecessors() };
    (@from $to:ident, $from:expr) => { $from };
    (moved: $executor:expr, $lease:expr, $to:expr, set: $set:tt, then: $then:tt,
     columns: $columns:tt $(, $arg:expr)* $(,)?) => {{
        let (lease, to): (&Lease, RequestState) = ($lease, $to);
        let predecessors = state_names(to.predecessors());
        guarded_move!(@query query () ["WITH moved AS (" +] $set [" "]
            [" RETURNING *), " + $then] [$columns], lease, to, predecessors $(, $arg)*)
        .fetch_optional($executor)
        .await
    }};
    ($conn:expr, $lease:expr, $to:expr, $(from: $from:expr,)? $(and: $and:tt,)?
     set: $set:tt $(, $arg:expr)* $(,)?) => {{
        let (conn, lease, to): (&mut sqlx::PgConnection, &Lease, RequestState) =
            ($conn, $lease, $to);
        let from: &[RequestState] = guarded_move!(@from to $(, $from)?);
        let predecessors = state_names(from);
        let moved = guarded_move!(@query query_as (Progress,) [] $set [" " $(+ $and)?]
            [" RETURNING "] [""], lease, to, predecessors $(, $arg)*)
        .fetch_optional(&mut *conn)
        .await;
        match moved {
            Ok(Some(progress)) => Ok(progress),
            Ok(None) => refused(conn, lease, to).await,
            Err(error) => Err(StoreError::from(error)),
        }
    }};
}

/// Sets a timestamp column (a string literal) once, under the lease, and
/// only once the request has ended: refunds and results come after the end
/// state. `also:` is more of the SET clause, starting with a comma. A
/// `Result<Progress, StoreError>`.
macro_rules! mark_once {
    ($store:expr, $lease:expr, $column:tt $(, also: $also:tt)?) => {{
        let (store, lease): (&Store, &Lease) = ($store, $lease);
        let done = with_progress!(query_as (Progress,)
            ["UPDATE dynamo.image_request SET " + $column + " = coalesce(" + $column
                + ", now()), updated_at = now()" $(+ $also)?
                + " WHERE id = $1 AND lease_token = $2 AND finished_at IS NOT NULL RETURNING "]
            [""], lease.request_id, lease.token)
        .fetch_optional(store.pool())
        .await?;
        match done {
            Some(progress) => Ok(progress),
            None => Err(store.refusal(lease, $column).await),
        }
    }};
}

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

/// The states' names, as a move binds them (`$3`).
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
        let mut conn = self.pool().acquire().await?;
        guarded_move!(
            &mut conn,
            lease,
            RequestState::Debited,
            set: "ledger_flow_id = $5, debited_at = now()",
            flow_id,
        )
    }

    /// The friend's name is known. Returns the name as stored: a repeat of
    /// the step keeps the name recorded first.
    pub async fn record_name(
        &self,
        lease: &Lease,
        prompt: &str,
        name: &str,
    ) -> Result<(Progress, String), StoreError> {
        let mut tx = self.pool().begin().await?;
        let progress = guarded_move!(&mut tx, lease, RequestState::Named, set: "named_at = now()")?;
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
        // The statement's snapshot does not see its own insert, so the
        // union is the new image or the one recorded before, never both.
        let recorded = guarded_move!(
            moved: self.pool(),
            lease,
            RequestState::Stored,
            set: "stored_at = now()",
            then: "new AS (
                     INSERT INTO dynamo.image
                         (image_request_id, index, url, color, content_type, byte_size)
                     SELECT $1, $5, $6, $7, $8, $9 FROM moved
                     ON CONFLICT (image_request_id, index) DO NOTHING
                     RETURNING index, url, color, content_type, byte_size),
                 forgotten AS (
                     DELETE FROM dynamo.generated_image
                     WHERE image_request_id = $1 AND EXISTS (SELECT FROM moved))
                 SELECT ",
            columns: r#", i.index AS "index!", i.url AS "url!", i.color AS "color?",
                   i.content_type AS "content_type!", i.byte_size AS "byte_size!"
                 FROM moved, (
                     SELECT index, url, color, content_type, byte_size FROM new
                     UNION ALL
                     SELECT index, url, color, content_type, byte_size FROM dynamo.image
                     WHERE image_request_id = $1 AND index = $5) i
                 LIMIT 1"#,
            image.index,
            image.url,
            image.color,
            image.content_type,
            image.byte_size,
        )?;
        match recorded {
            Some(row) => Ok((
                progress_of!(row),
                StoredImage {
                    index: row.index,
                    url: row.url,
                    color: row.color,
                    content_type: row.content_type,
                    byte_size: row.byte_size,
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
        let mut tx = self.pool().begin().await?;
        let progress =
            guarded_move!(&mut tx, lease, RequestState::Stored, set: "stored_at = now()")?;
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
        let mut conn = self.pool().acquire().await?;
        guarded_move!(&mut conn, lease, RequestState::Alerted, set: "alerted_at = now()")
    }

    /// The outflow was accepted (or there was none): the request is done.
    pub async fn mark_succeeded(&self, lease: &Lease) -> Result<Progress, StoreError> {
        let mut conn = self.pool().acquire().await?;
        guarded_move!(
            &mut conn,
            lease,
            RequestState::Succeeded,
            set: "finished_at = now(), settled_at = now(), error_message = NULL",
        )
    }

    /// A try-out's image is stored: it is done, without an alert (it is
    /// never aired) and without a debit to settle (it is free). The one way
    /// to `succeeded` that skips `alerted`, so it is guarded by the request
    /// being a try-out (migration 0027) besides its state and lease.
    pub async fn mark_tried(&self, lease: &Lease) -> Result<Progress, StoreError> {
        let mut conn = self.pool().acquire().await?;
        guarded_move!(
            &mut conn,
            lease,
            RequestState::Succeeded,
            from: &[RequestState::Stored],
            and: "AND trial",
            set: "finished_at = now(), settled_at = now(), error_message = NULL",
        )
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
        let mut tx = self.pool().begin().await?;
        let progress = guarded_move!(
            &mut tx,
            lease,
            end,
            set: "finished_at = now(), error_message = $5,
                  settled_at = CASE WHEN ledger_flow_id IS NULL AND debit_requested_at IS NULL
                                    THEN now() ELSE settled_at END",
            reason,
        )?;
        crate::generated::forget_generated(&mut tx, lease.request_id).await?;
        tx.commit().await?;
        Ok(progress)
    }

    /// The pending outflow was rejected (refunded).
    pub async fn mark_settled(&self, lease: &Lease) -> Result<Progress, StoreError> {
        mark_once!(self, lease, "settled_at")
    }

    /// The broker confirmed the generation-results message.
    pub async fn mark_result_published(&self, lease: &Lease) -> Result<Progress, StoreError> {
        mark_once!(self, lease, "result_published_at")
    }

    /// The broker confirmed the generation-results message, the request's
    /// last step: recorded and the lease given up in one statement, so a
    /// run's end costs no extra round trip.
    pub async fn mark_result_published_and_release(
        &self,
        lease: &Lease,
    ) -> Result<Progress, StoreError> {
        mark_once!(
            self,
            lease,
            "result_published_at",
            also: ", lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                   next_attempt_at = NULL"
        )
    }
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
    let current = with_progress!(
        query()["SELECT lease_token, "][" FROM dynamo.image_request WHERE id = $1"],
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    match current {
        None => Err(StoreError::NotFound(id)),
        Some(current) if current.lease_token != Some(lease.token) => Err(StoreError::LeaseLost(id)),
        Some(current) if current.state.0 == to => Ok(progress_of!(current)),
        Some(current) => Err(StoreError::IllegalTransition {
            id,
            from: current.state.0.as_str().to_owned(),
            to: to.as_str(),
        }),
    }
}
