//! The alert stage: the image is stored; a try-out ends unaired, with
//! approval on the request parks for the streamer, otherwise the caption is
//! spoken (when its style asks) and the alert published.

use crate::failure::Infra;
use crate::messages::alert_for;
use crate::request::{Pipeline, Run};
use crate::run::{Attempted, Current, Next, StepResult};
use dynamo_broker::PublishError;
use dynamo_store::{RequestState, Step, StoreError};
use dynamo_upstream::{ServiceId, UpstreamError};

/// The alerts service, as a publish nobody receives names it.
const ALERTS: ServiceId = ServiceId::new("alerts");

impl Pipeline {
    /// The image is stored: with approval on, park the request until it is
    /// decided; otherwise straight on to the alert.
    pub(crate) async fn after_stored(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        // A try-out is never aired, so there is nothing to approve.
        if current.record.trial {
            return self.tried(run, current).await;
        }
        if !self.approval.manual {
            return self.alert(run, current).await;
        }
        self.park_for_approval(run).await
    }

    /// Publishes the alert. It counts as shown only once the broker confirmed
    /// it *and* routed it to a queue: a returned alert means the alerts service
    /// is not listening, which is worth waiting for (within the step's
    /// deadline), never "shown". The broker itself failing is not the
    /// viewer's problem: the run stops and the request is resumed later.
    pub(crate) async fn alert(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        if let Some(ended) = self.unless_withdrawn(run, current).await? {
            return Ok(ended);
        }
        // Stored is the alert's predecessor: a run that got here has the image.
        let Some(image) = &current.image else {
            return Err(StoreError::NotFound(job.id).into());
        };
        self.speak_caption(run, current, image).await?;
        let event = alert_for(&job.request, current.record.name.as_deref(), image);
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let exchange = &self.topology.alerts_exchange;
        let sent = self
            .attempt(run, Step::Alert, || async {
                match self.publish(exchange, &body, job.id, true).await {
                    Ok(()) => Ok(()),
                    // Nobody listening is the alerts service's absence.
                    Err(PublishError::Returned(_)) => Err(UpstreamError::Transient {
                        service: ALERTS,
                        detail: format!(
                            "no queue is bound to {exchange}: is the alerts service running?"
                        ),
                        retry_after: None,
                    }
                    .into()),
                    Err(error) => Err(Infra::Broker {
                        exchange: exchange.clone(),
                        detail: error.to_string(),
                    }
                    .into()),
                }
            })
            .await?;
        match sent {
            Attempted::Done(()) => {
                current.apply(self.store.mark_alerted(run.lease()).await?);
                Ok(Next::To(RequestState::Alerted))
            }
            Attempted::Failed(error) => self.end(run, current, "publishing the alert", error).await,
            Attempted::Deferred(until, why) => Ok(Next::Wait(until, why)),
        }
    }
}
