//! Holding a request's lease while working on it (SPEC §6.8).
//!
//! A run owns its request through [`Owned`]: a task renews the lease every
//! third of its time to live, and the run stops — wherever it is, before any
//! further call to another service — once the lease is lost or could not be
//! renewed in time. The deadline is kept on this process's monotonic clock,
//! so a process that was frozen (SIGSTOP, a paused VM) notices on waking that
//! its lease is gone before it acts, not after; and the store refuses its
//! writes anyway, since they carry the old token.

use dynamo_store::{Lease, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A lease this run holds, kept alive until dropped.
pub(crate) struct Owned {
    lease: Lease,
    /// When the lease must be taken as lost unless renewed by then.
    deadline: Arc<Mutex<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
}

/// The lease is treated as lost this long before the database would let it
/// lapse, to leave room for clock skew and a slow last write.
fn safety_margin(ttl: Duration) -> Duration {
    ttl / 5
}

impl Owned {
    pub(crate) fn keep(store: Store, lease: Lease, ttl: Duration) -> Self {
        let deadline = Arc::new(Mutex::new(Instant::now() + ttl - safety_margin(ttl)));
        let renewer = tokio::spawn(renew(store, lease, ttl, deadline.clone()));
        Self {
            lease,
            deadline,
            renewer,
        }
    }

    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }

    fn deadline(&self) -> Instant {
        *self
            .deadline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the lease still holds by this process's clock.
    pub(crate) fn is_held(&self) -> bool {
        Instant::now() < self.deadline()
    }

    /// Resolves once the lease is lost: not renewed in time, or taken over.
    pub(crate) async fn lost(&self) {
        loop {
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew(store: Store, lease: Lease, ttl: Duration, deadline: Arc<Mutex<Instant>>) {
    let every = ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        let asked = Instant::now();
        match store.renew_lease(&lease, ttl).await {
            Ok(true) => {
                let mut deadline = deadline.lock().unwrap_or_else(|p| p.into_inner());
                *deadline = asked + ttl - safety_margin(ttl);
            }
            Ok(false) => {
                tracing::warn!(request_id = %lease.request_id, "lost the request's lease: another process took it over");
                let mut deadline = deadline.lock().unwrap_or_else(|p| p.into_inner());
                *deadline = Instant::now();
                return;
            }
            // The deadline stands: if the database stays away past it, the
            // run stops and another process resumes the request later.
            Err(error) => {
                tracing::warn!(request_id = %lease.request_id, %error, "could not renew the request's lease")
            }
        }
    }
}
