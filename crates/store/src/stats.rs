//! What operators read about the whole service: is the database there, how
//! many requests are in each state, and how long each step took lately. The
//! HTTP servers render these; the SQL lives here with every other query.

use crate::{Store, StoreError};

/// How many requests are in one state with one style, over all time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub state: String,
    pub style: String,
    pub count: i64,
}

/// How long one step took, over the requests created in the last hour.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTimes {
    /// debit, name, image, alert or total
    pub step: String,
    pub count: i64,
    pub p50_seconds: f64,
    pub p90_seconds: f64,
    pub p99_seconds: f64,
}

impl Store {
    /// Succeeds when the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar!("SELECT 1 AS one")
            .fetch_one(self.pool())
            .await?;
        Ok(())
    }

    /// Requests by state and style, over all time.
    pub async fn state_counts(&self) -> Result<Vec<StateCount>, StoreError> {
        Ok(sqlx::query_as!(
            StateCount,
            r#"SELECT state, style, count(*) AS "count!"
             FROM dynamo.image_request GROUP BY state, style ORDER BY state, style"#
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Percentiles of each step's duration over the requests created in the
    /// last hour. A step is timed from the previous step's commit to its own
    /// (the image from the name, or from the debit for ghosts, which have no
    /// name); `total` is from creation to the end state.
    pub async fn step_times_last_hour(&self) -> Result<Vec<StepTimes>, StoreError> {
        Ok(sqlx::query_as!(
            StepTimes,
            r#"WITH recent AS (
                SELECT * FROM dynamo.image_request WHERE created_at > now() - interval '1 hour'
            )
            SELECT step AS "step!", count(*) AS "count!",
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS "p50_seconds!",
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) AS "p90_seconds!",
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY secs) AS "p99_seconds!"
            FROM (
                SELECT 'debit' AS step, extract(epoch FROM debited_at - created_at)::float8 AS secs
                  FROM recent WHERE debited_at IS NOT NULL
                UNION ALL SELECT 'name', extract(epoch FROM named_at - debited_at)::float8
                  FROM recent WHERE named_at IS NOT NULL
                UNION ALL SELECT 'image', extract(epoch FROM stored_at - coalesce(named_at, debited_at))::float8
                  FROM recent WHERE stored_at IS NOT NULL
                UNION ALL SELECT 'alert', extract(epoch FROM alerted_at - stored_at)::float8
                  FROM recent WHERE alerted_at IS NOT NULL
                UNION ALL SELECT 'total', extract(epoch FROM finished_at - created_at)::float8
                  FROM recent WHERE finished_at IS NOT NULL
            ) steps
            GROUP BY step"#
        )
        .fetch_all(self.pool())
        .await?)
    }
}
