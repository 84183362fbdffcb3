//! A redemption of one of dynamo's rewards → a request on
//! `generation-requests`, published like any other, with a message_id
//! derived from the redemption id: whether it arrives as a notification,
//! twice, or from the listing after a reconnect, it is one request.
//! Input that cannot be a request is cancelled (refunded), the reason logged.

use crate::TwitchError;
use crate::book::RewardBook;
use crate::helix::{Helix, HelixRedemption};
use crate::input::{Redeemed, request_from};
use dynamo_broker::{Envelope, Publisher};
use dynamo_store::{NewRedemption, Store};
use uuid::Uuid;

/// The namespace of request ids made from redemption ids (UUID v5).
const REDEMPTION_NAMESPACE: Uuid = Uuid::from_u128(0x5d0e_7a11_7c2b_4f3e_9a57_d1a8_0c35_e917);

/// The request a redemption becomes.
pub fn request_id_for(redemption_id: &str) -> Uuid {
    Uuid::new_v5(&REDEMPTION_NAMESPACE, redemption_id.as_bytes())
}

/// A redemption, from a notification or a listing.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub id: String,
    pub broadcaster_id: String,
    pub reward_id: String,
    pub user_id: String,
    pub user_login: String,
    pub user_name: String,
    pub user_input: String,
    /// Upper case, as Helix says it (EventSub says it in lower case).
    pub status: String,
}

impl From<HelixRedemption> for Redemption {
    fn from(r: HelixRedemption) -> Self {
        Self {
            id: r.id,
            broadcaster_id: r.broadcaster_id,
            reward_id: r.reward.id,
            user_id: r.user_id,
            user_login: r.user_login,
            user_name: r.user_name,
            user_input: r.user_input,
            status: r.status.to_uppercase(),
        }
    }
}

/// What became of one redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenIn {
    Published(Uuid),
    Cancelled(String),
    /// Seen before, not one of ours, or already settled.
    Skipped,
}

pub struct Intake {
    pub helix: Helix,
    pub store: Store,
    pub publisher: Publisher,
    pub requests_exchange: String,
    /// Which rewards are dynamo's, and of which style.
    pub rewards: RewardBook,
}

impl Intake {
    pub async fn take_in(&self, redemption: &Redemption) -> Result<TakenIn, TwitchError> {
        let Some(style) = self.rewards.style_of(&redemption.reward_id) else {
            return Ok(TakenIn::Skipped);
        };
        if redemption.status != "UNFULFILLED" {
            return Ok(TakenIn::Skipped);
        }
        let request_id = request_id_for(&redemption.id);
        let record = self
            .store
            .record_redemption(&NewRedemption {
                redemption_id: &redemption.id,
                request_id,
                broadcaster_id: &redemption.broadcaster_id,
                reward_id: &redemption.reward_id,
                twitch_user_id: &redemption.user_id,
                user_login: &redemption.user_login,
                user_input: &redemption.user_input,
            })
            .await?;
        if record.published_at.is_some() || record.settled_status.is_some() {
            return Ok(TakenIn::Skipped);
        }
        let redeemed = Redeemed {
            user_id: &redemption.user_id,
            user_login: &redemption.user_login,
            user_name: &redemption.user_name,
            user_input: &redemption.user_input,
        };
        let made = if style.enabled {
            request_from(&style, &redeemed)
        } else {
            Err(format!(
                "the style {} is disabled: its reward takes no redemptions",
                style.id
            ))
        };
        let style = style.id;
        match made {
            Ok(request) => {
                let envelope = Envelope {
                    message_id: Some(request_id),
                    // Unroutable (our queue gone) is not taken in: the
                    // redemption stays UNFULFILLED for the next listing.
                    mandatory: true,
                    headers: Vec::new(),
                };
                self.publisher
                    .publish_json(&self.requests_exchange, &request.to_json_bytes(), envelope)
                    .await
                    .map_err(|e| {
                        TwitchError::Unavailable(format!("publishing the request: {e}"))
                    })?;
                self.store.mark_redemption_published(&redemption.id).await?;
                tracing::info!(redemption = %redemption.id, %request_id, %style, viewer = %redemption.user_login, "redemption taken in");
                Ok(TakenIn::Published(request_id))
            }
            Err(reason) => {
                tracing::warn!(redemption = %redemption.id, viewer = %redemption.user_login, input = %redemption.user_input, %reason, "redemption cannot be a request: cancelling it (refunds the points)");
                let settled = self
                    .helix
                    .settle(
                        &redemption.broadcaster_id,
                        &redemption.reward_id,
                        &redemption.id,
                        "CANCELED",
                    )
                    .await?;
                let status = match settled {
                    crate::helix::Settled::Now => "CANCELED".to_owned(),
                    crate::helix::Settled::Already(status) => status,
                };
                self.store
                    .mark_redemption_settled(&redemption.id, &status, Some(&reason))
                    .await?;
                Ok(TakenIn::Cancelled(reason))
            }
        }
    }

    /// Takes in every UNFULFILLED redemption of dynamo's rewards not yet
    /// seen: what was redeemed while dynamo was down or disconnected.
    pub async fn catch_up(&self, broadcaster_id: &str) -> Result<usize, TwitchError> {
        let mut taken = 0;
        for booked in self.rewards.rewards() {
            for listed in self
                .helix
                .unfulfilled(broadcaster_id, &booked.reward_id)
                .await?
            {
                if self.take_in(&listed.into()).await? != TakenIn::Skipped {
                    taken += 1;
                }
            }
        }
        if taken > 0 {
            tracing::info!(taken, "took in redemptions made while disconnected");
        }
        Ok(taken)
    }
}
