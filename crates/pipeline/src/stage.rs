//! Which stage of the loop runs next, and what each stage is: its name
//! (metrics, timings, trace span), the states it runs from and moves to
//! (the shared list, [`dynamo_store::STAGES`], which the server serves to
//! the page). Its code is in `steps/`, one file per stage; `steps/mod.rs`
//! dispatches on it. What a hold keeps from it is decided per call, not per
//! stage (`Gate::services_for` of the call's `Step`): the debit stage's
//! screening is held with moderation, its ledger call never.
//!
//! Imports nothing of the crate: the loop (`request`) and the steps both
//! read it.

use dynamo_store::{RequestState, STAGES, StageInfo};
use dynamo_wire::StyleSettings;

/// One stage of a request's way: one file in `steps/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Screens the prompt (moderation), then debits the viewer's points.
    Debit,
    /// Names a friend (styles that ask for a name).
    Name,
    /// Generates, post-processes and uploads the image.
    Image,
    /// Publishes the alert, or parks the request for approval.
    Alert,
    /// Carries out the streamer's decision (`APPROVAL=manual`).
    Approval,
    /// Makes the debit final once the alert is out.
    Accept,
}

impl Stage {
    /// In the order of [`STAGES`], which describes each (a test checks it).
    pub(crate) const ALL: [Stage; 6] = [
        Stage::Debit,
        Stage::Name,
        Stage::Image,
        Stage::Alert,
        Stage::Approval,
        Stage::Accept,
    ];

    /// The stage that runs from `state`, for a request recorded with
    /// `settings`; none once the request has ended. The one place a style's
    /// settings choose the way: a style that asks for a name is named
    /// between its debit and its image.
    pub(crate) fn pick(state: RequestState, settings: &StyleSettings) -> Option<Stage> {
        match state {
            RequestState::Received => Some(Stage::Debit),
            RequestState::Debited if settings.generate_name => Some(Stage::Name),
            RequestState::Debited | RequestState::Named => Some(Stage::Image),
            RequestState::Stored => Some(Stage::Alert),
            RequestState::AwaitingApproval => Some(Stage::Approval),
            RequestState::Alerted => Some(Stage::Accept),
            RequestState::Succeeded | RequestState::Rejected | RequestState::Failed => None,
        }
    }

    /// Its entry in the shared list.
    pub(crate) fn info(self) -> &'static StageInfo {
        &STAGES[self as usize]
    }

    /// Its name in metrics, timings and traces.
    pub(crate) fn name(self) -> &'static str {
        self.info().name
    }
}

// One stage for each entry of the shared list (their order: the tests).
const _: () = assert!(Stage::ALL.len() == STAGES.len());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stages_are_the_shared_list_in_its_order() {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            ["debit", "name", "image", "alert", "approval", "accept"]
        );
        for (index, stage) in Stage::ALL.into_iter().enumerate() {
            assert_eq!(stage as usize, index, "{stage:?}");
        }
    }

    #[test]
    fn each_stage_runs_from_the_states_the_list_gives_it() {
        let ghost = StyleSettings::legacy(&dynamo_wire::Style::Ghost.into());
        let friend = StyleSettings::legacy(&dynamo_wire::Style::Friend.into());
        for settings in [&ghost, &friend] {
            for state in RequestState::ALL {
                match Stage::pick(state, settings) {
                    Some(stage) => assert!(stage.info().from.contains(&state), "{state}"),
                    None => assert!(state.is_final(), "{state}"),
                }
            }
        }
        // A ghost goes from its debit to its image; a friend is named first.
        assert_eq!(
            Stage::pick(RequestState::Debited, &ghost),
            Some(Stage::Image)
        );
        assert_eq!(
            Stage::pick(RequestState::Debited, &friend),
            Some(Stage::Name)
        );
    }
}
