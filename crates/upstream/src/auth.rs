//! Service tokens from the Golden VCR auth service (SPEC §3): an HMAC-signed
//! request for a short-lived JWT that acts for one viewer at the ledger.

use crate::error::exchange;
use crate::token_cache::TokenCache;
use crate::{ServiceId, UpstreamError};
use chrono::{SecondsFormat, Utc};
use dynamo_wire::Viewer;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;
use std::sync::Arc;
use uuid::Uuid;

const SERVICE: ServiceId = ServiceId::new("auth");

#[derive(Clone)]
pub struct AuthClient {
    http: reqwest::Client,
    base_url: String,
    shared_secret: SecretString,
    /// Each viewer's token while it is valid, shared by every clone.
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl AuthClient {
    pub fn new(http: reqwest::Client, base_url: String, shared_secret: SecretString) -> Self {
        Self {
            http,
            base_url,
            shared_secret,
            tokens: Arc::default(),
        }
    }

    /// A token that lets dynamo act for `viewer`: the one issued before
    /// while it is valid, else a new one.
    pub async fn service_token(&self, viewer: &Viewer) -> Result<SecretString, UpstreamError> {
        let id = viewer.twitch_user_id.as_str();
        if let Some(token) = self.tokens.get(id, Utc::now()) {
            return Ok(token);
        }
        let token = self.issue(viewer).await?;
        self.tokens.put(id, &token, Utc::now());
        Ok(token)
    }

    /// The viewer's token was refused: the next call asks for a new one.
    pub fn forget_token(&self, viewer: &Viewer) {
        self.tokens.forget(viewer.twitch_user_id.as_str());
    }

    /// Asks the auth service for a token for `viewer`.
    async fn issue(&self, viewer: &Viewer) -> Result<SecretString, UpstreamError> {
        let body = serde_json::to_vec(&json!({
            "service": "dynamo",
            "user": {
                "id": viewer.twitch_user_id.as_str(),
                "login": viewer.twitch_display_name.as_str().to_lowercase(),
                "displayName": viewer.twitch_display_name.as_str(),
            }
        }))
        .map_err(|e| UpstreamError::permanent(SERVICE, e))?;
        let request_id = Uuid::new_v4().to_string();
        let timestamp = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let signature = sign(
            self.shared_secret.expose_secret().as_bytes(),
            &request_id,
            &timestamp,
            &body,
        );
        let request = self
            .http
            .post(format!("{}/service-token", self.base_url))
            .header("content-type", "application/json")
            .header("x-hmac-request-id", &request_id)
            .header("x-hmac-request-timestamp", &timestamp)
            .header("x-hmac-signature", format!("sha256={signature}"))
            .body(body);
        let (_, text) = exchange(SERVICE, request, |status| status.is_success()).await?;
        let token = text.trim();
        if token.is_empty() {
            return Err(UpstreamError::permanent(
                SERVICE,
                "answered with an empty token",
            ));
        }
        Ok(SecretString::from(token.to_owned()))
    }
}

/// Hex of HMAC-SHA256(secret, request id ‖ timestamp ‖ body).
pub fn sign(secret: &[u8], request_id: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(request_id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    /// A known answer computed outside Rust (python3's hmac module and
    /// `openssl dgst -sha256 -hmac`, agreeing; the commands are in the test
    /// kit's fake auth service, which checks the same vector).
    #[test]
    fn signs_the_known_answer_vector() {
        let body = r#"{"service":"dynamo","user":{"id":"90790024","login":"wasabimilkshake","displayName":"WasabiMilkshake"}}"#;
        assert_eq!(
            super::sign(
                b"test-shared-secret",
                "0f8fad5b-d9cb-469f-a165-70867728950e",
                "2026-12-06T03:00:00Z",
                body.as_bytes()
            ),
            "dd7f2e6526dbb610404cb68d949039e063d6cf64a4a9e006f5cf5041c5749a1b"
        );
    }
}
