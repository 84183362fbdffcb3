//! dynamo's PostgreSQL schema and every query against it.
//!
//! The request state machine lives in the `dynamo.image_request` table: each
//! step of the pipeline is one guarded `UPDATE` that only applies from the
//! state the step expects and only under the request's lease, so a redelivered
//! message, a second consumer or a stale owner can never move a request
//! backwards or do a step twice.

mod approval;
mod chat;
mod column;
mod connect;
mod debit;
mod deliveries;
mod gallery;
mod generated;
pub mod golden_vcr;
mod holds;
mod intake_lease;
mod lease;
mod listing;
mod models;
mod moves;
mod overlay;
mod rate_limit;
mod requests;
mod rules;
mod schedule;
mod sounds;
mod speech;
mod spend;
mod stages;
mod state;
mod stats;
mod step;
mod styles;
mod twitch;

pub use approval::{Approval, Decision, DecisionError};
pub use connect::{
    MIGRATIONS_TABLE, SCHEMA, SERVE_ACQUIRE_TIMEOUT, SchemaReady, StoreError, connect,
    connect_in_background, connect_options, migrate,
};

/// The PostgreSQL channel that announces state changes (see migration 0002).
pub const EVENTS_CHANNEL: &str = "dynamo_request_events";
pub use chat::{ChatOutcome, ClaimedChat, UntoldEnd, UntoldQueued};
pub use debit::DebitIntent;
pub use gallery::{GalleryCursor, GalleryImage, RECENT_DAYS};
pub use holds::Hold;
pub use intake_lease::IntakeLease;
pub use lease::Lease;
pub use listing::{Cursor, RequestFilter};
pub use models::{ConfiguredModel, LearnedModels, ListedModel};
pub use moves::Progress;
pub use overlay::{OVERLAY_CHANNEL, OverlayAlert, OverlayQueue, OverlayToken};
pub use rate_limit::{Permit, RateLimiter};
pub use requests::{NewRequest, RequestDetail, RequestRecord, Store, StoredImage};
pub use rules::{ContentRules, RuleNumbers, RuleVerdict, ViewerHistory};
pub use schedule::StepFailure;
pub use sounds::{NewStyleSound, StyleSound};
pub use speech::{CaptionSpeech, SpeechCost, SpokenFile};
pub use spend::{ImageCost, SpendSummary};
pub use stages::{STAGES, StageInfo};
pub use state::RequestState;
pub use stats::{StateCount, StepTimes};
pub use step::Step;
pub use styles::{
    DeleteError, RewardState, RewardStatus, STYLES_CHANNEL, StoredStyle, Written, stored_form,
};
pub use twitch::{GrantAccount, NewRedemption, StoredGrant, StoredRedemption};
