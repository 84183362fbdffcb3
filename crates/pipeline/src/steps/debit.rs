//! The debit stage: moderation screens the prompt, then the viewer's
//! points are debited (pending until the alert is out), adopting the debit
//! an earlier try made when its answer never reached us.

use crate::failure::{StepError, from_ledger};
use crate::gate::BeforeDebit;
use crate::limits::Endpoint;
use crate::request::{Pipeline, Run};
use crate::run::{Attempted, Current, Next, PipelineError, StepResult};
use dynamo_store::{RequestState, Step};

impl Pipeline {
    /// Screens the prompt (moderation), then creates the pending debit. 409 from the ledger ends the request before
    /// anything is paid for. The intent is recorded first: when an earlier
    /// try may have created a debit whose answer never reached us (a crash,
    /// a lost connection), the ledger's history is read and that debit
    /// adopted instead of asking for another.
    pub(crate) async fn debit(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        // Held: wait un-debited (issue 12), rather than be charged to wait.
        match self.gate.admit_before_debit(&run.probe).await? {
            BeforeDebit::Clear => run.saw_holds_clear(),
            BeforeDebit::Go => {}
            BeforeDebit::Wait(until, why) => return Ok(Next::Wait(until, why)),
        }
        if let Some(next) = self.screen(run, current).await? {
            return Ok(next);
        }
        // The cost the request was recorded with, whatever the style says now.
        let points = u32::try_from(current.record.points_cost).unwrap_or(0);
        if job.free_of_charge || points == 0 {
            current.apply(self.store.mark_debited(run.lease(), None).await?);
            return Ok(Next::To(RequestState::Debited));
        }
        let viewer = &job.request.viewer;
        let ledger = &self.services.ledger;
        let intent = self.store.note_debit_intent(run.lease()).await?;
        let asked_before = std::sync::atomic::AtomicBool::new(intent.earlier);
        let attempted = self
            .attempt(run, Step::Debit, || async {
                if asked_before.swap(true, std::sync::atomic::Ordering::Relaxed)
                    && let Some(flow_id) =
                        self.unclaimed_debit(viewer, intent.since, points).await?
                {
                    tracing::info!(%flow_id, "adopting the debit an earlier try made");
                    return Ok(flow_id);
                }
                from_ledger(ledger.debit(viewer, job.id, &job.request.style(), points)).await
            })
            .await?;
        let flow_id = match attempted {
            Attempted::Done(flow_id) => flow_id,
            Attempted::Failed(error) => {
                return self.end(run, current, "debiting points", error).await;
            }
            Attempted::Deferred(until, why) => return Ok(Next::Wait(until, why)),
        };
        current.apply(self.store.mark_debited(run.lease(), Some(flow_id)).await?);
        Ok(Next::To(RequestState::Debited))
    }

    /// Moderation screens the prompt before the debit and before any paid
    /// call (a friend's name included): a refused prompt costs the viewer
    /// nothing and dynamo no chat call. `Some(next)` when the request ended
    /// or waits. A request resumed before its debit is screened again
    /// (moderation is free), never one resumed after it.
    async fn screen(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<Option<Next>, PipelineError> {
        let Some(moderator) = &self.services.moderator else {
            return Ok(None);
        };
        // The prompt the request was recorded with (its style may have changed since).
        let prompt = current.record.prompt.clone();
        match self
            .attempt(run, Step::Moderation, || {
                self.limited(
                    moderator.service(),
                    Endpoint::Moderation,
                    moderator.screen(&prompt),
                )
            })
            .await?
        {
            Attempted::Done(()) => Ok(None),
            Attempted::Failed(error) => self
                .end(run, current, "screening the prompt", error)
                .await
                .map(Some),
            Attempted::Deferred(until, why) => Ok(Some(Next::Wait(until, why))),
        }
    }

    /// The oldest pending image debit of the viewer made since `since` that
    /// no request holds. A database failure here is dynamo's own: waited
    /// out and tried again, never a reason to debit twice, and no cost to
    /// the request.
    async fn unclaimed_debit(
        &self,
        viewer: &dynamo_wire::Viewer,
        since: chrono::DateTime<chrono::Utc>,
        points: u32,
    ) -> Result<Option<uuid::Uuid>, StepError> {
        let candidates = self
            .services
            .ledger
            .pending_debits_since(viewer, since, points)
            .await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let owned = self.store.owned_flows(&candidates).await?;
        Ok(candidates.into_iter().find(|flow| !owned.contains(flow)))
    }
}
