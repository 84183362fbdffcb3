//! How many event streams are open, per caller and in all: each stream holds
//! a connection (and an overlay's polls the database), so a caller past
//! `SSE_MAX_STREAMS_PER_CALLER`, or anyone past `SSE_MAX_STREAMS`, is answered
//! 429 with `Retry-After` instead of one more stream.

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a refused caller is told to wait before trying again, in seconds.
const RETRY_AFTER: u64 = 5;

#[derive(Debug)]
pub struct StreamLimits {
    total: usize,
    per_caller: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_caller: HashMap<String, usize>,
}

/// One open stream; dropping it (the stream ended, or its client left)
/// frees its place.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    caller: String,
}

impl StreamLimits {
    pub fn new(total: usize, per_caller: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_caller,
            open: Mutex::default(),
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more stream of `caller` (a user, a service, an
    /// overlay token's digest), or 429.
    pub fn admit(self: &Arc<Self>, caller: String) -> Result<StreamPermit, ApiError> {
        let mut open = self.open();
        if open.total >= self.total {
            tracing::warn!(
                limit = self.total,
                "too many event streams open; refusing one (SSE_MAX_STREAMS)"
            );
            return Err(too_many(format!(
                "the server has {} event streams open, its limit; try again in {RETRY_AFTER} s",
                self.total
            )));
        }
        let mine = open.by_caller.entry(caller.clone()).or_default();
        if *mine >= self.per_caller {
            return Err(too_many(format!(
                "you have {} event streams open, the limit per caller; close one \
                 (or try again in {RETRY_AFTER} s)",
                self.per_caller
            )));
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamPermit {
            limits: Arc::clone(self),
            caller,
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total = open.total.saturating_sub(1);
        if let Some(mine) = open.by_caller.get_mut(&self.caller) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                open.by_caller.remove(&self.caller);
            }
        }
    }
}

fn too_many(detail: String) -> ApiError {
    ApiError::TooManyRequests {
        detail,
        retry_after: RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_caller_and_in_all_and_freed_on_drop() {
        let limits = StreamLimits::new(3, 2);
        let a1 = limits.admit("a".into()).unwrap();
        let _a2 = limits.admit("a".into()).unwrap();
        assert!(matches!(
            limits.admit("a".into()),
            Err(ApiError::TooManyRequests { .. })
        ));
        let _b1 = limits.admit("b".into()).unwrap();
        assert!(
            limits.admit("c".into()).is_err(),
            "three open: the total limit"
        );
        drop(a1);
        let _a3 = limits.admit("a".into()).unwrap();
        assert_eq!(limits.open().total, 3);
    }
}
