//! When requests run again: retries scheduled after a transient failure, and
//! requests waiting for their viewer's turn. Both free the consumer slot: the
//! request waits in this table, and any consumer picks it up when it is due.

use crate::{Lease, Step, Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A transient failure of one step, retried or (when it was the last) ending
/// the request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StepFailure {
    pub step: Step,
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
        lease: &Lease,
        step: Step,
        reason: &str,
    ) -> Result<(i32, DateTime<Utc>), StoreError> {
        let noted = sqlx::query!(
            r#"WITH counted AS (
                 UPDATE dynamo.image_request
                 SET step_attempts = step_attempts + 1,
                     step_failing_since = coalesce(step_failing_since, now()),
                     updated_at = now()
                 WHERE id = $1 AND lease_token = $4
                 RETURNING id, step_attempts, step_failing_since
             ), logged AS (
                 INSERT INTO dynamo.step_failure (image_request_id, step, attempt, reason)
                 SELECT id, $2, step_attempts, $3 FROM counted
             )
             SELECT step_attempts AS "attempts!", step_failing_since AS "since!" FROM counted"#,
            lease.request_id,
            step.as_str(),
            reason,
            lease.token,
        )
        .fetch_optional(self.pool())
        .await?;
        noted
            .map(|row| (row.attempts, row.since))
            .ok_or(StoreError::LeaseLost(lease.request_id))
    }

    /// Logs failures of a step that was retried in place (they are not
    /// counted against the step: the retry policy did that itself), numbered
    /// after the step's earlier ones.
    pub async fn log_failures(
        &self,
        id: Uuid,
        step: Step,
        failures: &[(DateTime<Utc>, String)],
    ) -> Result<(), StoreError> {
        let (times, reasons): (Vec<DateTime<Utc>>, Vec<&str>) = failures
            .iter()
            .map(|(at, reason)| (*at, reason.as_str()))
            .unzip();
        sqlx::query!("INSERT INTO dynamo.step_failure (image_request_id, step, attempt, failed_at, reason)
             SELECT $1, $2,
                    ((SELECT count(*) FROM dynamo.step_failure
                      WHERE image_request_id = $1 AND step = $2) + f.n)::integer,
                    f.failed_at, f.reason
             FROM unnest($3::timestamptz[], $4::text[]) WITH ORDINALITY AS f (failed_at, reason, n)", id, step.as_str(), &times, &reasons as &[&str])
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The logged step failures of a request, oldest first.
    pub async fn step_failures(&self, id: Uuid) -> Result<Vec<StepFailure>, StoreError> {
        let failures = sqlx::query_as!(
            StepFailure,
            r#"SELECT step AS "step: Step", attempt, failed_at, reason FROM dynamo.step_failure
             WHERE image_request_id = $1 ORDER BY id"#,
            id,
        )
        .fetch_all(self.pool())
        .await?;
        Ok(failures)
    }

    /// Lets a request that has not started yet start, unless its viewer already
    /// has `cap` requests in progress or an earlier request still waiting to
    /// start (a viewer's requests start in the order they were recorded);
    /// then its lease is given up, it is due
    /// again after `later`, and `false` is returned. Strict across processes:
    /// the check and the decision happen under a per-viewer advisory lock. In
    /// progress means owned by a live lease: a request whose process died
    /// stops counting when its lease lapses, and one waiting for a scheduled
    /// retry does not count. Waiting costs the request no attempt.
    pub async fn start_if_viewer_has_room(
        &self,
        lease: &Lease,
        twitch_user_id: &str,
        cap: u32,
        later: std::time::Duration,
    ) -> Result<bool, StoreError> {
        // One statement: the lock, the count and the release are
        // `dynamo.start_if_viewer_has_room` (migration 0024).
        let room = sqlx::query_scalar!(
            r#"SELECT dynamo.start_if_viewer_has_room(
                   $1, $2, $3, $4, $5 * interval '1 millisecond') AS room"#,
            lease.request_id,
            lease.token,
            twitch_user_id,
            i32::try_from(cap).unwrap_or(i32::MAX),
            later.as_millis() as f64
        )
        .fetch_one(self.pool())
        .await?;
        let room = room.ok_or(StoreError::LeaseLost(lease.request_id))?;
        Ok(room)
    }
}
