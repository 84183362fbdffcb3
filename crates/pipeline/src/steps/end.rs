//! How any stage ends a request unsuccessfully: the end state and its
//! reason, committed. What follows every end (settling the points,
//! reporting the result) is `settle.rs`'s.

use crate::request::{Pipeline, Run};
use crate::retry::end_state;
use crate::run::{Current, Next, StepResult};
use dynamo_store::RequestState;
use dynamo_upstream::UpstreamError;

impl Pipeline {
    /// Ends the request as rejected (inadmissible prompt) or failed (anything
    /// else), with the reason.
    pub(crate) async fn end(
        &self,
        run: &Run<'_>,
        current: &mut Current,
        doing: &str,
        error: UpstreamError,
    ) -> StepResult {
        let (state, reason) = end_state(&error, doing);
        self.end_with(run, current, state, reason).await
    }

    pub(crate) async fn end_with(
        &self,
        run: &Run<'_>,
        current: &mut Current,
        state: RequestState,
        reason: String,
    ) -> StepResult {
        match state {
            RequestState::Rejected => tracing::info!(%reason, "request rejected"),
            _ => tracing::warn!(%reason, "request failed"),
        }
        let progress = self
            .store
            .finish_unsuccessfully(run.lease(), state, &reason)
            .await?;
        current.apply(progress);
        Ok(Next::To(state))
    }
}
