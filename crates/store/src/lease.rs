//! Who owns a request in progress (SPEC §6.8). A process works on a request
//! only while it holds the request's lease; it renews the lease as it works
//! and releases it at the end. A lease that lapses — its process died, froze
//! or lost the database — hands the request to any live consumer, which the
//! scheduler's [`Store::claim_open`] finds within a poll. Every write of the
//! pipeline carries the lease's token and changes nothing without it, so a
//! stale owner that wakes up can never commit over the new one.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// The right to work on one request, until it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub request_id: Uuid,
    pub token: Uuid,
}

/// `now() + ttl` in SQL terms: the TTL is bound as milliseconds.
fn millis(ttl: Duration) -> f64 {
    ttl.as_millis() as f64
}

impl Store {
    /// Takes the lease of a request unless another live lease holds it
    /// (`None`: someone else is working on it).
    pub async fn acquire_lease(
        &self,
        id: Uuid,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let token = sqlx::query_scalar!(
            r#"UPDATE dynamo.image_request
             SET lease_owner = $2, lease_token = gen_random_uuid(),
                 lease_expires_at = now() + $3 * interval '1 millisecond'
             WHERE id = $1 AND coalesce(lease_expires_at, '-infinity') < now()
             RETURNING lease_token AS "token!""#,
            id,
            owner,
            millis(ttl)
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(token.map(|token| Lease {
            request_id: id,
            token,
        }))
    }

    /// Extends a lease still held; `false` when it was lost (lapsed and taken
    /// over, or released).
    pub async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool, StoreError> {
        let renewed = sqlx::query!(
            "UPDATE dynamo.image_request
             SET lease_expires_at = now() + $3 * interval '1 millisecond'
             WHERE id = $1 AND lease_token = $2",
            lease.request_id,
            lease.token,
            millis(ttl)
        )
        .execute(self.pool())
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Gives the request up. With `run_again_at`, it is due again then (a
    /// scheduled retry, the viewer's turn); without, it is done, or free for
    /// anyone to take at once.
    pub async fn release_lease(
        &self,
        lease: &Lease,
        run_again_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.image_request
             SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                 next_attempt_at = $3, updated_at = now()
             WHERE id = $1 AND lease_token = $2",
            lease.request_id,
            lease.token,
            run_again_at
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes the leases of up to `limit` requests that have work left and
    /// nobody working on them — a retry or the viewer's turn that is due, a
    /// lease that lapsed (its owner died), an ended request whose refund or
    /// result was never recorded — across all processes, oldest first. Each
    /// comes with whether it was rescued from a lapsed lease.
    pub async fn claim_open(
        &self,
        owner: &str,
        limit: i64,
        ttl: Duration,
    ) -> Result<Vec<(Lease, bool)>, StoreError> {
        let claimed = sqlx::query!(
            r#"WITH picked AS (
                 SELECT id, lease_expires_at IS NOT NULL AS rescued FROM dynamo.image_request
                 WHERE (finished_at IS NULL OR settled_at IS NULL OR result_published_at IS NULL)
                   AND coalesce(lease_expires_at, '-infinity') < now()
                   AND coalesce(next_attempt_at, '-infinity') <= now()
                 ORDER BY coalesce(next_attempt_at, lease_expires_at) NULLS FIRST
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE dynamo.image_request r
             SET lease_owner = $1, lease_token = gen_random_uuid(),
                 lease_expires_at = now() + $3 * interval '1 millisecond',
                 next_attempt_at = NULL
             FROM picked WHERE r.id = picked.id
             RETURNING r.id, r.lease_token AS "token!", picked.rescued AS "rescued!""#,
            owner,
            limit,
            millis(ttl),
        )
        .fetch_all(self.pool())
        .await?;
        Ok(claimed
            .into_iter()
            .map(|row| {
                let lease = Lease {
                    request_id: row.id,
                    token: row.token,
                };
                (lease, row.rescued)
            })
            .collect())
    }

    /// Who holds a request's lease now, and until when (for operators and tests).
    pub async fn lease_holder(
        &self,
        id: Uuid,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let holder = sqlx::query!(
            "SELECT lease_owner, lease_expires_at FROM dynamo.image_request WHERE id = $1",
            id
        )
        .fetch_optional(self.pool())
        .await?
        .map(|row| (row.lease_owner, row.lease_expires_at));
        Ok(match holder {
            Some((Some(owner), Some(until))) if until > Utc::now() => Some((owner, until)),
            _ => None,
        })
    }
}

/// A request's state and lease token (`None`: no such request): what says
/// why a write guarded by a lease and a state changed nothing.
pub(crate) async fn state_and_lease<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<(String, Option<Uuid>)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT state, lease_token FROM dynamo.image_request WHERE id = $1",
        id
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|row| (row.state, row.lease_token)))
}
