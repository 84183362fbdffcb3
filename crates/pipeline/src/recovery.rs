//! Recovery: at start-up and then periodically, finish what crashed processes
//! left behind. Requests resume from their committed state through the same
//! pipeline as messages, so recovery can never charge, generate or alert twice.
//!
//! Normally a crash needs no recovery: the message was not acknowledged, the
//! broker redelivers it, and the pipeline resumes. This sweep covers the rest:
//! a request that ended but whose refund or result was not recorded, and a
//! request whose message will not come back (dead-lettered by a quorum queue's
//! delivery limit, purged by an operator).

use crate::request::{Job, Pipeline};
use dynamo_runtime::{Env, SettingError, Shutdown};
use std::sync::Arc;
use std::time::Duration;

/// How long an ended request may wait for its own process to refund and report.
const ENDED_GRACE: Duration = Duration::from_secs(60);
const BATCH: i64 = 50;

#[derive(Debug, Clone, Copy)]
pub struct RecoverySettings {
    /// `RECOVERY_INTERVAL`, default 60s: how often to look.
    pub interval: Duration,
    /// `RECOVERY_STALE_AFTER`, default 1h: an unfinished request with no
    /// progress for this long is taken over. Keep it above the longest a live
    /// process may spend on one request (steps × `RETRY_DEADLINE`).
    pub stale_after: Duration,
    /// How long an ended request may wait for its refund and result (tests shorten it).
    pub ended_grace: Duration,
}

impl RecoverySettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            interval: env.duration("RECOVERY_INTERVAL", Duration::from_secs(60))?,
            stale_after: env.duration("RECOVERY_STALE_AFTER", Duration::from_secs(3600))?,
            ended_grace: env.duration("RECOVERY_ENDED_GRACE", ENDED_GRACE)?,
        })
    }
}

pub async fn run(pipeline: Arc<Pipeline>, settings: RecoverySettings, shutdown: Shutdown) {
    loop {
        match sweep(&pipeline, settings).await {
            Ok(recovered) => {
                pipeline.metrics.recovery_sweep(recovered);
                if recovered > 0 {
                    tracing::info!(recovered, "recovered requests left behind");
                }
            }
            Err(error) => tracing::warn!(%error, "recovery sweep failed; will try again"),
        }
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}

async fn sweep(
    pipeline: &Pipeline,
    settings: RecoverySettings,
) -> Result<usize, dynamo_store::StoreError> {
    let candidates = pipeline
        .store
        .needing_recovery(settings.ended_grace, settings.stale_after, BATCH)
        .await?;
    let mut recovered = 0;
    for record in candidates {
        let Some(lock) = pipeline.store.try_lock_for_recovery(record.id).await? else {
            continue; // another process is on it
        };
        let request = match record.generation_request() {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(request_id = %record.id, %error, "a stored request no longer validates; leaving it to an operator");
                lock.release().await;
                continue;
            }
        };
        tracing::info!(request_id = %record.id, state = %record.state(), "recovering a request");
        let job = Job {
            id: record.id,
            request,
            free_of_charge: record.free_of_charge,
            retry_of: record.retry_of,
            fingerprint: None,
            scheduled: false,
        };
        let outcome = pipeline.handle(&job).await;
        lock.release().await;
        match outcome {
            Ok(outcome) => {
                tracing::info!(request_id = %job.id, state = %outcome.state, "recovered request finished");
                recovered += 1;
            }
            Err(error) => {
                tracing::warn!(request_id = %job.id, %error, "could not recover the request yet")
            }
        }
    }
    Ok(recovered)
}
