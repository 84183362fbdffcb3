//! dynamo-consumer: turns generation requests into on-screen alerts, with the
//! viewer's points settled (SPEC §1). `main.rs` only loads the configuration
//! and calls [`run`]; tests call it the same way.

mod app;
pub mod config;
pub mod consumer;
mod health;
mod models;
pub mod pause;

pub use app::{run, run_with_health};
pub use config::ConsumerConfig;
pub use models::NoModelLeft;
