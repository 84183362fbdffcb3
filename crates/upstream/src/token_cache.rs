//! The auth service's service tokens, kept in memory per viewer while they
//! are valid (SPEC §3: a short-lived JWT, ~15 min). A request needs the
//! viewer's token for its debit and again for its settlement, and a viewer
//! often sends several requests in a row: one token serves them all. Never
//! written anywhere: a restart simply asks again.
//!
//! The token's own `exp` says how long it lasts (read, not verified: the
//! ledger verifies it). It is reused until [`MARGIN`] before then — or half
//! its life, for a shorter-lived token — so that it never expires between
//! being taken from here and reaching the ledger. A token without a
//! readable `exp` is not kept.

use base64::Engine;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long before its expiry a token stops being reused.
const MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// At most this many viewers' tokens are kept; when full, the expired go
/// first, then everything (the next calls ask again).
const MAX_VIEWERS: usize = 10_000;

#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    token: SecretString,
    reuse_until: DateTime<Utc>,
}

impl TokenCache {
    /// The viewer's token, while it may still be used.
    pub(crate) fn get(&self, viewer_id: &str, now: DateTime<Utc>) -> Option<SecretString> {
        self.lock()
            .get(viewer_id)
            .filter(|cached| now < cached.reuse_until)
            .map(|cached| cached.token.clone())
    }

    /// Keeps a token the auth service just issued (at `now`).
    pub(crate) fn put(&self, viewer_id: &str, token: &SecretString, now: DateTime<Utc>) {
        let Some(reuse_until) = reuse_until(token.expose_secret(), now) else {
            return;
        };
        let mut tokens = self.lock();
        if tokens.len() >= MAX_VIEWERS && !tokens.contains_key(viewer_id) {
            tokens.retain(|_, cached| now < cached.reuse_until);
            if tokens.len() >= MAX_VIEWERS {
                tokens.clear();
            }
        }
        tokens.insert(
            viewer_id.to_owned(),
            Cached {
                token: token.clone(),
                reuse_until,
            },
        );
    }

    /// Drops the viewer's token (the ledger refused a call made with it).
    pub(crate) fn forget(&self, viewer_id: &str) {
        self.lock().remove(viewer_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A poisoned lock only means a thread panicked mid-insert of a plain
        // map entry; the map is still usable.
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Until when a token issued at `now` may be reused: its `exp` less the
/// margin (or half its remaining life, when that is shorter). `None` when
/// it has no readable `exp`, or is as good as expired.
fn reuse_until(token: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)?;
    let life = exp - now;
    let until = exp - MARGIN.min(life / 2);
    (until > now).then_some(until)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.signature",
            encode(r#"{"alg":"RS256","kid":"a"}"#),
            encode(claims)
        )
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_fifteen_minute_token_is_reused_until_thirty_seconds_before_it_expires() {
        let now = at(1_000_000);
        let token = token(r#"{"exp":1000900,"twitch_user_id":"7"}"#);
        assert_eq!(reuse_until(&token, now), Some(at(1_000_870)));
    }

    #[test]
    fn a_short_lived_token_is_reused_for_half_its_life() {
        assert_eq!(
            reuse_until(&token(r#"{"exp":1000010}"#), at(1_000_000)),
            Some(at(1_000_005))
        );
    }

    #[test]
    fn a_token_without_a_readable_expiry_is_not_kept() {
        let now = at(1_000_000);
        for token in [
            token(r#"{"twitch_user_id":"7"}"#),
            token(r#"{"exp":"soon"}"#),
            token(r#"{"exp":999999}"#),
            "token-for.7".to_owned(),
            "not a jwt".to_owned(),
        ] {
            assert_eq!(reuse_until(&token, now), None, "{token}");
        }
    }

    #[test]
    fn the_cache_serves_a_viewer_its_own_token_until_it_is_due() {
        let cache = TokenCache::default();
        let now = at(1_000_000);
        let issued = SecretString::from(token(r#"{"exp":1000900}"#));
        cache.put("7", &issued, now);
        let got = cache.get("7", at(1_000_869)).unwrap();
        assert_eq!(got.expose_secret(), issued.expose_secret());
        assert!(cache.get("8", now).is_none(), "another viewer's token");
        assert!(cache.get("7", at(1_000_870)).is_none(), "due for a new one");
        cache.forget("7");
        assert!(cache.get("7", now).is_none(), "forgotten");
    }
}
