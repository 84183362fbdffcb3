//! Finding requests nobody is working on any more: the process handling them
//! died and their message will not come back (dead-lettered, purged), or they
//! ended but their refund or result was never recorded.

use crate::requests::{RequestRecord, SELECT_REQUEST};
use crate::{Store, StoreError};
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use std::time::Duration;
use uuid::Uuid;

/// Exclusive right to recover one request, across every process: a
/// session-level advisory lock on a connection that is closed, not returned to
/// the pool, if the holder forgets to release it.
#[derive(Debug)]
pub struct RecoveryLock {
    connection: PoolConnection<Postgres>,
    id: Uuid,
}

impl RecoveryLock {
    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext('dynamo.recover.' || $1::text))")
            .bind(self.id)
            .execute(&mut *self.connection)
            .await;
    }
}

impl Store {
    /// Requests that ended more than `ended_grace` ago with a refund or result
    /// still to do, and unfinished requests with no progress for `stale_after`
    /// (scheduled retries are the scheduler's, not recovery's).
    pub async fn needing_recovery(
        &self,
        ended_grace: Duration,
        stale_after: Duration,
        limit: i64,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let records = sqlx::query_as::<_, RequestRecord>(sqlx::AssertSqlSafe(format!(
            "{SELECT_REQUEST}
             WHERE (r.finished_at IS NOT NULL
                    AND (r.settled_at IS NULL OR r.result_published_at IS NULL)
                    AND r.updated_at < now() - $1 * interval '1 millisecond')
                OR (r.finished_at IS NULL AND r.next_attempt_at IS NULL
                    AND r.updated_at < now() - $2 * interval '1 millisecond')
             ORDER BY r.updated_at
             LIMIT $3"
        )))
        .bind(ended_grace.as_millis() as f64)
        .bind(stale_after.as_millis() as f64)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(records)
    }

    /// Takes the recovery lock of a request, unless another process holds it.
    pub async fn try_lock_for_recovery(
        &self,
        id: Uuid,
    ) -> Result<Option<RecoveryLock>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        connection.close_on_drop();
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('dynamo.recover.' || $1::text))",
        )
        .bind(id)
        .fetch_one(&mut *connection)
        .await?;
        Ok(locked.then_some(RecoveryLock { connection, id }))
    }
}
