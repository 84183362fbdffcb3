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
use dynamo_broker::{Envelope, PublishError, Publisher, Topology};
use dynamo_imaging::{ProcessedImage, process_friend, process_ghost};
use dynamo_store::{NewRequest, RequestRecord, RequestState, Store, StoreError, StoredImage};
use dynamo_upstream::{
    DiscordWebhooks, ImageJob, ImageProvider, Ledger, Moderator, NameProvider, Storage,
    UpstreamError,
};
use dynamo_wire::{
    EndState, FriendDetails, GenerationRequest, GenerationResult, GhostDetails, ImageAlert,
    OnscreenEvent, RequestKind, Style, Viewer,
};
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
    pub metrics: Arc<crate::metrics::Metrics>,
    /// At most this many requests of one viewer in progress at once (0: no
    /// cap), so one viewer's burst does not starve the next viewer.
    pub viewer_max_in_flight: u32,
}

/// How long a request over its viewer's cap waits before looking again.
const VIEWER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

type Step = Result<RequestState, PipelineError>;

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

    /// One upstream call of a step, retried on transient failures. Short waits
    /// happen in place; a longer one is scheduled in the database and the
    /// request is let go (`WaitingForRetry`), so it holds no consumer slot and
    /// its schedule survives a restart. Failure counts and the step's deadline
    /// are kept in the database too. Returns the call's final result.
    async fn attempt<T, F, Fut>(
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
            let (failures, failing_since) = self.store.note_failure(job.id).await?;
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

    /// Creates the pending debit. 409 from the ledger ends the request before
    /// anything is paid for.
    async fn debit(&self, job: &Job, free: bool) -> Step {
        if free {
            self.store.mark_debited(job.id, None).await?;
            return Ok(RequestState::Debited);
        }
        let viewer = &job.request.viewer;
        let result = self
            .attempt(job, "debit", || {
                self.services
                    .ledger
                    .debit(viewer, job.id, job.request.style(), self.points_cost)
            })
            .await?;
        match result {
            Ok(flow_id) => {
                self.store.mark_debited(job.id, Some(flow_id)).await?;
                Ok(RequestState::Debited)
            }
            Err(error) => self.end(job, "debiting points", error).await,
        }
    }

    /// Friends get a name from the chat model before their picture.
    async fn name(&self, job: &Job) -> Step {
        let subject = job.request.subject().as_str();
        let user = job.request.viewer.twitch_user_id.as_str();
        let names = &self.services.names;
        match self
            .attempt(job, "name", || names.name(subject, user))
            .await?
        {
            Ok(name) => {
                self.store
                    .record_name(job.id, &names.prompt(subject), &name)
                    .await?;
                Ok(RequestState::Named)
            }
            Err(error) => self.end(job, "naming the friend", error).await,
        }
    }

    /// Screens, generates, post-processes and uploads the image.
    async fn make_image(&self, job: &Job, prompt: &str) -> Step {
        if let Some(moderator) = &self.services.moderator
            && let Err(error) = self
                .attempt(job, "moderation", || moderator.screen(prompt))
                .await?
        {
            return self.end(job, "screening the prompt", error).await;
        }
        let image_job = ImageJob {
            prompt: prompt.to_owned(),
            style: job.request.style(),
            color: job.request.payload.color(),
            user: job.request.viewer.twitch_user_id.as_str().to_owned(),
        };
        let images = &self.services.images;
        let source = match self
            .attempt(job, "image", || images.generate(&image_job))
            .await?
        {
            Ok(source) => source,
            Err(error) => return self.end(job, "generating the image", error).await,
        };
        let processed = match post_process(job.request.style(), source).await {
            Ok(processed) => processed,
            Err(error) => return self.end(job, "processing the image", error).await,
        };
        let key = format!("{id}/{id}-0.{ext}", id = job.id, ext = processed.extension);
        let storage = &self.services.storage;
        // Retried in place only: the image exists only in memory, and a
        // deferred step would have to pay for it again.
        let uploaded = self
            .retry
            .run("upload", &self.metrics, || {
                storage.put(&key, processed.bytes.clone(), processed.content_type)
            })
            .await;
        let url = match uploaded {
            Ok(url) => url,
            Err(error) => return self.end(job, "storing the image", error).await,
        };
        let image = StoredImage {
            index: 0,
            url,
            color: processed.background.clone(),
            content_type: processed.content_type.to_owned(),
            byte_size: i32::try_from(processed.bytes.len()).unwrap_or(i32::MAX),
        };
        self.store.record_image(job.id, &image).await?;
        tracing::info!(url = %image.url, bytes = image.byte_size, "image stored");
        Ok(RequestState::Stored)
    }

    /// Publishes the alert. It counts as shown only once the broker confirmed
    /// it *and* routed it to a queue: a returned alert means the alerts service
    /// is not listening, which is worth waiting for, never "shown".
    async fn alert(&self, job: &Job) -> Step {
        let record = self.store.get(job.id).await?;
        let images = self.store.images(job.id).await?;
        let Some(image) = images.first() else {
            return Err(StoreError::NotFound(job.id).into());
        };
        let event = alert_for(&job.request.viewer, &record, image);
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let exchange = &self.topology.alerts_exchange;
        let sent = self
            .attempt(job, "alert", || self.publish(exchange, &body, job.id, true))
            .await?;
        match sent {
            Ok(()) => {
                self.store.mark_alerted(job.id).await?;
                Ok(RequestState::Alerted)
            }
            Err(error) => self.end(job, "publishing the alert", error).await,
        }
    }

    /// The alert is out: make the debit final. This cannot end the request
    /// unsuccessfully any more — the viewer saw the image — so a ledger that
    /// stays down means trying again on redelivery.
    async fn accept(&self, job: &Job) -> Step {
        let record = self.store.get(job.id).await?;
        if let Some(flow_id) = record.ledger_flow_id {
            let viewer = &job.request.viewer;
            let ledger = &self.services.ledger;
            self.retry
                .run("accept", &self.metrics, || ledger.accept(viewer, flow_id))
                .await
                .map_err(PipelineError::Settle)?;
        }
        self.store.mark_succeeded(job.id).await?;
        Ok(RequestState::Succeeded)
    }

    /// Ends the request as rejected (inadmissible prompt) or failed (anything
    /// else), with the reason.
    async fn end(&self, job: &Job, doing: &str, error: UpstreamError) -> Step {
        let (state, reason) = match &error {
            UpstreamError::Inadmissible(reason) => (RequestState::Rejected, reason.clone()),
            UpstreamError::NotEnoughPoints => {
                (RequestState::Failed, "not enough points".to_owned())
            }
            other => (RequestState::Failed, format!("{doing} failed: {other}")),
        };
        match state {
            RequestState::Rejected => tracing::info!(%reason, "request rejected"),
            _ => tracing::warn!(%reason, "request failed"),
        }
        self.store
            .finish_unsuccessfully(job.id, state, &reason)
            .await?;
        Ok(state)
    }

    /// After the end state: refund a debit that is still pending, then tell
    /// generation-results. Each is recorded, so neither is done twice.
    async fn settle_and_report(&self, job: &Job) -> Result<RequestRecord, PipelineError> {
        let mut record = self.store.get(job.id).await?;
        if record.settled_at.is_none() {
            if let Some(flow_id) = record.ledger_flow_id {
                let viewer = &job.request.viewer;
                let ledger = &self.services.ledger;
                self.retry
                    .run("refund", &self.metrics, || ledger.refund(viewer, flow_id))
                    .await
                    .map_err(PipelineError::Settle)?;
                tracing::info!(%flow_id, "points refunded");
            }
            self.store.mark_settled(job.id).await?;
        }
        if record.result_published_at.is_none() {
            let image_url = self
                .store
                .images(job.id)
                .await?
                .first()
                .map(|i| i.url.clone());
            let result = result_for(&job.request, &record, image_url);
            let body = serde_json::to_vec(&result).unwrap_or_default();
            let exchange = &self.topology.results_exchange;
            // Results are for whoever listens; with nobody bound the message is
            // simply not needed, so it is not published as mandatory.
            self.retry
                .run("result", &self.metrics, || {
                    self.publish(exchange, &body, job.id, false)
                })
                .await
                .map_err(|source| PipelineError::Publish {
                    exchange: exchange.clone(),
                    source,
                })?;
            self.store.mark_result_published(job.id).await?;
        }
        record = self.store.get(job.id).await?;
        Ok(record)
    }

    async fn publish(
        &self,
        exchange: &str,
        body: &[u8],
        id: Uuid,
        mandatory: bool,
    ) -> Result<(), UpstreamError> {
        let envelope = Envelope {
            message_id: Some(id),
            mandatory,
            headers: Vec::new(),
        };
        let publisher = self.publisher.read().await.clone();
        publisher
            .publish_json(exchange, body, envelope)
            .await
            .map_err(|error| match error {
                PublishError::Returned(_)
                | PublishError::Nacked(_)
                | PublishError::Broker { .. } => UpstreamError::Transient {
                    service: "rabbitmq",
                    detail: error.to_string(),
                    retry_after: None,
                },
            })
    }

    /// Best effort, off the request's path.
    async fn announce_on_discord(&self, record: &RequestRecord) {
        let discord = self.services.discord.clone();
        if !discord.is_enabled() {
            return;
        }
        let Ok(images) = self.store.images(record.id).await else {
            return;
        };
        let Some(image) = images.into_iter().next() else {
            return;
        };
        let style = record.style();
        let viewer = record.twitch_display_name.clone();
        let description = subject_of(record);
        tokio::spawn(
            async move {
                discord
                    .announce(style, &viewer, &description, &image.url)
                    .await
            }
            .in_current_span(),
        );
    }
}

/// PNG decoding and encoding are CPU-bound: off the async runtime with them.
async fn post_process(style: Style, source: Vec<u8>) -> Result<ProcessedImage, UpstreamError> {
    let span = tracing::Span::current();
    let work = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        match style {
            Style::Ghost => process_ghost(&source),
            Style::Friend => process_friend(&source),
        }
    });
    match work.await {
        Ok(Ok(processed)) => Ok(processed),
        Ok(Err(error)) => Err(UpstreamError::Permanent {
            service: "image processing",
            detail: error.to_string(),
        }),
        Err(join) => Err(UpstreamError::Permanent {
            service: "image processing",
            detail: join.to_string(),
        }),
    }
}

fn subject_of(record: &RequestRecord) -> String {
    record
        .inputs
        .get("subject")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn alert_for(viewer: &Viewer, record: &RequestRecord, image: &StoredImage) -> OnscreenEvent {
    let description = subject_of(record);
    let image_url = image.url.clone();
    OnscreenEvent::Image(match record.style() {
        Style::Ghost => ImageAlert::Ghost {
            viewer: viewer.clone(),
            details: GhostDetails {
                image_url,
                description,
            },
        },
        Style::Friend => ImageAlert::Friend {
            viewer: viewer.clone(),
            details: FriendDetails {
                image_url,
                description,
                name: record.name.clone().unwrap_or_default(),
                background_color: image.color.clone().unwrap_or_default(),
            },
        },
    })
}

fn result_for(
    request: &GenerationRequest,
    record: &RequestRecord,
    image_url: Option<String>,
) -> GenerationResult {
    let state = record.state().end_state().unwrap_or(EndState::Failed);
    GenerationResult {
        kind: RequestKind::Image,
        request_id: record.id,
        viewer: request.viewer.clone(),
        style: record.style(),
        description: subject_of(record),
        state,
        reason: record.error_message.clone(),
        image_url: image_url.filter(|_| state == EndState::Succeeded),
        name: record.name.clone().filter(|_| state == EndState::Succeeded),
        finished_at: record.finished_at.unwrap_or_else(chrono::Utc::now),
    }
}
