//! Who is calling, and what they may do.
//!
//! Two modes (`AUTH_MODE`):
//! - `goldenvcr` (default): bearer JWTs from the Golden VCR auth service, RS256,
//!   keys from `{AUTH_URL}/.well-known/jwks.json` (cached, refreshed when a
//!   token names an unknown `kid`), `iss` and `exp` checked. Tokens that are not
//!   JWTs (Twitch user tokens) are checked with `GET {AUTH_URL}/access`, and the
//!   answer, an acceptance or a rejection, is cached for a minute: a rejected
//!   token costs one call a minute however often it is sent.
//! - `standalone`: for deployments without that service. Admins present a
//!   static token whose SHA-256 is listed in `ADMIN_TOKEN_SHA256`; only hashes
//!   are configured, so the settings never hold a usable secret.

use crate::config::GoldenVcrSettings;
use crate::error::ApiError;
use crate::jwks::KeySet;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long an `/access` answer is trusted.
const ACCESS_CACHE_TTL: Duration = Duration::from_secs(60);

/// The caller of a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Sees only their own requests.
    Viewer { twitch_user_id: String },
    /// The streamer: sees everything, may enqueue and retry.
    Broadcaster { twitch_user_id: String },
    /// Another Golden VCR service (`gvcr_service`), or a standalone admin.
    Service { name: String },
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        !matches!(self, Caller::Viewer { .. })
    }

    /// Whether this caller may see a request of `twitch_user_id`.
    pub fn can_see(&self, twitch_user_id: &str) -> bool {
        match self {
            Caller::Viewer {
                twitch_user_id: own,
            } => own == twitch_user_id,
            _ => true,
        }
    }

    /// Who holds an event stream, for the per-caller limit.
    pub fn stream_key(&self) -> String {
        match self {
            Caller::Viewer { twitch_user_id } | Caller::Broadcaster { twitch_user_id } => {
                format!("user:{twitch_user_id}")
            }
            Caller::Service { name } => format!("service:{name}"),
        }
    }

    /// Admin-only operations call this first.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only the broadcaster or a service may do this".into(),
            ))
        }
    }
}

#[derive(Debug)]
pub enum Authenticator {
    GoldenVcr(Box<GoldenVcrAuth>),
    Standalone { admin_token_hashes: Vec<[u8; 32]> },
}

#[derive(Debug)]
pub struct GoldenVcrAuth {
    http: reqwest::Client,
    auth_url: String,
    issuer: String,
    settings: GoldenVcrSettings,
    keys: KeySet,
    /// `/access` answers by token digest: callers, and tokens it rejected
    /// (a negative cache: a rejected token, however often it is sent, costs
    /// one call per [`ACCESS_CACHE_TTL`]).
    access_cache: Mutex<HashMap<[u8; 32], (Verdict, Instant)>>,
    /// One `/access` call at a time per token: concurrent requests with the
    /// same token wait for the first one's answer instead of each calling.
    in_flight: Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>,
}

#[derive(Debug, Clone)]
enum Verdict {
    Accepted(Caller),
    Rejected,
}

/// The cache forgets expired answers once it holds this many, and forgets
/// everything if they are all fresh (a flood of random tokens): memory stays
/// bounded, at the price of a few extra calls.
const ACCESS_CACHE_MAX: usize = 100_000;

#[derive(Debug, Deserialize)]
struct Claims {
    twitch_user_id: Option<String>,
    gvcr_service: Option<String>,
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Access {
    user: AccessUser,
    role: String,
}

#[derive(Debug, Deserialize)]
struct AccessUser {
    id: String,
}

/// The admin token of the local stack (`scripts/dev.sh`, docker-compose):
/// public by design, so the page may name it when the server accepts it.
pub const DEVELOPMENT_TOKEN: &str = "dev-admin-token";

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    pub fn golden_vcr(
        http: reqwest::Client,
        auth_url: String,
        issuer: String,
        settings: GoldenVcrSettings,
    ) -> Self {
        Authenticator::GoldenVcr(Box::new(GoldenVcrAuth {
            keys: KeySet::new(http.clone(), &auth_url),
            http,
            auth_url,
            issuer,
            settings,
            access_cache: Mutex::default(),
            in_flight: Mutex::default(),
        }))
    }

    /// True when this server accepts [`DEVELOPMENT_TOKEN`] as an admin
    /// token: a local stack, where anyone who can reach it is admin.
    pub fn accepts_development_token(&self) -> bool {
        match self {
            Authenticator::Standalone { admin_token_hashes } => {
                admin_token_hashes.contains(&sha256(DEVELOPMENT_TOKEN))
            }
            Authenticator::GoldenVcr(_) => false,
        }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        match self {
            Authenticator::Standalone { admin_token_hashes } => {
                let presented = sha256(token);
                // Compare every byte of every hash: no early exit to time.
                let known = admin_token_hashes.iter().fold(false, |found, hash| {
                    let same = hash
                        .iter()
                        .zip(presented)
                        .fold(0u8, |d, (a, b)| d | (a ^ b))
                        == 0;
                    found | same
                });
                if known {
                    Ok(Caller::Service {
                        name: "admin".into(),
                    })
                } else {
                    Err(ApiError::Unauthorized("unknown token".into()))
                }
            }
            Authenticator::GoldenVcr(auth) => match decode_header(token) {
                Ok(header) => auth.verify_jwt(token, header).await,
                Err(_) => auth.check_access(token).await,
            },
        }
    }
}

impl GoldenVcrAuth {
    async fn verify_jwt(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
    ) -> Result<Caller, ApiError> {
        if header.alg != Algorithm::RS256 {
            return Err(ApiError::Unauthorized(
                "tokens must be signed with RS256".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| ApiError::Unauthorized("the token names no key (kid)".into()))?;
        let key = self.keys.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        match &self.settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            }
            // Golden VCR's tokens carry no `aud` (SPEC §3).
            None => {
                validation.set_required_spec_claims(&["exp", "iss"]);
                validation.validate_aud = false;
            }
        }
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| ApiError::Unauthorized(format!("invalid token: {e}")))?
            .claims;
        if let Some(service) = claims.gvcr_service {
            if self.settings.admin_services.contains(&service) {
                return Ok(Caller::Service { name: service });
            }
            // A service token minted for a viewer (dynamo's own, for the
            // ledger) is that viewer here, never an admin.
            if claims.twitch_user_id.is_none() {
                return Err(ApiError::Forbidden(format!(
                    "tokens of service {service:?} are not accepted here (ADMIN_SERVICES)"
                )));
            }
        }
        let twitch_user_id = claims
            .twitch_user_id
            .ok_or_else(|| ApiError::Unauthorized("the token names no user".into()))?;
        Ok(match claims.role.as_deref() {
            Some("broadcaster") => Caller::Broadcaster { twitch_user_id },
            _ => Caller::Viewer { twitch_user_id },
        })
    }

    async fn cached(&self, digest: &[u8; 32]) -> Option<Result<Caller, ApiError>> {
        let cache = self.access_cache.lock().await;
        let (verdict, at) = cache.get(digest)?;
        if at.elapsed() >= ACCESS_CACHE_TTL {
            return None;
        }
        Some(match verdict {
            Verdict::Accepted(caller) => Ok(caller.clone()),
            Verdict::Rejected => Err(rejected()),
        })
    }

    async fn remember(&self, digest: [u8; 32], verdict: Verdict) {
        let mut cache = self.access_cache.lock().await;
        if cache.len() >= ACCESS_CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < ACCESS_CACHE_TTL);
            if cache.len() >= ACCESS_CACHE_MAX {
                tracing::warn!(
                    entries = cache.len(),
                    "the token cache is full of fresh answers; forgetting them"
                );
                cache.clear();
            }
        }
        cache.insert(digest, (verdict, Instant::now()));
    }

    async fn check_access(&self, token: &str) -> Result<Caller, ApiError> {
        let digest = sha256(token);
        if let Some(answer) = self.cached(&digest).await {
            return answer;
        }
        let gate = self
            .in_flight
            .lock()
            .await
            .entry(digest)
            .or_default()
            .clone();
        let answer = {
            let _turn = gate.lock().await;
            // Whoever held the turn before may have answered for us.
            match self.cached(&digest).await {
                Some(answer) => answer,
                None => self.ask_access(token, digest).await,
            }
        };
        let mut in_flight = self.in_flight.lock().await;
        // Only this map and the callers holding a clone keep the gate.
        if Arc::strong_count(&gate) <= 2 {
            in_flight.remove(&digest);
        }
        answer
    }

    /// One `GET /access` call; its verdict is remembered (not its outages).
    async fn ask_access(&self, token: &str, digest: [u8; 32]) -> Result<Caller, ApiError> {
        let response = self
            .http
            .get(format!("{}/access", self.auth_url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| ApiError::unavailable("the auth service is unavailable", e))?;
        if matches!(
            response.status(),
            reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN
        ) {
            self.remember(digest, Verdict::Rejected).await;
            return Err(rejected());
        }
        let access: Access = response
            .error_for_status()
            .map_err(|e| ApiError::unavailable("the auth service is unavailable", e))?
            .json()
            .await
            .map_err(|e| {
                ApiError::unavailable(
                    "the auth service is unavailable",
                    format!("unreadable answer from /access: {e}"),
                )
            })?;
        let caller = match access.role.as_str() {
            "broadcaster" => Caller::Broadcaster {
                twitch_user_id: access.user.id,
            },
            _ => Caller::Viewer {
                twitch_user_id: access.user.id,
            },
        };
        self.remember(digest, Verdict::Accepted(caller.clone()))
            .await;
        Ok(caller)
    }
}

fn rejected() -> ApiError {
    ApiError::Unauthorized("the token was not accepted".into())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("send a bearer token: Authorization: Bearer <token>".into())
            })?;
        state.auth.authenticate(token).await
    }
}

/// A caller who may do admin-only operations; anyone else is answered 403
/// before the rest of the request (its body, its path) is even looked at.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn standalone_mode_accepts_only_listed_token_hashes() {
        let auth = Authenticator::Standalone {
            admin_token_hashes: vec![sha256("correct horse battery staple")],
        };
        let caller = auth
            .authenticate("correct horse battery staple")
            .await
            .unwrap();
        assert!(caller.is_admin());
        assert!(matches!(
            auth.authenticate("correct horse battery stapler").await,
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[test]
    fn viewers_see_only_their_own_requests() {
        let viewer = Caller::Viewer {
            twitch_user_id: "1".into(),
        };
        assert!(viewer.can_see("1"));
        assert!(!viewer.can_see("2"));
        assert!(viewer.require_admin().is_err());
        let broadcaster = Caller::Broadcaster {
            twitch_user_id: "9".into(),
        };
        assert!(broadcaster.can_see("2") && broadcaster.require_admin().is_ok());
    }
}
