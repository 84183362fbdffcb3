//! The consumer's Prometheus metrics: counters kept in memory, rendered as
//! text by the health server. A handful of series does not need a framework.

use dynamo_upstream::UpstreamError;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (name, labels) → value
    series: Mutex<BTreeMap<(&'static str, String), f64>>,
}

const HELP: &[(&str, &str, &str)] = &[
    (
        "dynamo_upstream_holds_total",
        "counter",
        "Times the fleet started holding requests because a service was out (bad key, no credit, every model gone).",
    ),
    (
        "dynamo_recovery_sweeps_total",
        "counter",
        "Looks for requests nobody owns (due retries, viewers' turns, lapsed leases).",
    ),
    (
        "dynamo_recovered_total",
        "counter",
        "Requests taken over after their owner's lease lapsed (its process died or froze).",
    ),
    (
        "dynamo_requests_finished_total",
        "counter",
        "Requests that reached an end state, by state and style.",
    ),
    (
        "dynamo_step_seconds_total",
        "counter",
        "Time spent in each pipeline step.",
    ),
    ("dynamo_step_total", "counter", "Pipeline steps run."),
    (
        "dynamo_openai_calls_total",
        "counter",
        "OpenAI calls by endpoint and outcome.",
    ),
    (
        "dynamo_retries_total",
        "counter",
        "Transient failures retried, by step.",
    ),
    (
        "dynamo_rate_limiter_wait_seconds_total",
        "counter",
        "Time spent waiting for the shared rate limits.",
    ),
    (
        "dynamo_dead_lettered_total",
        "counter",
        "Malformed messages parked in the dead-letter queue.",
    ),
    (
        "dynamo_image_spend_usd_total",
        "counter",
        "USD spent on images by this process, by model (from the answer's usage, else the model's price).",
    ),
    (
        "dynamo_requeued_total",
        "counter",
        "Messages handed back because progress could not be recorded.",
    ),
];

impl Metrics {
    fn add(&self, name: &'static str, labels: String, value: f64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        *series.entry((name, labels)).or_default() += value;
    }

    pub fn finished(&self, state: &str, style: &str) {
        self.add(
            "dynamo_requests_finished_total",
            format!("state=\"{state}\",style=\"{style}\""),
            1.0,
        );
    }

    pub fn step(&self, step: &str, took: Duration) {
        self.add(
            "dynamo_step_seconds_total",
            format!("step=\"{step}\""),
            took.as_secs_f64(),
        );
        self.add("dynamo_step_total", format!("step=\"{step}\""), 1.0);
    }

    pub fn openai_call<T>(&self, endpoint: &str, result: &Result<T, UpstreamError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(UpstreamError::RateLimited { .. }) => "rate_limited",
            Err(UpstreamError::Transient { .. }) => "transient_error",
            // May have run upstream all the same: a retry may be billed twice.
            Err(UpstreamError::TimedOut { .. }) => "timeout",
            Err(UpstreamError::Inadmissible(_)) => "inadmissible",
            Err(_) => "error",
        };
        self.add(
            "dynamo_openai_calls_total",
            format!("endpoint=\"{endpoint}\",outcome=\"{outcome}\""),
            1.0,
        );
    }

    pub fn retry(&self, step: &str) {
        self.add("dynamo_retries_total", format!("step=\"{step}\""), 1.0);
    }

    pub fn rate_limiter_waited(&self, limiter: &str, waited: Duration) {
        self.add(
            "dynamo_rate_limiter_wait_seconds_total",
            format!("limiter=\"{limiter}\""),
            waited.as_secs_f64(),
        );
    }

    pub fn dead_lettered(&self) {
        self.add("dynamo_dead_lettered_total", String::new(), 1.0);
    }

    pub fn hold_started(&self, service: &str) {
        self.add(
            "dynamo_upstream_holds_total",
            format!("service=\"{service}\""),
            1.0,
        );
    }

    /// An image bought for `usd`.
    pub fn spent(&self, model: &str, usd: f64) {
        let model = model.replace('\\', "\\\\").replace('"', "\\\"");
        self.add(
            "dynamo_image_spend_usd_total",
            format!("model=\"{model}\""),
            usd,
        );
    }

    pub fn requeued(&self) {
        self.add("dynamo_requeued_total", String::new(), 1.0);
    }

    pub fn recovery_sweep(&self, recovered: usize) {
        self.add("dynamo_recovery_sweeps_total", String::new(), 1.0);
        self.add("dynamo_recovered_total", String::new(), recovered as f64);
    }

    /// Every series, grouped under its HELP and TYPE lines. A series must
    /// have an entry in `HELP` (a unit test checks the ones recorded here).
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((series_name, labels), value) in series.iter() {
                if series_name == name {
                    if labels.is_empty() {
                        let _ = writeln!(out, "{name} {value}");
                    } else {
                        let _ = writeln!(out, "{name}{{{labels}}} {value}");
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recorded_series_is_rendered() {
        let metrics = Metrics::default();
        metrics.finished("succeeded", "ghost");
        metrics.step("image", Duration::from_millis(5));
        metrics.openai_call::<()>("images", &Ok(()));
        metrics.retry("image");
        metrics.rate_limiter_waited("openai-images", Duration::from_millis(5));
        metrics.dead_lettered();
        metrics.requeued();
        metrics.spent("gpt-image-2", 0.053);
        metrics.recovery_sweep(2);
        let names: Vec<&str> = metrics
            .series
            .lock()
            .unwrap()
            .keys()
            .map(|(n, _)| *n)
            .collect();
        let text = metrics.render();
        for name in names {
            assert!(
                HELP.iter().any(|(help, _, _)| *help == name),
                "{name} has no HELP entry"
            );
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} is not rendered:\n{text}"
            );
        }
        assert!(text.contains("dynamo_recovered_total 2"), "{text}");
        assert!(
            text.contains("dynamo_image_spend_usd_total{model=\"gpt-image-2\"} 0.053"),
            "{text}"
        );
    }
}
