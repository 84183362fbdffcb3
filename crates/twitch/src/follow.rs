//! Rewards follow dynamo: while the fleet holds requests (a service out, the
//! daily budget reached — any hold but Twitch's own) dynamo's rewards are
//! paused on Twitch (`is_paused`), so viewers do not redeem into a queue that
//! would refund them later; they reopen when the hold ends. With
//! `TWITCH_PAUSE_WHEN_OFFLINE` they are also paused while the channel is
//! offline (EventSub `stream.online` / `stream.offline`). The state dynamo
//! last set is kept in PostgreSQL: only the process that turns it changes
//! the rewards, however many run this.

use crate::book::RewardBook;
use crate::helix::Helix;
use crate::{SERVICE, TwitchError};
use dynamo_runtime::Shutdown;
use dynamo_store::Store;
use serde_json::json;
use std::time::Duration;

/// How often the holds are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub struct Follow {
    pub helix: Helix,
    pub store: Store,
    pub rewards: RewardBook,
    pub pause_when_offline: bool,
}

impl Follow {
    /// Why the rewards should be paused now; `None`: open.
    pub async fn pause_reason(&self) -> Result<Option<String>, TwitchError> {
        // Twitch's own hold (signed out) cannot be shown on Twitch.
        let holds = self.store.holds().await?;
        if let Some(hold) = holds.iter().find(|hold| SERVICE != hold.service) {
            return Ok(Some(format!("{} is held: {}", hold.service, hold.reason)));
        }
        if self.pause_when_offline && self.store.channel_live().await? == Some(false) {
            return Ok(Some("the channel is offline".to_owned()));
        }
        Ok(None)
    }

    /// One look: pauses or reopens the rewards if that changed. `Some(paused)`
    /// when this call changed them.
    pub async fn follow(&self) -> Result<Option<bool>, TwitchError> {
        let reason = self.pause_reason().await?;
        let paused = reason.is_some();
        if !self
            .store
            .turn_reward_pause(paused, reason.as_deref())
            .await?
        {
            return Ok(None);
        }
        if let Err(error) = self.apply(paused).await {
            // Not known what Twitch has now: the next look sets it again.
            self.store.forget_reward_pause().await?;
            return Err(error);
        }
        match &reason {
            Some(reason) => tracing::warn!(%reason, "paused dynamo's rewards on Twitch"),
            None => tracing::info!("reopened dynamo's rewards on Twitch"),
        }
        Ok(Some(paused))
    }

    async fn apply(&self, paused: bool) -> Result<(), TwitchError> {
        let broadcaster = self.helix.broadcaster_id().await?;
        for booked in self.rewards.rewards() {
            // A disabled style's reward stays paused whatever the holds say.
            let paused = paused || !booked.enabled;
            self.helix
                .update_reward(
                    &broadcaster,
                    &booked.reward_id,
                    &json!({"is_paused": paused}),
                )
                .await?;
        }
        Ok(())
    }
}

/// Follows until `shutdown`.
pub async fn run(follow: Follow, shutdown: Shutdown) {
    loop {
        if let Err(error) = follow.follow().await {
            tracing::warn!(%error, "could not pause or reopen dynamo's rewards; trying again");
        }
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}
