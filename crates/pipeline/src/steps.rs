//! The steps of the pipeline, each reading like the SPEC's sentence for it:
//! debit, name, make the image, alert, accept — and ending a request.

use crate::messages::alert_for;
use crate::request::{Job, Pipeline, PipelineError, Step};
use dynamo_imaging::{ProcessedImage, process_friend, process_ghost};
use dynamo_store::{RequestState, StoreError, StoredImage};
use dynamo_upstream::{ImageJob, UpstreamError};
use dynamo_wire::Style;

impl Pipeline {
    /// Creates the pending debit. 409 from the ledger ends the request before
    /// anything is paid for.
    pub(crate) async fn debit(&self, job: &Job, free: bool) -> Step {
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
    pub(crate) async fn name(&self, job: &Job) -> Step {
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
    pub(crate) async fn make_image(&self, job: &Job, prompt: &str) -> Step {
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
            .retry_in_place(job, "upload", || {
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
    pub(crate) async fn alert(&self, job: &Job) -> Step {
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
    pub(crate) async fn accept(&self, job: &Job) -> Step {
        let record = self.store.get(job.id).await?;
        if let Some(flow_id) = record.ledger_flow_id {
            let viewer = &job.request.viewer;
            let ledger = &self.services.ledger;
            self.retry_in_place(job, "accept", || ledger.accept(viewer, flow_id))
                .await
                .map_err(PipelineError::Settle)?;
        }
        self.store.mark_succeeded(job.id).await?;
        Ok(RequestState::Succeeded)
    }

    /// Ends the request as rejected (inadmissible prompt) or failed (anything
    /// else), with the reason.
    pub(crate) async fn end(&self, job: &Job, doing: &str, error: UpstreamError) -> Step {
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
}

/// PNG decoding and encoding are CPU-bound: off the async runtime with them.
/// Image work is pure CPU: at most one image per core at a time. More would
/// only time-slice the cores, stretching every request in flight (and holding
/// every one's buffers at once) instead of finishing them in turn.
static IMAGE_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
});

async fn post_process(style: Style, source: Vec<u8>) -> Result<ProcessedImage, UpstreamError> {
    // The semaphore is never closed, so acquiring cannot fail; if it somehow
    // did, going ahead unthrottled is the safe fallback.
    let _slot = IMAGE_SLOTS.acquire().await.ok();
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
