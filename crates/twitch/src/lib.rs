//! Twitch-native dynamo (SPEC §7): the streamer signs in with the device
//! code flow, dynamo creates its own channel-point rewards, takes their
//! redemptions in over EventSub WebSocket as generation requests, and settles
//! each on Twitch: FULFILLED after the alert, CANCELED (refunded) otherwise.
//!
//! One job per module: [`oauth`] (Twitch's OAuth endpoints), [`tokens`]
//! (the stored, encrypted sign-in, refreshed before expiry), [`helix`] (the
//! Helix calls dynamo makes), [`eventsub`] (the WebSocket session),
//! [`input`] (a viewer's text → a request), [`intake`] (redemption →
//! published request), [`leadership`] (which consumer runs the intake),
//! [`ledger`] (settling on the redemption status).

pub mod cipher;
mod error;
pub mod eventsub;
pub mod helix;
pub mod input;
pub mod intake;
pub mod leadership;
pub mod ledger;
pub mod oauth;
pub mod rewards;
pub mod settings;
pub mod tokens;

pub use error::TwitchError;
pub use settings::{RewardIds, TwitchSettings};

/// The name holds and logs use for Twitch.
pub const SERVICE: &str = "twitch";
/// All dynamo needs: read and settle redemptions, manage its own rewards.
pub const SCOPES: &str = "channel:manage:redemptions";

/// The Helix client for these settings, with its token source over `store`.
pub fn helix(
    settings: &TwitchSettings,
    store: dynamo_store::Store,
) -> Result<helix::Helix, TwitchError> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| TwitchError::Unavailable(e.to_string()))?;
    let oauth = oauth::OAuth::new(http.clone(), &settings.auth_url, &settings.client_id);
    let tokens = tokens::TokenSource::new(store, oauth, settings.cipher.clone());
    Ok(helix::Helix::new(
        http,
        &settings.api_url,
        &settings.client_id,
        std::sync::Arc::new(tokens),
        settings.broadcaster_id.clone(),
    ))
}
