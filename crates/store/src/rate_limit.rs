//! A rate limit shared by every process through PostgreSQL: at most `limit`
//! calls in any sliding `window`, summed over the fleet, *as the upstream sees
//! them*.
//!
//! A sliding log, not a token bucket: a bucket that starts full admits up to
//! twice its rate in some windows, and the upstream counts calls per window.
//! Each call holds its slot from admission until a window after its answer
//! arrived (the upstream received it somewhere in between), so however late a
//! busy process actually sends an admitted call, no window at the upstream
//! holds more than `limit`. A call whose process died stops counting a window
//! after `max_call` (the longest a call may take). Admission takes a
//! transaction-scoped advisory lock per limiter. A 429 pauses the limiter for all.

use crate::StoreError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RateLimiter {
    pool: PgPool,
    name: String,
    limit: i64,
    window: Duration,
    max_call: Duration,
}

/// An admitted call. Report its end with [`Permit::finish`]; a permit that is
/// never finished stops counting after the limiter's `max_call`.
#[derive(Debug)]
#[must_use = "finish the permit when the call's answer arrives"]
pub struct Permit {
    pool: PgPool,
    id: i64,
    /// How long admission waited.
    pub waited: Duration,
}

impl Permit {
    pub async fn finish(self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dynamo.rate_limit_call SET finished_at = clock_timestamp() WHERE id = $1",
        )
        .bind(self.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// How often a waiter blocked by calls still in flight looks again.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(100);

fn interval(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl RateLimiter {
    pub fn new(pool: PgPool, name: &str, limit: u32, window: Duration, max_call: Duration) -> Self {
        Self {
            pool,
            name: name.to_owned(),
            limit: i64::from(limit.max(1)),
            window,
            max_call,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until a call may be made and records it.
    pub async fn acquire(&self) -> Result<Permit, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match self.try_acquire().await? {
                Ok(id) => {
                    return Ok(Permit {
                        pool: self.pool.clone(),
                        id,
                        waited: started.elapsed(),
                    });
                }
                Err(wait) => {
                    tracing::debug!(limiter = %self.name, ?wait, "rate limited; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Admits a call now (`Ok(call id)`), or says how long to wait before asking again.
    pub async fn try_acquire(&self) -> Result<Result<i64, Duration>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dynamo.rate_limit.' || $1))")
            .bind(&self.name)
            .execute(&mut *tx)
            .await?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *tx)
            .await?;
        let paused: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT until FROM dynamo.rate_limit_pause WHERE limiter = $1 AND until > $2",
        )
        .bind(&self.name)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(until) = paused {
            tx.commit().await?;
            return Ok(Err(to_duration(until - now)));
        }
        let window = interval(self.window);
        // A call counts until a window after it finished (or after it expired).
        sqlx::query(
            "DELETE FROM dynamo.rate_limit_call
             WHERE limiter = $1 AND coalesce(finished_at, expires_at) <= $2",
        )
        .bind(&self.name)
        .bind(now - window)
        .execute(&mut *tx)
        .await?;
        // The call whose slot must free before one more fits.
        let blocking: Option<(Option<DateTime<Utc>>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT finished_at, expires_at FROM dynamo.rate_limit_call
             WHERE limiter = $1 ORDER BY coalesce(finished_at, expires_at) DESC
             OFFSET $2 - 1 LIMIT 1",
        )
        .bind(&self.name)
        .bind(self.limit)
        .fetch_optional(&mut *tx)
        .await?;
        let admitted = match blocking {
            Some((Some(finished), _)) => {
                Err(to_duration(finished + window - now).max(Duration::from_millis(1)))
            }
            // Still in flight: it may finish any moment, so look again soon
            // rather than sleeping until it would expire.
            Some((None, expires)) => Err(to_duration(expires + window - now)
                .min(IN_FLIGHT_POLL)
                .max(Duration::from_millis(1))),
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO dynamo.rate_limit_call (limiter, called_at, expires_at)
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&self.name)
                .bind(now)
                .bind(now + interval(self.max_call))
                .fetch_one(&mut *tx)
                .await?;
                Ok(id)
            }
        };
        tx.commit().await?;
        Ok(admitted)
    }

    /// Stops every process from calling for `duration` (the upstream said 429).
    pub async fn pause(&self, duration: Duration) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dynamo.rate_limit_pause (limiter, until)
             VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond')
             ON CONFLICT (limiter) DO UPDATE SET until = GREATEST(dynamo.rate_limit_pause.until, EXCLUDED.until)",
        )
        .bind(&self.name)
        .bind(duration.as_millis() as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn to_duration(delta: chrono::Duration) -> Duration {
    delta.to_std().unwrap_or(Duration::ZERO)
}
