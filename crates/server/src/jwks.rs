//! The auth service's signing keys (`{AUTH_URL}/.well-known/jwks.json`),
//! cached by key id.
//!
//! A fetch happens outside the lock that readers take, one at a time: a
//! token whose key is known never waits for a fetch, and concurrent logins
//! that need one wait for the fetch in flight only briefly
//! ([`FETCH_WAIT`]) before answering 503. After a failed fetch the next one
//! waits out a backoff (5 s, doubling to a minute): during an auth outage a
//! login costs no call and no wait, only a 503 that says when to try again.

use crate::error::ApiError;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Tokens with unknown `kid`s refresh the keys at most this often, so garbage
/// tokens cannot hammer the auth service (a real rotation is picked up at once
/// unless another unknown kid refreshed in the last interval).
const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How long a login waits for a fetch another login started.
const FETCH_WAIT: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct KeySet {
    http: reqwest::Client,
    url: String,
    state: RwLock<State>,
    /// Held by the one fetch in flight.
    fetching: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    by_kid: HashMap<String, DecodingKey>,
    fetched: bool,
    /// The last refresh caused by a token naming an unknown key.
    last_miss_refresh: Option<Instant>,
    /// After a failed fetch: no other before this.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl State {
    /// Whether a token naming `kid` is a reason to fetch now.
    fn fetch_due(&self, kid: &str, now: Instant) -> bool {
        !self.by_kid.contains_key(kid)
            && (!self.fetched
                || self
                    .last_miss_refresh
                    .is_none_or(|at| now.duration_since(at) >= REFRESH_INTERVAL))
    }

    /// The 503 of a login during the backoff after a failed fetch.
    fn backing_off(&self, now: Instant) -> Option<ApiError> {
        let left = self.retry_at?.checked_duration_since(now)?;
        let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(ApiError::unavailable(
            format!("the auth service is unavailable; try again in {seconds} s"),
            "the last fetch of its signing keys failed; backing off",
        ))
    }
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

impl KeySet {
    pub fn new(http: reqwest::Client, auth_url: &str) -> Self {
        Self {
            http,
            url: format!("{auth_url}/.well-known/jwks.json"),
            state: RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The key named `kid`, fetching the set when it is unknown (see the
    /// module's notes for when a fetch happens).
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, ApiError> {
        if let Some(key) = self.known(kid)? {
            return Ok(key);
        }
        let Ok(_turn) = tokio::time::timeout(FETCH_WAIT, self.fetching.lock()).await else {
            return Err(ApiError::unavailable(
                "the auth service is slow to answer; try again shortly",
                "another login is fetching the signing keys",
            ));
        };
        // The fetch this one waited for may have brought the key, or failed.
        if let Some(key) = self.known(kid)? {
            return Ok(key);
        }
        let now = Instant::now();
        let fetched = {
            let mut state = self.write();
            if state.fetched {
                state.last_miss_refresh = Some(now);
            }
            state.fetched
        };
        match self.fetch().await {
            Ok(by_kid) => {
                let mut state = self.write();
                state.by_kid = by_kid;
                state.fetched = true;
                state.retry_at = None;
                state.backoff = Duration::ZERO;
            }
            Err(error) => {
                let mut state = self.write();
                state.backoff = (state.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                state.retry_at = Some(Instant::now() + state.backoff);
                tracing::warn!(backoff = ?state.backoff, keys_known = fetched, "cannot fetch the auth service's signing keys; backing off");
                return Err(error);
            }
        }
        self.read()
            .by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| unknown(kid))
    }

    /// `Some(key)` when known; `None` when a fetch is due; an error when the
    /// key is unknown and no fetch is due (or one failed moments ago).
    fn known(&self, kid: &str) -> Result<Option<DecodingKey>, ApiError> {
        let state = self.read();
        if let Some(key) = state.by_kid.get(kid) {
            return Ok(Some(key.clone()));
        }
        let now = Instant::now();
        if let Some(error) = state.backing_off(now) {
            return Err(error);
        }
        if state.fetch_due(kid, now) {
            Ok(None)
        } else {
            Err(unknown(kid))
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, ApiError> {
        let url = &self.url;
        let unavailable = |e: String| {
            ApiError::unavailable(
                "the auth service is unavailable",
                format!("cannot fetch {url}: {e}"),
            )
        };
        let jwks: Jwks = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut by_kid = HashMap::new();
        for jwk in jwks.keys {
            if let (Some(kid), "RSA", Some(n), Some(e)) = (jwk.kid, jwk.kty.as_str(), jwk.n, jwk.e)
            {
                match DecodingKey::from_rsa_components(&n, &e) {
                    Ok(key) => {
                        by_kid.insert(kid, key);
                    }
                    Err(error) => {
                        tracing::warn!(%kid, %error, "skipping an unusable key in the JWKS")
                    }
                }
            }
        }
        tracing::info!(
            keys = by_kid.len(),
            "fetched the auth service's signing keys"
        );
        Ok(by_kid)
    }
}

fn unknown(kid: &str) -> ApiError {
    ApiError::Unauthorized(format!("unknown signing key {kid:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fetch_backs_off_and_says_when_to_come_back() {
        let now = Instant::now();
        let mut state = State::default();
        assert!(state.fetch_due("a", now), "never fetched: fetch");
        assert!(state.backing_off(now).is_none());
        state.retry_at = Some(now + Duration::from_millis(1500));
        let error = state.backing_off(now).map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("the auth service is unavailable; try again in 2 s")
        );
        assert!(state.backing_off(now + Duration::from_secs(2)).is_none());
    }

    #[test]
    fn unknown_kids_refresh_at_most_once_per_interval() {
        let now = Instant::now();
        let state = State {
            fetched: true,
            last_miss_refresh: Some(now),
            ..State::default()
        };
        assert!(!state.fetch_due("new", now + Duration::from_secs(1)));
        assert!(state.fetch_due("new", now + REFRESH_INTERVAL));
    }
}
