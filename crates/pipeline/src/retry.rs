//! The retry policy for transient upstream failures: exponential backoff with
//! jitter (`backon`), honouring what the service asked us to wait, bounded by
//! a number of attempts and a total wait per step.

use crate::metrics::Metrics;
use backon::{ExponentialBuilder, Retryable};
use dynamo_runtime::{Env, SettingError};
use dynamo_upstream::UpstreamError;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// `RETRY_MIN_DELAY`, default 1s: the first wait.
    pub min_delay: Duration,
    /// `RETRY_MAX_DELAY`, default 60s: no single wait is longer.
    pub max_delay: Duration,
    /// `RETRY_MAX_ATTEMPTS`, default 8: tries per step, the first included.
    pub max_attempts: usize,
    /// `RETRY_DEADLINE`, default 10m: total waiting per step before giving up.
    pub deadline: Duration,
    /// `RETRY_INLINE_MAX`, default 2s: waits up to this long happen in place;
    /// longer ones are scheduled in the database and free the consumer slot.
    pub inline_max: Duration,
}

impl RetryPolicy {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let policy = Self {
            min_delay: env.duration("RETRY_MIN_DELAY", Duration::from_secs(1))?,
            max_delay: env.duration("RETRY_MAX_DELAY", Duration::from_secs(60))?,
            max_attempts: env.parse("RETRY_MAX_ATTEMPTS", 8)?,
            deadline: env.duration("RETRY_DEADLINE", Duration::from_secs(600))?,
            inline_max: env.duration("RETRY_INLINE_MAX", Duration::from_secs(2))?,
        };
        if policy.max_attempts == 0 {
            return Err(SettingError::new(
                "RETRY_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        Ok(policy)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .without_max_times()
            .with_jitter()
    }

    /// The wait before try number `attempt + 1`, after `attempt` failures
    /// (exponential, capped, with jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        use backon::BackoffBuilder;
        self.backoff()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay)
    }

    /// Runs `call` until it succeeds, fails for good, or the policy runs out,
    /// telling `on_retry` of each failure that is retried.
    pub async fn run<T, F, Fut>(
        &self,
        step: &'static str,
        metrics: &Metrics,
        call: F,
        mut on_retry: impl FnMut(&UpstreamError),
    ) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_total_delay(Some(self.deadline))
            .with_jitter();
        call.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(UpstreamError::is_transient)
            // A service that says how long to wait knows better than our curve;
            // but once the policy has run out (None), stop regardless.
            .adjust(|error, planned| planned.map(|delay| error.retry_after().unwrap_or(delay)))
            .notify(|error, delay| {
                on_retry(error);
                metrics.retry(step);
                tracing::warn!(step, %error, retry_in = ?delay, "transient failure, retrying");
            })
            .await
    }
}
