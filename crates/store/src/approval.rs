//! Approval before air (`APPROVAL=manual`, migration 0015). A request whose
//! image is stored is parked in `awaiting_approval` — its lease given up in
//! the same statement, due again at its deadline — until a decision is
//! recorded. dynamo-server records the streamer's decision; a consumer that
//! claims the request at its deadline records the timeout's. Either way the
//! decision is written once (the first one wins), and recording it makes the
//! request due at once, so the next scheduler poll of any consumer carries it
//! out: a consumer that dies afterwards leaves nothing undone.

use crate::{Lease, RequestState, Store, StoreError};
use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// approved or declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Approved,
    Declined,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Declined => "declined",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decision {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "approved" => Ok(Decision::Approved),
            "declined" => Ok(Decision::Declined),
            other => Err(format!("unknown approval decision {other:?}")),
        }
    }
}

/// Who decides when nobody did in time (`approval_decided_by`).
pub const TIMEOUT: &str = "timeout";

/// A request's approval, as recorded (all `None` when it never waited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approval {
    pub requested_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub decision_text: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

impl Approval {
    /// The decision, once recorded. The column's CHECK constraint admits only
    /// the two names, so an unknown one cannot occur; it would read as none.
    pub fn decision(&self) -> Option<Decision> {
        self.decision_text.as_deref().and_then(|d| d.parse().ok())
    }

    pub fn timed_out(&self) -> bool {
        self.decided_by.as_deref() == Some(TIMEOUT)
    }
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no request {0}")]
    NotFound(Uuid),
    /// It is not waiting for approval (any more): decided already, never
    /// waited, or ended.
    #[error("request {id} is {state}{decided}; only a request awaiting approval can be decided")]
    NotAwaiting {
        id: Uuid,
        state: String,
        decided: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DecisionError {
    fn from(error: sqlx::Error) -> Self {
        DecisionError::Store(error.into())
    }
}

impl Store {
    /// Parks a stored request to wait for approval and gives its lease up, in
    /// one statement: a decision can only be recorded once it waits, and is
    /// then never overwritten by the parking. It is due again at its
    /// deadline (`timeout` from the first time it was parked), or at once if
    /// a decision is already recorded. Returns when it is due.
    pub async fn park_for_approval(
        &self,
        lease: &Lease,
        timeout: Duration,
    ) -> Result<DateTime<Utc>, StoreError> {
        // The states are bound by name, as the guarded moves bind them
        // (`moves`): the text names none, so it cannot drift from the enum.
        let parked = RequestState::AwaitingApproval;
        let from = [RequestState::Stored, parked].map(|s| s.as_str().to_owned());
        let due = sqlx::query_scalar!(
            "UPDATE dynamo.image_request SET
                 state = $4,
                 approval_requested_at = coalesce(approval_requested_at, now()),
                 approval_deadline = coalesce(approval_deadline, now() + $3 * interval '1 millisecond'),
                 next_attempt_at = CASE WHEN approval_decision IS NOT NULL THEN now()
                     ELSE coalesce(approval_deadline, now() + $3 * interval '1 millisecond') END,
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                 step_attempts = 0, step_failing_since = NULL, updated_at = now()
             WHERE id = $1 AND lease_token = $2 AND state = ANY($5)
             RETURNING next_attempt_at",
            lease.request_id,
            lease.token,
            timeout.as_millis() as f64,
            parked.as_str(),
            from.as_slice(),
        )
        .fetch_optional(self.pool())
        .await?
        .flatten();
        match due {
            Some(due) => Ok(due),
            None => Err(self.refusal(lease, parked.as_str()).await),
        }
    }

    /// Records the streamer's decision on a request awaiting approval and
    /// makes it due at once. Refused when it is not awaiting approval or
    /// already decided (a second click, or the timeout came first).
    pub async fn decide_approval(
        &self,
        id: Uuid,
        decision: Decision,
        decided_by: &str,
        note: Option<&str>,
    ) -> Result<(), DecisionError> {
        let decided = sqlx::query!(
            "UPDATE dynamo.image_request SET
                 approval_decision = $2, approval_decided_by = $3, approval_decided_at = now(),
                 approval_note = $4, next_attempt_at = now(), updated_at = now()
             WHERE id = $1 AND state = $5 AND approval_decision IS NULL",
            id,
            decision.as_str(),
            decided_by,
            note,
            RequestState::AwaitingApproval.as_str(),
        )
        .execute(self.pool())
        .await?;
        if decided.rows_affected() == 1 {
            return Ok(());
        }
        let current = sqlx::query!(
            "SELECT state, approval_decision FROM dynamo.image_request WHERE id = $1",
            id
        )
        .fetch_optional(self.pool())
        .await?
        .map(|row| (row.state, row.approval_decision));
        match current {
            None => Err(DecisionError::NotFound(id)),
            Some((state, decision)) => Err(DecisionError::NotAwaiting {
                id,
                state,
                decided: decision
                    .map(|d| format!(" (already {d})"))
                    .unwrap_or_default(),
            }),
        }
    }

    /// The timeout decides, under the consumer's lease, if nobody decided
    /// first and the deadline has passed. `false`: it did not (a decision
    /// came first, or it is not due); read the record again.
    pub async fn decide_on_timeout(
        &self,
        lease: &Lease,
        decision: Decision,
    ) -> Result<bool, StoreError> {
        let decided = sqlx::query!(
            "UPDATE dynamo.image_request SET
                 approval_decision = $3, approval_decided_by = $4, approval_decided_at = now(),
                 updated_at = now()
             WHERE id = $1 AND lease_token = $2 AND state = $5
               AND approval_decision IS NULL AND approval_deadline <= now()",
            lease.request_id,
            lease.token,
            decision.as_str(),
            TIMEOUT,
            RequestState::AwaitingApproval.as_str(),
        )
        .execute(self.pool())
        .await?;
        Ok(decided.rows_affected() == 1)
    }

    /// Why a guarded write under `lease` changed nothing (a park, a
    /// `mark_once!`): the request is gone, its lease is another's, or it is
    /// not where the write applies.
    pub(crate) async fn refusal(&self, lease: &Lease, to: &'static str) -> StoreError {
        let current = crate::lease::state_and_lease(self.pool(), lease.request_id).await;
        match current {
            Err(error) => error.into(),
            Ok(None) => StoreError::NotFound(lease.request_id),
            Ok(Some((_, token))) if token != Some(lease.token) => {
                StoreError::LeaseLost(lease.request_id)
            }
            Ok(Some((state, _))) => StoreError::IllegalTransition {
                id: lease.request_id,
                from: state,
                to,
            },
        }
    }
}
