//! The heart of dynamo: one generation request from its message to exactly
//! one end state (SPEC §6), whoever started it — a delivery from the queue,
//! a scheduled retry or recovery.
//!
//! - [`request`]: the loop over the request's committed state, and what a run
//!   returns ([`Outcome`]) or fails with ([`PipelineError`]);
//! - [`steps`] and [`settle`]: each step, reading like the SPEC's sentence for it;
//! - [`ownership`]: a run holds the request's lease and stops when it is lost;
//! - [`retry`]: the one retry policy; [`scheduler`] runs what nobody owns:
//!   due retries, viewers' turns, and requests whose owner died;
//! - [`approval`]: with `APPROVAL=manual`, a stored image waits for the
//!   streamer's decision (or its timeout) before it airs;
//! - [`hold`]: the whole fleet waits while a service is out (bad key, no
//!   credit, every model gone), probing it, instead of failing requests;
//!   [`budget`]: the same once the day's image budget is spent;
//! - [`limits`]: the fleet-wide OpenAI rate limits around the upstream calls;
//! - [`prompt`]: prompts from templates; [`messages`]: what is published;
//! - [`metrics`]: what the pipeline counts and times.
//!
//! The binaries only adapt: `dynamo-consumer` feeds deliveries in and
//! acknowledges them by the outcome.

pub mod approval;
pub mod budget;
pub mod failure;
pub mod hold;
pub mod limits;
mod messages;
pub mod metrics;
mod ownership;
pub mod prompt;
pub mod request;
pub mod retry;
pub mod scheduler;
mod settle;
mod steps;
mod timings;

pub use metrics::Metrics;
pub use request::{Job, Outcome, Pipeline, PipelineError, Services, Settings, Wait};
pub use timings::Timings;
