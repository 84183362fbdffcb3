//! dynamo's PostgreSQL schema and every query against it.
//!
//! The request state machine lives in the `dynamo.image_request` table: each
//! step of the pipeline is one guarded `UPDATE` that only applies from the
//! state the step expects, so a redelivered message or a second consumer can
//! never move a request backwards or do a step twice.

mod connect;
mod listing;
mod rate_limit;
mod recovery;
mod requests;
mod schedule;
mod state;
mod stats;

pub use connect::{MIGRATIONS_TABLE, SCHEMA, StoreError, connect, connect_options, migrate};

/// The PostgreSQL channel that announces state changes (see migration 0002).
pub const EVENTS_CHANNEL: &str = "dynamo_request_events";
pub use listing::{Cursor, RequestFilter};
pub use rate_limit::{Permit, RateLimiter};
pub use recovery::RecoveryLock;
pub use requests::{NewRequest, RequestDetail, RequestRecord, Store, StoredImage};
pub use schedule::StepFailure;
pub use state::RequestState;
pub use stats::{StateCount, StepTimes};
