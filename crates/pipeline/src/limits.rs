//! Fleet-wide rate limits around a provider's calls (SPEC §6.5).
//!
//! Each limited provider has its own [`RateLimits`], named after its
//! [`ServiceId`] (`openai-requests`, `openai-images`): every call to it
//! first takes a slot from its requests limiter, and image calls one from
//! its images limiter too; both live in PostgreSQL, so the limits hold
//! summed over every consumer process. A 429 pauses the provider's limiter
//! for all of them, for as long as it asked (or a default); and before any
//! 429, an answer reporting that the account's budget is nearly spent
//! (`x-ratelimit-remaining-*`) holds the calls beyond it until its reset.
//! A provider with no limits (the placeholder) is never slowed by another's.
//!
//! The limiter is dynamo's own: its database failing is an [`Infra`]
//! failure and its having no slot is [`StepError::Throttled`], never a
//! failure of the upstream.

use crate::failure::{Infra, StepError};
use crate::metrics::Metrics;
use dynamo_runtime::{Env, SettingError};
use dynamo_store::{Permit, RateLimiter};
use dynamo_upstream::{RateBudget, ServiceId, UpstreamError, with_rate_budget};
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Pause after a 429 that did not say how long to wait.
const DEFAULT_PAUSE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    /// `OPENAI_REQUESTS_PER_MINUTE`, default 50: all OpenAI calls, all processes.
    pub requests_per_window: u32,
    /// `OPENAI_IMAGES_PER_MINUTE`, default 5: image generations, all processes.
    pub images_per_window: u32,
    /// `RATE_LIMIT_WINDOW`, default 60s (tests use less). The limits count
    /// calls in any sliding window of this length.
    pub window: Duration,
}

impl RateSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let settings = Self {
            requests_per_window: env.parse("OPENAI_REQUESTS_PER_MINUTE", 50)?,
            images_per_window: env.parse("OPENAI_IMAGES_PER_MINUTE", 5)?,
            window: env.duration("RATE_LIMIT_WINDOW", Duration::from_secs(60))?,
        };
        if settings.requests_per_window == 0 {
            return Err(SettingError::new(
                "OPENAI_REQUESTS_PER_MINUTE",
                "must be at least 1",
            ));
        }
        if settings.images_per_window == 0 {
            return Err(SettingError::new(
                "OPENAI_IMAGES_PER_MINUTE",
                "must be at least 1",
            ));
        }
        Ok(settings)
    }
}

#[derive(Debug)]
pub struct RateLimits {
    /// The provider whose calls these are.
    service: ServiceId,
    requests: RateLimiter,
    images: RateLimiter,
    metrics: Arc<Metrics>,
    /// How long a call waits for a slot in place (`RETRY_INLINE_MAX`);
    /// longer, and its request is let go to wait in the database.
    patience: Duration,
}

impl RateLimits {
    /// The limits of `service`'s calls. `max_call` is the longest one call
    /// may take (the provider's timeout): a call whose process died stops
    /// counting after it.
    pub fn new(
        pool: PgPool,
        service: ServiceId,
        settings: RateSettings,
        max_call: Duration,
        patience: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let limiter = |endpoint: &str, limit: u32| {
            let name = service.limiter(endpoint);
            RateLimiter::new(pool.clone(), &name, limit, settings.window, max_call)
        };
        Self {
            service,
            requests: limiter("requests", settings.requests_per_window),
            images: limiter("images", settings.images_per_window),
            metrics,
            patience,
        }
    }

    /// The provider whose calls these limits count.
    pub fn service(&self) -> ServiceId {
        self.service
    }

    /// A slot of `limiter`, waited for in place up to `patience`; beyond
    /// that the call is not made (`Throttled`) and the request let go.
    async fn admit(&self, limiter: &RateLimiter) -> Result<Permit, StepError> {
        let admitted = limiter
            .acquire_within(self.patience)
            .await
            .map_err(Infra::Database)?;
        match admitted {
            Ok(permit) => {
                self.metrics
                    .rate_limiter_waited(limiter.name(), permit.waited);
                Ok(permit)
            }
            Err(wait) => {
                self.metrics
                    .rate_limiter_waited(limiter.name(), self.patience.min(wait));
                Err(StepError::Throttled {
                    limiter: limiter.name().to_owned(),
                    retry_after: wait.max(Duration::from_secs(1)),
                })
            }
        }
    }

    /// Makes `call` (to `endpoint`) once it has its slots.
    pub(crate) async fn run<T>(
        &self,
        endpoint: Endpoint,
        call: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, StepError> {
        let image = endpoint == Endpoint::Images;
        let endpoint = endpoint.as_str();
        let mut permits = vec![self.admit(&self.requests).await?];
        if image {
            match self.admit(&self.images).await {
                Ok(permit) => permits.push(permit),
                Err(throttled) => {
                    // The call is not made: its request slot is not spent.
                    for permit in permits {
                        if let Err(error) = permit.cancel().await {
                            tracing::warn!(%error, "could not give an unused slot back");
                        }
                    }
                    return Err(throttled);
                }
            }
        }
        let (result, budget) = with_rate_budget(call).await;
        if let Err(error) = Permit::finish_all(permits).await {
            // The slots then count until the call would have timed out.
            tracing::warn!(%error, "could not record the end of a rate-limited call");
        }
        if let Some(budget) = budget {
            self.keep_within(budget, endpoint).await;
        }
        self.metrics.openai_call(endpoint, &result);
        if let Err(UpstreamError::RateLimited { retry_after, .. }) = &result {
            let pause = retry_after.unwrap_or(DEFAULT_PAUSE);
            tracing::warn!(
                ?pause,
                endpoint,
                service = %self.service,
                "the provider rate limited us; pausing every consumer"
            );
            let limiter = if image { &self.images } else { &self.requests };
            if let Err(error) = limiter.pause(pause).await {
                tracing::warn!(%error, "could not record the pause");
            }
        }
        result.map_err(StepError::Upstream)
    }
}

impl RateLimits {
    /// Spends no call on a 429: with less left of the account's budget than
    /// our own limit admits, the requests limiter (every call takes it)
    /// admits no more than is left until OpenAI's reset. The provider counts
    /// per model; one budget for all is the cautious reading.
    async fn keep_within(&self, budget: RateBudget, endpoint: &str) {
        if budget.remaining > self.requests.limit() {
            // Our own limit is the tighter: nothing to ask the database.
            return;
        }
        if self.requests.limit() - budget.remaining > MOST_RESERVED {
            // Our own limit is far above the account's: holding calls back
            // slot by slot would write a row per slot (with 10,000,000 a
            // minute against OpenAI's 30,000: millions per call). Only a
            // spent budget holds every call back, until its reset.
            if budget.remaining == 0 {
                match self.requests.pause(budget.reset).await {
                    Ok(()) => tracing::info!(
                        reset = ?budget.reset,
                        endpoint,
                        "the provider's rate budget is spent; holding calls back until its reset"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "could not hold calls back to the provider's budget")
                    }
                }
            }
            return;
        }
        match self
            .requests
            .keep_within(budget.remaining, budget.reset)
            .await
        {
            Ok(0) => {}
            Ok(reserved) => tracing::info!(
                remaining = budget.remaining,
                reset = ?budget.reset,
                reserved,
                endpoint,
                "the provider's rate budget is nearly spent; holding calls back until its reset"
            ),
            Err(error) => {
                tracing::warn!(%error, "could not hold calls back to the provider's budget")
            }
        }
    }
}

/// The most slots an account's budget may reserve in our limiter at once
/// (each is a row until the reset); beyond, only a spent budget pauses it.
const MOST_RESERVED: u64 = 1_000;

/// The endpoints the limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Images,
    Chat,
    Moderation,
    /// A spoken caption (`/audio/speech`): one request slot, like chat.
    Speech,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Images => "images",
            Endpoint::Chat => "chat",
            Endpoint::Moderation => "moderation",
            Endpoint::Speech => "speech",
        }
    }
}
