//! The heart of dynamo: one generation request from its message to exactly
//! one end state (SPEC §6), whoever started it — a delivery from the queue,
//! a scheduled retry or recovery.
//!
//! - [`run`]: the shared vocabulary — what a run returns ([`Outcome`]) or
//!   fails with ([`PipelineError`]), what a step returns — a leaf module;
//! - [`request`]: the [`Pipeline`] and its loop over the request's committed
//!   state, with the one place a step's failure is handled ([`failure`]);
//! - [`stage`]: which stage of the loop runs next and what each is (its
//!   label, its states, its calls); [`steps`]: each stage's code, one file
//!   each, reading like the SPEC's sentence for it; [`settle`]: what follows
//!   every end state;
//! - [`ownership`]: a run holds the request's lease and stops when it is lost;
//! - [`retry`]: the one retry policy and its verdict; [`scheduler`] runs what nobody owns:
//!   due retries, viewers' turns, and requests whose owner died;
//! - `speech`: a style's caption read aloud before its alert, at most one
//!   bounded attempt that never fails the request;
//! - [`trial`]: an admin's try-out of a style is made like any request
//!   but never aired, charged or reported;
//! - `steps::approval`: with `APPROVAL=manual`, a stored image waits for the
//!   streamer's decision (or its timeout) before it airs;
//! - [`gate`]: the whole fleet waits while a service is out (bad key, no
//!   credit, every model gone), probing it, instead of failing requests; and
//!   the same once the day's image budget is spent;
//! - [`rules`]: the streamer's content rules (blocklist, cooldown, cap per
//!   broadcast), applied first, before anything is paid for;
//! - [`settings`]: what the pipeline is configured with;
//! - [`limits`]: the fleet-wide OpenAI rate limits around the upstream calls;
//! - [`prompt`]: Golden VCR's prompt settings; [`styles`]: the styles a
//!   request may name, kept current; [`messages`]: what is published;
//! - [`metrics`]: what the pipeline counts and times.
//!
//! No module imports one that imports it back (`tests/layers.rs`).
//!
//! The binaries only adapt: `dynamo-consumer` feeds deliveries in and
//! acknowledges them by the outcome.

pub mod failure;
mod gate;
pub mod limits;
mod messages;
pub mod metrics;
mod ownership;
pub mod prompt;
pub mod request;
pub mod retry;
mod rules;
mod run;
pub mod scheduler;
pub mod settings;
mod settle;
mod speech;
mod stage;
mod steps;
pub mod styles;
mod trial;

pub use metrics::Metrics;
pub use request::{Pipeline, Services};
pub use run::{Job, Outcome, PipelineError, Timings, Wait};
pub use settings::Settings;
