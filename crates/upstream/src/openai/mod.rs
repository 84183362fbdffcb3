//! OpenAI (or any OpenAI-compatible server) through async-openai (SPEC §3).
//!
//! async-openai's default transport retries 429s and 5xx on its own; we plug
//! in its bare reqwest service instead, because retries must go through
//! dynamo's own policy and rate limiter or they would exceed the limits
//! configured for the whole fleet.

mod catalogue;
pub use catalogue::ModelCheckError;
mod chat;
mod errors;
mod images;
mod moderation;
mod speech;

pub(crate) use chat::name_prompt;
pub use speech::{SPEECH_FORMATS, SpeechSettings};

use crate::api_error::ApiFailure;
use crate::credentials::ApiConfig;
use crate::download::{CapAnswers, Downloader, answer_cap};
use crate::model_name::Naming;
use crate::models::{
    ImageParameter, MemoryCatalogue, ModelCatalogue, ModelChain, ModelParameters, ModelPrices,
};
use crate::on_answer::OnAnswer;
use crate::retry_hint::{CaptureRetryHints, with_retry_hint};
use crate::{ServiceId, UpstreamError};
use async_openai::Client;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use errors::{classify, classify_other, with_hint};
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub(crate) const SERVICE: ServiceId = ServiceId::new("openai");

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
    /// `OPENAI_SPEECH_*`: spoken captions (issue 30).
    pub speech: SpeechSettings,
}

#[derive(Clone)]
pub struct OpenAi {
    client: Client<ApiConfig>,
    http: reqwest::Client,
    downloader: Downloader,
    settings: OpenAiSettings,
    catalogue: Arc<dyn ModelCatalogue>,
    /// How this server's model names compare (exact at OpenAI).
    naming: Naming,
    /// The ids the server's last `GET /models` listed, for start-up advice.
    listed: Arc<std::sync::Mutex<Option<Vec<String>>>>,
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
        let config = ApiConfig::new(&settings.base_url, &settings.api_key);
        let capped = OnAnswer::new(
            ReqwestService::new(http.clone()),
            CapAnswers::new(answer_cap(settings.max_download_bytes)),
        );
        let client =
            Client::with_config(config).with_http_service(OnAnswer::new(capped, CaptureRetryHints));
        let downloader = Downloader::new(
            SERVICE,
            &settings.base_url,
            &settings.download_hosts,
            settings.max_download_bytes,
            settings.timeout,
        )?;
        Ok(Self {
            client,
            http,
            downloader,
            naming: Naming::for_base_url(&settings.base_url),
            settings,
            catalogue: Arc::new(MemoryCatalogue::default()),
            listed: Arc::default(),
            lacks: Arc::new(Lacks::default()),
        })
    }

    /// Shares what this process learns about models with the fleet.
    pub fn with_catalogue(mut self, catalogue: Arc<dyn ModelCatalogue>) -> Self {
        self.catalogue = catalogue;
        self
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
                        // Our own store failing is not the server's answer:
                        // the call goes on; a refusal that does not take is
                        // stopped by the count above.
                        if let Err(error) = self
                            .catalogue
                            .refuse_parameter(model, parameter.name(), &detail)
                            .await
                        {
                            tracing::warn!(%error, "cannot record the refused parameter");
                        }
                    }
                }
            }
        }
        Err(UpstreamError::ModelsGone {
            service: SERVICE,
            variable: chain.variable,
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
