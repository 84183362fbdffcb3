//! The EventSub WebSocket session (no public URL needed): connect, read the
//! `session_welcome`, subscribe to redemptions of dynamo's rewards, list
//! what was redeemed meanwhile, then take in notifications. Silence past the
//! keepalive timeout, a closed socket or an error → connect again (capped
//! backoff); `session_reconnect` → connect to its `reconnect_url` (the
//! subscriptions move with it), then drop the old socket; `revocation` of a
//! grant → hold requests, say so, and wait for the next sign-in.
//!
//! What the other end sends is not trusted blindly: a `reconnect_url` is
//! followed only over `wss://` (or the configured URL's own scheme, for a
//! local test server) to the configured URL's host; messages are capped in
//! size before they are buffered; the keepalive timeout is bounded, so no
//! value Twitch (or anyone on its socket) sends can overflow the arithmetic.

use crate::helix::{REDEMPTION_ADD, REDEMPTION_UPDATE, STREAM_OFFLINE, STREAM_ONLINE};
use crate::intake::{Intake, Redemption};
use crate::{SERVICE, TwitchError};
use dynamo_runtime::Shutdown;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Twitch sends the welcome at once; this is generous.
const WELCOME_WITHIN: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How often a revoked or missing sign-in is looked for again.
const SIGN_IN_POLL: Duration = Duration::from_secs(5);
/// Message ids remembered for deduplication.
const SEEN_MAX: usize = 4096;
/// How long a held request waits before it tries again.
const HOLD_PROBE: Duration = Duration::from_secs(30);
/// The largest message (and frame) taken from the socket. EventSub messages
/// are a few KiB (a notification carries at most 500 characters of input);
/// anything larger is refused before it is buffered, and the session is
/// connected again (tungstenite's own default would be 64 MiB).
const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Twitch's `keepalive_timeout_seconds` is 10–600; larger values are taken
/// as this, so the silence allowed after it cannot overflow.
const KEEPALIVE_MAX: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
struct Frame {
    metadata: Metadata,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    message_id: String,
    message_type: String,
    #[serde(default)]
    subscription_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SessionPayload {
    session: Session,
}

#[derive(Debug, Deserialize)]
struct Session {
    id: String,
    #[serde(default)]
    keepalive_timeout_seconds: Option<u64>,
    #[serde(default)]
    reconnect_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RedemptionEvent {
    id: String,
    broadcaster_user_id: String,
    user_id: String,
    user_login: String,
    user_name: String,
    #[serde(default)]
    user_input: String,
    status: String,
    reward: RewardOfEvent,
}

#[derive(Debug, Deserialize)]
struct RewardOfEvent {
    id: String,
}

impl From<RedemptionEvent> for Redemption {
    fn from(e: RedemptionEvent) -> Self {
        Self {
            id: e.id,
            broadcaster_id: e.broadcaster_user_id,
            reward_id: e.reward.id,
            user_id: e.user_id,
            user_login: e.user_login,
            user_name: e.user_name,
            user_input: e.user_input,
            status: e.status.to_uppercase(),
        }
    }
}

/// A connected session, after its welcome.
struct Live {
    socket: Socket,
    id: String,
    keepalive: Duration,
}

/// Why a session ended.
enum Ended {
    Shutdown,
    Lost(String),
    SignedOut(String),
}

/// Runs the intake until `shutdown`.
pub async fn run(intake: std::sync::Arc<Intake>, url: String, shutdown: Shutdown) {
    run_trusting(intake, url, mozilla_roots(), shutdown).await;
}

/// [`run`] trusting `roots` for `wss://`: only tests trust anything but
/// Mozilla's (a fake Twitch with a certificate made for the test).
pub async fn run_trusting(
    intake: std::sync::Arc<Intake>,
    url: String,
    roots: rustls::RootCertStore,
    shutdown: Shutdown,
) {
    let url = url.as_str();
    let mut backoff = Duration::from_secs(1);
    let mut seen = Seen::default();
    loop {
        let connected = tokio::select! {
            _ = shutdown.requested() => break,
            connected = connect_trusting(url, roots.clone()) => connected,
        };
        let ended = match connected {
            Ok(live) => {
                backoff = Duration::from_secs(1);
                let to = Endpoint {
                    configured: url,
                    roots: &roots,
                };
                serve(&intake, live, &mut seen, &shutdown, to).await
            }
            Err(reason) => Ended::Lost(reason),
        };
        match ended {
            Ended::Shutdown => break,
            Ended::Lost(reason) => {
                tracing::warn!(%reason, retry_in = ?backoff, "EventSub connection lost; connecting again");
                tokio::select! {
                    _ = shutdown.requested() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Ended::SignedOut(reason) => {
                tracing::error!(%reason, "Twitch intake stopped: sign in again with `dynamoctl twitch login`; redemptions wait on Twitch meanwhile");
                let _ = intake
                    .store
                    .hold(
                        SERVICE.as_str(),
                        &format!("{reason}; sign in again with `dynamoctl twitch login`"),
                        HOLD_PROBE,
                    )
                    .await;
                if !wait_for_sign_in(&intake, &shutdown).await {
                    break;
                }
            }
        }
    }
    tracing::info!("Twitch intake stopped");
}

/// Waits until a token can be had again; `false` on shutdown.
async fn wait_for_sign_in(intake: &Intake, shutdown: &Shutdown) -> bool {
    loop {
        tokio::select! {
            _ = shutdown.requested() => return false,
            _ = tokio::time::sleep(SIGN_IN_POLL) => {}
        }
        if intake.helix.tokens().access().await.is_ok() {
            tracing::info!("signed in to Twitch again: resuming the intake");
            return true;
        }
    }
}

/// TLS for wss:// with aws-lc-rs and `roots` (the Mozilla roots in
/// service), chosen here: the workspace builds rustls with two providers,
/// so there is no single process default to fall back on.
fn tls(roots: rustls::RootCertStore) -> Result<tokio_tungstenite::Connector, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
        config,
    )))
}

fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

#[cfg(test)]
async fn connect(url: &str) -> Result<Live, String> {
    connect_trusting(url, mozilla_roots()).await
}

/// Where sessions are opened: the configured URL (a `session_reconnect`
/// may only move within it), and the roots trusted for `wss://`.
#[derive(Clone, Copy)]
struct Endpoint<'a> {
    configured: &'a str,
    roots: &'a rustls::RootCertStore,
}

/// [`connect`] trusting `roots`: only tests trust anything but Mozilla's.
async fn connect_trusting(url: &str, roots: rustls::RootCertStore) -> Result<Live, String> {
    let limits = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        Some(limits),
        false,
        Some(tls(roots)?),
    )
    .await
    .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let welcome = tokio::time::timeout(WELCOME_WITHIN, next_frame(&mut socket))
        .await
        .map_err(|_| "no session_welcome in time".to_owned())??;
    if welcome.metadata.message_type != "session_welcome" {
        return Err(format!(
            "expected session_welcome, got {}",
            welcome.metadata.message_type
        ));
    }
    let session: SessionPayload = serde_json::from_value(welcome.payload)
        .map_err(|e| format!("malformed session_welcome: {e}"))?;
    let keepalive = Duration::from_secs(session.session.keepalive_timeout_seconds.unwrap_or(10))
        .min(KEEPALIVE_MAX);
    tracing::info!(session = %session.session.id, ?keepalive, "EventSub session open");
    Ok(Live {
        socket,
        id: session.session.id,
        keepalive,
    })
}

/// The next text frame (pings are answered by tungstenite itself).
async fn next_frame(socket: &mut Socket) -> Result<Frame, String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| format!("malformed EventSub message: {e}"));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("Twitch closed the socket: {frame:?}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("socket error: {e}")),
            None => return Err("the socket closed".to_owned()),
        }
    }
}

/// Where a `session_reconnect` may send the client: `wss://` (or the
/// configured URL's scheme, e.g. `ws://` to a local test server) on the
/// configured URL's host. Anything else could move the session, and the
/// redemptions on it, to whoever wrote the message.
fn reconnect_allowed(configured: &str, reconnect: &str) -> Result<(), String> {
    let configured =
        url::Url::parse(configured).map_err(|e| format!("TWITCH_EVENTSUB_URL: {e}"))?;
    let target = url::Url::parse(reconnect).map_err(|e| format!("not a URL: {e}"))?;
    if target.scheme() != "wss" && target.scheme() != configured.scheme() {
        return Err(format!("scheme {:?} is not wss", target.scheme()));
    }
    if target.host_str() != configured.host_str() {
        return Err(format!(
            "host {:?} is not {:?}",
            target.host_str().unwrap_or(""),
            configured.host_str().unwrap_or("")
        ));
    }
    Ok(())
}

/// Subscribes, catches up, then reads until the session ends.
async fn serve(
    intake: &Intake,
    mut live: Live,
    seen: &mut Seen,
    shutdown: &Shutdown,
    to: Endpoint<'_>,
) -> Ended {
    let mut subscribed = HashSet::new();
    let broadcaster = match subscribe(intake, &live.id, &mut subscribed).await {
        Ok(broadcaster) => broadcaster,
        Err(ended) => return ended,
    };
    // A style's reward published while the session runs is subscribed to
    // as soon as the styles say so.
    let mut changes = intake.rewards.changes();
    if let Err(ended) = catch_up(intake, &broadcaster).await {
        return ended;
    }
    loop {
        // Silence past the keepalive timeout (plus a little for the network).
        let silence = live.keepalive.saturating_add(live.keepalive / 2);
        let frame = tokio::select! {
            _ = shutdown.requested() => {
                let _ = live.socket.close(None).await;
                return Ended::Shutdown;
            }
            frame = tokio::time::timeout(silence, next_frame(&mut live.socket)) => frame,
            () = styles_changed(&mut changes) => {
                match subscribe_rewards(intake, &live.id, &broadcaster, &mut subscribed).await {
                    Ok(0) => {}
                    // Whatever was redeemed before the subscription.
                    Ok(_) => if let Err(ended) = catch_up(intake, &broadcaster).await {
                        return ended;
                    },
                    Err(ended) => return ended,
                }
                continue;
            }
        };
        let frame = match frame {
            Err(_) => {
                return Ended::Lost(format!("no message for {silence:?} (keepalive timeout)"));
            }
            Ok(Err(reason)) => return Ended::Lost(reason),
            Ok(Ok(frame)) => frame,
        };
        match frame.metadata.message_type.as_str() {
            "session_keepalive" => {}
            "notification" => {
                if !seen.first_time(&frame.metadata.message_id) {
                    tracing::debug!(message_id = %frame.metadata.message_id, "duplicate notification ignored");
                    continue;
                }
                let kind = frame.metadata.subscription_type.as_deref().unwrap_or("");
                if kind == STREAM_ONLINE || kind == STREAM_OFFLINE {
                    let live = kind == STREAM_ONLINE;
                    tracing::info!(live, "the channel's live status changed");
                    if let Err(error) = intake.store.set_channel_live(live).await {
                        tracing::warn!(%error, "could not record the channel's live status");
                    }
                    continue;
                }
                if kind == REDEMPTION_UPDATE {
                    match serde_json::from_value::<RedemptionEvent>(frame.payload["event"].clone())
                    {
                        // A failure here leaves the request to the debit's
                        // own look at the redemption.
                        Ok(event) => {
                            if let Err(error) =
                                crate::elsewhere::changed(&intake.store, &event.into()).await
                            {
                                tracing::warn!(%error, "could not apply a redemption's update");
                            }
                        }
                        Err(error) => tracing::warn!(%error, "malformed redemption update"),
                    }
                    continue;
                }
                if kind != REDEMPTION_ADD {
                    continue;
                }
                match serde_json::from_value::<RedemptionEvent>(frame.payload["event"].clone()) {
                    Ok(event) => {
                        // A failure here is not lost: the redemption stays
                        // UNFULFILLED and the next catch-up takes it in.
                        if let Err(error) = intake.take_in(&event.into()).await {
                            tracing::warn!(%error, "could not take a redemption in yet");
                            if let TwitchError::SignedOut(reason) = error {
                                return Ended::SignedOut(reason);
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "malformed redemption notification"),
                }
            }
            "session_reconnect" => {
                let Ok(payload) = serde_json::from_value::<SessionPayload>(frame.payload) else {
                    return Ended::Lost("malformed session_reconnect".to_owned());
                };
                let Some(url) = payload.session.reconnect_url else {
                    return Ended::Lost("session_reconnect without a reconnect_url".to_owned());
                };
                if let Err(why) = reconnect_allowed(to.configured, &url) {
                    // Connecting afresh to the configured URL loses nothing:
                    // the catch-up lists what is still unfulfilled.
                    let shown = dynamo_upstream::redact_url(&url);
                    tracing::warn!(reconnect_url = %shown, %why, "refused a session_reconnect's URL; connecting to TWITCH_EVENTSUB_URL instead");
                    let _ = live.socket.close(None).await;
                    return Ended::Lost(format!("refused reconnect_url {shown}: {why}"));
                }
                tracing::info!("Twitch asked to reconnect: moving to the new session");
                match connect_trusting(&url, to.roots.clone()).await {
                    Ok(new) => {
                        let _ = live.socket.close(None).await;
                        live = new;
                        // Anything sent to the old socket after we stopped
                        // reading it is still UNFULFILLED on Twitch.
                        if let Err(ended) = catch_up(intake, &broadcaster).await {
                            return ended;
                        }
                    }
                    Err(reason) => return Ended::Lost(reason),
                }
            }
            "revocation" => {
                let status = frame.payload["subscription"]["status"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned();
                tracing::error!(%status, "Twitch revoked the redemptions subscription");
                if status == "authorization_revoked" || status == "user_removed" {
                    let reason = format!("Twitch revoked dynamo's access ({status})");
                    let _ = intake.helix.tokens().revoked(&reason).await;
                    return Ended::SignedOut(reason);
                }
                return Ended::Lost(format!("subscription revoked ({status})"));
            }
            other => tracing::debug!(message_type = other, "EventSub message ignored"),
        }
    }
}

async fn subscribe(
    intake: &Intake,
    session_id: &str,
    subscribed: &mut HashSet<String>,
) -> Result<String, Ended> {
    let broadcaster = intake.helix.broadcaster_id().await.map_err(ended_by)?;
    subscribe_rewards(intake, session_id, &broadcaster, subscribed).await?;
    // Whether the channel is live (TWITCH_PAUSE_WHEN_OFFLINE).
    for kind in [STREAM_ONLINE, STREAM_OFFLINE] {
        intake
            .helix
            .subscribe_stream(session_id, kind, &broadcaster)
            .await
            .map_err(ended_by)?;
    }
    // Signed in and subscribed: whatever was held for want of it may go on.
    if let Ok(true) = intake.store.release_hold(SERVICE.as_str()).await {
        tracing::info!("Twitch is usable again: held requests go on");
    }
    Ok(broadcaster)
}

/// Subscribes to the redemptions of every reward of dynamo's not yet in
/// `subscribed`; how many were new.
async fn subscribe_rewards(
    intake: &Intake,
    session_id: &str,
    broadcaster: &str,
    subscribed: &mut HashSet<String>,
) -> Result<usize, Ended> {
    let mut new = 0;
    for booked in intake.rewards.rewards() {
        if subscribed.contains(&booked.reward_id) {
            continue;
        }
        // Updates too: a moderator's cancel withdraws the request.
        for kind in [REDEMPTION_ADD, REDEMPTION_UPDATE] {
            intake
                .helix
                .subscribe_redemptions(session_id, kind, broadcaster, &booked.reward_id)
                .await
                .map_err(ended_by)?;
        }
        tracing::info!(style = %booked.style, reward = %booked.reward_id, "subscribed to redemptions and their updates");
        subscribed.insert(booked.reward_id);
        new += 1;
    }
    Ok(new)
}

/// Returns when the styles changed; never without them (or once their
/// copy is gone).
async fn styles_changed(changes: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match changes {
        Some(receiver) => {
            if receiver.changed().await.is_err() {
                *changes = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

async fn catch_up(intake: &Intake, broadcaster: &str) -> Result<(), Ended> {
    intake
        .catch_up(broadcaster)
        .await
        .map(|_| ())
        .map_err(ended_by)
}

fn ended_by(error: TwitchError) -> Ended {
    match error {
        TwitchError::SignedOut(reason) | TwitchError::Cipher(reason) => Ended::SignedOut(reason),
        other => Ended::Lost(other.to_string()),
    }
}

/// The message ids of the last notifications (delivery is at least once).
#[derive(Default)]
struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    fn first_time(&mut self, id: &str) -> bool {
        if !self.set.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN_MAX
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_go_only_to_the_configured_host_over_wss() {
        let twitch = "wss://eventsub.wss.twitch.tv/ws";
        assert!(reconnect_allowed(twitch, "wss://eventsub.wss.twitch.tv/ws?id=abc").is_ok());
        let refused = |url| reconnect_allowed(twitch, url).unwrap_err();
        assert!(refused("ws://eventsub.wss.twitch.tv/ws").contains("scheme"));
        assert!(refused("wss://evil.example/ws").contains("host"));
        assert!(refused("wss://eventsub.wss.twitch.tv.evil.example/ws").contains("host"));
        assert!(refused("not a url").contains("not a URL"));
        // A local test server: its own scheme is allowed, its host only.
        let fake = "ws://127.0.0.1:4000/ws";
        assert!(reconnect_allowed(fake, "ws://127.0.0.1:4001/ws").is_ok());
        assert!(reconnect_allowed(fake, "ws://127.0.0.2:4000/ws").is_err());
    }

    #[tokio::test]
    async fn wss_is_set_up_without_a_process_default_provider() {
        assert!(tls(mozilla_roots()).is_ok());
        // Nothing listens there: an error, not a panic over the provider.
        let refused = connect("wss://127.0.0.1:9/ws")
            .await
            .err()
            .unwrap_or_default();
        assert!(refused.contains("cannot connect"), "{refused}");
    }

    /// Over real TLS, as Twitch is reached: the fake Twitch serves wss:// with
    /// a certificate from an authority made for this test. Trusting that
    /// authority, the client gets its welcome; with only Mozilla's roots, as
    /// in service, it refuses the certificate.
    #[tokio::test]
    async fn a_wss_session_opens_with_a_trusted_certificate_and_not_otherwise() {
        let certificates = dynamo_testkit::TestCertificates::generate();
        let twitch = dynamo_testkit::FakeTwitch::start_tls(&certificates).await;
        assert!(twitch.ws_url.starts_with("wss://"), "{}", twitch.ws_url);
        let mut trusted = rustls::RootCertStore::empty();
        trusted.add(certificates.root.clone()).unwrap();
        let live = connect_trusting(&twitch.ws_url, trusted).await.unwrap();
        assert!(!live.id.is_empty(), "a session id in the welcome");
        assert_eq!(twitch.with(|s| s.connections), 1);

        let refused = connect(&twitch.ws_url).await.err().unwrap_or_default();
        assert!(refused.contains("cannot connect"), "{refused}");
        assert_eq!(twitch.with(|s| s.connections), 1, "no session without TLS");
    }
}
