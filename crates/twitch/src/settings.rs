//! The Twitch settings (section "Twitch" of `.env.example`).

use crate::cipher::TokenCipher;
use dynamo_runtime::{Env, SettingError};
use dynamo_wire::Style;
use secrecy::ExposeSecret;

#[derive(Debug, Clone)]
pub struct TwitchSettings {
    /// `TWITCH_CLIENT_ID`: the app registered at dev.twitch.tv (a public
    /// client: the device code flow needs no secret).
    pub client_id: String,
    /// `TWITCH_AUTH_URL`, default `https://id.twitch.tv/oauth2`.
    pub auth_url: String,
    /// `TWITCH_API_URL`, default `https://api.twitch.tv/helix`.
    pub api_url: String,
    /// `TWITCH_EVENTSUB_URL`, default `wss://eventsub.wss.twitch.tv/ws`.
    pub eventsub_url: String,
    /// `TWITCH_BROADCASTER_ID`, default: the signed-in user's id.
    pub broadcaster_id: Option<String>,
    pub rewards: RewardIds,
    /// `TWITCH_TOKEN_KEY`: encrypts the stored tokens.
    pub cipher: TokenCipher,
    /// `TWITCH_CHAT*`: telling viewers in chat.
    pub chat: crate::chat::ChatSettings,
    /// `TWITCH_REWARD_COOLDOWN_SECONDS`, `TWITCH_REWARD_MAX_PER_STREAM`,
    /// `TWITCH_REWARD_MAX_PER_USER_PER_STREAM` (0: off), set by `setup`.
    pub limits: crate::helix::RewardLimits,
    /// `TWITCH_PAUSE_WHEN_OFFLINE`: pause the rewards while the channel is
    /// offline (default off).
    pub pause_when_offline: bool,
}

/// The reward limit settings; 0 is off.
fn reward_limits(env: &Env) -> Result<crate::helix::RewardLimits, SettingError> {
    let on = |value: u32| Some(value).filter(|v| *v > 0);
    Ok(crate::helix::RewardLimits {
        global_cooldown_seconds: on(env.parse("TWITCH_REWARD_COOLDOWN_SECONDS", 10)?),
        max_per_stream: on(env.parse("TWITCH_REWARD_MAX_PER_STREAM", 0)?),
        max_per_user_per_stream: on(env.parse("TWITCH_REWARD_MAX_PER_USER_PER_STREAM", 0)?),
    })
}

/// `TWITCH_GHOST_REWARD_ID`, `TWITCH_FRIEND_REWARD_ID`: dynamo's rewards
/// (printed by `dynamoctl twitch setup`); a style without one is not offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewardIds {
    pub ghost: Option<String>,
    pub friend: Option<String>,
}

impl RewardIds {
    pub fn from_env(env: &Env) -> Self {
        Self {
            ghost: env.optional_string("TWITCH_GHOST_REWARD_ID"),
            friend: env.optional_string("TWITCH_FRIEND_REWARD_ID"),
        }
    }

    pub fn style_of(&self, reward_id: &str) -> Option<Style> {
        Style::ALL
            .into_iter()
            .find(|style| self.get(*style) == Some(reward_id))
    }

    pub fn get(&self, style: Style) -> Option<&str> {
        match style {
            Style::Ghost => self.ghost.as_deref(),
            Style::Friend => self.friend.as_deref(),
        }
    }

    /// (style, reward id) of each configured reward.
    pub fn configured(&self) -> Vec<(Style, String)> {
        Style::ALL
            .into_iter()
            .filter_map(|style| self.get(style).map(|id| (style, id.to_owned())))
            .collect()
    }

    /// The setting that names `style`'s reward.
    pub fn variable(style: Style) -> &'static str {
        match style {
            Style::Ghost => "TWITCH_GHOST_REWARD_ID",
            Style::Friend => "TWITCH_FRIEND_REWARD_ID",
        }
    }
}

impl TwitchSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let eventsub_url = env.string("TWITCH_EVENTSUB_URL", "wss://eventsub.wss.twitch.tv/ws");
        if !(eventsub_url.starts_with("wss://") || eventsub_url.starts_with("ws://")) {
            return Err(SettingError::new(
                "TWITCH_EVENTSUB_URL",
                format!("{eventsub_url:?} is not a ws:// or wss:// URL"),
            ));
        }
        let key = env.required_secret("TWITCH_TOKEN_KEY")?;
        let cipher = TokenCipher::from_base64(key.expose_secret())
            .map_err(|problem| SettingError::new("TWITCH_TOKEN_KEY", problem))?;
        Ok(Self {
            client_id: env.required_string("TWITCH_CLIENT_ID")?,
            auth_url: trim(env.http_url("TWITCH_AUTH_URL", "https://id.twitch.tv/oauth2")?),
            api_url: trim(env.http_url("TWITCH_API_URL", "https://api.twitch.tv/helix")?),
            eventsub_url,
            broadcaster_id: env.optional_string("TWITCH_BROADCASTER_ID"),
            rewards: RewardIds::from_env(env),
            cipher,
            chat: crate::chat::ChatSettings::from_env(env)?,
            limits: reward_limits(env)?,
            pause_when_offline: env.flag("TWITCH_PAUSE_WHEN_OFFLINE", false)?,
        })
    }
}

fn trim(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}
