//! After the end state: settle the points, report the result, and tell Discord.

use crate::messages::{result_for, subject_of};
use crate::request::{Pipeline, PipelineError, Run};
use dynamo_broker::{Envelope, PublishError};
use dynamo_store::{RequestRecord, Step};
use dynamo_upstream::UpstreamError;
use tracing::Instrument;
use uuid::Uuid;

impl Pipeline {
    /// After the end state: refund a debit that is still pending, then tell
    /// generation-results. Each is recorded, so neither is done twice.
    pub(crate) async fn settle_and_report(
        &self,
        run: &Run<'_>,
    ) -> Result<RequestRecord, PipelineError> {
        let job = run.job;
        let record = self.store.get(job.id).await?;
        if record.settled_at.is_none() {
            if let Some(flow_id) = record.ledger_flow_id {
                let viewer = &job.request.viewer;
                let ledger = &self.services.ledger;
                self.retry_in_place(run, Step::Refund, || ledger.refund(viewer, flow_id))
                    .await
                    .map_err(PipelineError::Settle)?;
                tracing::info!(%flow_id, "points refunded");
            } else if !job.free_of_charge {
                self.refund_unheard_debits(run).await?;
            }
            self.store.mark_settled(run.lease()).await?;
        }
        if record.result_published_at.is_none() {
            let image_url = self
                .store
                .images(job.id)
                .await?
                .first()
                .map(|i| i.url.clone());
            let result = result_for(&job.request, &record, image_url);
            let body = serde_json::to_vec(&result).unwrap_or_default();
            let exchange = &self.topology.results_exchange;
            run.ensure_owned()?;
            // Results are for whoever listens; with nobody bound the message is
            // simply not needed, so it is not published as mandatory.
            self.retry_in_place(run, Step::Result, || async {
                self.publish(exchange, &body, job.id, false)
                    .await
                    .map_err(|error| UpstreamError::Transient {
                        service: "rabbitmq",
                        detail: error.to_string(),
                        retry_after: None,
                    })
            })
            .await
            .map_err(|error| PipelineError::Publish {
                exchange: exchange.clone(),
                detail: error.to_string(),
            })?;
            self.store.mark_result_published(run.lease()).await?;
        }
        Ok(self.store.get(job.id).await?)
    }

    /// A request that ended without hearing its debit's answer may have left
    /// a pending debit in the ledger (SPEC §6.3: nothing left pending).
    /// Refunds the viewer's pending image debits made since its intent that
    /// no request holds. The history is read before the database is asked
    /// who holds what: a debit another request makes meanwhile is then
    /// either held already, or that request counts as waiting for its
    /// answer, and this waits for it (the run stops and is resumed).
    async fn refund_unheard_debits(&self, run: &Run<'_>) -> Result<(), PipelineError> {
        let job = run.job;
        let Some(since) = self.store.debit_intent(job.id).await? else {
            return Ok(());
        };
        let viewer = &job.request.viewer;
        let ledger = &self.services.ledger;
        let pending = self
            .retry_in_place(run, Step::Refund, || {
                ledger.pending_debits_since(viewer, since, self.points_cost)
            })
            .await
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
            self.retry_in_place(run, Step::Refund, || ledger.refund(viewer, flow_id))
                .await
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
        let publisher = self.publisher.read().await.clone();
        publisher.publish_json(exchange, body, envelope).await
    }

    /// Best effort, off the request's path.
    pub(crate) async fn announce_on_discord(&self, record: &RequestRecord) {
        let discord = self.services.discord.clone();
        if !discord.is_enabled() {
            return;
        }
        let Ok(images) = self.store.images(record.id).await else {
            return;
        };
        let Some(image) = images.into_iter().next() else {
            return;
        };
        let style = record.style();
        let viewer = record.twitch_display_name.clone();
        let description = subject_of(record);
        tokio::spawn(
            async move {
                discord
                    .announce(style, &viewer, &description, &image.url)
                    .await
            }
            .in_current_span(),
        );
    }
}
