//! OpenAI (or any OpenAI-compatible server) through async-openai (SPEC §3).
//!
//! async-openai's default transport retries 429s and 5xx on its own; we plug
//! in its bare reqwest service instead, because retries must go through
//! dynamo's own policy and rate limiter or they would exceed the limits
//! configured for the whole fleet.

use crate::retry_hint::{CaptureRetryHints, with_retry_hint};
use crate::{ImageJob, ImageProvider, Moderator, NameProvider, UpstreamError};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::images::{
    CreateImageRequest, Image, ImageModel, ImageResponseFormat, ImageSize,
};
use async_trait::async_trait;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::time::Duration;

const SERVICE: &str = "openai";

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    pub api_key: SecretString,
    /// `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub base_url: String,
    /// `OPENAI_IMAGE_MODEL`.
    pub image_model: String,
    /// `OPENAI_CHAT_MODEL`.
    pub chat_model: String,
    /// `OPENAI_MODERATION_MODEL`.
    pub moderation_model: String,
    /// `OPENAI_IMAGE_QUALITY` (GPT-image models): low, medium, high or auto.
    pub image_quality: Option<String>,
    /// `OPENAI_TIMEOUT`: per HTTP call; image generation can take two minutes.
    pub timeout: Duration,
    /// `OPENAI_MAX_DOWNLOAD_BYTES`: cap on an image fetched from a `url` answer.
    pub max_download_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct OpenAi {
    client: Client<OpenAIConfig>,
    http: reqwest::Client,
    settings: OpenAiSettings,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| UpstreamError::permanent(SERVICE, e))?;
        let config = OpenAIConfig::new()
            .with_api_base(&settings.base_url)
            .with_api_key(settings.api_key.expose_secret());
        let client = Client::with_config(config)
            .with_http_service(CaptureRetryHints::new(ReqwestService::new(http.clone())));
        Ok(Self {
            client,
            http,
            settings,
        })
    }

    /// DALL-E models take `response_format`; GPT-image models refuse it and
    /// always answer base64.
    fn is_dall_e(&self) -> bool {
        self.settings.image_model.starts_with("dall-e")
    }

    /// Warns at start-up when the configured image model is unknown to the
    /// server or scheduled for shutdown. Never fails start-up: the server may
    /// simply not implement the models endpoint.
    pub async fn check_image_model(&self) {
        let model = &self.settings.image_model;
        let url = format!("{}/models/{model}", self.settings.base_url);
        let answer = self
            .http
            .get(url)
            .bearer_auth(self.settings.api_key.expose_secret())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                let body: Value = response.json().await.unwrap_or_default();
                if let Some(date) = body.get("shutdown_date").filter(|d| !d.is_null()) {
                    tracing::warn!(%model, shutdown_date = %date, "the image model is scheduled to be shut down; set OPENAI_IMAGE_MODEL to a current model");
                }
            }
            Ok(response) => {
                tracing::warn!(%model, status = %response.status(), "the image API does not know this model; set OPENAI_IMAGE_MODEL to one it offers")
            }
            Err(error) => tracing::warn!(%model, %error, "could not check the image model"),
        }
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, UpstreamError> {
        let limit = self.settings.max_download_bytes;
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| UpstreamError::from_reqwest(SERVICE, e))?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            return Err(UpstreamError::from_status(
                SERVICE,
                status,
                &headers,
                "image download failed",
            ));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("image/") {
            return Err(UpstreamError::permanent(
                SERVICE,
                format!("the image URL answered {content_type:?}, not an image"),
            ));
        }
        if response
            .content_length()
            .is_some_and(|len| len as usize > limit)
        {
            return Err(UpstreamError::permanent(
                SERVICE,
                format!("the image is over {limit} bytes"),
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| UpstreamError::from_reqwest(SERVICE, e))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(UpstreamError::permanent(
                    SERVICE,
                    format!("the image is over {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// DALL-E only (and deprecated with it); OpenAI-compatible servers still use it.
#[allow(deprecated)]
fn set_b64_response_format(request: &mut CreateImageRequest) {
    request.response_format = Some(ImageResponseFormat::B64Json);
}

/// Runs an API call, classifying its error with the wait the server asked for.
async fn hinted<T>(
    call: impl std::future::Future<Output = Result<T, OpenAIError>>,
) -> Result<T, UpstreamError> {
    let (result, hint) = with_retry_hint(call).await;
    result.map_err(|error| match classify(error) {
        UpstreamError::Transient {
            service, detail, ..
        } => UpstreamError::Transient {
            service,
            detail,
            retry_after: hint,
        },
        UpstreamError::RateLimited {
            service, detail, ..
        } => UpstreamError::RateLimited {
            service,
            detail,
            retry_after: hint,
        },
        other => other,
    })
}

/// Sorts an async-openai error into what the pipeline should do about it.
fn classify(error: OpenAIError) -> UpstreamError {
    match error {
        OpenAIError::ApiError(response) => {
            let status = response.status_code.as_u16();
            let api = response.api_error;
            let code = api.code.as_deref().unwrap_or("");
            let detail = format!("HTTP {status}: {api}");
            match (status, code) {
                (400, "content_policy_violation" | "moderation_blocked") => {
                    UpstreamError::Inadmissible(format!(
                        "the image service refused this prompt under its content policy ({code})"
                    ))
                }
                (429, "insufficient_quota") => UpstreamError::Outage {
                    service: SERVICE,
                    reason: "OpenAI says the account is out of credit (insufficient_quota): add credit or change OPENAI_API_KEY".to_owned(),
                },
                (401, _) => UpstreamError::Outage {
                    service: SERVICE,
                    reason: format!("OpenAI refused the API key ({detail}): check OPENAI_API_KEY"),
                },
                (429, _) => UpstreamError::RateLimited {
                    service: SERVICE,
                    detail,
                    retry_after: None,
                },
                (408 | 409, _) | (500..=599, _) => UpstreamError::transient(SERVICE, detail),
                _ => UpstreamError::permanent(SERVICE, detail),
            }
        }
        OpenAIError::Reqwest(error) => UpstreamError::from_reqwest(SERVICE, error),
        // A garbled answer is usually a proxy's error page: worth another try.
        OpenAIError::JSONDeserialize(error, _) => {
            UpstreamError::transient(SERVICE, format!("unreadable answer: {error}"))
        }
        other => UpstreamError::permanent(SERVICE, other),
    }
}

#[async_trait]
impl ImageProvider for OpenAi {
    fn describe(&self) -> String {
        format!(
            "OpenAI image model {} at {}",
            self.settings.image_model, self.settings.base_url
        )
    }

    async fn generate(&self, job: &ImageJob) -> Result<Vec<u8>, UpstreamError> {
        // `user` is deprecated upstream in favour of `safety_identifier`, but
        // the SPEC (and the Go service) send it, and compatible servers read it.
        #[allow(deprecated)]
        let mut request = CreateImageRequest {
            prompt: job.prompt.clone(),
            model: ImageModel::Other(self.settings.image_model.clone()),
            n: Some(1),
            size: Some(ImageSize::S1024x1024),
            user: Some(job.user.clone()),
            ..CreateImageRequest::default()
        };
        if self.is_dall_e() {
            set_b64_response_format(&mut request);
        } else if let Some(quality) = &self.settings.image_quality {
            request.quality = serde_json::from_value(json!(quality)).ok();
        }
        let response = hinted(self.client.images().generate(request)).await?;
        let image = response
            .data
            .first()
            .ok_or_else(|| UpstreamError::permanent(SERVICE, "the answer held no image"))?;
        match image.as_ref() {
            Image::B64Json { b64_json, .. } => base64::engine::general_purpose::STANDARD
                .decode(b64_json.as_bytes())
                .map_err(|e| UpstreamError::permanent(SERVICE, format!("bad base64 image: {e}"))),
            Image::Url { url, .. } => self.download(url).await,
        }
    }
}

#[async_trait]
impl NameProvider for OpenAi {
    fn prompt(&self, subject: &str) -> String {
        name_prompt(subject)
    }

    async fn name(&self, subject: &str, user: &str) -> Result<String, UpstreamError> {
        let request = json!({
            "model": self.settings.chat_model,
            "user": user,
            "messages": [
                {"role": "system", "content": "You name characters. Answer with the name only: one to three words, no quotes, no punctuation, no explanation."},
                {"role": "user", "content": name_prompt(subject)},
            ],
        });
        let response: Value = hinted(self.client.chat().create_byot(request)).await?;
        let content = response
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        clean_name(content).ok_or_else(|| {
            UpstreamError::transient(SERVICE, format!("no usable name in the answer {content:?}"))
        })
    }
}

#[async_trait]
impl Moderator for OpenAi {
    async fn screen(&self, prompt: &str) -> Result<(), UpstreamError> {
        let response: Value = hinted(
            self.client
                .moderations()
                .create_byot(json!({"model": self.settings.moderation_model, "input": prompt})),
        )
        .await?;
        let result = response
            .pointer("/results/0")
            .ok_or_else(|| UpstreamError::permanent(SERVICE, "moderation answered no result"))?;
        if result.get("flagged").and_then(Value::as_bool) != Some(true) {
            return Ok(());
        }
        let mut categories: Vec<&str> = result
            .get("categories")
            .and_then(Value::as_object)
            .map(|all| {
                all.iter()
                    .filter(|(_, flagged)| flagged.as_bool() == Some(true))
                    .map(|(name, _)| name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        categories.sort_unstable();
        let reason = if categories.is_empty() {
            "the request was flagged by moderation".to_owned()
        } else {
            format!(
                "the request was flagged by moderation ({})",
                categories.join(", ")
            )
        };
        Err(UpstreamError::Inadmissible(reason))
    }
}

/// What the chat model is asked (SPEC §3).
pub(crate) fn name_prompt(subject: &str) -> String {
    format!("Give a single name for a friendly mascot character who is {subject}.")
}

/// Takes the first line, strips quotes and trailing punctuation, and caps the
/// length: models like to chat even when told not to.
pub(crate) fn clean_name(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|line| !line.is_empty())?;
    let line = line
        .strip_prefix("Name:")
        .or_else(|| line.strip_prefix("name:"))
        .unwrap_or(line);
    let name: String = line
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '*' || c == '“' || c == '”')
        .trim_end_matches(['.', '!', ','])
        .trim()
        .chars()
        .take(40)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("\"Sealy.\"\n").as_deref(), Some("Sealy"));
        assert_eq!(
            clean_name("\n  Name: Captain Soup!").as_deref(),
            Some("Captain Soup")
        );
        assert_eq!(clean_name("   \n "), None);
        assert_eq!(clean_name(&"x".repeat(100)).map(|n| n.len()), Some(40));
    }
}
