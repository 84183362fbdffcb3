//! The states a request moves through, and which moves are legal.

use dynamo_wire::EndState;
use std::fmt;
use std::str::FromStr;

/// Where a request stands. The order of the variants is the order of the
/// pipeline; the last three are end states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestState {
    /// Recorded; nothing charged yet.
    Received,
    /// A pending outflow exists at the ledger (or the request is free).
    Debited,
    /// The friend's name is recorded (friends only).
    Named,
    /// The image is uploaded and its row written.
    Stored,
    /// With `APPROVAL=manual`: the image waits for the streamer's approval
    /// (or its timeout) before its alert and its final debit.
    AwaitingApproval,
    /// The broker confirmed the alert: it will be shown.
    Alerted,
    Succeeded,
    Rejected,
    Failed,
}

impl RequestState {
    pub const ALL: [RequestState; 9] = [
        RequestState::Received,
        RequestState::Debited,
        RequestState::Named,
        RequestState::Stored,
        RequestState::AwaitingApproval,
        RequestState::Alerted,
        RequestState::Succeeded,
        RequestState::Rejected,
        RequestState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::Debited => "debited",
            RequestState::Named => "named",
            RequestState::Stored => "stored",
            RequestState::AwaitingApproval => "awaiting_approval",
            RequestState::Alerted => "alerted",
            RequestState::Succeeded => "succeeded",
            RequestState::Rejected => "rejected",
            RequestState::Failed => "failed",
        }
    }

    pub fn end_state(self) -> Option<EndState> {
        match self {
            RequestState::Succeeded => Some(EndState::Succeeded),
            RequestState::Rejected => Some(EndState::Rejected),
            RequestState::Failed => Some(EndState::Failed),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        self.end_state().is_some()
    }

    /// The states from which `self` may be entered.
    pub fn predecessors(self) -> &'static [RequestState] {
        use RequestState::*;
        match self {
            Received => &[],
            Debited => &[Received],
            Named => &[Debited],
            Stored => &[Debited, Named],
            AwaitingApproval => &[Stored],
            Alerted => &[Stored, AwaitingApproval],
            Succeeded => &[Alerted],
            // Once the alert is out the viewer has seen the image: it cannot
            // be taken back, so only earlier states may end unsuccessfully.
            Rejected | Failed => &[Received, Debited, Named, Stored, AwaitingApproval],
        }
    }

    pub fn can_become(self, next: RequestState) -> bool {
        next.predecessors().contains(&self)
    }
}

impl From<EndState> for RequestState {
    fn from(end: EndState) -> Self {
        match end {
            EndState::Succeeded => RequestState::Succeeded,
            EndState::Rejected => RequestState::Rejected,
            EndState::Failed => RequestState::Failed,
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown request state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for RequestState {
    type Err = UnknownState;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        RequestState::ALL
            .into_iter()
            .find(|state| state.as_str() == raw)
            .ok_or_else(|| UnknownState(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::RequestState::*;
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in RequestState::ALL {
            assert_eq!(state.as_str().parse::<RequestState>().unwrap(), state);
        }
        assert!("pending".parse::<RequestState>().is_err());
    }

    #[test]
    fn the_pipeline_only_moves_forward() {
        assert!(Received.can_become(Debited));
        assert!(Debited.can_become(Stored), "ghosts skip the name");
        assert!(Named.can_become(Stored));
        assert!(!Stored.can_become(Debited));
        assert!(!Succeeded.can_become(Failed));
    }

    #[test]
    fn an_alerted_request_cannot_fail() {
        assert!(!Alerted.can_become(Failed));
        assert!(!Alerted.can_become(Rejected));
        assert!(Alerted.can_become(Succeeded));
    }

    #[test]
    fn an_image_awaiting_approval_is_alerted_or_ends_but_never_goes_back() {
        assert!(Stored.can_become(AwaitingApproval));
        assert!(AwaitingApproval.can_become(Alerted));
        assert!(AwaitingApproval.can_become(Rejected));
        assert!(!AwaitingApproval.can_become(Stored));
        assert!(!Alerted.can_become(AwaitingApproval));
    }

    #[test]
    fn end_states_are_final() {
        for end in [Succeeded, Rejected, Failed] {
            assert!(end.is_final());
            assert!(RequestState::ALL.iter().all(|next| !end.can_become(*next)));
        }
    }
}
