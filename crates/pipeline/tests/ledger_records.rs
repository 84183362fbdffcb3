//! A ledger may keep records in dynamo's own database (the Twitch ledger
//! keeps the redemptions it settles there). Those records failing to load
//! is dynamo's infrastructure failing, not the ledger service: the step
//! waits it out and tries again, and the request's tries are not spent
//! (issue 26, item 3). Before `LedgerError`, the Twitch ledger reported it
//! as `UpstreamError::Transient { service: "database" }`, which the retry
//! verdict counted: three such failures ended a request with three tries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed setup should fail it

mod support;

use async_trait::async_trait;
use dynamo_store::StoreError;
use dynamo_testkit::FlowStatus;
use dynamo_upstream::{Ledger, LedgerError};
use dynamo_wire::{StyleId, Viewer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Core, assert_succeeded, ghost, retry_policy};
use uuid::Uuid;

/// The real ledger behind records that fail to load for the first
/// `failing` debits, as a ledger's would while PostgreSQL is away.
struct RecordsAway {
    ledger: Arc<dyn Ledger>,
    failing: usize,
    failed: Arc<AtomicUsize>,
}

#[async_trait]
impl Ledger for RecordsAway {
    async fn debit(
        &self,
        viewer: &Viewer,
        request_id: Uuid,
        style: &StyleId,
        points: u32,
    ) -> Result<Uuid, LedgerError> {
        if self.failed.fetch_add(1, Ordering::SeqCst) < self.failing {
            return Err(LedgerError::Store(StoreError::Query(
                sqlx::Error::PoolTimedOut,
            )));
        }
        self.ledger.debit(viewer, request_id, style, points).await
    }

    async fn accept(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError> {
        self.ledger.accept(viewer, flow_id).await
    }

    async fn refund(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError> {
        self.ledger.refund(viewer, flow_id).await
    }

    async fn pending_debits_since(
        &self,
        viewer: &Viewer,
        since: chrono::DateTime<chrono::Utc>,
        points: u32,
    ) -> Result<Vec<Uuid>, LedgerError> {
        self.ledger
            .pending_debits_since(viewer, since, points)
            .await
    }
}

#[tokio::test]
async fn a_ledger_whose_records_are_away_costs_the_request_no_tries() {
    // As many failures as the request has tries: counted as the ledger's,
    // they would end it.
    let failing = retry_policy().max_attempts;
    let failed = Arc::new(AtomicUsize::new(0));
    let calls = failed.clone();
    let core = Core::start_with_ledger(None, move |ledger| {
        Arc::new(RecordsAway {
            ledger,
            failing,
            failed: calls,
        })
    })
    .await;
    let job = ghost("debited once its records are back");

    let outcome = core.pipeline.handle(&job).await.unwrap();

    // The fault happened: every failing call was made, then one that went through.
    assert_eq!(failed.load(Ordering::SeqCst), failing + 1);
    assert_succeeded(&outcome);
    let flows = core.flows_of(job.id);
    assert_eq!(flows.len(), 1, "one debit: {flows:?}");
    assert_eq!(flows[0].status, FlowStatus::Accepted);
    // Nothing was logged against the request: no try was spent.
    let logged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dynamo.step_failure WHERE image_request_id = $1")
            .bind(job.id)
            .fetch_one(core.world.database.pool())
            .await
            .unwrap();
    assert_eq!(logged, 0, "no step failure recorded");
}
