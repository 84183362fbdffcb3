//! A rate limit shared by every process through PostgreSQL: at most `limit`
//! calls admitted in any sliding `window`, summed over the fleet.
//!
//! A sliding log (not a token bucket): a bucket that starts full admits up to
//! twice its rate in some windows, and the upstream counts calls per window.
//! Admission takes a transaction-scoped advisory lock per limiter, counts the
//! calls of the last window, and either records the new call or says how long
//! until the oldest one leaves the window. A 429 pauses the limiter for all.

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
}

impl RateLimiter {
    pub fn new(pool: PgPool, name: &str, limit: u32, window: Duration) -> Self {
        Self {
            pool,
            name: name.to_owned(),
            limit: i64::from(limit.max(1)),
            window,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until a call may be made and records it. Returns how long it waited.
    pub async fn acquire(&self) -> Result<Duration, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match self.try_acquire().await? {
                None => return Ok(started.elapsed()),
                Some(wait) => {
                    tracing::debug!(limiter = %self.name, ?wait, "rate limited; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Admits a call now (`None`), or says how long to wait before asking again.
    pub async fn try_acquire(&self) -> Result<Option<Duration>, StoreError> {
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
            return Ok(Some(to_duration(until - now)));
        }
        let window_start = now - chrono::Duration::from_std(self.window).unwrap_or_default();
        sqlx::query("DELETE FROM dynamo.rate_limit_call WHERE limiter = $1 AND called_at <= $2")
            .bind(&self.name)
            .bind(window_start)
            .execute(&mut *tx)
            .await?;
        // The call that must leave the window before one more fits.
        let blocking: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT called_at FROM dynamo.rate_limit_call WHERE limiter = $1
             ORDER BY called_at DESC OFFSET $2 - 1 LIMIT 1",
        )
        .bind(&self.name)
        .bind(self.limit)
        .fetch_optional(&mut *tx)
        .await?;
        let wait = match blocking {
            Some(oldest_that_counts) => {
                let frees_at = oldest_that_counts
                    + chrono::Duration::from_std(self.window).unwrap_or_default();
                Some(to_duration(frees_at - now).max(Duration::from_millis(1)))
            }
            None => {
                sqlx::query(
                    "INSERT INTO dynamo.rate_limit_call (limiter, called_at) VALUES ($1, $2)",
                )
                .bind(&self.name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                None
            }
        };
        tx.commit().await?;
        Ok(wait)
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
