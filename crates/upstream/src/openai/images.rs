//! Image generation: the request each model takes, the answer's image
//! (inline or downloaded) and what it cost.

use super::{OpenAi, Outcome, SERVICE};
use crate::models::{ImageParameter, ImageUsage};
use crate::{GeneratedImage, ImageJob, ImageProvider, UpstreamError};
use async_openai::types::images::{
    CreateImageRequest, ImageBackground, ImageModel, ImageOutputFormat, ImageResponseFormat,
    ImageSize,
};
use async_trait::async_trait;
use base64::Engine;
use dynamo_wire::Output;
use serde_json::{Value, json};

/// JPEG and WEBP quality asked of the image API (SPEC §3 S3: quality 80).
const OUTPUT_COMPRESSION: u8 = 80;

impl OpenAi {
    /// The optional parameters to send `model`: the table's, minus those it refused.
    async fn parameters(&self, model: &str) -> Vec<ImageParameter> {
        let refused = self
            .catalogue
            .refused_parameters()
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read refused parameters");
                Vec::new()
            });
        self.settings
            .parameters
            .for_model(model)
            .into_iter()
            .filter(|p| !refused.iter().any(|(m, r)| m == model && r == p.name()))
            .collect()
    }

    async fn generate_with(&self, job: &ImageJob, model: String) -> Outcome<GeneratedImage> {
        let parameters = self.parameters(&model).await;
        // `user` is deprecated upstream in favour of `safety_identifier`, but
        // the SPEC (and the Go service) send it, and compatible servers read it.
        #[allow(deprecated)]
        let mut request = CreateImageRequest {
            prompt: job.prompt.clone(),
            model: ImageModel::Other(model.clone()),
            n: Some(1),
            // A style's own size is one of the API's (checked when the
            // style was saved), so it always parses.
            size: job
                .size
                .as_ref()
                .and_then(|size| serde_json::from_value(json!(size)).ok())
                .or(Some(ImageSize::S1024x1024)),
            user: Some(job.user.clone()),
            ..CreateImageRequest::default()
        };
        let takes = |p: ImageParameter| parameters.contains(&p);
        if takes(ImageParameter::ResponseFormat) {
            set_b64_response_format(&mut request);
        }
        let mut quality = None;
        if takes(ImageParameter::Quality)
            && let Some(asked) = job
                .quality
                .as_ref()
                .or(self.settings.image_quality.as_ref())
        {
            request.quality = serde_json::from_value(json!(asked)).ok();
            quality = Some(asked.as_str());
        }
        match job.output {
            // Ask for what we store: a JPEG at quality 80 is kept as it is.
            Output::Photo if takes(ImageParameter::OutputFormat) => {
                request.output_format = Some(ImageOutputFormat::Jpeg);
                request.output_compression = Some(OUTPUT_COMPRESSION);
            }
            // The model draws the transparency: no chroma keying.
            Output::Cutout if takes(ImageParameter::Background) => {
                request.background = Some(ImageBackground::Transparent);
                if takes(ImageParameter::OutputFormat) {
                    request.output_format = Some(ImageOutputFormat::Webp);
                    request.output_compression = Some(OUTPUT_COMPRESSION);
                }
            }
            _ => {}
        }
        // Read as plain JSON: compatible servers' answers differ from
        // OpenAI's in ways a typed answer rejects (sd-server's `created` is
        // a date, LocalAI's `usage` counts other tokens).
        let response: Value = match self
            .call(self.client.images().generate_byot(request), &parameters)
            .await
        {
            Outcome::Done(response) => response,
            Outcome::ModelGone(detail) => return Outcome::ModelGone(detail),
            Outcome::ParameterRefused { parameter, detail } => {
                return Outcome::ParameterRefused { parameter, detail };
            }
            Outcome::Missing(detail) => return Outcome::Missing(detail),
            Outcome::Failed(error) => return Outcome::Failed(error),
        };
        let image = response.pointer("/data/0");
        let b64 = image
            .and_then(|i| i.get("b64_json"))
            .and_then(Value::as_str);
        let url = image.and_then(|i| i.get("url")).and_then(Value::as_str);
        let bytes = match (b64, url) {
            (Some(b64), _) if !b64.is_empty() => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| UpstreamError::permanent(SERVICE, format!("bad base64 image: {e}"))),
            (_, Some(url)) if !url.is_empty() => self.downloader.image(url).await,
            _ => Err(UpstreamError::permanent(
                SERVICE,
                "the answer held no image (neither data[0].b64_json nor data[0].url)",
            )),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(error) => return Outcome::Failed(error),
        };
        let usage = image_usage(&response);
        let (cost_usd, priced_by) = self.settings.prices.cost(&model, quality, usage);
        Outcome::Done(GeneratedImage {
            bytes,
            model,
            usage,
            cost_usd,
            priced_by,
        })
    }
}

/// DALL-E only (and deprecated with it); OpenAI-compatible servers still use it.
#[allow(deprecated)]
fn set_b64_response_format(request: &mut CreateImageRequest) {
    request.response_format = Some(ImageResponseFormat::B64Json);
}

/// The answer's `usage`, in OpenAI's shape (GPT-image models); compatible
/// servers' own counts (LocalAI's `prompt_tokens`) are not image tokens.
fn image_usage(response: &Value) -> Option<ImageUsage> {
    let usage = response.get("usage")?;
    let count = |pointer: &str| {
        usage
            .pointer(pointer)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let output_tokens = count("/output_tokens")?;
    let input_tokens = count("/input_tokens_details/text_tokens")
        .or_else(|| count("/input_tokens"))
        .unwrap_or(0);
    Some(ImageUsage {
        input_tokens,
        output_tokens,
    })
}

#[async_trait]
impl ImageProvider for OpenAi {
    fn service(&self) -> crate::ServiceId {
        SERVICE
    }

    fn describe(&self) -> String {
        format!(
            "OpenAI image models {} at {}",
            self.settings.image_models.models.join(","),
            self.settings.base_url
        )
    }

    async fn generate(&self, job: &ImageJob) -> Result<GeneratedImage, UpstreamError> {
        let chain = &self.settings.image_models;
        self.on_chain(chain, |model| self.generate_with(job, model))
            .await?
            .ok_or_else(|| {
                UpstreamError::permanent(
                    SERVICE,
                    format!(
                        "{} has no /images/generations endpoint: check OPENAI_BASE_URL",
                        self.settings.base_url
                    ),
                )
            })
    }
}
