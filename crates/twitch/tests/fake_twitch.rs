//! The fake Twitch refuses what Twitch refuses (dev.twitch.tv: "Handling
//! WebSocket Events", "WebSocket Messages", the Helix reference of each
//! endpoint): a connection that does not subscribe in time is closed with
//! 4003, a fourth connection's subscription is refused 429, every Helix call
//! needs its scope and the token's own broadcaster id.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::FakeTwitch;
use dynamo_testkit::twitch::{BROADCASTER_ID, CLIENT_ID, MAX_CONNECTIONS, REDEMPTION_TYPE};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw EventSub connection and its session id.
async fn open(twitch: &FakeTwitch) -> (Socket, String) {
    let (mut socket, _) = tokio_tungstenite::connect_async(twitch.ws_url.as_str())
        .await
        .unwrap();
    let Some(Ok(Message::Text(welcome))) = socket.next().await else {
        panic!("a welcome");
    };
    let welcome: Value = serde_json::from_str(&welcome).unwrap();
    let id = welcome["payload"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (socket, id)
}

async fn helix(
    twitch: &FakeTwitch,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/helix/{path}", twitch.url))
        .header("client-id", CLIENT_ID)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

async fn subscribe(twitch: &FakeTwitch, token: &str, session: &str, reward: &str) -> StatusCode {
    let body = json!({"type": REDEMPTION_TYPE, "version": "1",
        "condition": {"broadcaster_user_id": BROADCASTER_ID, "reward_id": reward},
        "transport": {"method": "websocket", "session_id": session}});
    helix(
        twitch,
        Method::POST,
        "eventsub/subscriptions",
        token,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_connection_without_a_subscription_in_time_is_closed_4003() {
    let twitch = FakeTwitch::start().await;
    twitch.with(|s| s.subscribe_within_secs = 1);
    let (token, _) = twitch.issue_tokens();
    let (mut unused, _) = open(&twitch).await;
    let (mut used, session) = open(&twitch).await;
    assert_eq!(
        subscribe(&twitch, &token, &session, "r1").await,
        StatusCode::ACCEPTED
    );
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match unused.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("a close frame, not {other:?}"),
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(closed.unwrap().code, CloseCode::from(4003));
    // The subscribed one stays open past the deadline.
    assert_eq!(twitch.with(|s| s.closed_unused), 1);
    dynamo_testkit::eventually("the unused session gone", Duration::from_secs(30), || {
        let open = twitch.open_sockets();
        async move { (open == 1).then_some(()) }
    })
    .await;
    let _ = used.close(None).await;
}

#[tokio::test]
async fn a_fourth_connections_subscription_is_refused_429() {
    let twitch = FakeTwitch::start().await;
    let (token, _) = twitch.issue_tokens();
    let mut sockets = Vec::new();
    for i in 0..MAX_CONNECTIONS {
        let (socket, session) = open(&twitch).await;
        let status = subscribe(&twitch, &token, &session, &format!("r{i}")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        sockets.push(socket);
    }
    let (_fourth, session) = open(&twitch).await;
    assert_eq!(
        subscribe(&twitch, &token, &session, "r9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn helix_wants_the_scope_and_the_tokens_own_broadcaster() {
    let twitch = FakeTwitch::start().await;
    let (token, _) = twitch.issue_tokens();
    let reader = twitch.issue_token_of(BROADCASTER_ID, &["channel:read:redemptions"]);
    let stranger = twitch.issue_token_of("999", &["channel:manage:redemptions"]);
    let own = format!("broadcaster_id={BROADCASTER_ID}");
    let reward = json!({"title": "a reward", "cost": 100});
    let create = format!("channel_points/custom_rewards?{own}");
    let list = format!("channel_points/custom_rewards?{own}");
    let redemptions =
        format!("channel_points/custom_rewards/redemptions?{own}&reward_id=x&status=UNFULFILLED");
    let update = format!("channel_points/custom_rewards/redemptions?{own}&reward_id=x&id=y");
    let status = json!({"status": "FULFILLED"});

    // Reading takes channel:read:redemptions; changing takes manage.
    assert_eq!(
        helix(&twitch, Method::GET, &list, &reader, None).await,
        StatusCode::OK
    );
    assert_eq!(
        helix(
            &twitch,
            Method::POST,
            &create,
            &reader,
            Some(reward.clone())
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        helix(
            &twitch,
            Method::PATCH,
            &update,
            &reader,
            Some(status.clone())
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // Another user's token cannot act on this channel.
    for (method, path, body) in [
        (Method::POST, &create, Some(reward.clone())),
        (Method::GET, &list, None),
        (Method::GET, &redemptions, None),
        (Method::PATCH, &update, Some(status.clone())),
    ] {
        assert_eq!(
            helix(&twitch, method, path, &stranger, body).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let (_socket, session) = open(&twitch).await;
    assert_eq!(
        subscribe(&twitch, &stranger, &session, "r1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        subscribe(&twitch, &token, &session, "r1").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        helix(&twitch, Method::POST, &create, &token, Some(reward)).await,
        StatusCode::OK
    );
}

async fn chat(
    twitch: &FakeTwitch,
    token: &str,
    sender: &str,
    message: &str,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/helix/chat/messages", twitch.url))
        .header("client-id", CLIENT_ID)
        .bearer_auth(token)
        .json(&json!({"broadcaster_id": BROADCASTER_ID, "sender_id": sender, "message": message}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// Send Chat Message as Twitch's reference has it: the sender's own user
/// token with `user:write:chat`, at most 500 characters, and past the
/// sender's limit a 200 whose message was not posted (`is_sent: false`,
/// with a `drop_reason`) — 20 per window for an ordinary account, 100 for
/// a moderator or the broadcaster.
#[tokio::test]
async fn chat_takes_the_senders_own_token_with_its_scope_and_drops_past_the_limit() {
    use dynamo_testkit::twitch::{CHAT_LIMIT, CHAT_SCOPE};
    let twitch = FakeTwitch::start().await;
    let bot = twitch.issue_token_of("9001", &[CHAT_SCOPE]);
    let unscoped = twitch.issue_token_of("9002", &["channel:manage:redemptions"]);

    let (status, _) = chat(&twitch, &unscoped, "9002", "hello").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "missing user:write:chat");
    let (status, _) = chat(&twitch, &bot, "9002", "hello").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "sender is not the token's user"
    );
    let (status, _) = chat(&twitch, &bot, "9001", &"x".repeat(501)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "over 500 characters");

    for i in 0..CHAT_LIMIT {
        let (status, answer) = chat(&twitch, &bot, "9001", &format!("message {i}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["data"][0]["is_sent"], true, "{answer}");
    }
    let (status, answer) = chat(&twitch, &bot, "9001", "one too many").await;
    assert_eq!(status, StatusCode::OK, "accepted, and yet");
    assert_eq!(answer["data"][0]["is_sent"], false, "{answer}");
    assert_eq!(answer["data"][0]["drop_reason"]["code"], "msg_ratelimit");
    assert_eq!(twitch.chat_posted().len(), CHAT_LIMIT);

    // A moderator may send more in the same window.
    twitch.with(|s| s.moderators.insert("9001".to_owned()));
    let (_, answer) = chat(&twitch, &bot, "9001", "as a moderator").await;
    assert_eq!(answer["data"][0]["is_sent"], true, "{answer}");
}

/// A moderator's cancel in Twitch's reward queue is told to
/// `redemption.update` subscribers, with the new status.
#[tokio::test]
async fn a_moderators_cancel_is_told_to_update_subscribers() {
    let twitch = FakeTwitch::start().await;
    let (token, _) = twitch.issue_tokens();
    let reward = twitch.with(|s| {
        s.rewards.push(dynamo_testkit::twitch::Reward {
            id: "r1".to_owned(),
            title: "t".to_owned(),
            prompt: String::new(),
            cost: 1,
            is_user_input_required: true,
            should_redemptions_skip_request_queue: false,
            manageable: true,
            is_paused: false,
            global_cooldown: None,
            max_per_stream: None,
            max_per_user_per_stream: None,
        });
        "r1".to_owned()
    });
    let (mut socket, session) = open(&twitch).await;
    let body = json!({"type": dynamo_testkit::twitch::REDEMPTION_UPDATE_TYPE, "version": "1",
        "condition": {"broadcaster_user_id": BROADCASTER_ID, "reward_id": reward},
        "transport": {"method": "websocket", "session_id": session}});
    let status = helix(
        &twitch,
        Method::POST,
        "eventsub/subscriptions",
        &token,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let redemption = twitch.redeem(&reward, "7", "Viewer", "a seal");
    assert!(twitch.moderator_settles(&redemption, "CANCELED"));
    assert!(
        !twitch.moderator_settles(&redemption, "CANCELED"),
        "only once"
    );
    let notification = loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("a notification");
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["metadata"]["message_type"] == "notification" {
            break frame;
        }
    };
    assert_eq!(
        notification["metadata"]["subscription_type"],
        dynamo_testkit::twitch::REDEMPTION_UPDATE_TYPE
    );
    assert_eq!(notification["payload"]["event"]["id"], redemption.as_str());
    assert_eq!(notification["payload"]["event"]["status"], "canceled");
}
