//! What is left of the account's rate limit, as every OpenAI answer says in
//! its `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` headers (SPEC §3:
//! "can slow the limiter before a 429 ever comes").
//!
//! The answer step that reads the retry hints ([`crate::retry_hint`]) leaves
//! the budget in a task-local slot that the caller set up with
//! [`with_rate_budget`]; calls made outside such a scope (the model
//! catalogue's) leave it nowhere.

use std::cell::Cell;
use std::time::Duration;

tokio::task_local! {
    static RATE_BUDGET: Cell<Option<RateBudget>>;
}

/// How many more calls the upstream takes before `reset`, when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    /// Calls left until `reset`.
    pub remaining: u64,
    /// When the limit is whole again.
    pub reset: Duration,
}

/// Runs `call` and returns its result with the budget its last answer reported.
pub async fn with_rate_budget<T, F>(call: F) -> (T, Option<RateBudget>)
where
    F: std::future::Future<Output = T>,
{
    RATE_BUDGET
        .scope(Cell::new(None), async {
            let result = call.await;
            (result, RATE_BUDGET.with(Cell::get))
        })
        .await
}

/// Leaves the budget in `headers` in the caller's slot, if there is one.
pub(crate) fn record(headers: &reqwest::header::HeaderMap) {
    if let Some(budget) = rate_budget(headers) {
        let _ = RATE_BUDGET.try_with(|slot| slot.set(Some(budget)));
    }
}

/// The tighter of the request and token budgets. Requests count calls; a
/// call's tokens are not known before it is made, so the token budget only
/// counts once it is spent (no call fits until its reset).
pub fn rate_budget(headers: &reqwest::header::HeaderMap) -> Option<RateBudget> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let count = |name: &str| header(name).and_then(|v| v.trim().parse::<u64>().ok());
    let reset = |name: &str| header(name).and_then(crate::retry_hint::parse_reset);
    let requests = count("x-ratelimit-remaining-requests")
        .zip(reset("x-ratelimit-reset-requests"))
        .map(|(remaining, reset)| RateBudget { remaining, reset });
    let tokens = count("x-ratelimit-remaining-tokens")
        .filter(|&left| left == 0)
        .zip(reset("x-ratelimit-reset-tokens"))
        .map(|(remaining, reset)| RateBudget { remaining, reset });
    [requests, tokens]
        .into_iter()
        .flatten()
        .min_by_key(|budget| (budget.remaining, std::cmp::Reverse(budget.reset)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_request_budget_is_read() {
        let map = headers(&[
            ("x-ratelimit-remaining-requests", "2"),
            ("x-ratelimit-reset-requests", "1.5s"),
            ("x-ratelimit-remaining-tokens", "149000"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        let budget = RateBudget {
            remaining: 2,
            reset: Duration::from_millis(1500),
        };
        assert_eq!(rate_budget(&map), Some(budget));
    }

    #[test]
    fn spent_tokens_leave_no_call() {
        let map = headers(&[
            ("x-ratelimit-remaining-requests", "2"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "20s"),
        ]);
        let budget = RateBudget {
            remaining: 0,
            reset: Duration::from_secs(20),
        };
        assert_eq!(rate_budget(&map), Some(budget));
    }

    #[test]
    fn no_headers_no_budget() {
        assert_eq!(rate_budget(&HeaderMap::new()), None);
        let half = headers(&[("x-ratelimit-remaining-requests", "2")]);
        assert_eq!(rate_budget(&half), None);
    }
}
