//! The stages of the loop, one file each, each reading like the SPEC's
//! sentence for it: [`debit`] (with moderation's screening), [`name`],
//! [`image`], [`alert`] (or the park for approval), [`approval`], [`accept`].
//! Which stage runs next, and its label, is [`crate::stage::Stage`]'s; this
//! dispatches to its code. [`end`] is how any of them ends a request
//! unsuccessfully, and [`withdrawn`] what a stage asks before it buys or
//! airs. Settling after the end is not a stage (`settle.rs`): it runs after
//! every end state, moves no state and is not timed as a step.
//!
//! A new stage: a variant of `Stage` and its entry in
//! `dynamo_store::STAGES`, a file here with its code, and its arm below.

mod accept;
mod alert;
mod approval;
mod debit;
mod end;
mod image;
mod name;
mod withdrawn;

use crate::request::{Pipeline, Run};
use crate::run::{Current, StepResult};
use crate::stage::Stage;

impl Pipeline {
    /// Runs `stage`'s code on the request.
    pub(crate) async fn run_stage(
        &self,
        stage: Stage,
        run: &Run<'_>,
        current: &mut Current,
    ) -> StepResult {
        match stage {
            Stage::Debit => self.debit(run, current).await,
            Stage::Name => self.name(run, current).await,
            Stage::Image => self.make_image(run, current).await,
            Stage::Alert => self.after_stored(run, current).await,
            Stage::Approval => self.carry_out_approval(run, current).await,
            Stage::Accept => self.accept(run, current).await,
        }
    }
}
