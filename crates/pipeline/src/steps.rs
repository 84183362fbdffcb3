//! The steps of the pipeline, each reading like the SPEC's sentence for it:
//! debit, name, make the image, alert, accept — and ending a request.

use crate::failure::{Infra, StepError, upstream};
use crate::gate::BeforeDebit;
use crate::limits::Endpoint;
use crate::messages::alert_for;
use crate::request::{Pipeline, Run};
use crate::retry::end_state;
use crate::run::{Attempted, Current, Next, PipelineError, StepResult};
use dynamo_broker::PublishError;
use dynamo_imaging::{ProcessedImage, process_friend, process_ghost};
use dynamo_store::{RequestState, Step, StoreError, StoredImage};
use dynamo_upstream::{ImageJob, ServiceId, UpstreamError};
use dynamo_wire::Output;
use tracing::Instrument;

/// The alerts service, as a publish nobody receives names it.
const ALERTS: ServiceId = ServiceId::new("alerts");

impl Pipeline {
    /// Screens the prompt (moderation), then creates the pending debit. 409 from the ledger ends the request before
    /// anything is paid for. The intent is recorded first: when an earlier
    /// try may have created a debit whose answer never reached us (a crash,
    /// a lost connection), the ledger's history is read and that debit
    /// adopted instead of asking for another.
    pub(crate) async fn debit(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        // Held: wait un-debited (issue 12), rather than be charged to wait.
        match self.gate.admit_before_debit(&run.probe).await? {
            BeforeDebit::Clear => run.saw_holds_clear(),
            BeforeDebit::Go => {}
            BeforeDebit::Wait(until, why) => return Ok(Next::Wait(until, why)),
        }
        if let Some(next) = self.screen(run, current).await? {
            return Ok(next);
        }
        // The cost the request was recorded with, whatever the style says now.
        let points = u32::try_from(current.record.points_cost).unwrap_or(0);
        if job.free_of_charge || points == 0 {
            current.apply(self.store.mark_debited(run.lease(), None).await?);
            return Ok(Next::To(RequestState::Debited));
        }
        let viewer = &job.request.viewer;
        let ledger = &self.services.ledger;
        let intent = self.store.note_debit_intent(run.lease()).await?;
        let asked_before = std::sync::atomic::AtomicBool::new(intent.earlier);
        let attempted = self
            .attempt(run, Step::Debit, || async {
                if asked_before.swap(true, std::sync::atomic::Ordering::Relaxed)
                    && let Some(flow_id) =
                        self.unclaimed_debit(viewer, intent.since, points).await?
                {
                    tracing::info!(%flow_id, "adopting the debit an earlier try made");
                    return Ok(flow_id);
                }
                upstream(ledger.debit(viewer, job.id, &job.request.style(), points)).await
            })
            .await?;
        let flow_id = match attempted {
            Attempted::Done(flow_id) => flow_id,
            Attempted::Failed(error) => {
                return self.end(run, current, "debiting points", error).await;
            }
            Attempted::Deferred(until, why) => return Ok(Next::Wait(until, why)),
        };
        current.apply(self.store.mark_debited(run.lease(), Some(flow_id)).await?);
        Ok(Next::To(RequestState::Debited))
    }

    /// Moderation screens the prompt before the debit and before any paid
    /// call (a friend's name included): a refused prompt costs the viewer
    /// nothing and dynamo no chat call. `Some(next)` when the request ended
    /// or waits. A request resumed before its debit is screened again
    /// (moderation is free), never one resumed after it.
    async fn screen(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<Option<Next>, PipelineError> {
        let Some(moderator) = &self.services.moderator else {
            return Ok(None);
        };
        // The prompt the request was recorded with (its style may have changed since).
        let prompt = current.record.prompt.clone();
        match self
            .attempt(run, Step::Moderation, || {
                self.limited(
                    moderator.service(),
                    Endpoint::Moderation,
                    moderator.screen(&prompt),
                )
            })
            .await?
        {
            Attempted::Done(()) => Ok(None),
            Attempted::Failed(error) => self
                .end(run, current, "screening the prompt", error)
                .await
                .map(Some),
            Attempted::Deferred(until, why) => Ok(Some(Next::Wait(until, why))),
        }
    }

    /// The oldest pending image debit of the viewer made since `since` that
    /// no request holds. A database failure here is dynamo's own: waited
    /// out and tried again, never a reason to debit twice, and no cost to
    /// the request.
    async fn unclaimed_debit(
        &self,
        viewer: &dynamo_wire::Viewer,
        since: chrono::DateTime<chrono::Utc>,
        points: u32,
    ) -> Result<Option<uuid::Uuid>, StepError> {
        let candidates = self
            .services
            .ledger
            .pending_debits_since(viewer, since, points)
            .await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let owned = self.store.owned_flows(&candidates).await?;
        Ok(candidates.into_iter().find(|flow| !owned.contains(flow)))
    }

    /// Friends get a name from the chat model before their picture.
    pub(crate) async fn name(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        let subject = job.request.subject().as_str();
        let user = job.request.viewer.twitch_user_id.as_str();
        let names = &self.services.names;
        let name = match self
            .attempt(run, Step::Name, || {
                self.limited(names.service(), Endpoint::Chat, names.name(subject, user))
            })
            .await?
        {
            Attempted::Done(name) => name,
            Attempted::Failed(error) => {
                return self.end(run, current, "naming the friend", error).await;
            }
            Attempted::Deferred(until, why) => return Ok(Next::Wait(until, why)),
        };
        let (progress, name) = self
            .store
            .record_name(run.lease(), &names.prompt(subject), &name)
            .await?;
        current.apply(progress);
        current.record.name = Some(name);
        Ok(Next::To(RequestState::Named))
    }

    /// Generates, post-processes and uploads the image.
    pub(crate) async fn make_image(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        // Only a run that began at this step can find an image an earlier
        // run bought: a fresh run does not ask.
        let kept = match run.began_in == current.record.state() {
            true => self.store.generated(job.id).await?,
            false => None,
        };
        let source = match kept {
            Some(bought) => {
                tracing::info!(
                    bytes = bought.len(),
                    "continuing from the image bought before"
                );
                bought
            }
            None => {
                if let Some(ended) = self.unless_withdrawn(run, current).await? {
                    return Ok(ended);
                }
                match self.buy_image(run, current).await? {
                    Ok(source) => source,
                    Err(next) => return Ok(next),
                }
            }
        };
        let complement = job.request.payload.color().map(|c| c.complement().rgb());
        let output = current.record.style_settings().output;
        let processed = match post_process(output, complement, source).await {
            Ok(processed) => processed,
            Err(reason) => {
                let reason = format!("processing the image failed: {reason}");
                return self
                    .end_with(run, current, RequestState::Failed, reason)
                    .await;
            }
        };
        let key = format!("{id}/{id}-0.{ext}", id = job.id, ext = processed.extension);
        let storage = &self.services.storage;
        run.ensure_owned()?;
        // Retried in place; should storage stay away, the request ends, but
        // a crash meanwhile resumes from the image kept above.
        let uploaded = self
            .retry_in_place(run, Step::Upload, || {
                upstream(storage.put(&key, processed.bytes.clone(), processed.content_type))
            })
            .instrument(crate::request::step_span("upload"))
            .await?;
        let url = match uploaded {
            Ok(url) => url,
            Err(error) => return self.end(run, current, "storing the image", error).await,
        };
        let image = StoredImage {
            index: 0,
            url,
            color: processed.background.clone(),
            content_type: processed.content_type.to_owned(),
            byte_size: i32::try_from(processed.bytes.len()).unwrap_or(i32::MAX),
        };
        let (progress, image) = self.store.record_image(run.lease(), &image).await?;
        tracing::info!(url = %image.url, bytes = image.byte_size, "image stored");
        current.apply(progress);
        current.image = Some(image);
        Ok(Next::To(RequestState::Stored))
    }

    /// Generates the image, keeping the answer before
    /// anything else can fail: from then on a crash or a storage outage never
    /// makes us pay for it again. `Err(next)` when the step ends or waits.
    async fn buy_image(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<Result<Vec<u8>, Next>, PipelineError> {
        let job = run.job;
        // The prompt recorded with the request: a style edited since does
        // not change it.
        let prompt = current.record.prompt.clone();
        let settings = current.record.style_settings();
        let image_job = ImageJob {
            prompt,
            output: settings.output,
            quality: settings.image_quality,
            size: settings.image_size,
            color: job.request.payload.color(),
            user: job.request.viewer.twitch_user_id.as_str().to_owned(),
        };
        let images = &self.services.images;
        let bought = match self
            .attempt(run, Step::Image, || {
                self.limited(
                    images.service(),
                    Endpoint::Images,
                    images.generate(&image_job),
                )
            })
            .await?
        {
            Attempted::Done(bought) => bought,
            Attempted::Failed(error) => {
                return self
                    .end(run, current, "generating the image", error)
                    .await
                    .map(Err);
            }
            Attempted::Deferred(until, why) => return Ok(Err(Next::Wait(until, why))),
        };
        self.keep_bought(run, &bought).await?;
        Ok(Ok(bought.bytes))
    }

    /// Keeps the answer and what it cost (for `/stats`, `/metrics` and the
    /// daily budget), in one write.
    async fn keep_bought(
        &self,
        run: &Run<'_>,
        bought: &dynamo_upstream::GeneratedImage,
    ) -> Result<(), PipelineError> {
        let cost = dynamo_store::ImageCost {
            model: &bought.model,
            cost_usd: bought.cost_usd,
            priced_by: bought.priced_by.as_str(),
            input_tokens: bought.usage.map(|u| u.input_tokens),
            output_tokens: bought.usage.map(|u| u.output_tokens),
        };
        let kept = self
            .store
            .keep_bought(run.lease(), &bought.bytes, &cost)
            .await;
        // The cost is recorded even when the lease was lost meanwhile.
        if matches!(kept, Ok(()) | Err(StoreError::LeaseLost(_))) {
            self.metrics.spent(&bought.model, bought.cost_usd);
            tracing::info!(model = %bought.model, cost_usd = bought.cost_usd, priced_by = cost.priced_by, "image bought");
        }
        Ok(kept?)
    }

    /// Publishes the alert. It counts as shown only once the broker confirmed
    /// it *and* routed it to a queue: a returned alert means the alerts service
    /// is not listening, which is worth waiting for (within the step's
    /// deadline), never "shown". The broker itself failing is not the
    /// viewer's problem: the run stops and the request is resumed later.
    pub(crate) async fn alert(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        if let Some(ended) = self.unless_withdrawn(run, current).await? {
            return Ok(ended);
        }
        // Stored is the alert's predecessor: a run that got here has the image.
        let Some(image) = &current.image else {
            return Err(StoreError::NotFound(job.id).into());
        };
        self.speak_caption(run, current, image).await?;
        let event = alert_for(&job.request, current.record.name.as_deref(), image);
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let exchange = &self.topology.alerts_exchange;
        let sent = self
            .attempt(run, Step::Alert, || async {
                match self.publish(exchange, &body, job.id, true).await {
                    Ok(()) => Ok(()),
                    // Nobody listening is the alerts service's absence.
                    Err(PublishError::Returned(_)) => Err(UpstreamError::Transient {
                        service: ALERTS,
                        detail: format!(
                            "no queue is bound to {exchange}: is the alerts service running?"
                        ),
                        retry_after: None,
                    }
                    .into()),
                    Err(error) => Err(Infra::Broker {
                        exchange: exchange.clone(),
                        detail: error.to_string(),
                    }
                    .into()),
                }
            })
            .await?;
        match sent {
            Attempted::Done(()) => {
                current.apply(self.store.mark_alerted(run.lease()).await?);
                Ok(Next::To(RequestState::Alerted))
            }
            Attempted::Failed(error) => self.end(run, current, "publishing the alert", error).await,
            Attempted::Deferred(until, why) => Ok(Next::Wait(until, why)),
        }
    }

    /// A request whose debit someone else gave back meanwhile (a moderator
    /// cancelled the redemption on Twitch) is withdrawn: ended `rejected`
    /// with the reason, before it is bought or aired. Its refund finds the
    /// redemption settled, so the viewer is not refunded twice. The ledger
    /// failing to say is not a reason to stop: it is asked again before
    /// the next step.
    async fn unless_withdrawn(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<Option<Next>, PipelineError> {
        let Some(flow_id) = current.record.ledger_flow_id else {
            return Ok(None);
        };
        match self.services.ledger.withdrawn(flow_id).await {
            Ok(Some(reason)) => {
                tracing::info!(%reason, "withdrawn by someone else before air");
                let next = self
                    .end_with(run, current, RequestState::Rejected, reason)
                    .await?;
                Ok(Some(next))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                tracing::warn!(%error, "could not tell whether the request was withdrawn; going on");
                Ok(None)
            }
        }
    }

    /// The alert is out: make the debit final. This cannot end the request
    /// unsuccessfully any more — the viewer saw the image — so a ledger that
    /// stays down means trying again later.
    pub(crate) async fn accept(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        if let Some(flow_id) = current.record.ledger_flow_id {
            let viewer = &run.job.request.viewer;
            let ledger = &self.services.ledger;
            self.retry_in_place(run, Step::Accept, || {
                upstream(ledger.accept(viewer, flow_id))
            })
            .await?
            .map_err(PipelineError::Settle)?;
        }
        current.apply(self.store.mark_succeeded(run.lease()).await?);
        Ok(Next::To(RequestState::Succeeded))
    }

    /// Ends the request as rejected (inadmissible prompt) or failed (anything
    /// else), with the reason.
    pub(crate) async fn end(
        &self,
        run: &Run<'_>,
        current: &mut Current,
        doing: &str,
        error: UpstreamError,
    ) -> StepResult {
        let (state, reason) = end_state(&error, doing);
        self.end_with(run, current, state, reason).await
    }

    pub(crate) async fn end_with(
        &self,
        run: &Run<'_>,
        current: &mut Current,
        state: RequestState,
        reason: String,
    ) -> StepResult {
        match state {
            RequestState::Rejected => tracing::info!(%reason, "request rejected"),
            _ => tracing::warn!(%reason, "request failed"),
        }
        let progress = self
            .store
            .finish_unsuccessfully(run.lease(), state, &reason)
            .await?;
        current.apply(progress);
        Ok(Next::To(state))
    }
}

/// PNG decoding and encoding are CPU-bound: off the async runtime with them.
/// Image work is pure CPU: at most one image per core at a time. More would
/// only time-slice the cores, stretching every request in flight (and holding
/// every one's buffers at once) instead of finishing them in turn.
static IMAGE_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
});

/// A local failure: the image could not be decoded or encoded. No service is
/// to blame and trying again would fail the same way.
async fn post_process(
    output: Output,
    complement: Option<[u8; 3]>,
    source: Vec<u8>,
) -> Result<ProcessedImage, String> {
    // The semaphore is never closed, so acquiring cannot fail; if it somehow
    // did, going ahead unthrottled is the safe fallback.
    let _slot = IMAGE_SLOTS.acquire().await.ok();
    let span = tracing::Span::current();
    let work = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        match output {
            Output::Photo => process_ghost(&source),
            Output::Cutout => process_friend(&source, complement),
        }
    });
    match work.await {
        Ok(Ok(processed)) => Ok(processed),
        Ok(Err(error)) => Err(error.to_string()),
        Err(join) => Err(join.to_string()),
    }
}
