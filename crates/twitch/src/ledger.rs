//! `LEDGER=twitch`: points are channel points, already spent when the viewer
//! redeemed. The "debit" checks the redemption is still open (a streamer
//! may have refunded it meanwhile); accepting marks it FULFILLED, refunding
//! marks it CANCELED (Twitch gives the points back). One already settled by
//! the streamer's other tools counts as settled. The flow id is the request
//! id, whose redemption the intake recorded.

use crate::helix::{Helix, Settled};
use crate::{SERVICE, TwitchError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dynamo_store::{Store, StoredRedemption};
use dynamo_upstream::{Ledger, UpstreamError};
use dynamo_wire::{StyleId, Viewer};
use uuid::Uuid;

pub struct TwitchLedger {
    pub helix: Helix,
    pub store: Store,
}

impl TwitchLedger {
    async fn redemption(
        &self,
        request_id: Uuid,
    ) -> Result<Option<StoredRedemption>, UpstreamError> {
        self.store
            .redemption_for_request(request_id)
            .await
            .map_err(|e| TwitchError::Store(e).into())
    }

    async fn settle(&self, flow_id: Uuid, status: &str) -> Result<(), UpstreamError> {
        let Some(record) = self.redemption(flow_id).await? else {
            tracing::warn!(%flow_id, "no redemption recorded for this request: nothing to settle on Twitch");
            return Ok(());
        };
        if let Some(settled) = &record.settled_status {
            tracing::info!(redemption = %record.redemption_id, %settled, "redemption already settled");
            return Ok(());
        }
        let outcome = self
            .helix
            .settle(
                &record.broadcaster_id,
                &record.reward_id,
                &record.redemption_id,
                status,
            )
            .await?;
        let final_status = match outcome {
            Settled::Now => status.to_owned(),
            Settled::Already(other) => {
                tracing::info!(redemption = %record.redemption_id, status = %other, wanted = status, "redemption was settled by other tools");
                other
            }
        };
        self.store
            .mark_redemption_settled(&record.redemption_id, &final_status, None)
            .await
            .map_err(TwitchError::Store)?;
        tracing::info!(redemption = %record.redemption_id, status = %final_status, "redemption settled on Twitch");
        Ok(())
    }
}

#[async_trait]
impl Ledger for TwitchLedger {
    async fn debit(
        &self,
        _viewer: &Viewer,
        request_id: Uuid,
        _style: &StyleId,
        _points: u32,
    ) -> Result<Uuid, UpstreamError> {
        let Some(record) = self.redemption(request_id).await? else {
            return Err(UpstreamError::Permanent {
                service: SERVICE,
                detail: "not a channel-point redemption: with LEDGER=twitch only redemptions of dynamo's rewards are charged".to_owned(),
            });
        };
        let current = self
            .helix
            .redemption(
                &record.broadcaster_id,
                &record.reward_id,
                &record.redemption_id,
            )
            .await?;
        // Reachable and signed in: whatever was held for want of that goes on.
        let _ = self.store.release_hold(SERVICE).await;
        match current.map(|r| r.status) {
            Some(status) if status == "CANCELED" => {
                let _ = self
                    .store
                    .mark_redemption_settled(&record.redemption_id, "CANCELED", None)
                    .await;
                Err(UpstreamError::Permanent {
                    service: SERVICE,
                    detail: "the redemption was cancelled on Twitch before its image was made"
                        .to_owned(),
                })
            }
            Some(_) => Ok(request_id),
            None => Err(UpstreamError::Permanent {
                service: SERVICE,
                detail: "Twitch no longer knows the redemption".to_owned(),
            }),
        }
    }

    async fn accept(&self, _viewer: &Viewer, flow_id: Uuid) -> Result<(), UpstreamError> {
        self.settle(flow_id, "FULFILLED").await
    }

    async fn refund(&self, _viewer: &Viewer, flow_id: Uuid) -> Result<(), UpstreamError> {
        self.settle(flow_id, "CANCELED").await
    }

    /// The debit is a lookup of a recorded redemption, made again on every
    /// try: there is never a debit whose answer was lost.
    async fn pending_debits_since(
        &self,
        _viewer: &Viewer,
        _since: DateTime<Utc>,
        _points: u32,
    ) -> Result<Vec<Uuid>, UpstreamError> {
        Ok(Vec::new())
    }
}
