//! A fake Twitch: one real HTTP and WebSocket server on 127.0.0.1 speaking
//! Twitch's wire formats — the OAuth device-code, token and validate
//! endpoints (`/oauth2/...`), Helix custom rewards, redemptions and EventSub
//! subscriptions (`/helix/...`), and the EventSub WebSocket (`/ws`) with its
//! welcome, keepalive, notification, reconnect and revocation messages.
//!
//! Tests steer it: make a redemption, drop the sockets, ask for a reconnect,
//! revoke the grant, expire the access tokens, repeat a notification.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use uuid::Uuid;

pub const CLIENT_ID: &str = "fake-client-id";
pub const BROADCASTER_ID: &str = "141981764";
pub const BROADCASTER_LOGIN: &str = "twitchdev";
/// A TWITCH_TOKEN_KEY for tests (32 bytes, base64).
pub const TOKEN_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const REDEMPTION_TYPE: &str = "channel.channel_points_custom_reward_redemption.add";
pub const REDEMPTION_UPDATE_TYPE: &str = "channel.channel_points_custom_reward_redemption.update";
pub const STREAM_ONLINE_TYPE: &str = "stream.online";
pub const STREAM_OFFLINE_TYPE: &str = "stream.offline";
/// Send Chat Message takes a user token of the sender with this scope.
pub const CHAT_SCOPE: &str = "user:write:chat";
/// Chat messages one sender may send per window: an ordinary account, and a
/// moderator or the broadcaster (Twitch: 20 and 100 per 30 s).
pub const CHAT_LIMIT: usize = 20;
pub const CHAT_LIMIT_MODERATOR: usize = 100;
/// The scope that manages rewards and redemptions; reading them also takes
/// `channel:read:redemptions` (Twitch's API reference, per endpoint).
const MANAGE: &str = "channel:manage:redemptions";
const READ_OR_MANAGE: &[&str] = &["channel:read:redemptions", MANAGE];
/// WebSocket connections with enabled subscriptions one user may hold for
/// one client id; the next subscription is refused 429.
pub const MAX_CONNECTIONS: usize = 3;

/// A custom reward on the fake channel.
#[derive(Debug, Clone)]
pub struct Reward {
    pub id: String,
    pub title: String,
    pub prompt: String,
    pub cost: i64,
    pub is_user_input_required: bool,
    pub should_redemptions_skip_request_queue: bool,
    /// Created through the API by [`CLIENT_ID`] (only those can be settled).
    pub manageable: bool,
    pub is_paused: bool,
    /// Seconds, when the global cooldown is on.
    pub global_cooldown: Option<i64>,
    pub max_per_stream: Option<i64>,
    pub max_per_user_per_stream: Option<i64>,
}

/// A chat message as Twitch took it.
#[derive(Debug, Clone)]
pub struct ChatLine {
    pub broadcaster_id: String,
    pub sender_id: String,
    pub message: String,
    /// Posted in chat; false: dropped (past the sender's limit).
    pub is_sent: bool,
}

#[derive(Debug, Clone)]
pub struct Redemption {
    pub id: String,
    pub reward_id: String,
    pub user_id: String,
    pub user_login: String,
    pub user_name: String,
    pub user_input: String,
    /// `UNFULFILLED`, `FULFILLED` or `CANCELED`.
    pub status: String,
    pub redeemed_at: String,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub kind: String,
    pub condition: Value,
    pub session_id: String,
    /// `enabled`, `websocket_disconnected`, `authorization_revoked`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
struct Token {
    user_id: String,
    login: String,
    scopes: Vec<String>,
    expires_at: std::time::Instant,
}

#[derive(Debug)]
enum Control {
    Send(String),
    Close,
}

#[derive(Debug, Default)]
pub struct TwitchState {
    access_tokens: HashMap<String, Token>,
    refresh_tokens: HashSet<String>,
    /// device_code → polls still to answer `authorization_pending`.
    device_codes: HashMap<String, u32>,
    pub rewards: Vec<Reward>,
    pub redemptions: Vec<Redemption>,
    pub subscriptions: Vec<Subscription>,
    sessions: HashMap<String, mpsc::UnboundedSender<Control>>,
    /// The last notification sent, for [`FakeTwitch::duplicate_last_notification`].
    last_notification: Option<(String, String)>,
    /// Polls of a new device code answered `authorization_pending` first.
    pub pending_polls: u32,
    /// Lifetime of tokens issued from now on.
    pub token_lifetime_secs: u64,
    pub keepalive_secs: u64,
    /// Keepalives stop (a silent, half-dead connection).
    pub silent: bool,
    /// Every refresh_token grant answered with new tokens.
    pub refreshes: u32,
    /// Every `PATCH .../redemptions` answered 200: (redemption id, status).
    pub updates: Vec<(String, String)>,
    /// Helix calls answered 401.
    pub unauthorized: u32,
    /// WebSocket connections accepted.
    pub connections: u32,
    /// Seconds a new connection has to get a subscription before it is
    /// closed with 4003 "connection unused" (Twitch: 10).
    pub subscribe_within_secs: u64,
    /// Connections closed for not subscribing in time.
    pub closed_unused: u32,
    /// Open connections whose subscribe deadline has not come yet.
    unchecked: HashSet<String>,
    /// The most connections open at once.
    pub most_sessions_open: usize,
    /// Subscriptions refused 429 for a connection past [`MAX_CONNECTIONS`].
    pub transports_refused: u32,
    /// Subscriptions refused 409: another session has the same one.
    pub conflicts: u32,
    /// The scopes tokens are issued with from now on.
    pub scopes: Vec<String>,
    /// Helix calls refused 401 for a missing scope or 403 for a
    /// broadcaster that is not the token's user.
    pub forbidden: u32,
    /// The user the device code flow signs in from now on (id, login).
    pub signing_in: (String, String),
    /// Every Send Chat Message call Twitch took, in order.
    pub chat: Vec<ChatLine>,
    /// The chat limits' window (Twitch: 30 s).
    pub chat_window: std::time::Duration,
    /// Messages per window of an ordinary sender, and of a moderator or the
    /// broadcaster (Twitch: [`CHAT_LIMIT`], [`CHAT_LIMIT_MODERATOR`]).
    pub chat_limit: usize,
    pub chat_limit_moderator: usize,
    /// When each sender's messages were taken, for the limit.
    chat_sent_at: HashMap<String, std::collections::VecDeque<std::time::Instant>>,
    /// Users who moderate the channel (the broadcaster always does).
    pub moderators: HashSet<String>,
    /// Every `PATCH custom_rewards` body answered 200: (reward id, body).
    pub reward_patches: Vec<(String, Value)>,
}

#[derive(Debug, Clone)]
pub struct FakeTwitch {
    /// `http://127.0.0.1:PORT`: `{url}/oauth2` is TWITCH_AUTH_URL, `{url}/helix` TWITCH_API_URL.
    pub url: String,
    /// `ws://127.0.0.1:PORT/ws`: TWITCH_EVENTSUB_URL.
    pub ws_url: String,
    pub state: Arc<Mutex<TwitchState>>,
}

type Shared = Arc<Mutex<TwitchState>>;

impl TwitchState {
    /// Sockets open now.
    pub fn sessions_open(&self) -> usize {
        self.sessions.len()
    }

    /// Open connections still before their subscribe deadline: once none
    /// is, every connection so far either met it or was `closed_unused`.
    pub fn sessions_before_deadline(&self) -> usize {
        self.unchecked.len()
    }
}

#[derive(Clone)]
struct App {
    state: Shared,
    url: String,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl FakeTwitch {
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// The same fake over TLS (`https://`, `wss://`) with a certificate of
    /// `certificates`, as Twitch is reached for real.
    pub async fn start_tls(certificates: &crate::TestCertificates) -> Self {
        Self::serve(Some(certificates)).await
    }

    async fn serve(tls: Option<&crate::TestCertificates>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (http, ws) = if tls.is_some() {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        let url = format!("{http}://{address}");
        let ws_url = format!("{ws}://{address}/ws");
        let state: Shared = Arc::new(Mutex::new(TwitchState {
            pending_polls: 1,
            token_lifetime_secs: 14_400,
            keepalive_secs: 10,
            subscribe_within_secs: 10,
            scopes: vec![MANAGE.to_owned(), CHAT_SCOPE.to_owned()],
            chat_limit: CHAT_LIMIT,
            chat_limit_moderator: CHAT_LIMIT_MODERATOR,
            signing_in: (BROADCASTER_ID.to_owned(), BROADCASTER_LOGIN.to_owned()),
            chat_window: std::time::Duration::from_secs(30),
            ..TwitchState::default()
        }));
        let app = App {
            state: state.clone(),
            url: url.clone(),
        };
        let router = Router::new()
            .route("/oauth2/device", post(device))
            .route("/oauth2/token", post(token))
            .route("/oauth2/validate", get(validate))
            .route(
                "/helix/eventsub/subscriptions",
                post(create_subscription).get(list_subscriptions),
            )
            .route(
                "/helix/channel_points/custom_rewards",
                post(create_reward).get(list_rewards).patch(update_reward),
            )
            .route("/helix/chat/messages", post(send_chat))
            .route(
                "/helix/channel_points/custom_rewards/redemptions",
                get(list_redemptions).patch(update_redemptions),
            )
            .route("/ws", get(websocket))
            .with_state(app);
        match tls {
            Some(certificates) => {
                let listener = crate::TlsListener::new(listener, certificates);
                tokio::spawn(async move { axum::serve(listener, router).await });
            }
            None => {
                tokio::spawn(async move { axum::serve(listener, router).await });
            }
        }
        Self { url, ws_url, state }
    }

    /// The settings that point dynamo at this fake.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        [
            ("TWITCH_CLIENT_ID", CLIENT_ID.to_owned()),
            ("TWITCH_AUTH_URL", format!("{}/oauth2", self.url)),
            ("TWITCH_API_URL", format!("{}/helix", self.url)),
            ("TWITCH_EVENTSUB_URL", self.ws_url.clone()),
            ("TWITCH_TOKEN_KEY", TOKEN_KEY.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut TwitchState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Issues a token pair as if the streamer had signed in (access, refresh).
    pub fn issue_tokens(&self) -> (String, String) {
        self.with(issue)
    }

    /// An access token of another user (`user_id`) with `scopes`.
    pub fn issue_token_of(&self, user_id: &str, scopes: &[&str]) -> String {
        let access = format!("at{}", Uuid::new_v4().simple());
        self.with(|s| {
            s.access_tokens.insert(
                access.clone(),
                Token {
                    user_id: user_id.to_owned(),
                    login: format!("user{user_id}"),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    expires_at: std::time::Instant::now()
                        + std::time::Duration::from_secs(s.token_lifetime_secs),
                },
            )
        });
        access
    }

    /// A reward dynamo did not create (it cannot settle its redemptions).
    pub fn add_foreign_reward(&self, title: &str) -> String {
        let id = Uuid::new_v4().to_string();
        self.with(|s| {
            s.rewards.push(Reward {
                id: id.clone(),
                title: title.to_owned(),
                prompt: String::new(),
                cost: 100,
                is_user_input_required: true,
                should_redemptions_skip_request_queue: false,
                manageable: false,
                is_paused: false,
                global_cooldown: None,
                max_per_stream: None,
                max_per_user_per_stream: None,
            })
        });
        id
    }

    /// A viewer redeems `reward_id` with `input`: the redemption stays
    /// UNFULFILLED, and every enabled subscription for it on a connected
    /// socket gets a notification. Returns the redemption id.
    pub fn redeem(&self, reward_id: &str, user_id: &str, user_name: &str, input: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let redemption = Redemption {
            id: id.clone(),
            reward_id: reward_id.to_owned(),
            user_id: user_id.to_owned(),
            user_login: user_name.to_lowercase(),
            user_name: user_name.to_owned(),
            user_input: input.to_owned(),
            status: "UNFULFILLED".to_owned(),
            redeemed_at: now_rfc3339(),
        };
        self.with(|s| {
            s.redemptions.push(redemption.clone());
            let reward = s.rewards.iter().find(|r| r.id == reward_id).cloned();
            let targets: Vec<Subscription> = s
                .subscriptions
                .iter()
                .filter(|sub| {
                    sub.status == "enabled"
                        && sub.kind == REDEMPTION_TYPE
                        && sub.condition["broadcaster_user_id"] == BROADCASTER_ID
                        && (sub.condition.get("reward_id").is_none()
                            || sub.condition["reward_id"] == reward_id)
                })
                .cloned()
                .collect();
            for sub in targets {
                let message = notification(&sub, &redemption, reward.as_ref());
                if let Some(session) = s.sessions.get(&sub.session_id) {
                    let _ = session.send(Control::Send(message.clone()));
                    s.last_notification = Some((sub.session_id.clone(), message));
                }
            }
        });
        id
    }

    /// Sends the last notification again, same message_id (at-least-once delivery).
    pub fn duplicate_last_notification(&self) -> bool {
        self.with(|s| match &s.last_notification {
            Some((session, message)) => s
                .sessions
                .get(session)
                .is_some_and(|tx| tx.send(Control::Send(message.clone())).is_ok()),
            None => false,
        })
    }

    /// Closes every socket; their subscriptions stop (`websocket_disconnected`).
    pub fn drop_sockets(&self) -> usize {
        self.with(|s| {
            let count = s.sessions.len();
            for (_, tx) in s.sessions.drain() {
                let _ = tx.send(Control::Close);
            }
            for sub in &mut s.subscriptions {
                if sub.status == "enabled" {
                    sub.status = "websocket_disconnected".to_owned();
                }
            }
            count
        })
    }

    /// Sends `session_reconnect` on every socket, with a reconnect_url that
    /// carries the session's subscriptions over to the new connection.
    pub fn send_reconnect(&self) -> usize {
        let ws_url = self.ws_url.clone();
        self.reconnect_each(|id| format!("{ws_url}?reconnect={id}"))
    }

    /// Sends `session_reconnect` on every socket pointing at `url`, as a
    /// forged or hijacked message would.
    pub fn send_reconnect_to(&self, url: &str) -> usize {
        self.reconnect_each(|_| url.to_owned())
    }

    fn reconnect_each(&self, url_for: impl Fn(&str) -> String) -> usize {
        self.with(|s| {
            for (id, tx) in &s.sessions {
                let message = envelope(
                    "session_reconnect",
                    json!({"session": {
                        "id": id, "status": "reconnecting", "keepalive_timeout_seconds": null,
                        "reconnect_url": url_for(id),
                        "connected_at": now_rfc3339(), "recovery_url": null,
                    }}),
                    None,
                );
                let _ = tx.send(Control::Send(message));
            }
            s.sessions.len()
        })
    }

    /// Sends `text` as it is on every socket (an oversized message, say).
    pub fn send_raw(&self, text: &str) -> usize {
        self.with(|s| {
            for tx in s.sessions.values() {
                let _ = tx.send(Control::Send(text.to_owned()));
            }
            s.sessions.len()
        })
    }

    /// The streamer disconnects the app: every token stops working, every
    /// subscription gets a `revocation` (`authorization_revoked`).
    pub fn revoke(&self) {
        self.with(|s| {
            s.access_tokens.clear();
            s.refresh_tokens.clear();
            let mut messages = Vec::new();
            for sub in &mut s.subscriptions {
                if sub.status == "enabled" {
                    sub.status = "authorization_revoked".to_owned();
                    let message = envelope(
                        "revocation",
                        json!({"subscription": subscription_json(sub)}),
                        Some(sub),
                    );
                    messages.push((sub.session_id.clone(), message));
                }
            }
            for (session, message) in messages {
                if let Some(tx) = s.sessions.get(&session) {
                    let _ = tx.send(Control::Send(message));
                }
            }
        });
    }

    /// Every access token issued so far expires now (refresh tokens stay good).
    pub fn expire_access_tokens(&self) {
        let now = std::time::Instant::now();
        self.with(|s| {
            for token in s.access_tokens.values_mut() {
                token.expires_at = now;
            }
        });
    }

    /// A moderator settles an UNFULFILLED redemption in Twitch's reward
    /// queue: its status changes and `redemption.update` subscribers hear
    /// of it. `false` when it was not UNFULFILLED.
    pub fn moderator_settles(&self, redemption_id: &str, status: &str) -> bool {
        self.with(|s| {
            let Some(r) = s
                .redemptions
                .iter_mut()
                .find(|r| r.id == redemption_id && r.status == "UNFULFILLED")
            else {
                return false;
            };
            r.status = status.to_owned();
            let changed = r.clone();
            notify_update(s, &changed);
            true
        })
    }

    /// The channel goes live (`true`) or offline: stream.online /
    /// stream.offline subscribers hear of it.
    pub fn set_live(&self, live: bool) {
        let kind = if live {
            STREAM_ONLINE_TYPE
        } else {
            STREAM_OFFLINE_TYPE
        };
        self.with(|s| notify_stream(s, kind));
    }

    /// The reward as Twitch has it now.
    pub fn reward(&self, reward_id: &str) -> Option<Reward> {
        self.with(|s| s.rewards.iter().find(|r| r.id == reward_id).cloned())
    }

    /// The chat messages Twitch posted (is_sent), in order.
    pub fn chat_posted(&self) -> Vec<ChatLine> {
        self.with(|s| s.chat.iter().filter(|l| l.is_sent).cloned().collect())
    }

    /// Another tool settles a redemption.
    pub fn settle_elsewhere(&self, redemption_id: &str, status: &str) {
        self.with(|s| {
            if let Some(r) = s.redemptions.iter_mut().find(|r| r.id == redemption_id) {
                r.status = status.to_owned();
            }
        });
    }

    pub fn status_of(&self, redemption_id: &str) -> Option<String> {
        self.with(|s| {
            s.redemptions
                .iter()
                .find(|r| r.id == redemption_id)
                .map(|r| r.status.clone())
        })
    }

    /// Whether `refresh_token` is the one currently valid.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        self.with(|s| s.refresh_tokens.contains(refresh_token))
    }

    /// Sockets open now.
    pub fn open_sockets(&self) -> usize {
        self.with(|s| s.sessions.len())
    }

    /// Enabled subscriptions of one type now.
    pub fn enabled_subscriptions_of(&self, kind: &str) -> usize {
        self.with(|s| {
            s.subscriptions
                .iter()
                .filter(|sub| sub.status == "enabled" && sub.kind == kind)
                .count()
        })
    }

    /// Enabled subscriptions now.
    pub fn enabled_subscriptions(&self) -> usize {
        self.with(|s| {
            s.subscriptions
                .iter()
                .filter(|sub| sub.status == "enabled")
                .count()
        })
    }
}

fn issue(s: &mut TwitchState) -> (String, String) {
    let access = format!("at{}", Uuid::new_v4().simple());
    let refresh = format!("rt{}", Uuid::new_v4().simple());
    let (user_id, login) = s.signing_in.clone();
    s.access_tokens.insert(
        access.clone(),
        Token {
            user_id,
            login,
            scopes: s.scopes.clone(),
            expires_at: std::time::Instant::now()
                + std::time::Duration::from_secs(s.token_lifetime_secs),
        },
    );
    s.refresh_tokens.insert(refresh.clone());
    (access, refresh)
}

fn token_answer(s: &mut TwitchState) -> Value {
    let (access, refresh) = issue(s);
    json!({
        "access_token": access,
        "expires_in": s.token_lifetime_secs,
        "refresh_token": refresh,
        "scope": s.scopes,
        "token_type": "bearer",
    })
}

/// The OAuth endpoints' error shape.
fn oauth_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "message": message})),
    )
        .into_response()
}

/// Helix's error shape.
fn helix_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "error": status.canonical_reason().unwrap_or_default(),
            "status": status.as_u16(),
            "message": message,
        })),
    )
        .into_response()
}

async fn device(State(app): State<App>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid client");
    }
    let device_code = format!("dc{}", Uuid::new_v4().simple());
    let user_code = Uuid::new_v4().simple().to_string()[..8].to_uppercase();
    let mut s = app.state.lock().unwrap();
    let polls = s.pending_polls;
    s.device_codes.insert(device_code.clone(), polls);
    Json(json!({
        "device_code": device_code,
        "expires_in": 1800,
        "interval": 1,
        "user_code": user_code,
        "verification_uri": format!("{}/activate?public=true&device-code={user_code}", app.url),
    }))
    .into_response()
}

async fn token(State(app): State<App>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid client");
    }
    let mut s = app.state.lock().unwrap();
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            match s.device_codes.get_mut(&code) {
                None => oauth_error(StatusCode::BAD_REQUEST, "invalid device code"),
                Some(0) => {
                    s.device_codes.remove(&code);
                    Json(token_answer(&mut s)).into_response()
                }
                Some(left) => {
                    *left -= 1;
                    oauth_error(StatusCode::BAD_REQUEST, "authorization_pending")
                }
            }
        }
        Some("refresh_token") => {
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            if !s.refresh_tokens.remove(&refresh) {
                return oauth_error(StatusCode::BAD_REQUEST, "Invalid refresh token");
            }
            s.refreshes += 1;
            Json(token_answer(&mut s)).into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported grant type"),
    }
}

async fn validate(State(app): State<App>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("OAuth "))
        .unwrap_or_default();
    let s = app.state.lock().unwrap();
    match s.access_tokens.get(token) {
        Some(t) if t.expires_at > std::time::Instant::now() => Json(json!({
            "client_id": CLIENT_ID,
            "login": t.login,
            "scopes": t.scopes,
            "user_id": t.user_id,
            "expires_in": t.expires_at.duration_since(std::time::Instant::now()).as_secs(),
        }))
        .into_response(),
        _ => oauth_error(StatusCode::UNAUTHORIZED, "invalid access token"),
    }
}

/// Helix wants `Client-Id` and a live user token (`Authorization: Bearer`)
/// holding one of `scopes` (none: any token): the token's user, or the
/// refusal Twitch answers.
fn authorized(app: &App, headers: &HeaderMap, scopes: &[&str]) -> Result<String, Box<Response>> {
    let client = headers.get("client-id").and_then(|v| v.to_str().ok());
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let mut s = app.state.lock().unwrap();
    let live = s
        .access_tokens
        .get(token)
        .filter(|t| t.expires_at > std::time::Instant::now())
        .cloned();
    let Some(live) = live.filter(|_| client == Some(CLIENT_ID)) else {
        s.unauthorized += 1;
        return Err(Box::new(helix_error(
            StatusCode::UNAUTHORIZED,
            "Invalid OAuth token",
        )));
    };
    if !scopes.is_empty()
        && !scopes
            .iter()
            .any(|scope| live.scopes.iter().any(|s| s == scope))
    {
        s.forbidden += 1;
        return Err(Box::new(helix_error(
            StatusCode::UNAUTHORIZED,
            &format!("Missing scope: {}", scopes.join(" or ")),
        )));
    }
    Ok(live.user_id)
}

/// Rewards and redemptions are only the token's user's own.
fn own_channel(app: &App, query: &[(String, String)], user: &str) -> Result<(), Box<Response>> {
    if query_value(query, "broadcaster_id") == Some(user) {
        return Ok(());
    }
    app.state.lock().unwrap().forbidden += 1;
    Err(Box::new(helix_error(
        StatusCode::FORBIDDEN,
        "The ID in broadcaster_id must match the user ID found in the request's OAuth token.",
    )))
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn subscription_json(sub: &Subscription) -> Value {
    json!({
        "id": sub.id, "status": sub.status, "type": sub.kind, "version": "1", "cost": 0,
        "condition": sub.condition,
        "transport": {"method": "websocket", "session_id": sub.session_id},
        "created_at": sub.created_at,
    })
}

async fn create_subscription(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let user = match authorized(&app, &headers, READ_OR_MANAGE) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    let mut s = app.state.lock().unwrap();
    let session_id = body["transport"]["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if body["transport"]["method"] != "websocket" || !s.sessions.contains_key(&session_id) {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "websocket transport session does not exist or has already disconnected",
        );
    }
    let kind = body["type"].as_str().unwrap_or_default().to_owned();
    let known = [
        REDEMPTION_TYPE,
        REDEMPTION_UPDATE_TYPE,
        STREAM_ONLINE_TYPE,
        STREAM_OFFLINE_TYPE,
    ];
    if !known.contains(&kind.as_str()) || body["version"] != "1" {
        return helix_error(StatusCode::BAD_REQUEST, "unknown subscription type/version");
    }
    // stream.* take the broadcaster only; redemptions optionally a reward.
    let allowed: &[&str] = if kind.starts_with("stream.") {
        &["broadcaster_user_id"]
    } else {
        &["broadcaster_user_id", "reward_id"]
    };
    if body["condition"]
        .as_object()
        .is_none_or(|c| c.keys().any(|k| !allowed.contains(&k.as_str())))
    {
        return helix_error(StatusCode::BAD_REQUEST, "invalid condition for this type");
    }
    if body["condition"]["broadcaster_user_id"] != user.as_str() {
        s.forbidden += 1;
        return helix_error(
            StatusCode::FORBIDDEN,
            "subscription missing proper authorization",
        );
    }
    let duplicate = s.subscriptions.iter().any(|sub| {
        sub.status == "enabled" && sub.kind == kind && sub.condition == body["condition"]
    });
    if duplicate {
        s.conflicts += 1;
        return helix_error(StatusCode::CONFLICT, "subscription already exists");
    }
    let mut in_use: Vec<&str> = s
        .subscriptions
        .iter()
        .filter(|sub| sub.status == "enabled")
        .map(|sub| sub.session_id.as_str())
        .collect();
    in_use.sort_unstable();
    in_use.dedup();
    if !in_use.contains(&session_id.as_str()) && in_use.len() >= MAX_CONNECTIONS {
        s.transports_refused += 1;
        return helix_error(
            StatusCode::TOO_MANY_REQUESTS,
            "number of websocket transports limit exceeded",
        );
    }
    let sub = Subscription {
        id: Uuid::new_v4().to_string(),
        kind,
        condition: body["condition"].clone(),
        session_id,
        status: "enabled".to_owned(),
        created_at: now_rfc3339(),
    };
    let answer = json!({"data": [subscription_json(&sub)], "total": 1, "total_cost": 0, "max_total_cost": 10});
    s.subscriptions.push(sub);
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}

async fn list_subscriptions(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorized(&app, &headers, &[]) {
        return *refused;
    }
    let s = app.state.lock().unwrap();
    let data: Vec<Value> = s.subscriptions.iter().map(subscription_json).collect();
    Json(json!({"data": data, "total": data.len(), "total_cost": 0, "max_total_cost": 10, "pagination": {}}))
        .into_response()
}

fn reward_json(r: &Reward) -> Value {
    json!({
        "broadcaster_id": BROADCASTER_ID, "broadcaster_login": BROADCASTER_LOGIN,
        "broadcaster_name": "TwitchDev", "id": r.id, "title": r.title, "prompt": r.prompt,
        "cost": r.cost, "image": null, "default_image": {}, "background_color": "#9147FF",
        "is_enabled": true, "is_user_input_required": r.is_user_input_required,
        "max_per_stream_setting": {"is_enabled": r.max_per_stream.is_some(), "max_per_stream": r.max_per_stream.unwrap_or(0)},
        "max_per_user_per_stream_setting": {"is_enabled": r.max_per_user_per_stream.is_some(), "max_per_user_per_stream": r.max_per_user_per_stream.unwrap_or(0)},
        "global_cooldown_setting": {"is_enabled": r.global_cooldown.is_some(), "global_cooldown_seconds": r.global_cooldown.unwrap_or(0)},
        "is_paused": r.is_paused, "is_in_stock": true,
        "should_redemptions_skip_request_queue": r.should_redemptions_skip_request_queue,
        "redemptions_redeemed_current_stream": null, "cooldown_expires_at": null,
    })
}

async fn create_reward(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) =
        authorized(&app, &headers, &[MANAGE]).and_then(|user| own_channel(&app, &query, &user))
    {
        return *refused;
    }
    let (Some(title), Some(cost)) = (body["title"].as_str(), body["cost"].as_i64()) else {
        return helix_error(StatusCode::BAD_REQUEST, "Missing required parameter");
    };
    let mut s = app.state.lock().unwrap();
    if duplicate_title(&s.rewards, title, None) {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "CREATE_CUSTOM_REWARD_DUPLICATE_REWARD",
        );
    }
    let reward = Reward {
        id: Uuid::new_v4().to_string(),
        title: title.to_owned(),
        prompt: body["prompt"].as_str().unwrap_or_default().to_owned(),
        cost,
        is_user_input_required: body["is_user_input_required"].as_bool().unwrap_or(false),
        should_redemptions_skip_request_queue: body["should_redemptions_skip_request_queue"]
            .as_bool()
            .unwrap_or(false),
        manageable: true,
        is_paused: false,
        global_cooldown: None,
        max_per_stream: None,
        max_per_user_per_stream: None,
    };
    let mut reward = reward;
    if let Err(refused) = apply_flat_fields(&mut reward, &body) {
        return *refused;
    }
    let answer = json!({"data": [reward_json(&reward)]});
    s.rewards.push(reward);
    Json(answer).into_response()
}

async fn list_rewards(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) =
        authorized(&app, &headers, READ_OR_MANAGE).and_then(|user| own_channel(&app, &query, &user))
    {
        return *refused;
    }
    let only_manageable = query_value(&query, "only_manageable_rewards") == Some("true");
    let s = app.state.lock().unwrap();
    let data: Vec<Value> = s
        .rewards
        .iter()
        .filter(|r| !only_manageable || r.manageable)
        .map(reward_json)
        .collect();
    Json(json!({"data": data})).into_response()
}

/// A title is unique among the broadcaster's custom rewards (Twitch's
/// reference, Create and Update Custom Reward): 400 otherwise.
fn duplicate_title(rewards: &[Reward], title: &str, except: Option<&str>) -> bool {
    rewards
        .iter()
        .any(|r| r.title == title && Some(r.id.as_str()) != except)
}

/// The longest global cooldown Twitch takes: 7 days, in seconds.
const MAX_COOLDOWN_SECONDS: i64 = 604_800;

/// The flat fields create and update take (Twitch's reference): a title of
/// 1 to 45 characters, a prompt of at most 200, a cost of at least 1, and
/// each `is_*_enabled` with its value (at least 1; a cooldown at most 7
/// days). The `*_setting` objects Twitch answers with are not read, as
/// Twitch does not read them either.
fn apply_flat_fields(reward: &mut Reward, body: &Value) -> Result<(), Box<Response>> {
    let bad = |message: &str| Box::new(helix_error(StatusCode::BAD_REQUEST, message));
    if let Some(title) = body.get("title").and_then(Value::as_str) {
        if title.trim().is_empty() {
            return Err(bad("title must not be empty"));
        }
        if title.chars().count() > 45 {
            return Err(bad("title must be at most 45 characters"));
        }
        reward.title = title.to_owned();
    }
    if let Some(cost) = body.get("cost") {
        match cost.as_i64() {
            Some(cost) if cost >= 1 => reward.cost = cost,
            _ => return Err(bad("cost must be at least 1")),
        }
    }
    if let Some(prompt) = body.get("prompt").and_then(Value::as_str) {
        if prompt.chars().count() > 200 {
            return Err(bad("prompt must be at most 200 characters"));
        }
        reward.prompt = prompt.to_owned();
    }
    if let Some(paused) = body.get("is_paused").and_then(Value::as_bool) {
        reward.is_paused = paused;
    }
    let limit =
        |enabled: &str, value: &str, min: i64| -> Result<Option<Option<i64>>, Box<Response>> {
            match body.get(enabled).and_then(Value::as_bool) {
                None => Ok(None),
                Some(false) => Ok(Some(None)),
                Some(true) => match body.get(value).and_then(Value::as_i64) {
                    Some(v) if v >= min => Ok(Some(Some(v))),
                    _ => Err(bad(&format!(
                        "{value} must be at least {min} when {enabled} is true"
                    ))),
                },
            }
        };
    if let Some(cooldown) = limit("is_global_cooldown_enabled", "global_cooldown_seconds", 1)? {
        if cooldown.is_some_and(|seconds| seconds > MAX_COOLDOWN_SECONDS) {
            return Err(bad("global_cooldown_seconds must be at most 604800"));
        }
        reward.global_cooldown = cooldown;
    }
    if let Some(max) = limit("is_max_per_stream_enabled", "max_per_stream", 1)? {
        reward.max_per_stream = max;
    }
    if let Some(max) = limit(
        "is_max_per_user_per_stream_enabled",
        "max_per_user_per_stream",
        1,
    )? {
        reward.max_per_user_per_stream = max;
    }
    Ok(())
}

/// `PATCH /helix/channel_points/custom_rewards?broadcaster_id&id`: only a
/// reward this client created.
async fn update_reward(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) =
        authorized(&app, &headers, &[MANAGE]).and_then(|user| own_channel(&app, &query, &user))
    {
        return *refused;
    }
    let Some(id) = query_value(&query, "id") else {
        return helix_error(StatusCode::BAD_REQUEST, "Missing required parameter id");
    };
    let mut s = app.state.lock().unwrap();
    if let Some(title) = body.get("title").and_then(Value::as_str)
        && duplicate_title(&s.rewards, title, Some(id))
    {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "CREATE_CUSTOM_REWARD_DUPLICATE_REWARD",
        );
    }
    let Some(reward) = s.rewards.iter_mut().find(|r| r.id == id) else {
        return helix_error(StatusCode::NOT_FOUND, "reward not found");
    };
    if !reward.manageable {
        return helix_error(
            StatusCode::FORBIDDEN,
            "The client-id does not match the client-id that created the reward",
        );
    }
    let mut changed = reward.clone();
    if let Err(refused) = apply_flat_fields(&mut changed, &body) {
        return *refused;
    }
    *reward = changed.clone();
    s.reward_patches.push((id.to_owned(), body));
    Json(json!({"data": [reward_json(&changed)]})).into_response()
}

/// `POST /helix/chat/messages`: a user token of the sender (scope
/// `user:write:chat`), 500 characters at most. Past the sender's limit the
/// call is answered 200 and the message dropped (`is_sent: false`).
async fn send_chat(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let user = match authorized(&app, &headers, &[CHAT_SCOPE]) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    let (Some(broadcaster_id), Some(sender_id), Some(message)) = (
        body["broadcaster_id"].as_str(),
        body["sender_id"].as_str(),
        body["message"].as_str(),
    ) else {
        return helix_error(StatusCode::BAD_REQUEST, "Missing required parameter");
    };
    if sender_id != user {
        app.state.lock().unwrap().forbidden += 1;
        return helix_error(
            StatusCode::FORBIDDEN,
            "The sender must match the user ID in the access token.",
        );
    }
    if broadcaster_id != BROADCASTER_ID {
        return helix_error(StatusCode::BAD_REQUEST, "The broadcaster_id is not valid.");
    }
    if message.is_empty() || message.chars().count() > 500 {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "The message must be 1 to 500 characters.",
        );
    }
    let mut s = app.state.lock().unwrap();
    let limit = if sender_id == BROADCASTER_ID || s.moderators.contains(sender_id) {
        s.chat_limit_moderator
    } else {
        s.chat_limit
    };
    let window = s.chat_window;
    let now = std::time::Instant::now();
    let sent = s.chat_sent_at.entry(sender_id.to_owned()).or_default();
    while sent
        .front()
        .is_some_and(|at| now.duration_since(*at) >= window)
    {
        sent.pop_front();
    }
    let is_sent = sent.len() < limit;
    if is_sent {
        sent.push_back(now);
    }
    s.chat.push(ChatLine {
        broadcaster_id: broadcaster_id.to_owned(),
        sender_id: sender_id.to_owned(),
        message: message.to_owned(),
        is_sent,
    });
    let drop_reason = if is_sent {
        Value::Null
    } else {
        json!({"code": "msg_ratelimit", "message": "Your message was not sent because you are sending messages too quickly."})
    };
    Json(json!({"data": [{
        "message_id": if is_sent { Uuid::new_v4().to_string() } else { String::new() },
        "is_sent": is_sent,
        "drop_reason": drop_reason,
    }]}))
    .into_response()
}

fn redemption_json(r: &Redemption, reward: Option<&Reward>) -> Value {
    json!({
        "broadcaster_id": BROADCASTER_ID, "broadcaster_login": BROADCASTER_LOGIN,
        "broadcaster_name": "TwitchDev", "id": r.id, "user_id": r.user_id,
        "user_login": r.user_login, "user_name": r.user_name, "user_input": r.user_input,
        "status": r.status, "redeemed_at": r.redeemed_at,
        "reward": {
            "id": r.reward_id,
            "title": reward.map(|w| w.title.clone()).unwrap_or_default(),
            "prompt": reward.map(|w| w.prompt.clone()).unwrap_or_default(),
            "cost": reward.map(|w| w.cost).unwrap_or_default(),
        },
    })
}

/// Pages of at most `first` (default 20, at most 50), cursor = offset.
async fn list_redemptions(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) =
        authorized(&app, &headers, READ_OR_MANAGE).and_then(|user| own_channel(&app, &query, &user))
    {
        return *refused;
    }
    let Some(reward_id) = query_value(&query, "reward_id") else {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter reward_id",
        );
    };
    let ids: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .collect();
    let status = query_value(&query, "status");
    if ids.is_empty() && status.is_none() {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "The status query parameter is required if you didn't specify the id query parameter",
        );
    }
    let first: usize = query_value(&query, "first")
        .and_then(|f| f.parse().ok())
        .unwrap_or(20);
    if !(1..=50).contains(&first) {
        return helix_error(StatusCode::BAD_REQUEST, "first must be 1-50");
    }
    let offset: usize = query_value(&query, "after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let s = app.state.lock().unwrap();
    let Some(reward) = s.rewards.iter().find(|r| r.id == reward_id) else {
        return helix_error(StatusCode::NOT_FOUND, "reward not found");
    };
    if !reward.manageable {
        return helix_error(
            StatusCode::FORBIDDEN,
            "The client-id does not match the client-id that created the reward",
        );
    }
    let matching: Vec<&Redemption> = s
        .redemptions
        .iter()
        .filter(|r| r.reward_id == reward_id)
        .filter(|r| ids.is_empty() || ids.contains(&r.id.as_str()))
        .filter(|r| status.is_none_or(|st| r.status == st))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(first)
        .map(|r| redemption_json(r, Some(reward)))
        .collect();
    let pagination = if offset + first < matching.len() {
        json!({"cursor": (offset + first).to_string()})
    } else {
        json!({})
    };
    Json(json!({"data": page, "pagination": pagination})).into_response()
}

/// Only UNFULFILLED redemptions of rewards this client created can change;
/// anything else is 404, as Twitch answers.
async fn update_redemptions(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(refused) =
        authorized(&app, &headers, &[MANAGE]).and_then(|user| own_channel(&app, &query, &user))
    {
        return *refused;
    }
    let status = body["status"].as_str().unwrap_or_default().to_owned();
    if status != "FULFILLED" && status != "CANCELED" {
        return helix_error(
            StatusCode::BAD_REQUEST,
            "status must be FULFILLED or CANCELED",
        );
    }
    let (Some(id), Some(reward_id)) = (query_value(&query, "id"), query_value(&query, "reward_id"))
    else {
        return helix_error(StatusCode::BAD_REQUEST, "Missing required parameter");
    };
    let mut s = app.state.lock().unwrap();
    let Some(reward) = s.rewards.iter().find(|r| r.id == reward_id).cloned() else {
        return helix_error(StatusCode::NOT_FOUND, "reward not found");
    };
    if !reward.manageable {
        return helix_error(
            StatusCode::FORBIDDEN,
            "The client-id does not match the client-id that created the reward",
        );
    }
    let Some(redemption) = s
        .redemptions
        .iter_mut()
        .find(|r| r.id == id && r.reward_id == reward_id && r.status == "UNFULFILLED")
    else {
        return helix_error(
            StatusCode::NOT_FOUND,
            "No redemptions found for the given reward and status UNFULFILLED",
        );
    };
    redemption.status = status.clone();
    let changed = redemption.clone();
    let answer = json!({"data": [redemption_json(&changed, Some(&reward))]});
    s.updates.push((id.to_owned(), status));
    // Twitch's docs do not promise the app's own updates are left out.
    notify_update(&mut s, &changed);
    Json(answer).into_response()
}

/// An EventSub WebSocket message: metadata and payload.
fn envelope(kind: &str, payload: Value, sub: Option<&Subscription>) -> String {
    let mut metadata = json!({
        "message_id": Uuid::new_v4().to_string(),
        "message_type": kind,
        "message_timestamp": now_rfc3339(),
    });
    if let Some(sub) = sub {
        metadata["subscription_type"] = json!(sub.kind);
        metadata["subscription_version"] = json!("1");
    }
    json!({"metadata": metadata, "payload": payload}).to_string()
}

/// Sends `channel_points_custom_reward_redemption.update` for `r` on every
/// enabled subscription that matches it.
fn notify_update(s: &mut TwitchState, r: &Redemption) {
    let reward = s.rewards.iter().find(|w| w.id == r.reward_id).cloned();
    let targets: Vec<Subscription> = s
        .subscriptions
        .iter()
        .filter(|sub| {
            sub.status == "enabled"
                && sub.kind == REDEMPTION_UPDATE_TYPE
                && (sub.condition.get("reward_id").is_none()
                    || sub.condition["reward_id"] == r.reward_id.as_str())
        })
        .cloned()
        .collect();
    for sub in targets {
        let message = notification(&sub, r, reward.as_ref());
        if let Some(session) = s.sessions.get(&sub.session_id) {
            let _ = session.send(Control::Send(message));
        }
    }
}

/// Sends a stream.online / stream.offline notification.
fn notify_stream(s: &mut TwitchState, kind: &str) {
    let event = if kind == STREAM_ONLINE_TYPE {
        json!({"id": Uuid::new_v4().to_string(), "broadcaster_user_id": BROADCASTER_ID,
               "broadcaster_user_login": BROADCASTER_LOGIN, "broadcaster_user_name": "TwitchDev",
               "type": "live", "started_at": now_rfc3339()})
    } else {
        json!({"broadcaster_user_id": BROADCASTER_ID,
               "broadcaster_user_login": BROADCASTER_LOGIN, "broadcaster_user_name": "TwitchDev"})
    };
    for sub in s
        .subscriptions
        .iter()
        .filter(|sub| sub.status == "enabled" && sub.kind == kind)
    {
        let message = envelope(
            "notification",
            json!({"subscription": subscription_json(sub), "event": event}),
            Some(sub),
        );
        if let Some(session) = s.sessions.get(&sub.session_id) {
            let _ = session.send(Control::Send(message));
        }
    }
}

fn notification(sub: &Subscription, r: &Redemption, reward: Option<&Reward>) -> String {
    let event = json!({
        "id": r.id,
        "broadcaster_user_id": BROADCASTER_ID, "broadcaster_user_login": BROADCASTER_LOGIN,
        "broadcaster_user_name": "TwitchDev",
        "user_id": r.user_id, "user_login": r.user_login, "user_name": r.user_name,
        "user_input": r.user_input, "status": r.status.to_lowercase(),
        "reward": {
            "id": r.reward_id,
            "title": reward.map(|w| w.title.clone()).unwrap_or_default(),
            "cost": reward.map(|w| w.cost).unwrap_or_default(),
            "prompt": reward.map(|w| w.prompt.clone()).unwrap_or_default(),
        },
        "redeemed_at": r.redeemed_at,
    });
    envelope(
        "notification",
        json!({"subscription": subscription_json(sub), "event": event}),
        Some(sub),
    )
}

async fn websocket(
    State(app): State<App>,
    Query(query): Query<Vec<(String, String)>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let carried = query_value(&query, "reconnect").map(str::to_owned);
    upgrade.on_upgrade(move |socket| session(app, socket, carried))
}

/// One EventSub connection: the welcome, then keepalives after every
/// `keepalive_secs` without a message, and whatever the test sends.
async fn session(app: App, mut socket: WebSocket, carried_from: Option<String>) {
    let id = format!("AQoQ{}", Uuid::new_v4().simple());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let keepalive = {
        let mut s = app.state.lock().unwrap();
        s.connections += 1;
        s.sessions.insert(id.clone(), tx);
        s.unchecked.insert(id.clone());
        s.most_sessions_open = s.most_sessions_open.max(s.sessions.len());
        // A reconnect keeps the old session's subscriptions on the new one.
        if let Some(old) = &carried_from {
            for sub in &mut s.subscriptions {
                if &sub.session_id == old && sub.status == "enabled" {
                    sub.session_id = id.clone();
                }
            }
        }
        (s.keepalive_secs, s.subscribe_within_secs)
    };
    let (keepalive, subscribe_within) = keepalive;
    let welcome = envelope(
        "session_welcome",
        json!({"session": {
            "id": id, "status": "connected", "connected_at": now_rfc3339(),
            "keepalive_timeout_seconds": keepalive, "reconnect_url": null, "recovery_url": null,
        }}),
        None,
    );
    if socket.send(Message::Text(welcome.into())).await.is_err() {
        forget(&app, &id);
        return;
    }
    let period = std::time::Duration::from_secs(keepalive.max(1));
    // Twitch closes a connection that has no subscription this long after
    // its welcome (4003 "connection unused").
    let unused_deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(subscribe_within);
    let mut checked_in_use = false;
    loop {
        let message = tokio::select! {
            control = rx.recv() => match control {
                Some(Control::Send(text)) => Some(text),
                Some(Control::Close) | None => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code: 4000, reason: "dropped by the test".into() })))
                        .await;
                    break;
                }
            },
            _ = tokio::time::sleep_until(unused_deadline), if !checked_in_use => {
                checked_in_use = true;
                let in_use = {
                    let mut s = app.state.lock().unwrap();
                    let in_use = s.subscriptions.iter().any(|sub| sub.session_id == id && sub.status == "enabled");
                    s.closed_unused += u32::from(!in_use);
                    s.unchecked.remove(&id);
                    in_use
                };
                if !in_use {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code: 4003, reason: "connection unused".into() })))
                        .await;
                    break;
                }
                None
            }
            _ = tokio::time::sleep(period) => {
                if app.state.lock().unwrap().silent { None } else {
                    Some(envelope("session_keepalive", json!({}), None))
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // Twitch drops clients that send anything but pongs.
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code: 4001, reason: "client sent inbound traffic".into() })))
                        .await;
                    break;
                }
                Some(Ok(_)) => None,
            },
        };
        if let Some(text) = message
            && socket.send(Message::Text(text.into())).await.is_err()
        {
            break;
        }
    }
    forget(&app, &id);
}

/// A closed socket's subscriptions stop.
fn forget(app: &App, id: &str) {
    let mut s = app.state.lock().unwrap();
    s.sessions.remove(id);
    s.unchecked.remove(id);
    for sub in &mut s.subscriptions {
        if sub.session_id == id && sub.status == "enabled" {
            sub.status = "websocket_disconnected".to_owned();
        }
    }
}
