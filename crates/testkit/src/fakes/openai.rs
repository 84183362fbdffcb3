//! What every fake OpenAI endpoint shares, as the real API answers it: the
//! API key checked on every call (401 `invalid_api_key`), and the account's
//! request limit enforced (429 `rate_limit_exceeded`) and reported on every
//! answer in `x-ratelimit-*` headers. The limit is a token bucket, as
//! OpenAI's: `requests_per_minute` calls, refilled evenly over
//! `requests_window`; the reset is when the bucket is full again.

use super::{FakeState, Shared, api_error, chat, generate_image, models, moderate, speech};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use std::time::{Duration, Instant};

/// The key the fake accepts (the test world's `OPENAI_API_KEY`).
pub const API_KEY: &str = "sk-test-key";
/// The request limit reported unless a test sets `requests_per_minute`.
pub const REQUESTS_PER_MINUTE: usize = 30_000;
/// The window the limit refills over unless a test sets `requests_window`.
pub const REQUESTS_WINDOW: Duration = Duration::from_secs(60);

pub(super) fn routes(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/openai/v1/images/generations", post(generate_image))
        .route("/openai/v1/chat/completions", post(chat))
        .route("/openai/v1/moderations", post(moderate))
        .route("/openai/v1/audio/speech", post(speech::speak))
        .route("/openai/v1/models", get(models::list))
        .route("/openai/v1/models/{model}", get(models::get_one))
        .route_layer(from_fn_with_state(state, gate))
}

/// OpenAI's duration format in `x-ratelimit-reset-*`: `6m0s`, `1s`, `12ms`.
fn openai_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        return format!("{}s", (secs * 1000.0).round() / 1000.0);
    }
    format!("{}m{}s", duration.as_secs() / 60, duration.as_secs() % 60)
}

async fn gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if key != Some(API_KEY) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        );
    }
    let admitted = state.lock().unwrap().take_openai_request();
    let mut response = if admitted {
        next.run(request).await
    } else {
        api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for requests per min",
        )
    };
    let (limit, remaining, reset) = state.lock().unwrap().openai_budget();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit-requests", limit.to_string()),
        ("x-ratelimit-remaining-requests", remaining.to_string()),
        ("x-ratelimit-reset-requests", openai_duration(reset)),
    ] {
        // Digits and ASCII letters are always a valid header value.
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}

impl FakeState {
    /// The bucket's level now: full until the first call.
    fn openai_level(&mut self) -> f64 {
        let now = Instant::now();
        let limit = self.requests_per_minute.max(1) as f64;
        let per_second = limit / self.requests_window.as_secs_f64().max(0.001);
        let (level, at) = self.openai_bucket.unwrap_or((limit, now));
        let level = (level + now.duration_since(at).as_secs_f64() * per_second).min(limit);
        self.openai_bucket = Some((level, now));
        level
    }

    /// Takes one call from the bucket; false when it is empty (the call is
    /// refused, counted in `requests_429s`).
    fn take_openai_request(&mut self) -> bool {
        let level = self.openai_level();
        if level < 1.0 {
            self.requests_429s += 1;
            return false;
        }
        self.openai_bucket = self.openai_bucket.map(|(_, at)| (level - 1.0, at));
        self.openai_call_times.push(Instant::now());
        true
    }

    /// The limit, the calls left now and the time until the bucket is full.
    fn openai_budget(&mut self) -> (usize, usize, Duration) {
        let limit = self.requests_per_minute.max(1);
        let level = self.openai_level();
        let missing = (limit as f64 - level).max(0.0) / limit as f64;
        let reset = self.requests_window.mul_f64(missing);
        (limit, level.floor() as usize, reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_openai_writes_them() {
        assert_eq!(openai_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(openai_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
    }
}
