//! One request, from its message to its end state (SPEC §6).
//!
//! The pipeline is a loop over the request's *committed* state: each step
//! does one thing, commits its result, and returns the next state. A run
//! holds the request's lease throughout ([`crate::ownership`]), and every
//! commit carries it, so exactly one process works on a request at a time and
//! a crash hands it to another within a lease's time. A request resumed after
//! a crash continues exactly where the last commit left it — it never debits,
//! generates or alerts twice.
//!
//! How a step's failure is handled is decided in one place: failures of the
//! services dynamo calls ([`UpstreamError`]) are retried by the policy and
//! then become end states; failures of dynamo's own infrastructure (database,
//! broker) and a lost lease are a [`PipelineError`]: the run stops without
//! touching the request's retry budget, and it is resumed later.

use crate::failure::{Infra, StepError};
use crate::gate::{Admission, Gate, ServiceIds};
use crate::ownership::Owned;
use crate::retry::{RetryPolicy, Tally, Verdict, counts};
use crate::run::{Attempted, Current, Next, Timings, chrono_duration};
pub use crate::run::{Job, Outcome, PipelineError, Wait};
use crate::settings::Settings;
use crate::stage::Stage;
use chrono::{DateTime, Utc};
use dynamo_broker::{Publisher, Topology};
use dynamo_store::{Lease, NewRequest, RequestRecord, RequestState, Step, Store, StoreError};
use dynamo_upstream::{
    DiscordWebhooks, ImageProvider, Ledger, Moderator, NameProvider, ServiceId, Storage,
    UpstreamError,
};
use dynamo_wire::GenerationRequest;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
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
    /// The fleet-wide rate limits of each limited provider (OpenAI's:
    /// images, names, moderation, speech), found by the provider's id; a provider
    /// with none (the placeholder) is not limited.
    pub limits: Vec<Arc<crate::limits::RateLimits>>,
    /// Reads captions aloud for styles that ask (issue 30); none: silent.
    pub speech: Option<Arc<dyn dynamo_upstream::Speech>>,
}

/// One request's way from its message to its end state, shared by every
/// run in the process. Built once ([`Pipeline::new`]); what the binaries
/// need of it afterwards they ask through its methods.
pub struct Pipeline {
    pub(crate) store: Store,
    /// Follows the broker's reconnects by itself.
    pub(crate) publisher: Publisher,
    pub(crate) topology: Topology,
    pub(crate) services: Services,
    /// The styles requests may name, kept current ([`crate::styles`]).
    pub(crate) styles: Arc<crate::styles::Styles>,
    pub(crate) retry: RetryPolicy,
    pub(crate) metrics: Arc<crate::Metrics>,
    /// At most this many requests of one viewer in progress at once (0: no
    /// cap), so one viewer's burst does not starve the next viewer.
    pub(crate) viewer_max_in_flight: u32,
    /// This process, as lease owner: host, pid and a per-start id.
    pub(crate) owner: String,
    /// `LEASE_TTL`: how long a lease lasts unless renewed, and so how soon a
    /// crashed process's requests are taken over.
    pub(crate) lease_ttl: Duration,
    /// Holds and the daily budget: whether a paid call may go now.
    pub(crate) gate: Gate,
    /// `APPROVAL*`: whether stored images wait for the streamer before airing.
    pub(crate) approval: crate::settings::ApprovalPolicy,
}

impl Pipeline {
    /// `owner` names this process as the owner of the requests it leases.
    pub fn new(
        store: Store,
        publisher: Publisher,
        topology: Topology,
        services: Services,
        settings: Settings,
        owner: String,
        metrics: Arc<crate::Metrics>,
    ) -> Self {
        let Settings {
            styles,
            retry,
            viewer_max_in_flight,
            lease_ttl,
            holds,
            approval,
        } = settings;
        let ids = ServiceIds {
            images: services.images.service(),
            names: services.names.service(),
            moderation: services.moderator.as_ref().map(|m| m.service()),
        };
        let gate = Gate::new(store.clone(), holds, metrics.clone(), ids);
        Self {
            store,
            publisher,
            topology,
            services,
            styles,
            retry,
            metrics,
            viewer_max_in_flight,
            owner,
            lease_ttl,
            gate,
            approval,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub fn metrics(&self) -> &crate::Metrics {
        &self.metrics
    }

    /// This process, as the owner of the requests it leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// `INFRA_RETRY_PAUSE`: how long to wait after dynamo's own database or
    /// broker failed before trying again.
    pub fn infra_pause(&self) -> Duration {
        self.retry.infra_pause
    }
}

/// How long a request over its viewer's cap waits before looking again.
const VIEWER_WAIT: Duration = Duration::from_secs(1);
/// The least pause after a failed publish before trying again once the
/// broker connection is back (`INFRA_RETRY_PAUSE` is the most).
const BROKER_RETRY_MIN: Duration = Duration::from_millis(250);

/// One run of one request: the job and the lease it runs under.
pub(crate) struct Run<'a> {
    pub(crate) job: &'a Job,
    pub(crate) owned: &'a Owned,
    /// Took a held service's probe before its debit: its first call to a
    /// held service is that probe.
    pub(crate) probe: std::sync::atomic::AtomicBool,
    /// The state the run began in: only a step begun in an earlier run can
    /// find that run's work (a kept image).
    pub(crate) began_in: RequestState,
    /// This run recorded the request: no earlier run can have left work
    /// (a content-rules verdict) behind.
    pub(crate) created: bool,
    /// When this run last saw no hold on (before its debit): calls made
    /// within [`HOLDS_SEEN_CLEAR_FOR`] of it do not read the holds again.
    pub(crate) holds_clear_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// The run's last write gave the lease up with it.
    pub(crate) released: std::sync::atomic::AtomicBool,
}

/// How long a run trusts that no hold was on. A hold set meanwhile by
/// another process is missed for at most this long: the call goes out, and
/// if the service is out, its answer holds this request like any other.
/// Saves a read of the holds per paid call (issue 26: statements per request).
const HOLDS_SEEN_CLEAR_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl Run<'_> {
    /// Records that the holds were read and none was on.
    pub(crate) fn saw_holds_clear(&self) {
        if let Ok(mut at) = self.holds_clear_at.lock() {
            *at = Some(std::time::Instant::now());
        }
    }

    fn holds_seen_clear(&self) -> bool {
        self.holds_clear_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < HOLDS_SEEN_CLEAR_FOR)
    }

    pub(crate) fn lease(&self) -> &Lease {
        self.owned.lease()
    }

    pub(crate) fn id(&self) -> Uuid {
        self.job.id
    }

    /// Stops the run before it calls out when the lease may have lapsed.
    pub(crate) fn ensure_owned(&self) -> Result<(), PipelineError> {
        if self.owned.is_held() {
            Ok(())
        } else {
            Err(PipelineError::LeaseLost)
        }
    }
}

impl Pipeline {
    /// Takes a delivered request to its end state, or as far as it can go now.
    pub async fn handle(&self, job: &Job) -> Result<Outcome, PipelineError> {
        let span = request_span(job.id, &job.request);
        dynamo_runtime::trace_context::adopt(&span, &job.trace_context);
        async {
            let style = match self.styles.resolve(&job.request, job.trial).await {
                Ok(style) => style,
                Err(crate::styles::Refusal::Malformed(reason)) => {
                    return Ok(Outcome::Refused { reason });
                }
                Err(crate::styles::Refusal::Store(error)) => return Err(error.into()),
            };
            let (record, created, lease) = self
                .store
                .record(
                    &NewRequest {
                        id: job.id,
                        request: &job.request,
                        prompt: &style.prompt,
                        settings: &style.settings,
                        points_cost: i32::try_from(style.points_cost).unwrap_or(i32::MAX),
                        free_of_charge: job.free_of_charge || style.points_cost == 0,
                        retry_of: job.retry_of,
                        fingerprint: job.fingerprint.clone(),
                        trial: job.trial,
                    },
                    &self.owner,
                    self.lease_ttl,
                )
                .await?;
            let Some(lease) = lease else {
                tracing::info!(state = %record.state(), "a copy of a request that is owned or waiting; leaving it to its owner");
                return Ok(Outcome::OwnedElsewhere {
                    state: record.state(),
                });
            };
            if !created {
                tracing::info!(state = %record.state(), attempts = record.attempts, "resuming a request seen before");
            }
            self.run(job, record, lease, created).await
        }
        .instrument(span)
        .await
    }

    /// Resumes a request whose lease the scheduler claimed (a due retry, the
    /// viewer's turn, or a request whose owner died).
    pub async fn resume(&self, lease: Lease) -> Result<Outcome, PipelineError> {
        let record = self.store.get(lease.request_id).await?;
        let request = match record.generation_request() {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(request_id = %record.id, %error, "a stored request no longer validates; leaving it to an operator");
                return Ok(Outcome::OwnedElsewhere {
                    state: record.state(),
                });
            }
        };
        let job = Job {
            id: record.id,
            request,
            free_of_charge: record.free_of_charge,
            bypass_rules: false,
            trial: record.trial,
            retry_of: record.retry_of,
            fingerprint: None,
            trace_context: Vec::new(),
        };
        let span = request_span(job.id, &job.request);
        self.run(&job, record, lease, false).instrument(span).await
    }

    /// Works on the request under its lease until it ends, waits, or the run
    /// is stopped; then gives the lease up (or lets it lapse if the database
    /// is away).
    async fn run(
        &self,
        job: &Job,
        record: RequestRecord,
        lease: Lease,
        created: bool,
    ) -> Result<Outcome, PipelineError> {
        let owned = Owned::keep(self.store.clone(), lease, self.lease_ttl);
        let run = Run {
            job,
            owned: &owned,
            probe: std::sync::atomic::AtomicBool::new(false),
            began_in: record.state(),
            created,
            holds_clear_at: std::sync::Mutex::new(None),
            released: std::sync::atomic::AtomicBool::new(false),
        };
        let outcome = tokio::select! {
            outcome = self.drive(&run, record) => outcome,
            () = owned.lost() => Err(PipelineError::LeaseLost),
        };
        match &outcome {
            Ok(Outcome::Waiting {
                why: Wait::ViewerTurn | Wait::Approval,
                ..
            }) => {} // given up with the decision, or parked with it
            Ok(Outcome::Waiting { until, .. }) => self.release(&lease, Some(*until)).await,
            Ok(_) if run.released.load(Ordering::Relaxed) => {}
            Ok(_) => self.release(&lease, None).await,
            Err(PipelineError::LeaseLost) => {}
            Err(_) => {
                let again = Utc::now() + chrono_duration(self.retry.infra_pause);
                self.release(&lease, Some(again)).await
            }
        }
        outcome
    }

    async fn release(&self, lease: &Lease, run_again_at: Option<DateTime<Utc>>) {
        if let Err(error) = self.store.release_lease(lease, run_again_at).await {
            // It lapses by itself; the request is resumed then.
            tracing::warn!(request_id = %lease.request_id, %error, "could not give up the request's lease");
        }
    }

    async fn drive(&self, run: &Run<'_>, record: RequestRecord) -> Result<Outcome, PipelineError> {
        // The one read of the request's image in a run: only a request
        // stored before this run (a resumed one) has one.
        let image = match record.stored_at {
            Some(_) => self.store.images(record.id).await?.into_iter().next(),
            None => None,
        };
        let mut current = Current { record, image };
        let job = run.job;
        let mut timings = Timings::default();
        let mut state = current.record.state();
        let was_final = state.is_final();
        if state == RequestState::Received
            && !self
                .admitted_by_rules(run, &mut current)
                .instrument(step_span("rules"))
                .await?
        {
            state = current.record.state();
        }
        if state == RequestState::Received
            && self.viewer_max_in_flight > 0
            && !self
                .store
                .start_if_viewer_has_room(
                    run.lease(),
                    job.request.viewer.twitch_user_id.as_str(),
                    self.viewer_max_in_flight,
                    VIEWER_WAIT,
                )
                .await?
        {
            tracing::debug!("the viewer has requests in progress; this one waits its turn");
            return Ok(Outcome::Waiting {
                state,
                until: Utc::now() + chrono_duration(VIEWER_WAIT),
                why: Wait::ViewerTurn,
                timings,
            });
        }
        // Recorded with the request: a style edited since changes nothing.
        let settings = current.record.style_settings();
        while let Some(stage) = Stage::pick(state, &settings) {
            run.ensure_owned()?;
            let started = std::time::Instant::now();
            let next = self
                .run_stage(stage, run, &mut current)
                .instrument(step_span(stage.name()))
                .await;
            timings.record(stage.name(), started.elapsed());
            self.metrics.step(stage.name(), started.elapsed());
            let (waits_in, until, why) = match next? {
                Next::To(next) => {
                    state = next;
                    continue;
                }
                Next::Wait(until, why) => (state, until, why),
                Next::Park(parked, until, why) => (parked, until, why),
            };
            return Ok(Outcome::Waiting {
                state: waits_in,
                until,
                why,
                timings,
            });
        }
        run.ensure_owned()?;
        self.settle_and_report(run, &mut current).await?;
        let record = &current.record;
        if state == RequestState::Succeeded && !was_final && !record.trial {
            self.announce_on_discord(&job.request, current.image.as_ref());
        }
        if !was_final {
            self.metrics
                .finished(record.state().as_str(), record.style().as_str());
        }
        Ok(Outcome::Ended {
            state: record.state(),
            reason: record.error_message.clone(),
            timings,
        })
    }

    /// A call to `service` under its fleet-wide rate limits, when it has any.
    pub(crate) async fn limited<T>(
        &self,
        service: ServiceId,
        endpoint: crate::limits::Endpoint,
        call: impl std::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, StepError> {
        let limits = self.services.limits.iter().find(|l| l.service() == service);
        match limits {
            Some(limits) => limits.run(endpoint, call).await,
            None => call.await.map_err(StepError::Upstream),
        }
    }

    /// A call retried in place only (its step cannot be deferred), its
    /// failures logged as `attempt` logs them, so the request's timeline
    /// shows them. A failure to log them does not fail the call. What
    /// follows a failure is the verdict's, as in `attempt`; a wait it would
    /// defer is waited here, and a hold gives up, as the step cannot wait.
    pub(crate) async fn retry_in_place<T, F, Fut>(
        &self,
        run: &Run<'_>,
        step: Step,
        mut call: F,
    ) -> Result<Result<T, UpstreamError>, PipelineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StepError>>,
    {
        let mut failures = Vec::new();
        let mut tally = Tally::default();
        let mut first_failure = None;
        let result = loop {
            run.ensure_owned()?;
            let error = match call().await {
                Ok(value) => break Ok(value),
                Err(StepError::Upstream(error)) => error,
                Err(StepError::Infra(infra)) => {
                    self.after_infra_failure(step, infra).await?;
                    continue;
                }
                Err(StepError::Throttled { retry_after, .. }) => {
                    tokio::time::sleep(retry_after).await;
                    continue;
                }
            };
            if counts(&error) {
                let since = *first_failure.get_or_insert_with(std::time::Instant::now);
                tally = Tally {
                    failures: tally.failures + 1,
                    failing_for: since.elapsed(),
                };
                failures.push((Utc::now(), error.to_string()));
            }
            match self.retry.verdict(&error, tally) {
                Verdict::Retry(delay) => {
                    self.metrics.retry(step.as_str());
                    tracing::warn!(%step, %error, retry_in = ?delay, "transient failure, retrying");
                    tokio::time::sleep(delay).await;
                }
                Verdict::Hold { .. } | Verdict::GiveUp => break Err(error),
            }
        };
        if !failures.is_empty()
            && let Err(error) = self.store.log_failures(run.id(), step, &failures).await
        {
            tracing::warn!(%step, %error, "could not log the step's failures");
        }
        Ok(result)
    }

    /// dynamo's own database or broker failed under a step: counted on its
    /// own, logged, and waited out (`INFRA_RETRY_PAUSE`; for the broker, until
    /// its connection is back, at most that long) without costing the
    /// request a try. A lost lease stops the run instead.
    async fn after_infra_failure(&self, step: Step, failure: Infra) -> Result<(), PipelineError> {
        if let Infra::Database(StoreError::LeaseLost(_)) = failure {
            return Err(PipelineError::LeaseLost);
        }
        self.metrics
            .infra_failure(step.as_str(), failure.component());
        tracing::warn!(%step, %failure, retry_in = ?self.retry.infra_pause, "dynamo's own infrastructure failed; trying again, at no cost to the request");
        match failure {
            // A broker node lost: the connection moves to another within
            // moments, and an alert waiting out the whole pause would air
            // seconds late. Try again once it is back (a short pause keeps a
            // broker that refuses everything from becoming a hot loop).
            Infra::Broker { .. } => {
                tokio::time::sleep(BROKER_RETRY_MIN.min(self.retry.infra_pause)).await;
                self.publisher
                    .wait_until_ready(self.retry.infra_pause)
                    .await;
            }
            Infra::Database(_) => tokio::time::sleep(self.retry.infra_pause).await,
        }
        Ok(())
    }

    /// One upstream call of a step, retried on transient failures. Short waits
    /// happen in place; after a longer one is decided the request is let go
    /// (`Deferred`: it waits in the database, holding no consumer slot, and
    /// its schedule survives a restart). Failure counts and the step's
    /// deadline are kept in the database too. What follows each failure is
    /// [`RetryPolicy::verdict`]'s; failures of dynamo's own infrastructure
    /// are waited out and cost nothing.
    pub(crate) async fn attempt<T, F, Fut>(
        &self,
        run: &Run<'_>,
        step: Step,
        mut call: F,
    ) -> Result<Attempted<T>, PipelineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StepError>>,
    {
        // The held service this request probes, if it is the probe.
        let mut probing: Option<ServiceId> = None;
        let services = match run.holds_seen_clear() {
            true => Vec::new(),
            false => self.gate.services_for(step),
        };
        for service in services {
            match self.gate.admit(service, false).await? {
                Admission::Go => {}
                Admission::Probe => probing = Some(service),
                // The probe taken before the debit is this call.
                Admission::Wait(_) | Admission::GiveUp(_)
                    if run.probe.swap(false, Ordering::Relaxed) =>
                {
                    probing = Some(service);
                }
                Admission::Wait(until) => return Ok(Attempted::Deferred(until, Wait::Held)),
                Admission::GiveUp(reason) => {
                    return Ok(Attempted::Failed(UpstreamError::Outage { service, reason }));
                }
            }
        }
        if step == Step::Image {
            let probing_budget = probing == Some(crate::gate::BUDGET_HOLD);
            if let Some(until) = self.gate.check_budget(probing_budget).await? {
                return Ok(Attempted::Deferred(until, Wait::Held));
            }
            if probing_budget {
                probing = None;
            }
        }
        loop {
            run.ensure_owned()?;
            let error = match call().await {
                Ok(value) => {
                    self.probe_answered(&mut probing).await;
                    return Ok(Attempted::Done(value));
                }
                // Not a failure: the request waits its turn in the database.
                Err(StepError::Throttled { retry_after, .. }) => {
                    let until = Utc::now() + chrono_duration(retry_after);
                    return Ok(Attempted::Deferred(until, Wait::RateLimit));
                }
                Err(StepError::Infra(infra)) => {
                    self.after_infra_failure(step, infra).await?;
                    continue;
                }
                Err(StepError::Upstream(error)) => error,
            };
            let tally = if counts(&error) {
                let (failures, failing_since) = self
                    .store
                    .note_failure(run.lease(), step, &error.to_string())
                    .await?;
                Tally {
                    failures: u32::try_from(failures).unwrap_or(0),
                    failing_for: (Utc::now() - failing_since).to_std().unwrap_or_default(),
                }
            } else {
                Tally::default()
            };
            match self.retry.verdict(&error, tally) {
                Verdict::Hold { service, reason } => {
                    let until = self.gate.on_outage(service, &reason).await?;
                    return Ok(Attempted::Deferred(until, Wait::Held));
                }
                Verdict::GiveUp => {
                    // Any answer but "still out" means the service is back.
                    self.probe_answered(&mut probing).await;
                    return Ok(Attempted::Failed(error));
                }
                Verdict::Retry(delay) => {
                    self.probe_answered(&mut probing).await;
                    self.metrics.retry(step.as_str());
                    tracing::warn!(%step, %error, retry_in = ?delay, failures = tally.failures, "transient failure, retrying");
                    if delay <= self.retry.inline_max {
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Ok(Attempted::Deferred(
                        Utc::now() + chrono_duration(delay),
                        Wait::Retry,
                    ));
                }
            }
        }
    }

    /// The probe got an answer (any but "still out"): the held service is back.
    async fn probe_answered(&self, probing: &mut Option<ServiceId>) {
        if let Some(service) = probing.take() {
            self.gate.on_probe_answered(service).await;
        }
    }
}

/// One step of a request, a child of its request span; a trace shows the
/// step by name (`otel.name`).
pub(crate) fn step_span(step: &'static str) -> tracing::Span {
    tracing::info_span!("step", otel.name = step, step)
}

fn request_span(id: Uuid, request: &GenerationRequest) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = %id,
        viewer = %request.viewer.twitch_display_name,
        style = %request.style(),
    )
}
