//! Runs scheduled retries: requests whose step failed transiently and whose
//! next try is due. Any consumer process may run any of them; a claim leases
//! the request so that exactly one does, and a claimer that dies hands it back
//! when the lease ends. These requests take no prefetch slot of the queue.

use crate::request::{Job, Pipeline};
use dynamo_runtime::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How often to look for due retries.
const POLL: Duration = Duration::from_millis(500);
/// How long a claimed retry is ours before another process may take it.
const LEASE: Duration = Duration::from_secs(600);

pub async fn run(pipeline: Arc<Pipeline>, concurrency: usize, shutdown: Shutdown) {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    loop {
        let free = slots.available_permits() as i64;
        if free > 0 {
            match pipeline.store.claim_due_retries(free, LEASE).await {
                Ok(ids) => {
                    for id in ids {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let pipeline = pipeline.clone();
                        tokio::spawn(async move {
                            run_one(&pipeline, id).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot look for due retries; will try again"),
            }
        }
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn run_one(pipeline: &Pipeline, id: uuid::Uuid) {
    let record = match pipeline.store.get(id).await {
        Ok(record) => record,
        Err(error) => return tracing::warn!(request_id = %id, %error, "cannot load a due retry"),
    };
    let request = match record.generation_request() {
        Ok(request) => request,
        Err(error) => {
            return tracing::error!(request_id = %id, %error, "a stored request no longer validates; leaving it to an operator");
        }
    };
    let job = Job {
        id,
        request,
        free_of_charge: record.free_of_charge,
        retry_of: record.retry_of,
        fingerprint: None,
        scheduled: true,
    };
    match pipeline.handle(&job).await {
        Ok(outcome) => tracing::info!(
            request_id = %id,
            state = %outcome.state,
            retry_at = ?outcome.waiting_until,
            steps = %outcome.timings,
            "scheduled retry ran"
        ),
        Err(error) => {
            tracing::warn!(request_id = %id, %error, "scheduled retry could not record progress; it is retried when its lease ends")
        }
    }
}
