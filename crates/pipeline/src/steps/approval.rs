//! Approval before air (SPEC §7, `APPROVAL=manual`). A request whose image is
//! stored waits in `awaiting_approval` — before its alert and before its
//! debit is made final — for the streamer to approve or decline it. Waiting
//! holds no lease and no consumer slot: the request is parked in the database
//! ([`dynamo_store::Store::park_for_approval`]), due again at its deadline or
//! as soon as a decision is recorded, and then any consumer's scheduler takes
//! it up. Approved, it goes on to the alert and the accept; declined (by the
//! streamer, or by `APPROVAL_TIMEOUT_ACTION=decline` when nobody decided in
//! time), it ends `rejected`, its points are refunded and the viewer is told.

use crate::request::{Pipeline, Run};
use crate::run::{Current, Next, StepResult, Wait};
use dynamo_store::{Decision, RequestState};
use std::time::Duration;

/// The viewer's reason when the streamer declined.
const DECLINED: &str = "declined by the streamer";

impl Pipeline {
    /// Parks the request until it is decided (or its deadline passes): it
    /// waits in `awaiting_approval`, holding no lease.
    pub(crate) async fn park_for_approval(&self, run: &Run<'_>) -> StepResult {
        let due = self
            .store
            .park_for_approval(run.lease(), self.approval.timeout)
            .await?;
        tracing::info!(due = %due, "waiting for the streamer's approval");
        Ok(Next::Park(
            RequestState::AwaitingApproval,
            due,
            Wait::Approval,
        ))
    }

    /// The request waited for approval and is due: carry out the decision,
    /// let the timeout decide if its deadline passed, or park it again (a
    /// run that came early: a rescued lease, a redelivered message).
    pub(crate) async fn carry_out_approval(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> StepResult {
        // A fresh read, the one a run needs: the decision is recorded by
        // dynamo-server, another process, after this request was parked.
        current.record = self.store.get(run.id()).await?;
        let approval = &current.record.approval;
        if approval.decision().is_none()
            && approval
                .deadline
                .is_some_and(|deadline| deadline <= chrono::Utc::now())
        {
            let decision = self.approval.on_timeout;
            if self.store.decide_on_timeout(run.lease(), decision).await? {
                tracing::info!(%decision, timeout = ?self.approval.timeout, "nobody decided in time; the timeout decided");
            }
            // Whoever decided (the timeout, or the streamer just before it):
            // the guarded write only says whether it was this one.
            current.record = self.store.get(run.id()).await?;
        }
        let approval = &current.record.approval;
        match approval.decision() {
            None => self.park_for_approval(run).await,
            Some(Decision::Approved) => {
                tracing::info!(
                    by = approval.decided_by.as_deref().unwrap_or(""),
                    "approved; on air"
                );
                self.alert(run, current).await
            }
            Some(Decision::Declined) => {
                let reason = declined_reason(
                    approval.timed_out(),
                    approval.note.as_deref(),
                    self.approval.timeout,
                );
                self.end_with(run, current, RequestState::Rejected, reason)
                    .await
            }
        }
    }
}

/// What the viewer reads: the streamer's note after the fixed phrase, or that
/// nobody decided in time.
fn declined_reason(timed_out: bool, note: Option<&str>, timeout: Duration) -> String {
    if timed_out {
        return format!("{DECLINED}: not approved within {}", short(timeout));
    }
    match note.map(str::trim).filter(|note| !note.is_empty()) {
        Some(note) => format!("{DECLINED}: {note}"),
        None => DECLINED.to_owned(),
    }
}

/// `10m`, `90s`, `1h`: as the setting is written.
fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ApprovalPolicy;
    use dynamo_runtime::Env;

    #[test]
    fn off_by_default_and_the_timeout_declines() {
        let policy = ApprovalPolicy::from_env(&Env::from_pairs::<_, &str, &str>([])).unwrap();
        assert_eq!(policy, ApprovalPolicy::default());
        assert!(!policy.manual);
        assert_eq!(policy.on_timeout, Decision::Declined);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("APPROVAL", "yes"),
            ("APPROVAL_TIMEOUT", "soon"),
            ("APPROVAL_TIMEOUT", "0s"),
            ("APPROVAL_TIMEOUT_ACTION", "skip"),
        ] {
            let error = ApprovalPolicy::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(error.name, name, "{value}");
        }
    }

    #[test]
    fn manual_with_a_timeout_that_approves() {
        let env = Env::from_pairs([
            ("APPROVAL", "manual"),
            ("APPROVAL_TIMEOUT", "90s"),
            ("APPROVAL_TIMEOUT_ACTION", "approve"),
        ]);
        let policy = ApprovalPolicy::from_env(&env).unwrap();
        assert!(policy.manual);
        assert_eq!(policy.timeout, Duration::from_secs(90));
        assert_eq!(policy.on_timeout, Decision::Approved);
    }

    #[test]
    fn the_viewer_reads_why() {
        let timeout = Duration::from_secs(600);
        assert_eq!(declined_reason(false, None, timeout), DECLINED);
        assert_eq!(declined_reason(false, Some("  "), timeout), DECLINED);
        assert_eq!(
            declined_reason(false, Some("not on this stream"), timeout),
            "declined by the streamer: not on this stream"
        );
        assert_eq!(
            declined_reason(true, None, timeout),
            "declined by the streamer: not approved within 10m"
        );
    }
}
