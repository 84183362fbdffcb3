//! Twitch's OAuth endpoints (`TWITCH_AUTH_URL`): the device code flow
//! (`POST /device`, then `POST /token` with the device_code grant until the
//! streamer has entered the code), the refresh_token grant (Twitch rotates
//! the refresh token: the answer's replaces the old one) and `GET /validate`.

use crate::TwitchError;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct OAuth {
    http: reqwest::Client,
    auth_url: String,
    client_id: String,
}

/// What `POST /device` answers: show `user_code` and `verification_uri`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    /// Seconds between polls.
    pub interval: u64,
    pub expires_in: u64,
}

/// A token pair from `POST /token`.
#[derive(Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    #[serde(default)]
    pub scope: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What `GET /validate` says of a token.
#[derive(Debug, Clone, Deserialize)]
pub struct Validated {
    pub client_id: String,
    pub login: String,
    pub user_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The OAuth endpoints' error body.
#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    message: String,
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl OAuth {
    pub fn new(http: reqwest::Client, auth_url: &str, client_id: &str) -> Self {
        Self {
            http,
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
        }
    }

    /// Starts the device code flow for `scopes` (space-separated).
    pub async fn start_device(&self, scopes: &str) -> Result<DeviceCode, TwitchError> {
        let form = [("client_id", self.client_id.as_str()), ("scopes", scopes)];
        self.post("/device", &form, "the device code request").await
    }

    /// Polls until the streamer has entered the code (or it expires).
    pub async fn wait_for_device(
        &self,
        code: &DeviceCode,
        scopes: &str,
    ) -> Result<Tokens, TwitchError> {
        let mut interval = Duration::from_secs(code.interval.max(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(code.expires_in);
        loop {
            let form = [
                ("client_id", self.client_id.as_str()),
                ("scopes", scopes),
                ("device_code", code.device_code.as_str()),
                ("grant_type", DEVICE_GRANT),
            ];
            match self.post("/token", &form, "the device code").await {
                Ok(tokens) => return Ok(tokens),
                Err(TwitchError::Refused { message, .. }) if message == "authorization_pending" => {
                }
                Err(TwitchError::Refused { message, .. }) if message == "slow_down" => {
                    interval += Duration::from_secs(5);
                }
                Err(error) => return Err(error),
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(TwitchError::SignedOut(
                    "the code expired before it was entered".to_owned(),
                ));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Trades the refresh token for a new pair. A refused refresh token
    /// (revoked grant) is [`TwitchError::SignedOut`].
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, TwitchError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        match self.post("/token", &form, "the refresh token").await {
            Err(TwitchError::Refused {
                status: 400 | 401,
                message,
                ..
            }) => Err(TwitchError::SignedOut(format!(
                // Said the same whichever noticed first, this refusal or
                // the revocation notice on the socket: either way the
                // grant was revoked (or its password changed).
                "Twitch revoked dynamo's sign-in: it refused the refresh token ({message})"
            ))),
            other => other,
        }
    }

    /// Who a token belongs to; 401 is [`TwitchError::SignedOut`].
    pub async fn validate(&self, access_token: &str) -> Result<Validated, TwitchError> {
        let response = self
            .http
            .get(format!("{}/validate", self.auth_url))
            .header("Authorization", format!("OAuth {access_token}"))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(TwitchError::SignedOut(
                "Twitch says the access token is invalid".to_owned(),
            ));
        }
        decode(response, "the token validation").await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, &str)],
        what: &str,
    ) -> Result<T, TwitchError> {
        let response = self
            .http
            .post(format!("{}{path}", self.auth_url))
            .form(form)
            .send()
            .await?;
        decode(response, what).await
    }
}

async fn decode<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, TwitchError> {
    let status = response.status();
    let text = response.text().await?;
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(TwitchError::Unavailable(format!("{status} for {what}")));
    }
    if !status.is_success() {
        let message = serde_json::from_str::<OAuthError>(&text)
            .map(|e| e.message)
            .unwrap_or_default();
        return Err(TwitchError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_str(&text).map_err(|e| TwitchError::Malformed(format!("{what}: {e}")))
}
