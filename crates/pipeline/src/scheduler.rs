//! Runs what has nobody working on it: a scheduled retry that is due, a
//! request whose viewer's turn has come, and — the rescue — a request whose
//! owner's lease lapsed because its process died or froze, including one that
//! ended with its refund or result still to do. Any consumer process may take
//! any of them; claiming takes the request's lease, so exactly one does, and
//! a claimer that dies hands it on when its own lease lapses. These requests
//! take no prefetch slot of the queue: their messages are done with.

use crate::request::Pipeline;
use crate::run::Outcome;
use dynamo_runtime::Shutdown;
use dynamo_store::Lease;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// How often to look for work nobody owns.
const POLL: Duration = Duration::from_millis(500);

/// Claims and runs open requests until shutdown, then waits up to `grace` for
/// the runs in flight.
pub async fn run(pipeline: Arc<Pipeline>, concurrency: usize, grace: Duration, shutdown: Shutdown) {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let runs = TaskTracker::new();
    loop {
        let free = slots.available_permits() as i64;
        if free > 0 {
            match pipeline
                .store
                .claim_open(&pipeline.owner, free, pipeline.lease_ttl)
                .await
            {
                Ok(claimed) => {
                    let rescued = claimed.iter().filter(|(_, rescued)| *rescued).count();
                    pipeline.metrics.recovery_sweep(rescued);
                    if rescued > 0 {
                        tracing::info!(
                            rescued,
                            "took over requests whose owner stopped renewing its lease"
                        );
                    }
                    for (lease, _) in claimed {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let pipeline = pipeline.clone();
                        runs.spawn(async move {
                            run_one(&pipeline, lease).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot look for requests to run; will try again")
                }
            }
        }
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    runs.close();
    if tokio::time::timeout(grace, runs.wait()).await.is_err() {
        tracing::warn!(
            left = runs.len(),
            "grace period over; unfinished scheduled runs are resumed when their leases lapse"
        );
    }
}

async fn run_one(pipeline: &Pipeline, lease: Lease) {
    let id = lease.request_id;
    match pipeline.resume(lease).await {
        Ok(Outcome::Ended {
            state,
            reason,
            timings,
        }) => tracing::info!(
            request_id = %id,
            %state,
            reason = reason.as_deref().unwrap_or(""),
            steps = %timings,
            "request finished"
        ),
        Ok(Outcome::Waiting {
            state, until, why, ..
        }) => {
            tracing::debug!(request_id = %id, %state, ?until, ?why, "request waits")
        }
        // A resumed request carries its recorded settings: never refused.
        Ok(Outcome::OwnedElsewhere { .. } | Outcome::Refused { .. }) => {}
        Err(error) => {
            pipeline.metrics.requeued();
            tracing::warn!(request_id = %id, %error, "could not record progress; the request is resumed later")
        }
    }
}
