//! The vocabulary every part of the pipeline shares: what a request is
//! ([`Job`]), what a run ends in ([`Outcome`], [`Wait`], [`PipelineError`]),
//! what a step returns ([`Next`]) and works on ([`Current`]), and what a
//! call under the retry policy came to ([`Attempted`]). A leaf: it imports
//! nothing of the crate, so every other module may import it.

use chrono::{DateTime, Utc};
use dynamo_store::{Progress, RequestRecord, RequestState, StoreError, StoredImage};
use dynamo_upstream::UpstreamError;
use dynamo_wire::GenerationRequest;
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// What a request is and how it is to be charged.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub request: GenerationRequest,
    /// Admin requests may be free: no ledger flow at all.
    pub free_of_charge: bool,
    /// An admin asked for the content rules not to apply (recorded as
    /// `bypassed`). A resumed request has not got it: it was judged already.
    pub bypass_rules: bool,
    /// An admin's try-out of a style: made like any request, never aired
    /// (`trial.rs`); recorded, so a resumed run knows it too.
    pub trial: bool,
    pub retry_of: Option<Uuid>,
    /// SHA-256 of the message body, when it came without a message_id.
    pub fingerprint: Option<Vec<u8>>,
    /// The W3C trace context the message came with: the request's span
    /// continues the publisher's trace. Empty for a resumed request.
    pub trace_context: Vec<(String, String)>,
}

/// How a run ended. Every outcome means the message that started it is done
/// with: what is left of the request is in the database.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The request has its end state, its refund and its result recorded.
    Ended {
        state: RequestState,
        reason: Option<String>,
        timings: Timings,
    },
    /// It waits in the database until `until` (a scheduled retry, or its
    /// viewer's turn); any consumer takes it up then.
    Waiting {
        state: RequestState,
        until: DateTime<Utc>,
        why: Wait,
        timings: Timings,
    },
    /// Another live process owns the request (a copy of its message).
    OwnedElsewhere { state: RequestState },
    /// Nothing was recorded: the message names no enabled style, or inputs
    /// its style does not take (SPEC §6.6: dead-lettered with the reason).
    Refused { reason: String },
}

/// Why a request waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A step failed transiently and its next try is scheduled.
    Retry,
    /// Its viewer has as many requests in progress as allowed.
    ViewerTurn,
    /// A service it needs is out and the fleet holds (SPEC §6.10).
    Held,
    /// The fleet-wide rate limit has no slot for it yet.
    RateLimit,
    /// Its image waits for the streamer's approval (`APPROVAL=manual`), until
    /// a decision is recorded or its deadline passes.
    Approval,
}

impl Outcome {
    pub fn state(&self) -> RequestState {
        match self {
            Outcome::Ended { state, .. }
            | Outcome::Waiting { state, .. }
            | Outcome::OwnedElsewhere { state } => *state,
            Outcome::Refused { .. } => RequestState::Failed,
        }
    }
}

/// dynamo's own infrastructure failed, or the request is no longer ours: the
/// run stopped, the request keeps its committed state and its retry budget,
/// and it is resumed later (from its message, or by the scheduler).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(StoreError),
    #[error("cannot publish to {exchange}: {detail}")]
    Publish { exchange: String, detail: String },
    #[error("cannot settle the ledger flow: {0}")]
    Settle(UpstreamError),
    #[error("the request's lease was lost; another process resumes it")]
    LeaseLost,
    /// Settling looks for a debit whose answer never came; another request
    /// of the viewer is waiting for a debit's answer, which could be it.
    #[error("another request of this viewer is being debited; settling waits for it")]
    DebitInFlight,
}

/// A write refused for want of the lease is a lost lease, not a database failure.
impl From<StoreError> for PipelineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LeaseLost(_) => PipelineError::LeaseLost,
            other => PipelineError::Store(other),
        }
    }
}

/// What a step leads to.
pub(crate) enum Next {
    /// On to that state (an end state ends the loop).
    To(RequestState),
    /// It waits where it is until then.
    Wait(DateTime<Utc>, Wait),
    /// It moved to that state and waits there until then (parked for approval).
    Park(RequestState, DateTime<Utc>, Wait),
}

pub(crate) type StepResult = Result<Next, PipelineError>;

/// The request as this run knows it: loaded once when the run starts and
/// kept current from what each write returns (`RETURNING`), so no step
/// reads the row again.
pub(crate) struct Current {
    pub(crate) record: RequestRecord,
    /// The stored image, once there is one.
    pub(crate) image: Option<StoredImage>,
}

impl Current {
    /// A write's result taken in.
    pub(crate) fn apply(&mut self, progress: Progress) {
        self.record.apply(progress);
    }
}

/// What an upstream call under the retry policy came to.
pub(crate) enum Attempted<T> {
    Done(T),
    /// Failed for good (or the policy ran out): the step ends the request.
    Failed(UpstreamError),
    /// The next try is scheduled for then (a retry, or the service is held).
    Deferred(DateTime<Utc>, Wait),
}

pub(crate) fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Time spent in each step of one request, for its outcome log line.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    steps: Vec<(&'static str, Duration)>,
}

impl Timings {
    pub fn record(&mut self, step: &'static str, took: Duration) {
        self.steps.push((step, took));
    }

    pub fn total(&self) -> Duration {
        self.steps.iter().map(|(_, took)| *took).sum()
    }
}

/// `debit=12ms name=800ms image=14s alert=3ms accept=9ms`
impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (step, took)) in self.steps.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{step}={took:.0?}")?;
        }
        Ok(())
    }
}
