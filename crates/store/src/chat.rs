//! The chat outbox (migration 0021): what dynamo has to tell viewers who
//! redeemed its rewards, sent in order per viewer by whichever process
//! claims it next; and the rewards' pause and the channel's live status as
//! dynamo last saw them.

use crate::{Store, StoreError};
use std::time::Duration;
use uuid::Uuid;

/// A message to send, claimed by this process until its claim runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedChat {
    pub id: i64,
    pub request_id: Uuid,
    pub event: String,
    pub twitch_user_id: String,
    pub message: String,
    /// Sends tried so far, this one included.
    pub attempts: i32,
}

/// A redemption taken into the queue whose viewer has not been told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntoldQueued {
    pub request_id: Uuid,
    pub twitch_user_id: String,
    pub viewer: String,
    pub user_input: String,
    /// 1 + the redemptions taken in before it that are not settled yet.
    pub position: i64,
}

/// A redemption whose end the viewer has not been told: its request's end,
/// or its cancellation at intake (then `state` is `rejected` and
/// `cancel_reason` says why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntoldEnd {
    pub request_id: Uuid,
    pub twitch_user_id: String,
    pub viewer: String,
    pub subject: String,
    /// `succeeded`, `rejected` or `failed`.
    pub state: String,
    /// The request's reason, in words a viewer can read.
    pub reason: Option<String>,
    /// `approve` / `decline` when the streamer decided.
    pub approval_decision: Option<String>,
    /// Set when the redemption was cancelled outside the pipeline.
    pub cancel_reason: Option<String>,
    /// Whether it was ever a request (false: cancelled at intake).
    pub requested: bool,
    /// Its page's id in the public gallery (`/gallery/{id}`), once it aired.
    pub gallery_id: Option<String>,
}

/// How a send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatOutcome {
    Sent,
    Dropped,
    Refused,
    Failed,
}

impl ChatOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Dropped => "dropped",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// How long back untold ends are looked for: older ones are not news.
const UNTOLD_WITHIN_HOURS: f64 = 6.0;

impl Store {
    /// Writes a message to the outbox, once per request and event: `false`
    /// when it was written before.
    pub async fn queue_chat(
        &self,
        request_id: Uuid,
        event: &str,
        twitch_user_id: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        let written = sqlx::query!(
            "INSERT INTO dynamo.twitch_chat_message (request_id, event, twitch_user_id, message)
             VALUES ($1, $2, $3, $4) ON CONFLICT (request_id, event) DO NOTHING",
            request_id,
            event,
            twitch_user_id,
            message
        )
        .execute(self.pool())
        .await?;
        Ok(written.rows_affected() == 1)
    }

    /// Redemptions taken in (published) whose viewer was not told, oldest
    /// first, with their place in the queue (those before it not settled,
    /// and itself). A request may end before the teller's next look (a fast
    /// model, a moderator's cancel): it is still told it was taken in, once
    /// and before its end, so what a viewer hears never depends on timing.
    pub async fn untold_queued(&self, limit: i64) -> Result<Vec<UntoldQueued>, StoreError> {
        let untold = sqlx::query_as!(
            UntoldQueued,
            r#"SELECT r.request_id, r.twitch_user_id, coalesce(r.user_login, '') AS "viewer!",
                  r.user_input,
                  (SELECT count(*) FROM dynamo.twitch_redemption o
                   WHERE o.published_at IS NOT NULL
                     AND (o.settled_status IS NULL OR o.redemption_id = r.redemption_id)
                     AND (o.received_at, o.redemption_id) <= (r.received_at, r.redemption_id))
                   AS "position!"
             FROM dynamo.twitch_redemption r
             WHERE r.received_at > now() - $1 * interval '1 hour'
               AND r.published_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM dynamo.twitch_chat_message m
                               WHERE m.request_id = r.request_id AND m.event = 'queued')
             ORDER BY r.received_at, r.redemption_id
             LIMIT $2"#,
            UNTOLD_WITHIN_HOURS,
            limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(untold)
    }

    /// Redemptions whose end was reported (or that were cancelled at
    /// intake) and whose viewer was not told, oldest first. Successes are
    /// included only for `on_air` (told when alerted).
    pub async fn untold_ends(
        &self,
        on_air: bool,
        limit: i64,
    ) -> Result<Vec<UntoldEnd>, StoreError> {
        let untold = sqlx::query_as!(
            UntoldEnd,
            r#"SELECT r.request_id, r.twitch_user_id,
                  coalesce(r.user_login, q.twitch_display_name, '') AS "viewer!",
                  coalesce(q.inputs->>'subject', r.user_input) AS "subject!",
                  coalesce(q.state, 'rejected') AS "state!",
                  q.error_message AS reason, q.approval_decision, r.cancel_reason,
                  (q.id IS NOT NULL) AS "requested!",
                  dynamo.gallery_public_id(q.id) AS gallery_id
             FROM dynamo.twitch_redemption r
             LEFT JOIN dynamo.image_request q ON q.id = r.request_id
             WHERE r.received_at > now() - $1 * interval '1 hour'
               AND (CASE WHEN q.id IS NULL
                         THEN r.published_at IS NULL AND r.cancel_reason IS NOT NULL
                         WHEN q.state = 'succeeded' THEN $2 AND q.alerted_at IS NOT NULL
                         ELSE q.result_published_at IS NOT NULL END)
               AND NOT EXISTS (SELECT 1 FROM dynamo.twitch_chat_message m
                               WHERE m.request_id = r.request_id
                                 AND m.event IN ('declined', 'refused', 'failed', 'on_air'))
             ORDER BY coalesce(q.finished_at, q.alerted_at, r.settled_at), r.received_at
             LIMIT $3"#,
            UNTOLD_WITHIN_HOURS,
            on_air,
            limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(untold)
    }

    /// Records that nothing is said for this request and event (its
    /// template is empty), so it is not looked at again.
    pub async fn silent_chat(
        &self,
        request_id: Uuid,
        event: &str,
        twitch_user_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO dynamo.twitch_chat_message
                 (request_id, event, twitch_user_id, message, finished_at, outcome)
             VALUES ($1, $2, $3, '', now(), 'silent') ON CONFLICT (request_id, event) DO NOTHING",
            request_id,
            event,
            twitch_user_id
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims the oldest message due whose viewer has no earlier one still
    /// unsent (so a viewer's messages go out in order, whoever sends them),
    /// for `hold`.
    pub async fn claim_chat(&self, hold: Duration) -> Result<Option<ClaimedChat>, StoreError> {
        let claimed = sqlx::query_as!(
            ClaimedChat,
            "UPDATE dynamo.twitch_chat_message
             SET claimed_until = now() + $1 * interval '1 millisecond', attempts = attempts + 1
             WHERE id = (
                 SELECT m.id FROM dynamo.twitch_chat_message m
                 WHERE m.finished_at IS NULL
                   AND (m.claimed_until IS NULL OR m.claimed_until <= now())
                   AND NOT EXISTS (SELECT 1 FROM dynamo.twitch_chat_message e
                                   WHERE e.twitch_user_id = m.twitch_user_id
                                     AND e.finished_at IS NULL AND e.id < m.id)
                 ORDER BY m.id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, request_id, event, twitch_user_id, message, attempts",
            hold.as_millis() as f64
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(claimed)
    }

    /// Records how a send ended; the message is done.
    pub async fn finish_chat(
        &self,
        id: i64,
        outcome: ChatOutcome,
        twitch_message_id: Option<&str>,
        drop_code: Option<&str>,
        drop_message: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.twitch_chat_message SET finished_at = now(), outcome = $2,
                 twitch_message_id = $3, drop_code = $4, drop_message = $5, claimed_until = NULL
             WHERE id = $1 AND finished_at IS NULL",
            id,
            outcome.as_str(),
            twitch_message_id,
            drop_code,
            drop_message
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The send failed for now: try again after `delay` (the viewer's later
    /// messages wait behind it).
    pub async fn retry_chat_later(&self, id: i64, delay: Duration) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.twitch_chat_message
             SET claimed_until = now() + $2 * interval '1 millisecond'
             WHERE id = $1 AND finished_at IS NULL",
            id,
            delay.as_millis() as f64
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that dynamo's rewards are to be `paused`: `true` when this
    /// call changed it (the caller then changes them on Twitch).
    pub async fn turn_reward_pause(
        &self,
        paused: bool,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let turned = sqlx::query!(
            "INSERT INTO dynamo.twitch_reward_pause (id, paused, reason) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET paused = EXCLUDED.paused, reason = EXCLUDED.reason,
                 updated_at = now()
             WHERE dynamo.twitch_reward_pause.paused IS DISTINCT FROM EXCLUDED.paused",
            paused,
            reason
        )
        .execute(self.pool())
        .await?;
        Ok(turned.rows_affected() == 1)
    }

    /// Whether dynamo's rewards are paused for a hold now (false when not
    /// known): a reward made or reopened meanwhile is made paused too.
    pub async fn rewards_paused(&self) -> Result<bool, StoreError> {
        let paused =
            sqlx::query_scalar!("SELECT paused FROM dynamo.twitch_reward_pause WHERE id = 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(paused.flatten().unwrap_or(false))
    }

    /// Changing the rewards failed: their state on Twitch is not known, so
    /// the next look changes them again.
    pub async fn forget_reward_pause(&self) -> Result<(), StoreError> {
        sqlx::query!("UPDATE dynamo.twitch_reward_pause SET paused = NULL, updated_at = now()")
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records what stream.online / stream.offline said.
    pub async fn set_channel_live(&self, live: bool) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO dynamo.twitch_channel (id, live) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET live = EXCLUDED.live, updated_at = now()",
            live
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the channel is live; `None` until first heard.
    pub async fn channel_live(&self) -> Result<Option<bool>, StoreError> {
        let live = sqlx::query_scalar!("SELECT live FROM dynamo.twitch_channel WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(live)
    }
}
