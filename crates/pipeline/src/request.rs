//! One request, from its message to its end state (SPEC §6).
//!
//! The pipeline is a loop over the request's *committed* state: each step
//! does one thing, commits its result, and returns the next state. A message
//! redelivered after a crash therefore resumes exactly where the last commit
//! left it — it never debits, generates or alerts twice. Upstream failures
//! become end states here; only failures to *record* progress (database,
//! broker) escape as [`PipelineError`], and the message is then redelivered.

use crate::prompt::PromptTemplates;
use crate::retry::RetryPolicy;
use crate::timings::Timings;
use chrono::{DateTime, Utc};
use dynamo_broker::{Publisher, Topology};
use dynamo_store::{NewRequest, RequestState, Store, StoreError};
use dynamo_upstream::{
    DiscordWebhooks, ImageProvider, Ledger, Moderator, NameProvider, Storage, UpstreamError,
};
use dynamo_wire::{GenerationRequest, Style};
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

/// The services a pipeline calls, each behind its trait.
#[derive(Clone)]
pub struct Services {
    pub ledger: Arc<dyn Ledger>,
    pub images: Arc<dyn ImageProvider>,
    pub names: Arc<dyn NameProvider>,
    /// Screens prompts first, when enabled.
    pub moderator: Option<Arc<dyn Moderator>>,
    pub storage: Arc<dyn Storage>,
    pub discord: DiscordWebhooks,
}

/// What a request is and how it is to be charged.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub request: GenerationRequest,
    /// Admin requests may be free: no ledger flow at all.
    pub free_of_charge: bool,
    pub retry_of: Option<Uuid>,
    /// SHA-256 of the message body, when it came without a message_id.
    pub fingerprint: Option<Vec<u8>>,
    /// Run by the retry scheduler (which owns the request's due time), not
    /// from a message.
    pub scheduled: bool,
}

/// How handling a request ended, for the outcome log line.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: RequestState,
    /// Set when the request waits for a scheduled retry instead of ending.
    pub waiting_until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub timings: Timings,
}

/// Progress could not be recorded; the message must be redelivered.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot publish to {exchange}: {source}")]
    Publish {
        exchange: String,
        #[source]
        source: UpstreamError,
    },
    #[error("cannot settle the ledger flow: {0}")]
    Settle(UpstreamError),
    /// Not a failure: the current step waits for a retry scheduled in the
    /// database. `handle` turns it into an outcome; it never leaves the pipeline.
    #[error("waiting for a retry at {0}")]
    WaitingForRetry(DateTime<Utc>),
}

pub struct Pipeline {
    pub store: Store,
    /// Replaced when the broker connection is re-established.
    pub publisher: tokio::sync::RwLock<Publisher>,
    pub topology: Topology,
    pub services: Services,
    pub prompts: PromptTemplates,
    pub points_cost: u32,
    pub retry: RetryPolicy,
    pub metrics: Arc<crate::Metrics>,
    /// At most this many requests of one viewer in progress at once (0: no
    /// cap), so one viewer's burst does not starve the next viewer.
    pub viewer_max_in_flight: u32,
}

/// How long a request over its viewer's cap waits before looking again.
const VIEWER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) type Step = Result<RequestState, PipelineError>;

impl Pipeline {
    /// Takes a request to its end state (or as far as the infrastructure allows).
    pub async fn handle(&self, job: &Job) -> Result<Outcome, PipelineError> {
        let span = tracing::info_span!(
            "request",
            request_id = %job.id,
            viewer = %job.request.viewer.twitch_display_name,
            style = %job.request.style(),
        );
        self.handle_in_span(job).instrument(span).await
    }

    async fn handle_in_span(&self, job: &Job) -> Result<Outcome, PipelineError> {
        let prompt = self.prompts.build(&job.request.payload);
        let free = job.free_of_charge || self.points_cost == 0;
        let (record, created) = self
            .store
            .record(&NewRequest {
                id: job.id,
                request: &job.request,
                prompt: &prompt,
                points_cost: self.points_cost as i32,
                free_of_charge: free,
                retry_of: job.retry_of,
                fingerprint: job.fingerprint.clone(),
            })
            .await?;
        if !created {
            tracing::info!(state = %record.state(), attempts = record.attempts, "resuming a request seen before");
        }
        let mut timings = Timings::default();
        let mut state = record.state();
        let was_final = state.is_final();
        if let Some(due) = record
            .next_attempt_at
            .filter(|due| !job.scheduled && *due > Utc::now())
        {
            // A copy of a message whose request already waits for its retry:
            // the scheduler owns it.
            return Ok(Outcome {
                state,
                waiting_until: Some(due),
                reason: None,
                timings,
            });
        }
        if state == RequestState::Received
            && self.viewer_max_in_flight > 0
            && !self
                .store
                .start_if_viewer_has_room(
                    job.id,
                    job.request.viewer.twitch_user_id.as_str(),
                    self.viewer_max_in_flight,
                    VIEWER_WAIT,
                )
                .await?
        {
            tracing::debug!("the viewer has requests in progress; this one waits its turn");
            return Ok(Outcome {
                state,
                waiting_until: Some(
                    Utc::now() + chrono::Duration::from_std(VIEWER_WAIT).unwrap_or_default(),
                ),
                reason: None,
                timings,
            });
        }
        while !state.is_final() {
            let started = std::time::Instant::now();
            let (step, next) = match state {
                RequestState::Received => ("debit", self.debit(job, free).await),
                RequestState::Debited if job.request.style() == Style::Friend => {
                    ("name", self.name(job).await)
                }
                RequestState::Debited | RequestState::Named => {
                    ("image", self.make_image(job, &prompt).await)
                }
                RequestState::Stored => ("alert", self.alert(job).await),
                RequestState::Alerted => ("accept", self.accept(job).await),
                RequestState::Succeeded | RequestState::Rejected | RequestState::Failed => {
                    ("finish", Ok(state))
                }
            };
            timings.record(step, started.elapsed());
            self.metrics.step(step, started.elapsed());
            state = match next {
                Ok(next) => next,
                Err(PipelineError::WaitingForRetry(until)) => {
                    return Ok(Outcome {
                        state,
                        waiting_until: Some(until),
                        reason: None,
                        timings,
                    });
                }
                Err(error) => return Err(error),
            };
        }
        let record = self.settle_and_report(job).await?;
        if state == RequestState::Succeeded && !was_final {
            self.announce_on_discord(&record).await;
        }
        if !was_final {
            self.metrics
                .finished(record.state().as_str(), record.style().as_str());
        }
        Ok(Outcome {
            state: record.state(),
            waiting_until: None,
            reason: record.error_message.clone(),
            timings,
        })
    }

    /// A call retried in place only (its step cannot be deferred), its
    /// transient failures logged as `attempt` logs them, so the request's
    /// timeline shows them. A failure to log them does not fail the call.
    pub(crate) async fn retry_in_place<T, F, Fut>(
        &self,
        job: &Job,
        step: &'static str,
        call: F,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        let mut failures = Vec::new();
        let result = self
            .retry
            .run(step, &self.metrics, call, |error| {
                failures.push((Utc::now(), error.to_string()));
            })
            .await;
        if let Err(error) = &result
            && error.is_transient()
        {
            failures.push((Utc::now(), error.to_string()));
        }
        if !failures.is_empty()
            && let Err(error) = self.store.log_failures(job.id, step, &failures).await
        {
            tracing::warn!(step, %error, "could not log the step's failures");
        }
        result
    }

    /// One upstream call of a step, retried on transient failures. Short waits
    /// happen in place; a longer one is scheduled in the database and the
    /// request is let go (`WaitingForRetry`), so it holds no consumer slot and
    /// its schedule survives a restart. Failure counts and the step's deadline
    /// are kept in the database too. Returns the call's final result.
    pub(crate) async fn attempt<T, F, Fut>(
        &self,
        job: &Job,
        step: &'static str,
        mut call: F,
    ) -> Result<Result<T, UpstreamError>, PipelineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        loop {
            let error = match call().await {
                Ok(value) => return Ok(Ok(value)),
                Err(error) if !error.is_transient() => return Ok(Err(error)),
                Err(error) => error,
            };
            let (failures, failing_since) = self
                .store
                .note_failure(job.id, step, &error.to_string())
                .await?;
            let failing_for = (Utc::now() - failing_since).to_std().unwrap_or_default();
            if failures as usize >= self.retry.max_attempts || failing_for >= self.retry.deadline {
                return Ok(Err(error));
            }
            let delay = error
                .retry_after()
                .unwrap_or_else(|| self.retry.delay(failures as u32));
            self.metrics.retry(step);
            tracing::warn!(step, %error, retry_in = ?delay, failures, "transient failure, retrying");
            if delay <= self.retry.inline_max {
                tokio::time::sleep(delay).await;
                continue;
            }
            let until =
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            self.store.schedule_retry(job.id, until).await?;
            return Err(PipelineError::WaitingForRetry(until));
        }
    }
}
