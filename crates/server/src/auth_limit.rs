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
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct AuthLimiter {
    limit: u32,
    window: Duration,
    /// At most this many addresses are remembered; past it the oldest
    /// window is forgotten (`AUTH_FAILURE_MAX_ADDRESSES`).
    max_addresses: usize,
    failures: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    by_address: HashMap<IpAddr, Failures>,
    /// Every remembered address with the start of its window, oldest
    /// first: expired and evicted windows leave from the front, so no
    /// failure rescans the map.
    oldest_first: VecDeque<(IpAddr, Instant)>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// The address a client is limited by: IPv6 clients by their /64 network
/// (one host usually holds a whole /64 and can rotate through it), IPv4
/// clients (and IPv4-mapped IPv6) by their address.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(network.into())
            }
        },
    }
}

impl Remembered {
    /// Forgets the window at the front of the queue (if it is still the
    /// address's current one).
    fn forget_front(&mut self) {
        if let Some((address, since)) = self.oldest_first.pop_front()
            && self
                .by_address
                .get(&address)
                .is_some_and(|f| f.since == since)
        {
            self.by_address.remove(&address);
        }
    }
}

impl AuthLimiter {
    /// `limit` 0 turns limiting off.
    pub fn new(limit: u32, window: Duration, max_addresses: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            window,
            max_addresses: max_addresses.max(1),
            failures: Mutex::default(),
        })
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `address` must still wait, if it is limited.
    fn blocked(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let remembered = self.remembered();
        let entry = remembered.by_address.get(&client_key(address))?;
        let left = self.window.checked_sub(now.duration_since(entry.since))?;
        (entry.count >= self.limit && !left.is_zero()).then_some(left)
    }

    fn failed(&self, address: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let address = client_key(address);
        let mut remembered = self.remembered();
        while remembered
            .oldest_first
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) >= self.window)
        {
            remembered.forget_front();
        }
        if let Some(entry) = remembered.by_address.get(&address)
            && now.duration_since(entry.since) >= self.window
        {
            remembered.by_address.remove(&address);
        }
        if !remembered.by_address.contains_key(&address) {
            while remembered.by_address.len() >= self.max_addresses {
                remembered.forget_front();
            }
            remembered.oldest_first.push_back((address, now));
        }
        let entry = remembered.by_address.entry(address).or_insert(Failures {
            since: now,
            count: 0,
        });
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
        let limiter = AuthLimiter::new(3, Duration::from_secs(60), 100);
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
    fn the_remembered_addresses_stay_under_the_cap_oldest_forgotten_first() {
        let limiter = AuthLimiter::new(2, Duration::from_secs(60), 100);
        let now = Instant::now();
        let first: IpAddr = "10.0.0.1".parse().unwrap();
        limiter.failed(first, now);
        limiter.failed(first, now);
        assert!(limiter.blocked(first, now).is_some());
        for i in 0..10_000u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            limiter.failed(address, now);
            assert!(limiter.remembered().by_address.len() <= 100);
        }
        let remembered = limiter.remembered();
        assert_eq!(remembered.by_address.len(), 100);
        assert_eq!(
            remembered.oldest_first.len(),
            100,
            "no stale queue entries pile up"
        );
        assert!(
            !remembered.by_address.contains_key(&first),
            "the oldest went first"
        );
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64_network() {
        let limiter = AuthLimiter::new(3, Duration::from_secs(60), 100);
        let now = Instant::now();
        for host in 1..=3u16 {
            let rotated: IpAddr = format!("2001:db8:1:2::{host:x}").parse().unwrap();
            limiter.failed(rotated, now);
        }
        let next: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limiter.blocked(next, now).is_some());
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limiter.blocked(elsewhere, now), None);
    }

    #[test]
    fn zero_turns_limiting_off() {
        let limiter = AuthLimiter::new(0, Duration::from_secs(60), 100);
        let a = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..100 {
            limiter.failed(a, now);
        }
        assert_eq!(limiter.blocked(a, now), None);
    }
}
