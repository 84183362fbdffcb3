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
//! after `max_call` (the longest a call may take). Admission is one statement
//! (`dynamo.rate_limit_try_acquire`, migration 0008) under an advisory lock per
//! limiter; a count of each limiter's calls, kept by triggers, says whether
//! there is room without walking the window. A 429 pauses the limiter for all,
//! and an upstream that reports its remaining budget has the slots beyond it
//! reserved until its reset ([`RateLimiter::keep_within`]).

use crate::StoreError;
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
        Self::finish_all(vec![self]).await
    }

    /// Finishes the permits of one call (say, its requests and images
    /// limiters) in one statement.
    /// Gives the slot back unused (the call was not made): it stops counting
    /// at once.
    pub async fn cancel(self) -> Result<(), StoreError> {
        sqlx::query!("DELETE FROM dynamo.rate_limit_call WHERE id = $1", self.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn finish_all(permits: Vec<Permit>) -> Result<(), StoreError> {
        let Some(first) = permits.first() else {
            return Ok(());
        };
        let ids: Vec<i64> = permits.iter().map(|permit| permit.id).collect();
        sqlx::query!(
            "UPDATE dynamo.rate_limit_call SET finished_at = clock_timestamp() WHERE id = ANY($1)",
            &ids
        )
        .execute(&first.pool)
        .await?;
        Ok(())
    }
}

/// How often a waiter blocked by calls still in flight looks again.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(100);

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
        loop {
            if let Ok(permit) = self.acquire_within(Duration::MAX).await? {
                return Ok(permit);
            }
        }
    }

    /// Waits for a slot at most `patience`; `Err(wait)` when the limiter
    /// would have the caller wait longer (then about `wait` more), so that a
    /// request can be let go instead of holding a consumer slot.
    pub async fn acquire_within(
        &self,
        patience: Duration,
    ) -> Result<Result<Permit, Duration>, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match self.try_acquire().await? {
                Ok(id) => {
                    return Ok(Ok(Permit {
                        pool: self.pool.clone(),
                        id,
                        waited: started.elapsed(),
                    }));
                }
                Err(wait) if started.elapsed().saturating_add(wait) > patience => {
                    return Ok(Err(wait));
                }
                Err(wait) => {
                    tracing::debug!(limiter = %self.name, ?wait, "rate limited; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Admits a call now (`Ok(call id)`), or says how long to wait before asking again.
    /// One statement: `dynamo.rate_limit_try_acquire` (migration 0008) takes
    /// the limiter's lock, so it is held for the statement only.
    pub async fn try_acquire(&self) -> Result<Result<i64, Duration>, StoreError> {
        let admission = sqlx::query!(
            r#"SELECT call_id, wait_ms, in_flight AS "in_flight!"
             FROM dynamo.rate_limit_try_acquire(
                 $1, $2, $3 * interval '1 millisecond', $4 * interval '1 millisecond')"#,
            &self.name,
            self.limit,
            self.window.as_millis() as f64,
            self.max_call.as_millis() as f64,
        )
        .fetch_one(&self.pool)
        .await?;
        let (call_id, wait_ms, in_flight) =
            (admission.call_id, admission.wait_ms, admission.in_flight);
        if let Some(id) = call_id {
            return Ok(Ok(id));
        }
        // Only a window or a max_call past any float's range fails to convert.
        let wait = Duration::try_from_secs_f64(wait_ms.unwrap_or(0.0).max(0.0) / 1000.0)
            .unwrap_or(self.window);
        let wait = if in_flight {
            // Still in flight: it may finish any moment, so look again soon
            // rather than sleeping until it would expire.
            wait.min(IN_FLIGHT_POLL)
        } else {
            wait
        };
        Ok(Err(wait.max(Duration::from_millis(1))))
    }

    pub fn limit(&self) -> u64 {
        self.limit.unsigned_abs()
    }

    /// The upstream said only `remaining` more calls reach it before
    /// `reset`: until then, admits at most that many, less the calls still in
    /// flight (they spend it too), fleet-wide, instead of learning it from a
    /// 429. It fills the other slots with reserved ones that count until the
    /// reset, so admission itself is unchanged. Returns how many it reserved.
    ///
    /// A runtime query (not a checked macro): its offline data comes with
    /// the next `.sqlx` regeneration.
    pub async fn keep_within(&self, remaining: u64, reset: Duration) -> Result<u64, StoreError> {
        let remaining = i64::try_from(remaining).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        // Admission's lock: no call is admitted between the count and the fill.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dynamo.rate_limit.' || $1))")
            .bind(&self.name)
            .execute(&mut *tx)
            .await?;
        // A row counts until a window after its call finished; a call in
        // flight finishes now at the earliest. Rows that stop counting before
        // the reset free their slots too early to be of use: only those that
        // last until it take a slot of the budget.
        let reserved = sqlx::query(
            "WITH t AS (SELECT clock_timestamp() AS now,
                               $3 * interval '1 millisecond' AS win,
                               $4 * interval '1 millisecond' AS reset),
             s AS (
                 SELECT count(c.id) FILTER (WHERE c.finished_at IS NULL AND c.expires_at > t.now) AS in_flight,
                        count(c.id) FILTER (WHERE coalesce(c.finished_at, least(c.expires_at, t.now)) + t.win
                                                  >= t.now + t.reset) AS lasting
                 FROM t LEFT JOIN dynamo.rate_limit_call c ON c.limiter = $1)
             INSERT INTO dynamo.rate_limit_call (limiter, called_at, finished_at, expires_at)
             SELECT $1, t.now, t.now + t.reset - t.win, t.now + t.reset - t.win
             FROM t, s, generate_series(1::bigint, $2 - greatest($5 - s.in_flight, 0) - s.lasting)",
        )
        .bind(&self.name)
        .bind(self.limit)
        .bind(self.window.as_millis() as f64)
        .bind(reset.as_millis() as f64)
        .bind(remaining)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(reserved)
    }

    /// Stops every process from calling for `duration` (the upstream said 429).
    pub async fn pause(&self, duration: Duration) -> Result<(), StoreError> {
        sqlx::query!("INSERT INTO dynamo.rate_limit_pause (limiter, until)
             VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond')
             ON CONFLICT (limiter) DO UPDATE SET until = GREATEST(dynamo.rate_limit_pause.until, EXCLUDED.until)", &self.name, duration.as_millis() as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
