//! Structured logs, set up once per process.
//!
//! `RUST_LOG` picks what is shown (default `info`, lapin's own warnings muted); `LOG_FORMAT=json` switches
//! from the human-readable format to one JSON object per line for log shippers.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init() {
    // lapin logs every returned message in full at WARN; dynamo reports
    // returned alerts itself, in one readable line.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,lapin=error"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init()
    } else {
        registry.with(fmt::layer().with_target(false)).try_init()
    };
}
