//! Fleet-wide holds on a service that is out (SPEC §6.10): while one is on,
//! requests wait instead of calling the service, and one request at a time,
//! every probe interval, tries it again.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A service the fleet holds requests for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub service: String,
    pub reason: String,
    pub held_since: DateTime<Utc>,
    pub next_probe_at: DateTime<Utc>,
}

impl Store {
    /// Puts the service on hold (or keeps the hold, with the newest reason).
    /// `true` when this call started the hold: the one to log and alert on.
    pub async fn hold(
        &self,
        service: &str,
        reason: &str,
        probe_every: Duration,
    ) -> Result<bool, StoreError> {
        let started = sqlx::query_scalar!(r#"INSERT INTO dynamo.upstream_hold (service, reason, next_probe_at)
             VALUES ($1, $2, now() + $3 * interval '1 millisecond')
             ON CONFLICT (service) DO UPDATE SET reason = EXCLUDED.reason,
                 next_probe_at = greatest(dynamo.upstream_hold.next_probe_at, EXCLUDED.next_probe_at)
             RETURNING (xmax = 0) AS "started!""#, service, reason, probe_every.as_millis() as f64)
        .fetch_one(self.pool())
        .await?;
        Ok(started)
    }

    /// The hold on a service, if any.
    pub async fn current_hold(&self, service: &str) -> Result<Option<Hold>, StoreError> {
        let hold = sqlx::query_as!(
            Hold,
            "SELECT service, reason, held_since, next_probe_at FROM dynamo.upstream_hold
             WHERE service = $1",
            service,
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(hold)
    }

    /// Every hold on (for operators).
    pub async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let holds = sqlx::query_as!(
            Hold,
            "SELECT service, reason, held_since, next_probe_at FROM dynamo.upstream_hold
             ORDER BY service",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(holds)
    }

    /// Makes the caller the probe of a held service if its time has come:
    /// `true` for exactly one caller per probe interval, fleet-wide.
    pub async fn take_probe(
        &self,
        service: &str,
        probe_every: Duration,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query!(
            "UPDATE dynamo.upstream_hold SET next_probe_at = now() + $2 * interval '1 millisecond'
             WHERE service = $1 AND next_probe_at <= now()",
            service,
            probe_every.as_millis() as f64
        )
        .execute(self.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Whether a request that was debited is still to call the services:
    /// such a request probes a hold, so one not yet debited need not (and
    /// waits un-charged instead).
    pub async fn debited_requests_waiting(&self) -> Result<bool, StoreError> {
        let waiting = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM dynamo.image_request
                            WHERE state IN ('debited', 'named') AND settled_at IS NULL) AS "waiting!""#)
        .fetch_one(self.pool())
        .await?;
        Ok(waiting)
    }

    /// The hold that pauses the fleet's intake, if any: the oldest hold not
    /// older than `max_wait` (past it, held requests give up, so new ones
    /// may come in to fail with a refund), while some request waits in the
    /// database before its image to carry the probe that ends it. Without
    /// such a request nothing would probe, so intake goes on and the next
    /// request takes the probe.
    pub async fn pausing_hold(&self, max_wait: Duration) -> Result<Option<Hold>, StoreError> {
        let hold = sqlx::query_as!(
            Hold,
            "SELECT service, reason, held_since, next_probe_at FROM dynamo.upstream_hold
             WHERE held_since > now() - $1 * interval '1 millisecond'
             ORDER BY held_since LIMIT 1",
            max_wait.as_millis() as f64,
        )
        .fetch_optional(self.pool())
        .await?;
        if hold.is_none() {
            return Ok(None);
        }
        let probe_carried = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM dynamo.image_request
                            WHERE state IN ('received', 'debited', 'named') AND settled_at IS NULL)
                   AS "carried!""#
        )
        .fetch_one(self.pool())
        .await?;
        Ok(hold.filter(|_| probe_carried))
    }

    /// Ends the hold: the service answered. `true` when there was one.
    pub async fn release_hold(&self, service: &str) -> Result<bool, StoreError> {
        let released = sqlx::query!(
            "DELETE FROM dynamo.upstream_hold WHERE service = $1",
            service
        )
        .execute(self.pool())
        .await?;
        Ok(released.rows_affected() == 1)
    }
}
