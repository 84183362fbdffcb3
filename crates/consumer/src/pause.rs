//! While the fleet holds a service (SPEC §3, §6.10), no consumer takes
//! requests from the queue: they stay there, durable and ready, instead of
//! being recorded only to wait in the database. The hold is in PostgreSQL,
//! so every process sees it, also one that never met the outage itself:
//! [`HoldWatch`] reads it every [`LOOK_EVERY`] and tells the consumer loop
//! (which cancels and renews its subscription) and `/readyz`.
//!
//! Requests already parked keep the probe going from the scheduler; when it
//! passes (the hold is lifted) or the hold outlives `UPSTREAM_OUTAGE_MAX_WAIT`
//! (held requests give up), intake resumes. With no parked request to carry
//! the probe, intake does not pause: the next request takes it.

use chrono::{DateTime, Utc};
use dynamo_runtime::Shutdown;
use dynamo_store::{Hold, Store};
use std::time::Duration;
use tokio::sync::watch;

/// How often each process looks at the holds: how soon after a hold begins
/// (or ends) elsewhere in the fleet this one stops (or starts) taking
/// requests. One small query a second per process.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Why intake is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    pub service: String,
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// Whether intake is paused right now, fleet-wide. Clone it freely.
#[derive(Clone)]
pub struct HoldWatch(watch::Receiver<Option<Paused>>);

impl HoldWatch {
    /// Reads the holds once (so a consumer starting during a hold takes
    /// nothing), then keeps watching them until `shutdown`.
    pub async fn start(store: Store, max_wait: Duration, shutdown: Shutdown) -> Self {
        let first = look(&store, max_wait).await.unwrap_or(None);
        if let Some(paused) = &first {
            log_pause(paused);
        }
        let (sender, receiver) = watch::channel(first);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.requested() => return,
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                }
                // A database that does not answer changes nothing: the
                // pipeline meets that outage on its own.
                let Ok(now) = look(&store, max_wait).await else {
                    continue;
                };
                sender.send_if_modified(|current| {
                    if *current == now {
                        return false;
                    }
                    match &now {
                        Some(paused) => log_pause(paused),
                        None => tracing::info!("the hold is over; taking requests again"),
                    }
                    *current = now;
                    true
                });
            }
        });
        Self(receiver)
    }

    /// Why intake is paused, or `None` while requests are taken.
    pub fn paused(&self) -> Option<Paused> {
        self.0.borrow().clone()
    }

    /// Waits for the next change. Once the watch has stopped (shutdown),
    /// nothing changes any more.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn look(store: &Store, max_wait: Duration) -> Result<Option<Paused>, ()> {
    match store.pausing_hold(max_wait).await {
        Ok(hold) => Ok(hold.map(
            |Hold {
                 service,
                 reason,
                 held_since,
                 ..
             }| Paused {
                service,
                reason,
                since: held_since,
            },
        )),
        Err(error) => {
            tracing::debug!(%error, "cannot look at the holds; will look again");
            Err(())
        }
    }
}

fn log_pause(paused: &Paused) {
    tracing::warn!(
        service = %paused.service,
        reason = %paused.reason,
        since = %paused.since,
        "the fleet holds: not taking requests, they stay in the queue"
    );
}
