//! After the end state: settle the points, report the result, and tell Discord.

use crate::failure::{Infra, from_ledger};
use crate::messages::result_for;
use crate::request::{Pipeline, Run};
use crate::run::{Current, PipelineError};
use dynamo_broker::{Envelope, PublishError};
use dynamo_store::{Step, StoredImage};
use dynamo_wire::GenerationRequest;
use tracing::Instrument;
use uuid::Uuid;

impl Pipeline {
    /// After the end state: refund a debit that is still pending, then tell
    /// generation-results. Each is recorded, so neither is done twice.
    pub(crate) async fn settle_and_report(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<(), PipelineError> {
        let job = run.job;
        if current.record.settled_at.is_none() {
            if let Some(flow_id) = current.record.ledger_flow_id {
                let viewer = &job.request.viewer;
                let ledger = &self.services.ledger;
                self.retry_in_place(run, Step::Refund, || {
                    from_ledger(ledger.refund(viewer, flow_id))
                })
                .await?
                .map_err(PipelineError::Settle)?;
                tracing::info!(%flow_id, "points refunded");
            } else if !job.free_of_charge {
                let points = u32::try_from(current.record.points_cost).unwrap_or(0);
                self.refund_unheard_debits(run, points).await?;
            }
            current.apply(self.store.mark_settled(run.lease()).await?);
        }
        if current.record.result_published_at.is_none() && current.record.trial {
            self.end_trial_quietly(run, current).await?;
        }
        if current.record.result_published_at.is_none() {
            // Ended before its debit (the content rules, moderation): its
            // settlement was recorded with the end, but a ledger may hold
            // something all the same (a Twitch redemption). Idempotent, so
            // a crash before the result merely asks again.
            if current.record.debited_at.is_none() && !job.free_of_charge {
                let viewer = &job.request.viewer;
                let ledger = &self.services.ledger;
                self.retry_in_place(run, Step::Refund, || {
                    from_ledger(ledger.release_undebited(viewer, job.id))
                })
                .await?
                .map_err(PipelineError::Settle)?;
            }
            let result = result_for(&job.request, &current.record, current.image.as_ref());
            let body = serde_json::to_vec(&result).unwrap_or_default();
            let exchange = &self.topology.results_exchange;
            run.ensure_owned()?;
            // Results are for whoever listens; with nobody bound the message is
            // simply not needed, so it is not published as mandatory.
            // The broker failing is waited out in place.
            self.retry_in_place(run, Step::Result, || async {
                self.publish(exchange, &body, job.id, false)
                    .await
                    .map_err(|error| {
                        Infra::Broker {
                            exchange: exchange.clone(),
                            detail: error.to_string(),
                        }
                        .into()
                    })
            })
            .await?
            .map_err(|error| PipelineError::Publish {
                exchange: exchange.clone(),
                detail: error.to_string(),
            })?;
            // The run's last write: the lease is given up with it.
            current.apply(
                self.store
                    .mark_result_published_and_release(run.lease())
                    .await?,
            );
            run.released
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// A request that ended without hearing its debit's answer may have left
    /// a pending debit in the ledger (SPEC §6.3: nothing left pending).
    /// Refunds the viewer's pending image debits made since its intent that
    /// no request holds. The history is read before the database is asked
    /// who holds what: a debit another request makes meanwhile is then
    /// either held already, or that request counts as waiting for its
    /// answer, and this waits for it (the run stops and is resumed).
    async fn refund_unheard_debits(&self, run: &Run<'_>, points: u32) -> Result<(), PipelineError> {
        let job = run.job;
        let Some(since) = self.store.debit_intent(job.id).await? else {
            return Ok(());
        };
        let viewer = &job.request.viewer;
        let ledger = &self.services.ledger;
        let pending = self
            .retry_in_place(run, Step::Refund, || {
                from_ledger(ledger.pending_debits_since(viewer, since, points))
            })
            .await?
            .map_err(PipelineError::Settle)?;
        if pending.is_empty() {
            return Ok(());
        }
        let orphans = self
            .store
            .orphaned_flows(job.id, &pending)
            .await?
            .ok_or(PipelineError::DebitInFlight)?;
        for flow_id in orphans {
            run.ensure_owned()?;
            self.retry_in_place(run, Step::Refund, || {
                from_ledger(ledger.refund(viewer, flow_id))
            })
            .await?
            .map_err(PipelineError::Settle)?;
            tracing::info!(%flow_id, "refunded a debit whose answer never reached dynamo");
        }
        Ok(())
    }

    pub(crate) async fn publish(
        &self,
        exchange: &str,
        body: &[u8],
        id: Uuid,
        mandatory: bool,
    ) -> Result<(), PublishError> {
        let envelope = Envelope {
            message_id: Some(id),
            mandatory,
            headers: Vec::new(),
        };
        self.publisher.publish_json(exchange, body, envelope).await
    }

    /// Best effort, off the request's path.
    pub(crate) fn announce_on_discord(
        &self,
        request: &GenerationRequest,
        image: Option<&StoredImage>,
    ) {
        let discord = self.services.discord.clone();
        let Some(image) = image.filter(|_| discord.is_enabled()) else {
            return;
        };
        let style = request.style();
        let viewer = request.viewer.twitch_display_name.to_string();
        let description = request.subject().to_string();
        let url = image.url.clone();
        tokio::spawn(
            async move { discord.announce(&style, &viewer, &description, &url).await }
                .in_current_span(),
        );
    }
}
