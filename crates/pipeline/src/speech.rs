//! The spoken caption (issue 30): for a request whose recorded style
//! settings say `speak_caption`, the alert's caption ("Sealy, from
//! wasabimilkshake") is read aloud just before its alert, stored beside
//! the image and recorded (`dynamo.caption_speech`), its cost counted in
//! the spend and the daily budget.
//!
//! It is an extra, never a reason to hold an alert back: one attempt,
//! bounded by the speech client's own timeout, under the same rate limits
//! as every OpenAI call and skipped while OpenAI is held or the day's
//! budget is spent. Whatever goes wrong is recorded as the reason the
//! alert aired without it, and the alert goes on.

use crate::failure::StepError;
use crate::limits::Endpoint;
use crate::request::{Pipeline, Run};
use crate::run::{Current, PipelineError};
use dynamo_store::{SpeechCost, SpokenFile, StoredImage};
use dynamo_upstream::{SpokenCaption, UpstreamError};
use dynamo_wire::GenerationRequest;

/// The alert's caption as the overlay shows it: the friend's name (or the
/// subject), then who asked.
pub(crate) fn caption_for(request: &GenerationRequest, name: Option<&str>) -> String {
    let title = name.unwrap_or(request.subject().as_str());
    format!("{title}, from {}", request.viewer.twitch_display_name)
}

/// The speech's key beside the image's (`<id>/<id>-0.jpg` →
/// `<id>/<id>-0-caption.mp3`).
fn speech_key(image_url: &str, id: uuid::Uuid, extension: &str) -> String {
    let index = image_url
        .rsplit('/')
        .next()
        .and_then(|file| file.split('.').next())
        .and_then(|stem| stem.rsplit('-').next())
        .and_then(|index| index.parse::<u32>().ok())
        .unwrap_or(0);
    format!("{id}/{id}-{index}-caption.{extension}")
}

impl Pipeline {
    /// Speaks the caption when the request's style asks and it has not
    /// been spoken (or given up on) yet. Only dynamo's own database failing
    /// stops the run; every other failure is recorded and the alert goes on.
    pub(crate) async fn speak_caption(
        &self,
        run: &Run<'_>,
        current: &Current,
        image: &StoredImage,
    ) -> Result<(), PipelineError> {
        // Settings recorded with the request: a style edited since changes nothing.
        if !current.record.style_settings().speak_caption {
            return Ok(());
        }
        // A resumed run: spoken (or given up on) already.
        if self.store.caption_speech(run.id()).await?.is_some() {
            return Ok(());
        }
        let caption = caption_for(&run.job.request, current.record.name.as_deref());
        run.ensure_owned()?;
        let lease = run.lease();
        match self.speak_and_store(run, &caption, image).await? {
            Ok((spoken, file)) => {
                let cost = cost_of(&spoken);
                let file = SpokenFile {
                    url: &file.0,
                    object_key: &file.1,
                    content_type: spoken.content_type,
                    byte_size: i32::try_from(spoken.bytes.len()).unwrap_or(i32::MAX),
                };
                self.store
                    .record_speech(lease, &caption, &file, &cost)
                    .await?;
                self.metrics.spent(&spoken.model, spoken.cost_usd);
                tracing::info!(url = file.url, model = %spoken.model, cost_usd = spoken.cost_usd, "caption spoken");
            }
            Err((reason, spoken)) => {
                let cost = spoken.as_ref().map(cost_of);
                self.store
                    .record_speech_failure(lease, &caption, &reason, cost.as_ref())
                    .await?;
                if let Some(spoken) = &spoken {
                    self.metrics.spent(&spoken.model, spoken.cost_usd);
                }
                tracing::warn!(%reason, "the alert airs without its spoken caption");
            }
        }
        Ok(())
    }

    /// The one attempt: `Ok(Err((reason, bought)))` when there is no
    /// speech to air, with the answer when it was bought before failing.
    #[allow(clippy::type_complexity)]
    async fn speak_and_store(
        &self,
        run: &Run<'_>,
        caption: &str,
        image: &StoredImage,
    ) -> Result<
        Result<(SpokenCaption, (String, String)), (String, Option<SpokenCaption>)>,
        PipelineError,
    > {
        let Some(speech) = &self.services.speech else {
            return Ok(Err((
                "no speech service is configured (SPEECH_PROVIDER=none)".to_owned(),
                None,
            )));
        };
        if let Some(reason) = self.gate.blocks_optional_call(speech.service()).await? {
            return Ok(Err((reason, None)));
        }
        let user = run.job.request.viewer.twitch_user_id.as_str();
        let spoken = match self
            .limited(
                speech.service(),
                Endpoint::Speech,
                speech.speak(caption, user),
            )
            .await
        {
            Ok(spoken) => spoken,
            Err(StepError::Upstream(error)) => return Ok(Err((speech_failure(&error), None))),
            Err(StepError::Throttled { .. }) => {
                return Ok(Err((
                    "no OpenAI rate-limit slot was free in time".to_owned(),
                    None,
                )));
            }
            Err(StepError::Infra(infra)) => {
                return Ok(Err((
                    format!("dynamo's rate limiter failed: {infra}"),
                    None,
                )));
            }
        };
        let key = speech_key(&image.url, run.id(), spoken.extension);
        run.ensure_owned()?;
        match self
            .services
            .storage
            .put(&key, spoken.bytes.clone(), spoken.content_type)
            .await
        {
            Ok(url) => Ok(Ok((spoken, (url, key)))),
            Err(error) => Ok(Err((
                format!("storing the spoken caption failed: {error}"),
                Some(spoken),
            ))),
        }
    }
}

fn cost_of(spoken: &SpokenCaption) -> SpeechCost<'_> {
    SpeechCost {
        model: &spoken.model,
        cost_usd: spoken.cost_usd,
        priced_by: spoken.priced_by.as_str(),
    }
}

/// The reason recorded (and shown on the page) for a failed speech call.
fn speech_failure(error: &UpstreamError) -> String {
    match error {
        UpstreamError::ModelsGone { variable, .. } => {
            format!("no speech model left: every model of {variable} is shut down or missing")
        }
        other => format!("the speech call failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_speech_is_kept_beside_its_image() {
        let id = uuid::Uuid::nil();
        let url = format!("https://bucket.example/{id}/{id}-0.webp");
        assert_eq!(
            speech_key(&url, id, "mp3"),
            format!("{id}/{id}-0-caption.mp3")
        );
    }
}
