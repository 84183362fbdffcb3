//! The accept stage: the alert is out, so the debit is made final.

use crate::failure::from_ledger;
use crate::request::{Pipeline, Run};
use crate::run::{Current, Next, PipelineError, StepResult};
use dynamo_store::{RequestState, Step};

impl Pipeline {
    /// The alert is out: make the debit final. This cannot end the request
    /// unsuccessfully any more — the viewer saw the image — so a ledger that
    /// stays down means trying again later.
    pub(crate) async fn accept(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        if let Some(flow_id) = current.record.ledger_flow_id {
            let viewer = &run.job.request.viewer;
            let ledger = &self.services.ledger;
            self.retry_in_place(run, Step::Accept, || {
                from_ledger(ledger.accept(viewer, flow_id))
            })
            .await?
            .map_err(PipelineError::Settle)?;
        }
        current.apply(self.store.mark_succeeded(run.lease()).await?);
        Ok(Next::To(RequestState::Succeeded))
    }
}
