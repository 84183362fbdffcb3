//! How an OpenAI-compatible server's failures are sorted into
//! [`UpstreamError`]s: what the upstream did, not what to do about it.

use super::SERVICE;
use crate::UpstreamError;
use crate::api_error::ApiFailure;
use crate::retry_hint::Captured;
use async_openai::error::OpenAIError;

/// Puts the wait the server asked for into a classified error.
pub(super) fn with_hint(error: UpstreamError, captured: Captured) -> UpstreamError {
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
pub(super) fn classify(failure: &ApiFailure) -> UpstreamError {
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
pub(super) fn classify_other(error: OpenAIError) -> UpstreamError {
    match error {
        OpenAIError::Reqwest(error) => UpstreamError::from_reqwest(SERVICE, error),
        // A garbled answer is usually a proxy's error page: worth another try.
        OpenAIError::JSONDeserialize(error, _) => {
            UpstreamError::transient(SERVICE, format!("unreadable answer: {error}"))
        }
        other => UpstreamError::permanent(SERVICE, other),
    }
}
