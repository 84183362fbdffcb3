//! Structured logs, set up once per process.
//!
//! `RUST_LOG` picks what is shown (default `info`, lapin's own warnings muted); `LOG_FORMAT=json` switches
//! from the human-readable format to one JSON object per line for log shippers. Both are
//! read from [`Env`] like every other setting, so `.env` sets them too.
//! Colours are used only when stdout is a terminal: a file or a pipe gets plain text.

use crate::{Env, SettingError};
use std::io::IsTerminal;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// The default filter. lapin logs every returned message in full at WARN;
/// dynamo reports returned alerts itself, in one readable line.
const DEFAULT_FILTER: &str = "info,lapin=error";

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The log settings, read from the environment once.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `RUST_LOG`, default `info` (lapin at `error`).
    pub filter: String,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub format: LogFormat,
}

impl LogSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let filter = env.string("RUST_LOG", DEFAULT_FILTER);
        EnvFilter::try_new(&filter)
            .map_err(|e| SettingError::new("RUST_LOG", format!("cannot use {filter:?}: {e}")))?;
        let format = match env
            .string("LOG_FORMAT", "text")
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(SettingError::new(
                    "LOG_FORMAT",
                    format!("cannot use {other:?}: expected text or json"),
                ));
            }
        };
        Ok(Self { filter, format })
    }
}

/// Installs the process's subscriber. Tests may call it more than once: a
/// second call keeps the first subscriber instead of panicking.
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match settings.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stdout().is_terminal()),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_settings_come_from_the_snapshot_not_the_process() {
        let env = Env::from_pairs([("LOG_FORMAT", "JSON"), ("RUST_LOG", "warn")]);
        let settings = LogSettings::from_env(&env).unwrap();
        assert_eq!(settings.format, LogFormat::Json);
        assert_eq!(settings.filter, "warn");

        let defaults = LogSettings::from_env(&Env::default()).unwrap();
        assert_eq!(defaults.format, LogFormat::Text);
        assert_eq!(defaults.filter, DEFAULT_FILTER);
    }

    #[test]
    fn unknown_log_format_names_the_variable() {
        let env = Env::from_pairs([("LOG_FORMAT", "xml")]);
        assert_eq!(LogSettings::from_env(&env).unwrap_err().name, "LOG_FORMAT");
    }
}
