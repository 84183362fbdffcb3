//! How a call to another service failed: what the service did, in the
//! pipeline's words. What to do about it (retry, hold, give up) is the
//! pipeline's retry verdict, not decided here.

use crate::ServiceId;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// May work if tried again: rate limits, 5xx, timeouts, connection errors.
    #[error("{service} is unavailable: {detail}")]
    Transient {
        service: ServiceId,
        detail: String,
        /// What the service asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The service is over its rate limit (429 `rate_limit_exceeded`): wait,
    /// and slow everyone down, then try again.
    #[error("{service} is rate limiting: {detail}")]
    RateLimited {
        service: ServiceId,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// No answer in time. Retried like any transient failure, but counted on
    /// its own: the API has no idempotency key, so the timed-out call may
    /// still have run (and be billed).
    #[error("{service} did not answer in time: {detail}")]
    TimedOut { service: ServiceId, detail: String },
    /// The prompt breaks the content policy or was flagged by moderation.
    #[error("{0}")]
    Inadmissible(String),
    /// The ledger answered 409 to the debit.
    #[error("not enough points")]
    NotEnoughPoints,
    /// The service cannot serve anyone right now, for a reason that says
    /// nothing about this request: a bad key, no credit left, every
    /// configured model gone. dynamo holds requests instead of failing them
    /// (SPEC §6.10) until a probe passes.
    #[error("{service} is out of service: {reason}")]
    Outage {
        service: ServiceId,
        /// What an operator should do, in one sentence.
        reason: String,
    },
    /// Every model the setting `variable` names is shut down (or unknown to
    /// the server): a failure of the service, not of the request — the
    /// pipeline holds requests rather than fail them.
    #[error("every model in {variable} is shut down or unknown to {service}")]
    ModelsGone {
        service: ServiceId,
        variable: &'static str,
    },
    /// Will not work however often it is tried (a request the service
    /// refuses, a malformed answer).
    #[error("{service} refused: {detail}")]
    Permanent { service: ServiceId, detail: String },
}

impl UpstreamError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Transient { retry_after, .. }
            | UpstreamError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn transient(service: ServiceId, detail: impl ToString) -> Self {
        UpstreamError::Transient {
            service,
            detail: detail.to_string(),
            retry_after: None,
        }
    }

    pub(crate) fn permanent(service: ServiceId, detail: impl ToString) -> Self {
        UpstreamError::Permanent {
            service,
            detail: detail.to_string(),
        }
    }

    /// Classifies a reqwest failure: anything that did not get an answer is
    /// transient. The URL in the text is redacted: it is logged and stored.
    pub(crate) fn from_reqwest(service: ServiceId, error: reqwest::Error) -> Self {
        // A redirect refused by policy (or looping) is refused again.
        let (permanent, timeout) = (
            error.is_builder() || error.is_redirect(),
            error.is_timeout(),
        );
        let detail = crate::redact::redact_reqwest(error);
        if permanent {
            UpstreamError::permanent(service, detail)
        } else if timeout {
            UpstreamError::TimedOut { service, detail }
        } else {
            UpstreamError::transient(service, detail)
        }
    }

    /// Classifies an HTTP status that was not the expected one.
    pub(crate) fn from_status(
        service: ServiceId,
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &str,
    ) -> Self {
        let detail = format!("HTTP {status}: {}", truncate(body, 300));
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            UpstreamError::RateLimited {
                service,
                detail,
                retry_after: retry_after(headers),
            }
        } else if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
            UpstreamError::Transient {
                service,
                detail,
                retry_after: retry_after(headers),
            }
        } else {
            UpstreamError::Permanent { service, detail }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs; ignored).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    header("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
}

pub(crate) fn truncate(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// Sends a request and reads the whole answer; a status outside `accept`
/// becomes the classified error. Both auth and the ledger answer this way.
pub(crate) async fn exchange(
    service: ServiceId,
    request: reqwest::RequestBuilder,
    accept: impl Fn(reqwest::StatusCode) -> bool,
) -> Result<(reqwest::StatusCode, String), UpstreamError> {
    let response = request
        .send()
        .await
        .map_err(|e| UpstreamError::from_reqwest(service, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .map_err(|e| UpstreamError::from_reqwest(service, e))?;
    if accept(status) {
        Ok((status, text))
    } else {
        Err(UpstreamError::from_status(service, status, &headers, &text))
    }
}

/// Why a ledger call failed: what the ledger service did, or dynamo's own
/// database, where a ledger may keep its records (the Twitch ledger keeps
/// the redemptions it settles there). Only the first is the ledger's
/// doing; the pipeline waits the second out at no cost to the request.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Store(#[from] dynamo_store::StoreError),
}
