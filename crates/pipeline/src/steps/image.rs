//! The image stage: buy the image (keeping the answer before anything else
//! can fail), post-process it off the async runtime, upload it, record it.

use crate::failure::upstream;
use crate::limits::Endpoint;
use crate::request::{Pipeline, Run};
use crate::run::{Attempted, Current, Next, PipelineError, StepResult};
use dynamo_imaging::{ProcessedImage, process_friend, process_ghost};
use dynamo_store::{RequestState, Step, StoreError, StoredImage};
use dynamo_upstream::ImageJob;
use dynamo_wire::Output;
use tracing::Instrument;

impl Pipeline {
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
