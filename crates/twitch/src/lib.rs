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
//! [`ledger`] (settling on the redemption status), [`chat`] (telling the
//! viewer in chat), [`elsewhere`] (redemptions settled by someone else),
//! [`follow`] (rewards paused while dynamo holds), [`book`] (which style a
//! reward is for), [`rewards`] (one reward per style, made and kept in line).

pub mod book;
pub mod chat;
pub mod cipher;
pub mod elsewhere;
mod error;
pub mod eventsub;
pub mod follow;
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
pub const SERVICE: dynamo_upstream::ServiceId = dynamo_upstream::ServiceId::new("twitch");
/// All dynamo needs from the streamer: read and settle redemptions, manage
/// its own rewards, and write in chat as the streamer.
pub const SCOPES: &str = "channel:manage:redemptions user:write:chat";
/// All dynamo needs from a bot account: write in chat as the bot (with a
/// user token of the bot, Twitch asks no `user:bot` / `channel:bot`).
pub const BOT_SCOPES: &str = "user:write:chat";

/// The Helix client for these settings, with its token source over `store`.
pub fn helix(
    settings: &TwitchSettings,
    store: dynamo_store::Store,
) -> Result<helix::Helix, TwitchError> {
    client(settings, store, dynamo_store::GrantAccount::Broadcaster)
}

/// The Helix client acting as `account` (the streamer, or the chat bot),
/// always for the streamer's channel.
pub fn client(
    settings: &TwitchSettings,
    store: dynamo_store::Store,
    account: dynamo_store::GrantAccount,
) -> Result<helix::Helix, TwitchError> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| TwitchError::Unavailable(e.to_string()))?;
    Ok(client_over(http, settings, store, account))
}

/// [`client`] over `http`: tests pass one that trusts the certificate of a
/// fake Twitch served over TLS.
pub fn client_over(
    http: reqwest::Client,
    settings: &TwitchSettings,
    store: dynamo_store::Store,
    account: dynamo_store::GrantAccount,
) -> helix::Helix {
    let oauth = oauth::OAuth::new(http.clone(), &settings.auth_url, &settings.client_id);
    let tokens = tokens::TokenSource::of(account, store, oauth, settings.cipher.clone());
    helix::Helix::new(
        http,
        &settings.api_url,
        &settings.client_id,
        std::sync::Arc::new(tokens),
        settings.broadcaster_id.clone(),
    )
}

/// The chat teller and sender for these settings; `count` hears of every
/// message's outcome (the metric).
pub fn chat(
    settings: &TwitchSettings,
    store: dynamo_store::Store,
    count: chat::sender::Counter,
) -> Result<chat::Chat, TwitchError> {
    let account = match settings.chat.voice {
        chat::Voice::Broadcaster => dynamo_store::GrantAccount::Broadcaster,
        chat::Voice::Bot => dynamo_store::GrantAccount::Bot,
    };
    let limiter = dynamo_store::RateLimiter::new(
        store.pool().clone(),
        "twitch-chat",
        settings.chat.limit,
        chat::WINDOW,
        std::time::Duration::from_secs(30),
    );
    Ok(chat::Chat {
        teller: chat::teller::Teller {
            store: store.clone(),
            templates: settings.chat.templates.clone(),
        },
        sender: chat::sender::Sender {
            voice: client(settings, store.clone(), account)?,
            channel: helix(settings, store.clone())?,
            store,
            limiter,
            count,
        },
    })
}
