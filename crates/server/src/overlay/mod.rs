//! On air (SPEC §7): the OBS overlay at `/overlay`, its read-only tokens and
//! the play-out queue's controls.
//!
//! The queue lives in PostgreSQL (migration 0016), filled by a trigger from
//! dynamo's own confirmed alerts. The server owns the play-out order: an
//! overlay asks for the next entry, plays it and reports it finished, and a
//! live stream tells it when to ask again (or that its alert was skipped).

mod access;
pub(crate) mod admin;
mod hub;
pub(crate) mod play;

pub use access::OverlayAccess;
pub use hub::OverlayHub;
