//! Talking to the viewer in chat (SPEC §7): a viewer who redeemed one of
//! dynamo's rewards is told, in the channel's chat, that the request is in
//! the queue (and where), and how it ended — declined by the streamer,
//! refused by the rules, failed and refunded, or (optionally) on air now.
//!
//! Two loops, on every consumer where chat is on: the [`teller::Teller`]
//! writes what is to be said into the outbox in PostgreSQL (from the state
//! of redemptions and requests, so the pipeline never waits for chat), and
//! the [`sender::Sender`] sends it, paced fleet-wide under Twitch's
//! per-sender limit, in order per viewer. A burst is told late, never
//! dropped. Requests that are not redemptions are told through
//! `generation-results` only, as before.

pub mod sender;
pub mod teller;
pub mod templates;

use dynamo_runtime::{Env, SettingError, Shutdown};
use std::sync::Arc;
use std::time::Duration;

/// Twitch counts a sender's chat messages per 30 seconds.
pub const WINDOW: Duration = Duration::from_secs(30);
/// How often the database is looked at for what to tell.
const TELL_EVERY: Duration = Duration::from_millis(500);
/// How long an idle sender waits before looking again.
const IDLE: Duration = Duration::from_millis(250);
/// The pause after the database failed.
const AFTER_ERROR: Duration = Duration::from_secs(2);

/// Who sends the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// The streamer's own sign-in (`dynamoctl twitch login`).
    Broadcaster,
    /// A bot account (`dynamoctl twitch login --bot`).
    Bot,
}

/// The chat settings (`TWITCH_CHAT*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSettings {
    /// `TWITCH_CHAT`, default on.
    pub enabled: bool,
    /// `TWITCH_CHAT_AS`: `broadcaster` (default) or `bot`.
    pub voice: Voice,
    /// `TWITCH_CHAT_LIMIT`: messages per 30 s, fleet-wide (default 20,
    /// Twitch's limit for an ordinary account; 100 for the broadcaster or a
    /// moderator).
    pub limit: u32,
    pub templates: templates::Templates,
}

impl ChatSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let voice = match env.string("TWITCH_CHAT_AS", "broadcaster").as_str() {
            "broadcaster" => Voice::Broadcaster,
            "bot" => Voice::Bot,
            other => {
                return Err(SettingError::new(
                    "TWITCH_CHAT_AS",
                    format!("{other:?} is not broadcaster or bot"),
                ));
            }
        };
        let limit: u32 = env.parse("TWITCH_CHAT_LIMIT", 20)?;
        if !(1..=100).contains(&limit) {
            return Err(SettingError::new(
                "TWITCH_CHAT_LIMIT",
                format!(
                    "{limit} is not 1-100 (Twitch allows 20 per 30 s, 100 for the broadcaster or a moderator)"
                ),
            ));
        }
        Ok(Self {
            enabled: env.flag("TWITCH_CHAT", true)?,
            voice,
            limit,
            templates: templates::Templates::from_env(env)?,
        })
    }
}

pub struct Chat {
    pub teller: teller::Teller,
    pub sender: sender::Sender,
}

/// Tells and sends until `shutdown`.
pub async fn run(chat: Arc<Chat>, shutdown: Shutdown) {
    tokio::join!(tell(&chat, &shutdown), send(&chat, &shutdown));
    tracing::info!("Twitch chat stopped");
}

async fn tell(chat: &Chat, shutdown: &Shutdown) {
    loop {
        let pause = match chat.teller.tell().await {
            Ok(_) => TELL_EVERY,
            Err(error) => {
                tracing::warn!(%error, "could not look for what to tell viewers");
                AFTER_ERROR
            }
        };
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

async fn send(chat: &Chat, shutdown: &Shutdown) {
    loop {
        let sent = tokio::select! {
            _ = shutdown.requested() => return,
            sent = chat.sender.send_next() => sent,
        };
        let pause = match sent {
            Ok(true) => continue,
            Ok(false) => IDLE,
            Err(error) => {
                tracing::warn!(%error, "could not send chat messages");
                AFTER_ERROR
            }
        };
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
