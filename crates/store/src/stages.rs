//! The stages of a request's way, in the order the pipeline runs them: the
//! one list both sides read. The pipeline names its stages from it (metrics,
//! timings, trace spans; `dynamo_pipeline`'s `Stage` is checked against it),
//! and the server serves it (`GET /steps`), so the page's timeline labels its
//! steps from the API rather than from a copy.

use crate::RequestState;

/// One stage: what it is called, the states it runs from and moves to, and
/// how the page shows it once done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageInfo {
    /// As metrics, timings and traces name it (`dynamo_step_seconds{step}`).
    pub name: &'static str,
    /// What the page's timeline says once it is done.
    pub label: &'static str,
    /// The committed states it runs from.
    pub from: &'static [RequestState],
    /// The state it moves the request to when it goes well.
    pub to: RequestState,
    /// The request's time its commit stamps (`steps.<at>` in
    /// `GET /requests/{id}`); none when it stamps no time of its own.
    pub at: Option<&'static str>,
}

/// Every stage, in the order a request goes through them. A friend is
/// named; a ghost goes from its debit straight to its image. Approval runs
/// only with `APPROVAL=manual`; its decision carries out the alert, whose
/// time is the alert's.
pub const STAGES: [StageInfo; 6] = [
    StageInfo {
        name: "debit",
        label: "points held",
        from: &[RequestState::Received],
        to: RequestState::Debited,
        at: Some("debited_at"),
    },
    StageInfo {
        name: "name",
        label: "named",
        from: &[RequestState::Debited],
        to: RequestState::Named,
        at: Some("named_at"),
    },
    StageInfo {
        name: "image",
        label: "image stored",
        from: &[RequestState::Debited, RequestState::Named],
        to: RequestState::Stored,
        at: Some("stored_at"),
    },
    StageInfo {
        name: "alert",
        label: "alert shown",
        from: &[RequestState::Stored],
        to: RequestState::Alerted,
        at: Some("alerted_at"),
    },
    StageInfo {
        name: "approval",
        label: "approved and shown",
        from: &[RequestState::AwaitingApproval],
        to: RequestState::Alerted,
        at: None,
    },
    StageInfo {
        name: "accept",
        label: "points settled",
        from: &[RequestState::Alerted],
        to: RequestState::Succeeded,
        at: Some("settled_at"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_short_of_the_end_has_a_stage_that_moves_it_on() {
        for state in RequestState::ALL {
            let runs = STAGES.iter().any(|stage| stage.from.contains(&state));
            assert_eq!(runs, !state.is_final(), "{state}");
        }
        for stage in STAGES {
            for from in stage.from {
                assert!(from.can_become(stage.to), "{}: {from}", stage.name);
            }
        }
        for (index, stage) in STAGES.iter().enumerate() {
            assert!(
                STAGES[index + 1..].iter().all(|s| s.name != stage.name),
                "{}",
                stage.name
            );
        }
    }
}
