//! The Helix calls dynamo makes (`TWITCH_API_URL`), each with `Client-Id`
//! and the streamer's token; a 401 refreshes the token and tries once more.

use crate::tokens::{Access, TokenSource};
use crate::{SERVICE, TwitchError};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

pub const REDEMPTION_ADD: &str = "channel.channel_points_custom_reward_redemption.add";
/// Someone else (a moderator in Twitch's reward queue) settled a redemption.
pub const REDEMPTION_UPDATE: &str = "channel.channel_points_custom_reward_redemption.update";
pub const STREAM_ONLINE: &str = "stream.online";
pub const STREAM_OFFLINE: &str = "stream.offline";
/// Helix pages redemptions by at most 50.
const PAGE: u32 = 50;
/// Enough for any real queue; a runaway one is not read whole.
const MAX_PAGES: usize = 20;

#[derive(Debug, Clone)]
pub struct Helix {
    http: reqwest::Client,
    api_url: String,
    client_id: String,
    tokens: Arc<TokenSource>,
    broadcaster_id: Option<String>,
}

/// A redemption as Helix lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct HelixRedemption {
    pub id: String,
    pub broadcaster_id: String,
    pub user_id: String,
    pub user_login: String,
    pub user_name: String,
    #[serde(default)]
    pub user_input: String,
    /// `UNFULFILLED`, `FULFILLED` or `CANCELED`.
    pub status: String,
    pub reward: RewardRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RewardRef {
    pub id: String,
}

/// A custom reward as Helix returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct HelixReward {
    pub id: String,
    pub title: String,
    pub cost: i64,
    #[serde(default)]
    pub prompt: String,
    pub is_user_input_required: bool,
    pub should_redemptions_skip_request_queue: bool,
}

/// What `POST /channel_points/custom_rewards` takes.
#[derive(Debug, Clone, Serialize)]
pub struct NewReward {
    pub title: String,
    pub cost: i64,
    pub prompt: String,
    pub is_user_input_required: bool,
    pub should_redemptions_skip_request_queue: bool,
    #[serde(flatten)]
    pub limits: RewardLimits,
}

/// A reward's cooldown and limits, as the flat fields create and update
/// take (the `*_setting` objects Twitch answers with are not read on
/// input). `None`: off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewardLimits {
    pub global_cooldown_seconds: Option<u32>,
    pub max_per_stream: Option<u32>,
    pub max_per_user_per_stream: Option<u32>,
}

impl Serialize for RewardLimits {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(6))?;
        let fields = [
            (
                "is_global_cooldown_enabled",
                "global_cooldown_seconds",
                self.global_cooldown_seconds,
            ),
            (
                "is_max_per_stream_enabled",
                "max_per_stream",
                self.max_per_stream,
            ),
            (
                "is_max_per_user_per_stream_enabled",
                "max_per_user_per_stream",
                self.max_per_user_per_stream,
            ),
        ];
        for (enabled, value, setting) in fields {
            map.serialize_entry(enabled, &setting.is_some())?;
            if let Some(setting) = setting {
                map.serialize_entry(value, &setting)?;
            }
        }
        map.end()
    }
}

/// How Twitch took a chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatSent {
    Sent {
        message_id: String,
    },
    /// Accepted (200) but not posted: `is_sent` false, with its reason.
    Dropped {
        code: String,
        message: String,
    },
}

#[derive(Deserialize)]
struct SentChatMessage {
    #[serde(default)]
    message_id: String,
    is_sent: bool,
    #[serde(default)]
    drop_reason: Option<DropReason>,
}

#[derive(Deserialize)]
struct DropReason {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Data<T> {
    data: Vec<T>,
    #[serde(default)]
    pagination: Pagination,
}

#[derive(Deserialize, Default)]
struct Pagination {
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct HelixErrorBody {
    #[serde(default)]
    message: String,
}

/// How a settlement went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// dynamo set it now.
    Now,
    /// It was already FULFILLED or CANCELED (by dynamo before, or by the
    /// streamer's other tools): counts as settled.
    Already(String),
}

impl Helix {
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        client_id: &str,
        tokens: Arc<TokenSource>,
        broadcaster_id: Option<String>,
    ) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            tokens,
            broadcaster_id,
        }
    }

    pub fn tokens(&self) -> &Arc<TokenSource> {
        &self.tokens
    }

    /// The channel: `TWITCH_BROADCASTER_ID`, else the signed-in user.
    pub async fn broadcaster_id(&self) -> Result<String, TwitchError> {
        match &self.broadcaster_id {
            Some(id) => Ok(id.clone()),
            None => Ok(self.tokens.access().await?.user_id),
        }
    }

    /// Sends one call; `(status, body)` for 2xx and 4xx other than 401.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), TwitchError> {
        let mut access = self.tokens.access().await?;
        for attempt in 0..2 {
            let status_and_text = self.send(&access, &method, path, query, body).await?;
            if status_and_text.0 != StatusCode::UNAUTHORIZED {
                return Ok(status_and_text);
            }
            if attempt == 0 {
                tracing::info!(path, "Twitch answered 401: refreshing the token");
                access = self.tokens.after_unauthorized(&access).await?;
            }
        }
        Err(TwitchError::SignedOut(
            "Twitch refuses the freshly refreshed token".to_owned(),
        ))
    }

    async fn send(
        &self,
        access: &Access,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), TwitchError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.api_url))
            .query(query)
            .header("Client-Id", &self.client_id)
            .bearer_auth(&access.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(TwitchError::Unavailable(format!("{status} from {path}")));
        }
        Ok((status, text))
    }

    /// 2xx → decoded `data`; anything else → Refused.
    async fn data<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Data<T>, TwitchError> {
        let (status, text) = self.call(method, path, query, body).await?;
        if !status.is_success() {
            return Err(refused(what, status, &text));
        }
        serde_json::from_str(&text).map_err(|e| TwitchError::Malformed(format!("{what}: {e}")))
    }

    /// Subscribes the session to `kind` (`REDEMPTION_ADD` or
    /// `REDEMPTION_UPDATE`) for one reward.
    pub async fn subscribe_redemptions(
        &self,
        session_id: &str,
        kind: &str,
        broadcaster_id: &str,
        reward_id: &str,
    ) -> Result<(), TwitchError> {
        let condition = json!({"broadcaster_user_id": broadcaster_id, "reward_id": reward_id});
        self.subscribe(session_id, kind, condition).await
    }

    /// Subscribes the session to `stream.online` or `stream.offline`.
    pub async fn subscribe_stream(
        &self,
        session_id: &str,
        kind: &str,
        broadcaster_id: &str,
    ) -> Result<(), TwitchError> {
        let condition = json!({"broadcaster_user_id": broadcaster_id});
        self.subscribe(session_id, kind, condition).await
    }

    async fn subscribe(
        &self,
        session_id: &str,
        kind: &str,
        condition: Value,
    ) -> Result<(), TwitchError> {
        let body = json!({
            "type": kind,
            "version": "1",
            "condition": condition,
            "transport": {"method": "websocket", "session_id": session_id},
        });
        let (status, text) = self
            .call(Method::POST, "/eventsub/subscriptions", &[], Some(&body))
            .await?;
        if status.is_success() {
            return Ok(());
        }
        // A new session cannot have it yet: another session (a holder that
        // froze and was taken over) still does, and this one would never
        // hear of `kind`. Not fine: the caller connects again later.
        if status == StatusCode::CONFLICT {
            return Err(TwitchError::Unavailable(format!(
                "another EventSub session still holds the {kind} subscription (409)"
            )));
        }
        Err(refused("the EventSub subscription", status, &text))
    }

    /// Every UNFULFILLED redemption of a reward, oldest first.
    pub async fn unfulfilled(
        &self,
        broadcaster_id: &str,
        reward_id: &str,
    ) -> Result<Vec<HelixRedemption>, TwitchError> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        let first = PAGE.to_string();
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("broadcaster_id", broadcaster_id),
                ("reward_id", reward_id),
                ("status", "UNFULFILLED"),
                ("sort", "OLDEST"),
                ("first", first.as_str()),
            ];
            if let Some(after) = &cursor {
                query.push(("after", after.as_str()));
            }
            let page: Data<HelixRedemption> = self
                .data(
                    Method::GET,
                    "/channel_points/custom_rewards/redemptions",
                    &query,
                    None,
                    "the redemptions listing",
                )
                .await?;
            found.extend(page.data);
            match page.pagination.cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        Ok(found)
    }

    /// One redemption, whatever its status.
    pub async fn redemption(
        &self,
        broadcaster_id: &str,
        reward_id: &str,
        id: &str,
    ) -> Result<Option<HelixRedemption>, TwitchError> {
        let page: Data<HelixRedemption> = self
            .data(
                Method::GET,
                "/channel_points/custom_rewards/redemptions",
                &[
                    ("broadcaster_id", broadcaster_id),
                    ("reward_id", reward_id),
                    ("id", id),
                ],
                None,
                "the redemption lookup",
            )
            .await?;
        Ok(page.data.into_iter().next())
    }

    /// Sets an UNFULFILLED redemption to `status` (`FULFILLED` or
    /// `CANCELED`). Twitch answers 404 for one that is not UNFULFILLED any
    /// more; then its status is looked up: settled either way.
    pub async fn settle(
        &self,
        broadcaster_id: &str,
        reward_id: &str,
        id: &str,
        status: &str,
    ) -> Result<Settled, TwitchError> {
        let body = json!({"status": status});
        let (answer, text) = self
            .call(
                Method::PATCH,
                "/channel_points/custom_rewards/redemptions",
                &[
                    ("broadcaster_id", broadcaster_id),
                    ("reward_id", reward_id),
                    ("id", id),
                ],
                Some(&body),
            )
            .await?;
        if answer.is_success() {
            return Ok(Settled::Now);
        }
        if answer == StatusCode::NOT_FOUND
            && let Some(found) = self.redemption(broadcaster_id, reward_id, id).await?
            && found.status != "UNFULFILLED"
        {
            return Ok(Settled::Already(found.status));
        }
        Err(refused("the redemption update", answer, &text))
    }

    /// Creates a reward owned by this client id (only those can be settled).
    pub async fn create_reward(
        &self,
        broadcaster_id: &str,
        reward: &NewReward,
    ) -> Result<HelixReward, TwitchError> {
        let body =
            serde_json::to_value(reward).map_err(|e| TwitchError::Malformed(e.to_string()))?;
        let created: Data<HelixReward> = self
            .data(
                Method::POST,
                "/channel_points/custom_rewards",
                &[("broadcaster_id", broadcaster_id)],
                Some(&body),
                "the new reward",
            )
            .await?;
        created
            .data
            .into_iter()
            .next()
            .ok_or_else(|| TwitchError::Malformed("no reward in the answer".to_owned()))
    }

    /// Changes one of dynamo's rewards: `change` holds the flat fields
    /// (`is_paused`, the limits). Only rewards this client id created.
    pub async fn update_reward(
        &self,
        broadcaster_id: &str,
        reward_id: &str,
        change: &Value,
    ) -> Result<HelixReward, TwitchError> {
        let updated: Data<HelixReward> = self
            .data(
                Method::PATCH,
                "/channel_points/custom_rewards",
                &[("broadcaster_id", broadcaster_id), ("id", reward_id)],
                Some(change),
                "the reward update",
            )
            .await?;
        updated
            .data
            .into_iter()
            .next()
            .ok_or_else(|| TwitchError::Malformed("no reward in the answer".to_owned()))
    }

    /// Sends `message` to `broadcaster_id`'s chat as the signed-in user of
    /// this client's tokens (Send Chat Message). A 200 can still be a
    /// message Twitch did not post: [`ChatSent::Dropped`].
    pub async fn send_chat(
        &self,
        broadcaster_id: &str,
        message: &str,
    ) -> Result<ChatSent, TwitchError> {
        let sender = self.tokens.access().await?.user_id;
        let body =
            json!({"broadcaster_id": broadcaster_id, "sender_id": sender, "message": message});
        let answer: Data<SentChatMessage> = self
            .data(
                Method::POST,
                "/chat/messages",
                &[],
                Some(&body),
                "the chat message",
            )
            .await?;
        let sent = answer
            .data
            .into_iter()
            .next()
            .ok_or_else(|| TwitchError::Malformed("no message in the answer".to_owned()))?;
        if sent.is_sent {
            return Ok(ChatSent::Sent {
                message_id: sent.message_id,
            });
        }
        let reason = sent.drop_reason.unwrap_or(DropReason {
            code: String::new(),
            message: String::new(),
        });
        Ok(ChatSent::Dropped {
            code: reason.code,
            message: reason.message,
        })
    }

    /// The channel's rewards this client id created.
    pub async fn own_rewards(&self, broadcaster_id: &str) -> Result<Vec<HelixReward>, TwitchError> {
        let listed: Data<HelixReward> = self
            .data(
                Method::GET,
                "/channel_points/custom_rewards",
                &[
                    ("broadcaster_id", broadcaster_id),
                    ("only_manageable_rewards", "true"),
                ],
                None,
                "the rewards listing",
            )
            .await?;
        Ok(listed.data)
    }
}

fn refused(what: &str, status: StatusCode, text: &str) -> TwitchError {
    let message = serde_json::from_str::<HelixErrorBody>(text)
        .map(|e| e.message)
        .unwrap_or_default();
    tracing::debug!(service = %SERVICE, %status, %message, what, "Twitch refused");
    TwitchError::Refused {
        what: what.to_owned(),
        status: status.as_u16(),
        message,
    }
}
