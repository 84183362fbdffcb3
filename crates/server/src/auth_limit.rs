//! Failed authentications are limited per client address: an overlay URL
//! makes the server reachable from wherever OBS runs, and a guesser must not
//! get unlimited tries (nor make unlimited calls to the auth service).
//!
//! Each address has a fixed window from its first failure: after
//! `AUTH_FAILURE_LIMIT` answers 401 within `AUTH_FAILURE_WINDOW`, every
//! request from it answers 429 with `Retry-After` until the window ends,
//! before any token is looked at. The address is the TCP peer's: behind a
//! reverse proxy every client shares the proxy's address, so limit there.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Addresses remembered before expired windows are swept out.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct AuthLimiter {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

impl AuthLimiter {
    /// `limit` 0 turns limiting off.
    pub fn new(limit: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self {
            limit,
            window,
            failures: Mutex::default(),
        })
    }

    /// How long `address` must still wait, if it is limited.
    fn blocked(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = failures.get(&address)?;
        let left = self.window.checked_sub(now.duration_since(entry.since))?;
        (entry.count >= self.limit && !left.is_zero()).then_some(left)
    }

    fn failed(&self, address: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= SWEEP_AT {
            failures.retain(|_, f| now.duration_since(f.since) < self.window);
        }
        let entry = failures.entry(address).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now.duration_since(entry.since) >= self.window {
            *entry = Failures {
                since: now,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count == self.limit {
            tracing::warn!(%address, failures = entry.count, window = ?self.window, "too many failed authentications; limiting the address");
        }
    }
}

/// The middleware: answers 429 to a limited address, counts every 401.
pub async fn limit(
    State(limiter): State<Arc<AuthLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(address) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
    else {
        return next.run(request).await;
    };
    if let Some(wait) = limiter.blocked(address, Instant::now()) {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::TooManyRequests {
            detail: format!(
                "too many failed authentications from your address; try again in {seconds} s"
            ),
            retry_after: seconds,
        }
        .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        limiter.failed(address, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_limited_after_the_limit_until_its_window_ends() {
        let limiter = AuthLimiter::new(3, Duration::from_secs(60));
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..2 {
            limiter.failed(a, start);
        }
        assert_eq!(limiter.blocked(a, start), None);
        limiter.failed(a, start);
        assert!(
            limiter
                .blocked(a, start + Duration::from_secs(59))
                .is_some()
        );
        assert_eq!(
            limiter.blocked(b, start),
            None,
            "other addresses are not limited"
        );
        assert_eq!(limiter.blocked(a, start + Duration::from_secs(60)), None);
        limiter.failed(a, start + Duration::from_secs(61));
        assert_eq!(
            limiter.blocked(a, start + Duration::from_secs(61)),
            None,
            "a new window starts from zero"
        );
    }

    #[test]
    fn zero_turns_limiting_off() {
        let limiter = AuthLimiter::new(0, Duration::from_secs(60));
        let a = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..100 {
            limiter.failed(a, now);
        }
        assert_eq!(limiter.blocked(a, now), None);
    }
}
