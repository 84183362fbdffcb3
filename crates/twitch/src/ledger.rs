//! `LEDGER=twitch`: points are channel points, already spent when the viewer
//! redeemed. The "debit" checks the redemption is still open (a streamer
//! may have refunded it meanwhile); accepting marks it FULFILLED, refunding
//! marks it CANCELED (Twitch gives the points back). One already settled by
//! the streamer's other tools counts as settled. The flow id is the request
//! id, whose redemption the intake recorded.

use crate::SERVICE;
use crate::helix::{Helix, Settled};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dynamo_store::{Store, StoredRedemption};
use dynamo_upstream::{Ledger, LedgerError, UpstreamError};
use dynamo_wire::{StyleId, Viewer};
use uuid::Uuid;

pub struct TwitchLedger {
    pub helix: Helix,
    pub store: Store,
}

impl TwitchLedger {
    async fn redemption(&self, request_id: Uuid) -> Result<Option<StoredRedemption>, LedgerError> {
        Ok(self.store.redemption_for_request(request_id).await?)
    }

    async fn settle(&self, flow_id: Uuid, status: &str) -> Result<(), LedgerError> {
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
            .await?;
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
    ) -> Result<Uuid, LedgerError> {
        let Some(record) = self.redemption(request_id).await? else {
            return Err(UpstreamError::Permanent {
                service: SERVICE,
                detail: "not a channel-point redemption: with LEDGER=twitch only redemptions of dynamo's rewards are charged".to_owned(),
            }
            .into());
        };
        if record.settled_status.as_deref() == Some("CANCELED") {
            // Cancelled by a moderator meanwhile: nothing to buy, and the
            // request ends rejected with the reason its viewer reads.
            return Err(UpstreamError::Inadmissible(
                record
                    .cancel_reason
                    .unwrap_or_else(|| crate::elsewhere::WITHDRAWN.to_owned()),
            )
            .into());
        }
        let current = self
            .helix
            .redemption(
                &record.broadcaster_id,
                &record.reward_id,
                &record.redemption_id,
            )
            .await?;
        // Reachable and signed in: whatever was held for want of that goes on.
        let _ = self.store.release_hold(SERVICE.as_str()).await;
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
                }
                .into())
            }
            Some(_) => Ok(request_id),
            None => Err(UpstreamError::Permanent {
                service: SERVICE,
                detail: "Twitch no longer knows the redemption".to_owned(),
            }
            .into()),
        }
    }

    async fn accept(&self, _viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError> {
        self.settle(flow_id, "FULFILLED").await
    }

    async fn refund(&self, _viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError> {
        self.settle(flow_id, "CANCELED").await
    }

    /// Refused before its debit (content rules, moderation): the
    /// redemption is CANCELED all the same, which gives the points back.
    async fn release_undebited(
        &self,
        _viewer: &Viewer,
        request_id: Uuid,
    ) -> Result<(), LedgerError> {
        self.settle(request_id, "CANCELED").await
    }

    /// Cancelled on Twitch by someone else (recorded from the redemption's
    /// update notification): the request is withdrawn.
    async fn withdrawn(&self, flow_id: Uuid) -> Result<Option<String>, LedgerError> {
        Ok(self
            .redemption(flow_id)
            .await?
            .filter(|record| record.settled_status.as_deref() == Some("CANCELED"))
            .and_then(|record| record.cancel_reason))
    }

    /// The debit is a lookup of a recorded redemption, made again on every
    /// try: there is never a debit whose answer was lost.
    async fn pending_debits_since(
        &self,
        _viewer: &Viewer,
        _since: DateTime<Utc>,
        _points: u32,
    ) -> Result<Vec<Uuid>, LedgerError> {
        Ok(Vec::new())
    }
}
