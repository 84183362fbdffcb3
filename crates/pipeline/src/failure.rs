//! Why a step's call failed: the upstream's answer ([`UpstreamError`]), or
//! dynamo's own store, broker or rate limiter. Only the first may cost the
//! request one of its tries or end it; the others wait and resume.

use dynamo_store::StoreError;
use dynamo_upstream::{LedgerError, UpstreamError};
use std::time::Duration;

/// What a step's call failed with.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The service called answered so, or did not answer.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// dynamo's own fleet-wide rate limit has no slot for a while: not a
    /// failure of anything. The request is let go and tried again after
    /// `retry_after`, costing it no try.
    #[error("{limiter} is at its configured rate; next slot in about {retry_after:?}")]
    Throttled {
        limiter: String,
        retry_after: Duration,
    },
    /// dynamo's own infrastructure failed.
    #[error(transparent)]
    Infra(#[from] Infra),
}

/// A failure of dynamo's own infrastructure: nothing the viewer's request
/// did, nothing the upstream did. The step waits `INFRA_RETRY_PAUSE` and
/// tries again, for as long as the request's lease holds.
#[derive(Debug, thiserror::Error)]
pub enum Infra {
    /// PostgreSQL (a lost lease is not this: it stops the run).
    #[error("the database failed: {0}")]
    Database(#[from] StoreError),
    /// RabbitMQ.
    #[error("cannot publish to {exchange}: {detail}")]
    Broker { exchange: String, detail: String },
}

impl Infra {
    /// The component, as the `dynamo_infra_failures_total` label names it.
    pub fn component(&self) -> &'static str {
        match self {
            Infra::Database(_) => "database",
            Infra::Broker { .. } => "broker",
        }
    }
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        StepError::Infra(Infra::Database(error))
    }
}

/// The ledger's own failures are the service's; its records in dynamo's
/// database failing (the Twitch ledger's redemptions) are dynamo's own.
impl From<LedgerError> for StepError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Upstream(error) => StepError::Upstream(error),
            LedgerError::Store(error) => StepError::Infra(Infra::Database(error)),
        }
    }
}

/// A call to the ledger: see `From<LedgerError>`.
pub(crate) async fn from_ledger<T>(
    call: impl std::future::Future<Output = Result<T, LedgerError>>,
) -> Result<T, StepError> {
    call.await.map_err(StepError::from)
}

/// A call to a service, its failure taken as the service's.
pub(crate) async fn upstream<T>(
    call: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, StepError> {
    call.await.map_err(StepError::Upstream)
}
