//! Sends the outbox's messages through Helix *Send Chat Message*, paced
//! fleet-wide under the sender's limit by a PostgreSQL-backed limiter, in
//! order per viewer (the outbox's claim). A message Twitch accepted but did
//! not post (`is_sent: false`) is logged with its `drop_reason` and counted;
//! one dropped for going too fast, or a call that failed, is tried again
//! later, the viewer's later messages waiting behind it.

use crate::TwitchError;
use crate::helix::{ChatSent, Helix};
use dynamo_store::{ChatOutcome, ClaimedChat, RateLimiter, Store};
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed message is this sender's (longer than a call may take).
const CLAIM: Duration = Duration::from_secs(60);
/// Tries before a message is given up.
const MAX_ATTEMPTS: i32 = 8;
/// The wait before the next try after a failure, doubled each time.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(120);
/// Twitch's drop code for a sender over its rate limit.
const RATE_LIMITED: &str = "msg_ratelimit";

/// What became of one message, for the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Sent,
    Dropped,
    Refused,
    Failed,
    /// Tried again later.
    Retried,
}

impl Counted {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Dropped => "dropped",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Retried => "retried",
        }
    }
}

pub type Counter = Arc<dyn Fn(Counted) + Send + Sync>;

pub struct Sender {
    pub store: Store,
    /// Whose tokens the messages are sent with (the streamer's or the bot's).
    pub voice: Helix,
    /// The channel's Helix client: whose chat it is.
    pub channel: Helix,
    pub limiter: RateLimiter,
    pub count: Counter,
}

impl Sender {
    /// Sends the next message due, if any: `false` when there was none.
    pub async fn send_next(&self) -> Result<bool, TwitchError> {
        // The slot first: a message claimed while waiting for one would
        // hold up its viewer's later messages for nothing.
        let permit = self.limiter.acquire().await?;
        let Some(message) = self.store.claim_chat(CLAIM).await? else {
            permit.cancel().await?;
            return Ok(false);
        };
        let sent = match self.channel.broadcaster_id().await {
            Ok(channel) => self.voice.send_chat(&channel, &message.message).await,
            Err(error) => Err(error),
        };
        permit.finish().await?;
        let counted = self.record(&message, sent).await?;
        (self.count)(counted);
        Ok(true)
    }

    async fn record(
        &self,
        message: &ClaimedChat,
        sent: Result<ChatSent, TwitchError>,
    ) -> Result<Counted, TwitchError> {
        let store = &self.store;
        let id = message.id;
        match sent {
            Ok(ChatSent::Sent { message_id }) => {
                tracing::info!(chat = id, request = %message.request_id, event = %message.event, "told the viewer in chat");
                store
                    .finish_chat(id, ChatOutcome::Sent, Some(&message_id), None, None)
                    .await?;
                Ok(Counted::Sent)
            }
            Ok(ChatSent::Dropped { code, message: why })
                if code == RATE_LIMITED && message.attempts < MAX_ATTEMPTS =>
            {
                tracing::warn!(chat = id, %code, drop_reason = %why, "Twitch dropped a chat message for going too fast (another client sends as the same account?); trying it again later");
                store
                    .retry_chat_later(id, backoff(message.attempts))
                    .await?;
                Ok(Counted::Retried)
            }
            Ok(ChatSent::Dropped { code, message: why }) => {
                tracing::warn!(chat = id, request = %message.request_id, %code, drop_reason = %why, "Twitch did not post a chat message (is_sent: false)");
                store
                    .finish_chat(id, ChatOutcome::Dropped, None, Some(&code), Some(&why))
                    .await?;
                Ok(Counted::Dropped)
            }
            Err(TwitchError::Refused {
                what,
                status,
                message: why,
            }) => {
                tracing::error!(chat = id, %what, status, %why, "Twitch refused a chat message; check the sender's sign-in has user:write:chat (dynamoctl twitch login)");
                store
                    .finish_chat(id, ChatOutcome::Refused, None, None, Some(&why))
                    .await?;
                Ok(Counted::Refused)
            }
            Err(error) if message.attempts >= MAX_ATTEMPTS => {
                tracing::error!(chat = id, %error, attempts = message.attempts, "giving up on a chat message");
                let why = error.to_string();
                store
                    .finish_chat(id, ChatOutcome::Failed, None, None, Some(&why))
                    .await?;
                Ok(Counted::Failed)
            }
            Err(error) => {
                let wait = backoff(message.attempts);
                tracing::warn!(chat = id, %error, retry_in = ?wait, "could not send a chat message yet");
                store.retry_chat_later(id, wait).await?;
                Ok(Counted::Retried)
            }
        }
    }
}

fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_cap() {
        assert_eq!(backoff(1), RETRY_FIRST);
        assert_eq!(backoff(2), RETRY_FIRST * 2);
        assert_eq!(backoff(40), RETRY_MAX);
    }
}
