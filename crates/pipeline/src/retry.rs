//! The retry policy for transient upstream failures: exponential backoff with
//! jitter (`backon`), honouring what the service asked us to wait, bounded by
//! a number of attempts and a total wait per step — and the one verdict
//! ([`RetryPolicy::verdict`]) that says, for any failure of a step, what
//! happens next. Both the in-place and the deferred retries ask it.

use backon::ExponentialBuilder;
use dynamo_runtime::{Env, SettingError};
use dynamo_store::RequestState;
use dynamo_upstream::UpstreamError;
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
    /// `INFRA_RETRY_PAUSE`, default 5s: after dynamo's own database or
    /// broker failed, how long before the same thing is tried again (a
    /// step's call, a requeued message, a lost subscription). Such waits
    /// cost the request none of its tries.
    pub infra_pause: Duration,
}

impl RetryPolicy {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let policy = Self {
            min_delay: env.duration("RETRY_MIN_DELAY", Duration::from_secs(1))?,
            max_delay: env.duration("RETRY_MAX_DELAY", Duration::from_secs(60))?,
            max_attempts: env.parse("RETRY_MAX_ATTEMPTS", 8)?,
            deadline: env.duration("RETRY_DEADLINE", Duration::from_secs(600))?,
            inline_max: env.duration("RETRY_INLINE_MAX", Duration::from_secs(2))?,
            infra_pause: env.duration("INFRA_RETRY_PAUSE", Duration::from_secs(5))?,
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
    /// (exponential, with jitter, capped).
    pub fn delay(&self, attempt: u32) -> Duration {
        use backon::BackoffBuilder;
        // backon caps the wait before adding its jitter (up to as much
        // again): capped here too, so `RETRY_MAX_DELAY` holds.
        self.backoff()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// What happens after `error`, the step's `tally.failures`-th counted
    /// failure, `tally.failing_for` after its first (see [`counts`]).
    pub fn verdict(&self, error: &UpstreamError, tally: Tally) -> Verdict {
        match error {
            UpstreamError::Outage { service, reason } => Verdict::Hold {
                service: *service,
                reason: reason.clone(),
            },
            UpstreamError::ModelsGone { service, variable } => Verdict::Hold {
                service: *service,
                reason: format!(
                    "every model in {variable} is shut down: set {variable} to a current model"
                ),
            },
            _ if !counts(error) => Verdict::GiveUp,
            _ if tally.failures as usize >= self.max_attempts
                || tally.failing_for >= self.deadline =>
            {
                Verdict::GiveUp
            }
            _ => Verdict::Retry(
                error
                    .retry_after()
                    .unwrap_or_else(|| self.delay(tally.failures)),
            ),
        }
    }
}

/// A step's counted failures so far, this one included, and how long since
/// the first of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub failures: u32,
    pub failing_for: Duration,
}

/// What a step does after a failure of the service it called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after this wait: in place when it is short
    /// (`RETRY_INLINE_MAX`), else at that time from the database, freeing
    /// the consumer's slot.
    Retry(Duration),
    /// The service as a whole is out: the fleet holds (SPEC §6.10); the
    /// request waits, its tries untouched.
    Hold {
        service: dynamo_upstream::ServiceId,
        reason: String,
    },
    /// Trying again cannot help, or the policy ran out: the step ends the
    /// request ([`end_state`]).
    GiveUp,
}

/// Whether a failure spends one of the step's tries: it may work if tried
/// again (5xx, 429, timeouts, no answer). Holds and refusals do not.
pub fn counts(error: &UpstreamError) -> bool {
    matches!(
        error,
        UpstreamError::Transient { .. }
            | UpstreamError::RateLimited { .. }
            | UpstreamError::TimedOut { .. }
    )
}

/// How a request that gave up after `error` ends, and the reason a viewer
/// reads: rejected for an inadmissible prompt, failed otherwise.
pub fn end_state(error: &UpstreamError, doing: &str) -> (RequestState, String) {
    match error {
        UpstreamError::Inadmissible(reason) => (RequestState::Rejected, reason.clone()),
        UpstreamError::NotEnoughPoints => (RequestState::Failed, "not enough points".to_owned()),
        other => (RequestState::Failed, format!("{doing} failed: {other}")),
    }
}

// The verdict's table is `tests/verdict.rs`.
