//! OpenAI (or any OpenAI-compatible server) through async-openai (SPEC §3).
//!
//! async-openai's default transport retries 429s and 5xx on its own; we plug
//! in its bare reqwest service instead, because retries must go through
//! dynamo's own policy and rate limiter or they would exceed the limits
//! configured for the whole fleet.

use crate::api_error::ApiFailure;
use crate::download::{CapAnswers, Downloader, answer_cap, read_capped};
use crate::models::{
    ImageParameter, ImageUsage, ListedModel, MemoryCatalogue, ModelCatalogue, ModelChain,
    ModelParameters, ModelPrices,
};
use crate::retry_hint::{CaptureRetryHints, Captured, with_retry_hint};
use crate::{GeneratedImage, ImageJob, ImageProvider, Moderator, NameProvider, UpstreamError};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::images::{
    CreateImageRequest, ImageBackground, ImageModel, ImageOutputFormat, ImageResponseFormat,
    ImageSize,
};
use async_trait::async_trait;
use base64::Engine;
use dynamo_wire::Style;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SERVICE: &str = "openai";

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    pub api_key: SecretString,
    /// `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub base_url: String,
    /// `OPENAI_IMAGE_MODEL`: image models in order of preference.
    pub image_models: ModelChain,
    /// `OPENAI_CHAT_MODEL`: chat models in order of preference.
    pub chat_models: ModelChain,
    /// `OPENAI_MODEL_PARAMETERS`: which optional image parameters each model takes.
    pub parameters: ModelParameters,
    /// `OPENAI_IMAGE_PRICES`: per-image prices in front of the table.
    pub prices: ModelPrices,
    /// `OPENAI_MODERATION_MODEL`.
    pub moderation_model: String,
    /// `OPENAI_IMAGE_QUALITY` (GPT-image models): low, medium, high or auto.
    pub image_quality: Option<String>,
    /// `OPENAI_TIMEOUT`: per HTTP call; image generation can take two minutes.
    pub timeout: Duration,
    /// `OPENAI_MAX_DOWNLOAD_BYTES`: cap on an image fetched from a `url`
    /// answer (and, as base64, on every answer body).
    pub max_download_bytes: usize,
    /// `OPENAI_DOWNLOAD_HOSTS`: hosts besides the base URL's that `url`
    /// answers may point to ([`crate::download`]).
    pub download_hosts: Vec<String>,
}

/// JPEG and WEBP quality asked of the image API (SPEC §3 S3: quality 80).
const OUTPUT_COMPRESSION: u8 = 80;

#[derive(Clone)]
pub struct OpenAi {
    client: Client<OpenAIConfig>,
    http: reqwest::Client,
    downloader: Downloader,
    settings: OpenAiSettings,
    catalogue: Arc<dyn ModelCatalogue>,
    /// What this server lacks, learned from a 404 on the first call: many
    /// OpenAI-compatible servers have no moderation or chat endpoint.
    lacks: Arc<Lacks>,
}

/// Endpoints the server turned out not to have.
#[derive(Debug, Default)]
struct Lacks {
    moderation: AtomicBool,
    chat: AtomicBool,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What one call to one model ended in, before the chain decides what next.
enum Outcome<T> {
    Done(T),
    /// `404 model_not_found`: try the next model.
    ModelGone(String),
    /// 400 naming an optional parameter we sent: drop it and try again.
    ParameterRefused {
        parameter: ImageParameter,
        detail: String,
    },
    /// The server has no such endpoint (404 not about a model).
    Missing(String),
    Failed(UpstreamError),
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
        let capped = CapAnswers::new(
            ReqwestService::new(http.clone()),
            answer_cap(settings.max_download_bytes),
        );
        let client = Client::with_config(config).with_http_service(CaptureRetryHints::new(capped));
        let downloader = Downloader::new(
            &settings.base_url,
            &settings.download_hosts,
            settings.max_download_bytes,
            settings.timeout,
        )?;
        Ok(Self {
            client,
            http,
            downloader,
            settings,
            catalogue: Arc::new(MemoryCatalogue::default()),
            lacks: Arc::new(Lacks::default()),
        })
    }

    /// Shares what this process learns about models with the fleet.
    pub fn with_catalogue(mut self, catalogue: Arc<dyn ModelCatalogue>) -> Self {
        self.catalogue = catalogue;
        self
    }

    /// Start-up: records the chains, reads `GET /models` and reports each
    /// configured model that is gone (one error line naming the setting) or
    /// shuts down within 30 days (a warning). `Err(ModelsGone)` when a chain
    /// has nothing left. A server without `/models` is not an error.
    pub async fn check_models(&self) -> Result<(), UpstreamError> {
        for chain in self.chains() {
            self.catalogue.configure(chain).await?;
        }
        self.read_catalogue().await;
        let gone = self.gone().await;
        for chain in self.chains() {
            for model in chain.models.iter().filter(|m| gone.contains(*m)) {
                tracing::error!(%model, variable = chain.variable, "{model} is shut down; skipping it (remove it from {})", chain.variable);
            }
            if chain.models.iter().all(|m| gone.contains(m)) {
                return Err(UpstreamError::ModelsGone {
                    variable: chain.variable,
                });
            }
        }
        Ok(())
    }

    /// Re-reads `GET /models` every `every`, once for the whole fleet, until
    /// `shutdown`.
    pub async fn watch_catalogue(
        self: Arc<Self>,
        every: Duration,
        owner: String,
        shutdown: dynamo_runtime::Shutdown,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.requested() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.catalogue.claim_check(every, &owner).await {
                Ok(true) => self.read_catalogue().await,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot claim the model catalogue check"),
            }
        }
    }

    fn chains(&self) -> [&ModelChain; 2] {
        [&self.settings.image_models, &self.settings.chat_models]
    }

    /// Reads `GET /models` and records it; warns of configured models that
    /// shut down within 30 days. Any failure is logged, never fatal: many
    /// compatible servers have no such endpoint.
    async fn read_catalogue(&self) {
        let url = format!("{}/models", self.settings.base_url);
        let answer = self
            .http
            .get(url)
            .bearer_auth(self.settings.api_key.expose_secret())
            .send()
            .await;
        let response = match answer {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::info!(status = %response.status(), "the API does not list its models; models are learned from calls instead");
                return;
            }
            Err(error) => {
                let error = crate::redact::redact_reqwest(error);
                tracing::warn!(%error, "cannot read the model catalogue");
                return;
            }
        };
        let cap = answer_cap(self.settings.max_download_bytes);
        let Some(body) = read_capped(response, cap)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            tracing::info!(
                "the model catalogue answer is not JSON; models are learned from calls instead"
            );
            return;
        };
        let Some(data) = body.get("data").and_then(Value::as_array) else {
            tracing::info!(
                "the model catalogue answer has no data; models are learned from calls instead"
            );
            return;
        };
        let listed: Vec<ListedModel> = data
            .iter()
            .filter_map(|m| {
                Some(ListedModel {
                    id: m.get("id")?.as_str()?.to_owned(),
                    shutdown_date: m
                        .get("shutdown_date")
                        .and_then(Value::as_str)
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                })
            })
            .collect();
        let today = chrono::Utc::now().date_naive();
        for chain in self.chains() {
            for model in listed.iter().filter(|l| chain.models.contains(&l.id)) {
                if let Some(date) = model.shutdown_date {
                    let days_left = (date - today).num_days();
                    if days_left <= 30 {
                        tracing::warn!(model = %model.id, %date, days_left, variable = chain.variable, "{} shuts down on {date}; put a current model first in {}", model.id, chain.variable);
                    }
                }
            }
        }
        if let Err(error) = self.catalogue.record_listing(&listed).await {
            tracing::warn!(%error, "cannot record the model catalogue");
        }
    }

    /// The models the fleet knows are gone (none, if the catalogue cannot be read).
    async fn gone(&self) -> HashSet<String> {
        match self.catalogue.gone().await {
            Ok(gone) => gone.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read which models are gone; trying them all");
                HashSet::new()
            }
        }
    }

    /// Calls `call` on each usable model of `chain` in turn until one
    /// answers: a model answering `model_not_found` is marked gone for the
    /// fleet and the next one is tried at once, inside this one call, so the
    /// caller sees only the success. `None` when the server has no such
    /// endpoint at all.
    async fn on_chain<T, F, Fut>(
        &self,
        chain: &ModelChain,
        mut call: F,
    ) -> Result<Option<T>, UpstreamError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Outcome<T>>,
    {
        let gone = self.gone().await;
        for model in chain.models.iter().filter(|m| !gone.contains(*m)) {
            // Each refusal drops one parameter; more refusals than there are
            // parameters means the drop is not taking (the catalogue cannot
            // be read back): stop rather than call forever.
            let mut refusals = 0;
            loop {
                match call(model.clone()).await {
                    Outcome::Done(answer) => return Ok(Some(answer)),
                    Outcome::Missing(detail) => {
                        tracing::debug!(%detail, "the server has no such endpoint");
                        return Ok(None);
                    }
                    Outcome::Failed(error) => return Err(error),
                    Outcome::ModelGone(detail) => {
                        let first = self
                            .catalogue
                            .mark_gone(model, &detail)
                            .await
                            .unwrap_or(true);
                        if first {
                            tracing::error!(%model, variable = chain.variable, "{model} answered model_not_found; skipping it from now on, fleet-wide (remove it from {})", chain.variable);
                        }
                        break;
                    }
                    Outcome::ParameterRefused { parameter, detail } => {
                        refusals += 1;
                        if refusals > ImageParameter::ALL.len() {
                            return Err(UpstreamError::permanent(SERVICE, detail));
                        }
                        tracing::warn!(%model, parameter = parameter.name(), %detail, "the model refuses a parameter; no longer sending it, fleet-wide");
                        self.catalogue
                            .refuse_parameter(model, parameter.name(), &detail)
                            .await?;
                    }
                }
            }
        }
        Err(UpstreamError::ModelsGone {
            variable: chain.variable,
        })
    }

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
            size: Some(ImageSize::S1024x1024),
            user: Some(job.user.clone()),
            ..CreateImageRequest::default()
        };
        let takes = |p: ImageParameter| parameters.contains(&p);
        if takes(ImageParameter::ResponseFormat) {
            set_b64_response_format(&mut request);
        }
        let mut quality = None;
        if takes(ImageParameter::Quality)
            && let Some(asked) = &self.settings.image_quality
        {
            request.quality = serde_json::from_value(json!(asked)).ok();
            quality = Some(asked.as_str());
        }
        match job.style {
            // Ask for what we store: a JPEG at quality 80 is kept as it is.
            Style::Ghost if takes(ImageParameter::OutputFormat) => {
                request.output_format = Some(ImageOutputFormat::Jpeg);
                request.output_compression = Some(OUTPUT_COMPRESSION);
            }
            // The model draws the transparency: no chroma keying.
            Style::Friend if takes(ImageParameter::Background) => {
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

    /// Runs one API call, setting apart what the chain handles itself: a
    /// model that is gone, a parameter (one of `sent`) the model refuses, an
    /// endpoint the server does not have.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, OpenAIError>>,
        sent: &[ImageParameter],
    ) -> Outcome<T> {
        let (result, captured) = with_retry_hint(call).await;
        let error = match result {
            Ok(answer) => return Outcome::Done(answer),
            Err(error) => error,
        };
        let failure = match ApiFailure::from_openai(error, captured.status) {
            Ok(failure) => failure,
            Err(other) => return Outcome::Failed(with_hint(classify_other(other), captured)),
        };
        if failure.is_model_not_found() {
            return Outcome::ModelGone(failure.message);
        }
        if failure.is_missing_endpoint() {
            return Outcome::Missing(failure.to_string());
        }
        if failure.status == 400
            && failure.kind.as_deref() == Some("invalid_request_error")
            && let Some(parameter) = failure
                .param
                .as_deref()
                .and_then(ImageParameter::from_error_param)
                .filter(|p| sent.contains(p))
        {
            return Outcome::ParameterRefused {
                parameter,
                detail: failure.message,
            };
        }
        Outcome::Failed(with_hint(classify(&failure), captured))
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

/// Puts the wait the server asked for into a classified error.
fn with_hint(error: UpstreamError, captured: Captured) -> UpstreamError {
    let hint = captured.hint;
    match error {
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
    }
}

/// Sorts an error answer into what the pipeline should do about it.
fn classify(failure: &ApiFailure) -> UpstreamError {
    let code = failure.code.as_deref().unwrap_or("");
    let detail = failure.to_string();
    match (failure.status, code) {
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

/// Sorts a failure that is not an error answer: no answer, or an unreadable one.
fn classify_other(error: OpenAIError) -> UpstreamError {
    match error {
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

#[async_trait]
impl NameProvider for OpenAi {
    fn prompt(&self, subject: &str) -> String {
        name_prompt(subject)
    }

    async fn name(&self, subject: &str, user: &str) -> Result<String, UpstreamError> {
        if self.lacks.chat.load(Ordering::Relaxed) {
            return Ok(crate::name_from_subject(subject));
        }
        let chain = &self.settings.chat_models;
        let response: Option<Value> = self
            .on_chain(chain, |model| async move {
                let request = json!({
                    "model": model,
                    "user": user,
                    "messages": [
                        {"role": "system", "content": "You name characters. Answer with the name only: one to three words, no quotes, no punctuation, no explanation."},
                        {"role": "user", "content": name_prompt(subject)},
                    ],
                });
                self.call(self.client.chat().create_byot(request), &[]).await
            })
            .await?;
        let Some(response) = response else {
            // sd-server has no chat endpoint: the friend is named after its subject.
            if !self.lacks.chat.swap(true, Ordering::Relaxed) {
                tracing::info!(base_url = %self.settings.base_url, "the server has no chat endpoint; friends are named after their subject from now on");
            }
            return Ok(crate::name_from_subject(subject));
        };
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
        if self.lacks.moderation.load(Ordering::Relaxed) {
            return Ok(());
        }
        let request = json!({"model": self.settings.moderation_model, "input": prompt});
        let response: Value = match self
            .call(self.client.moderations().create_byot(request), &[])
            .await
        {
            Outcome::Done(response) => response,
            Outcome::Missing(detail) => {
                // Many compatible servers have none: screening is skipped, not failed.
                if !self.lacks.moderation.swap(true, Ordering::Relaxed) {
                    tracing::info!(base_url = %self.settings.base_url, %detail, "the server has no moderation endpoint; prompts are not screened (set MODERATION=false to silence this)");
                }
                return Ok(());
            }
            Outcome::ModelGone(detail) => {
                return Err(UpstreamError::permanent(
                    SERVICE,
                    format!("{detail}: check OPENAI_MODERATION_MODEL"),
                ));
            }
            Outcome::ParameterRefused { detail, .. } => {
                return Err(UpstreamError::permanent(SERVICE, detail));
            }
            Outcome::Failed(error) => return Err(error),
        };
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
