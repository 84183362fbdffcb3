//! What OpenAI says about waiting, captured from response headers.
//!
//! async-openai turns an error answer into an `ApiError` without its headers,
//! but `Retry-After`, `retry-after-ms` and `x-ratelimit-reset-*` are what rate
//! limiting needs. A thin tower service between async-openai and reqwest reads
//! them and leaves the hint in a task-local slot that the calling code set up
//! (the service runs inside the caller's task), so concurrent calls never see
//! each other's hints. The slot keeps the answer's status too: an error body
//! async-openai cannot read (a compatible server's `{"error":"text"}`, an
//! empty 404) reaches us without it otherwise. The same look records the
//! account's remaining budget ([`crate::rate_budget`]).

use crate::on_answer::AnswerStep;
use async_openai::error::OpenAIError;
use futures::future::BoxFuture;
use std::cell::Cell;
use std::time::Duration;

tokio::task_local! {
    static RETRY_HINT: Cell<Captured>;
}

/// What the last answer of a call said besides its body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Captured {
    /// The wait the server asked for, if it did.
    pub hint: Option<Duration>,
    /// The HTTP status of the last answer.
    pub status: Option<u16>,
}

/// Runs `call` and returns its result with what its answer's headers said.
pub async fn with_retry_hint<T, F>(call: F) -> (T, Captured)
where
    F: std::future::Future<Output = T>,
{
    RETRY_HINT
        .scope(Cell::new(Captured::default()), async {
            let result = call.await;
            (result, RETRY_HINT.with(Cell::get))
        })
        .await
}

/// Leaves each answer's status and wait hint in the caller's slot. An
/// [`AnswerStep`] of the OpenAI client's chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CaptureRetryHints;

impl AnswerStep for CaptureRetryHints {
    fn on_answer(
        &self,
        response: reqwest::Response,
    ) -> BoxFuture<'static, Result<reqwest::Response, OpenAIError>> {
        Box::pin(async move {
            let status = response.status();
            crate::rate_budget::record(response.headers());
            // The `x-ratelimit-reset-*` headers come on every answer and say
            // when the rate limit refills: a wait only for a 429. A server
            // error's wait is its Retry-After alone.
            let hint = match status.as_u16() {
                429 => wait_hint(response.headers()),
                _ if status.is_server_error() => crate::error::retry_after(response.headers()),
                _ => None,
            };
            let captured = Captured {
                hint,
                status: Some(status.as_u16()),
            };
            let _ = RETRY_HINT.try_with(|slot| slot.set(captured));
            Ok(response)
        })
    }
}

/// The longest wait any of the headers asks for.
pub fn wait_hint(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut hints = vec![crate::error::retry_after(headers)];
    for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
        hints.push(header(name).and_then(parse_reset));
    }
    hints.into_iter().flatten().max()
}

/// OpenAI's reset format: `1s`, `6m0s`, `20ms`, `1h2m3.5s`.
pub(crate) fn parse_reset(raw: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = raw.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().ok()?;
        let (unit, scale) = if tail.starts_with("ms") {
            ("ms", 0.001)
        } else if tail.starts_with('h') {
            ("h", 3600.0)
        } else if tail.starts_with('m') {
            ("m", 60.0)
        } else if tail.starts_with('s') {
            ("s", 1.0)
        } else {
            return None;
        };
        total += value * scale;
        rest = &tail[unit.len()..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_formats_parse() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_reset("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_reset("soon"), None);
    }

    #[test]
    fn the_longest_hint_wins() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        headers.insert("x-ratelimit-reset-requests", "6m0s".parse().unwrap());
        assert_eq!(wait_hint(&headers), Some(Duration::from_secs(360)));
    }
}
