//! Structured logs, set up once per process.
//!
//! `RUST_LOG` picks what is shown (default `info`, lapin's own warnings muted); `LOG_FORMAT=json` switches
//! from the human-readable format to one JSON object per line for log shippers. Both are
//! read from [`Env`] like every other setting, so `.env` sets them too.
//! Colours are used only when stdout is a terminal: a file or a pipe gets plain text.
//!
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every span is also
//! exported over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces`, under
//! `OTEL_SERVICE_NAME` (default: the binary's name). Off otherwise: nothing
//! is recorded beyond the logs. [`crate::trace_context`] carries a trace
//! across processes in message headers.

use crate::{Env, SettingError};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
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
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP collector's base URL;
    /// traces are exported only when it is set.
    pub otlp_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`: the service the spans are reported under.
    pub service_name: Option<String>,
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
        Ok(Self {
            filter,
            format,
            otlp_endpoint: env.optional_http_url("OTEL_EXPORTER_OTLP_ENDPOINT")?,
            service_name: env.optional_string("OTEL_SERVICE_NAME"),
        })
    }
}

/// What has to outlive the process's work: the trace exporter, whose
/// buffered spans [`Telemetry::shutdown`] sends before the process exits.
#[must_use = "call shutdown() before exiting, or buffered spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still buffered and stops the exporter. Blocks (up to
    /// the exporter's timeout): call it after the async runtime is done.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("could not send the last traces: {error}");
        }
    }
}

/// The OTLP exporter for `endpoint`, batching spans on a thread of its own.
fn tracer_provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, String> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Installs the process's subscriber, exporting spans as `service` (unless
/// `OTEL_SERVICE_NAME` names another) when an OTLP endpoint is set. Tests
/// may call it more than once: a second call keeps the first subscriber
/// instead of panicking.
pub fn init(settings: &LogSettings, service: &str) -> Telemetry {
    let filter =
        EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let service = settings.service_name.as_deref().unwrap_or(service);
    let provider = settings.otlp_endpoint.as_deref().and_then(|endpoint| {
        tracer_provider(endpoint, service)
            .map_err(|error| eprintln!("traces are not exported to {endpoint}: {error}"))
            .ok()
    });
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("dynamo")));
    let registry = tracing_subscriber::registry().with(filter).with(traces);
    let installed = match settings.format {
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
    if installed.is_err() {
        // Another subscriber was there first; spans would never reach this provider.
        return Telemetry { provider: None };
    }
    Telemetry { provider }
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
        assert_eq!(defaults.otlp_endpoint, None, "traces are off by default");
    }

    #[test]
    fn a_bad_otlp_endpoint_names_the_variable() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert_eq!(
            LogSettings::from_env(&env).unwrap_err().name,
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        );
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SERVICE_NAME", "dynamo-consumer-eu"),
        ]);
        let settings = LogSettings::from_env(&env).unwrap();
        assert_eq!(
            settings.otlp_endpoint.as_deref(),
            Some("http://collector:4318")
        );
        assert_eq!(settings.service_name.as_deref(), Some("dynamo-consumer-eu"));
    }

    #[test]
    fn unknown_log_format_names_the_variable() {
        let env = Env::from_pairs([("LOG_FORMAT", "xml")]);
        assert_eq!(LogSettings::from_env(&env).unwrap_err().name, "LOG_FORMAT");
    }
}
