//! Before a stage buys or airs anything: a request someone else gave the
//! points back for meanwhile is withdrawn.

use crate::request::{Pipeline, Run};
use crate::run::{Current, Next, PipelineError};
use dynamo_store::RequestState;

impl Pipeline {
    /// A request whose debit someone else gave back meanwhile (a moderator
    /// cancelled the redemption on Twitch) is withdrawn: ended `rejected`
    /// with the reason, before it is bought or aired. Its refund finds the
    /// redemption settled, so the viewer is not refunded twice. The ledger
    /// failing to say is not a reason to stop: it is asked again before
    /// the next step.
    pub(super) async fn unless_withdrawn(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<Option<Next>, PipelineError> {
        let Some(flow_id) = current.record.ledger_flow_id else {
            return Ok(None);
        };
        match self.services.ledger.withdrawn(flow_id).await {
            Ok(Some(reason)) => {
                tracing::info!(%reason, "withdrawn by someone else before air");
                let next = self
                    .end_with(run, current, RequestState::Rejected, reason)
                    .await?;
                Ok(Some(next))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                tracing::warn!(%error, "could not tell whether the request was withdrawn; going on");
                Ok(None)
            }
        }
    }
}
