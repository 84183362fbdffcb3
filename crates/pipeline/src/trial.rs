//! An admin's try-out of a style (`POST /styles/{style}/try`, issue 28): a
//! request made by the normal pipeline — free of charge, content rules
//! bypassed, named, generated, post-processed and stored, its spend counted
//! — that is never aired. It is recorded as `trial` (migration 0027), so a
//! run resumed after a crash knows it too. Two points differ, each a line
//! where the step is: once its image is stored it ends `succeeded` without
//! an alert ([`Pipeline::tried`], from `after_stored`: so no onscreen-events,
//! no overlay, no approval, and the gallery leaves it out), and at its end
//! it publishes no generation-results ([`Pipeline::end_trial_quietly`], from
//! `settle_and_report`) and tells Discord nothing (`drive`).

use crate::request::{Pipeline, Run};
use crate::run::{Current, Next, PipelineError, StepResult};
use dynamo_store::RequestState;
use std::sync::atomic::Ordering;

impl Pipeline {
    /// The try-out's image is stored: it is done, unaired.
    pub(crate) async fn tried(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        current.apply(self.store.mark_tried(run.lease()).await?);
        tracing::info!("try-out made; it is not aired");
        Ok(Next::To(RequestState::Succeeded))
    }

    /// A try-out tells nobody of its end (no viewer asked for it): its
    /// report is recorded as done, and the lease given up with it.
    pub(crate) async fn end_trial_quietly(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<(), PipelineError> {
        let progress = self
            .store
            .mark_result_published_and_release(run.lease())
            .await?;
        current.apply(progress);
        run.released.store(true, Ordering::Relaxed);
        Ok(())
    }
}
