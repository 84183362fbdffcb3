//! When requests run again: retries scheduled after a transient failure, and
//! requests waiting for their viewer's turn. Both free the consumer slot: the
//! request waits in this table, and any consumer picks it up when it is due.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A transient failure of one step, retried or (when it was the last) ending
/// the request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct StepFailure {
    pub step: String,
    /// From 1.
    pub attempt: i32,
    pub failed_at: DateTime<Utc>,
    pub reason: String,
}

impl Store {
    /// Counts a transient failure of the current step and logs it with its
    /// reason; returns the count so far and when the step first failed.
    pub async fn note_failure(
        &self,
        id: Uuid,
        step: &str,
        reason: &str,
    ) -> Result<(i32, DateTime<Utc>), StoreError> {
        let noted = sqlx::query_as(
            "WITH counted AS (
                 UPDATE dynamo.image_request
                 SET step_attempts = step_attempts + 1,
                     step_failing_since = coalesce(step_failing_since, now()),
                     updated_at = now()
                 WHERE id = $1
                 RETURNING id, step_attempts, step_failing_since
             ), logged AS (
                 INSERT INTO dynamo.step_failure (image_request_id, step, attempt, reason)
                 SELECT id, $2, step_attempts, $3 FROM counted
             )
             SELECT step_attempts, step_failing_since FROM counted",
        )
        .bind(id)
        .bind(step)
        .bind(reason)
        .fetch_one(self.pool())
        .await?;
        Ok(noted)
    }

    /// Logs failures of a step that was retried in place (they are not
    /// counted against the step: the retry policy did that itself), numbered
    /// after the step's earlier ones.
    pub async fn log_failures(
        &self,
        id: Uuid,
        step: &str,
        failures: &[(DateTime<Utc>, String)],
    ) -> Result<(), StoreError> {
        let (times, reasons): (Vec<DateTime<Utc>>, Vec<&str>) = failures
            .iter()
            .map(|(at, reason)| (*at, reason.as_str()))
            .unzip();
        sqlx::query(
            "INSERT INTO dynamo.step_failure (image_request_id, step, attempt, failed_at, reason)
             SELECT $1, $2,
                    ((SELECT count(*) FROM dynamo.step_failure
                      WHERE image_request_id = $1 AND step = $2) + f.n)::integer,
                    f.failed_at, f.reason
             FROM unnest($3::timestamptz[], $4::text[]) WITH ORDINALITY AS f (failed_at, reason, n)",
        )
        .bind(id)
        .bind(step)
        .bind(&times)
        .bind(&reasons)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The logged step failures of a request, oldest first.
    pub async fn step_failures(&self, id: Uuid) -> Result<Vec<StepFailure>, StoreError> {
        let failures = sqlx::query_as(
            "SELECT step, attempt, failed_at, reason FROM dynamo.step_failure
             WHERE image_request_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(failures)
    }

    /// Schedules the next try of the current step.
    pub async fn schedule_retry(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dynamo.image_request SET next_attempt_at = $2, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Lets a request that has not started yet start, unless its viewer already
    /// has `cap` requests in progress; then it is put back for `later` and
    /// `false` returned. Strict across processes: the check and the decision
    /// happen under a per-viewer advisory lock. Requests waiting for a retry,
    /// and ones with no progress for 15 minutes (their process died), do not
    /// count as in progress.
    pub async fn start_if_viewer_has_room(
        &self,
        id: Uuid,
        twitch_user_id: &str,
        cap: u32,
        later: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dynamo.viewer.' || $1))")
            .bind(twitch_user_id)
            .execute(&mut *tx)
            .await?;
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dynamo.image_request
             WHERE twitch_user_id = $1 AND id <> $2 AND finished_at IS NULL
               AND next_attempt_at IS NULL AND updated_at > now() - interval '15 minutes'",
        )
        .bind(twitch_user_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let room = busy < i64::from(cap);
        let next_attempt: Option<f64> = (!room).then_some(later.as_millis() as f64);
        sqlx::query(
            "UPDATE dynamo.image_request
             SET next_attempt_at = now() + $2 * interval '1 millisecond', updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(next_attempt)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(room)
    }

    /// Claims up to `limit` requests whose retry is due, across all processes:
    /// each claim moves its due time `lease` ahead, so a claimer that dies
    /// hands it back when the lease ends.
    pub async fn claim_due_retries(
        &self,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ids = sqlx::query_scalar(
            "UPDATE dynamo.image_request
             SET next_attempt_at = now() + $2 * interval '1 millisecond'
             WHERE id IN (
                 SELECT id FROM dynamo.image_request
                 WHERE next_attempt_at <= now() AND finished_at IS NULL
                 ORDER BY next_attempt_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(limit)
        .bind(lease.as_millis() as f64)
        .fetch_all(self.pool())
        .await?;
        Ok(ids)
    }
}
