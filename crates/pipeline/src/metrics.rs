//! The consumer's Prometheus metrics, in one `prometheus-client` registry
//! per process, which escapes label values and help texts as the exposition
//! format requires.
//!
//! Two kinds of metric: counters kept as the pipeline works, and readings of
//! the database and the broker (the queue's depth, the configured models'
//! shutdown dates, the oldest pending debit), taken by the health port at
//! each scrape and shown as gauges by [`Readings`].

use dynamo_runtime::metrics::Exposition;
use dynamo_upstream::UpstreamError;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub use dynamo_runtime::metrics::CONTENT_TYPE;

/// A counter of seconds or dollars.
type Sum = Counter<f64, AtomicU64>;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Finished {
    state: String,
    style: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChatOutcome {
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StepLabel {
    step: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RuleLabel {
    rule: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InfraFailure {
    step: String,
    component: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OpenAiCall {
    endpoint: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Limiter {
    limiter: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Service {
    service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Model {
    model: String,
}

/// One configured model with an announced shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelShutdown {
    pub model: String,
    /// `OPENAI_IMAGE_MODEL` or `OPENAI_CHAT_MODEL`.
    pub variable: String,
    /// Negative once past.
    pub days_left: i32,
}

/// What one scrape read from the database and the broker. A reading that
/// did not answer is `None` (or empty) and its gauge is left out that
/// scrape, rather than shown as zero.
#[derive(Debug, Default)]
pub struct Readings {
    pub queue_depth: Option<u32>,
    pub model_shutdowns: Vec<ModelShutdown>,
    /// Fleet-wide, in seconds; 0 when no debit is pending.
    pub oldest_pending_debit_age: Option<f64>,
    /// The services the fleet holds requests for now, with how long (in
    /// seconds) each has been held: a gauge that stays up exactly as long
    /// as the hold, for alerts. `None`: the database did not say.
    pub held: Option<Vec<(String, f64)>>,
    /// What images cost today and this broadcast; `None`: the database did not say.
    pub spend: Option<SpendReading>,
    /// `OPENAI_DAILY_BUDGET_USD`, when set.
    pub daily_budget_usd: Option<f64>,
}

/// [`Readings::spend`]: fleet-wide, from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendReading {
    /// USD since 00:00 UTC.
    pub today_usd: f64,
    /// The broadcast of the newest request that names one, and what its
    /// requests cost.
    pub broadcast: Option<(i64, f64)>,
}

impl dynamo_runtime::metrics::Readings for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let readings = self;
        dynamo_runtime::metrics::encode_queue_depth(&mut encoder, readings.queue_depth)?;
        if !readings.model_shutdowns.is_empty() {
            let mut family = encoder.encode_descriptor(
                "dynamo_model_shutdown_days",
                "Days until a configured model's announced shutdown (negative once past).",
                None,
                MetricType::Gauge,
            )?;
            for shutdown in &readings.model_shutdowns {
                let labels = [
                    ("model", shutdown.model.as_str()),
                    ("variable", shutdown.variable.as_str()),
                ];
                ConstGauge::new(i64::from(shutdown.days_left))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(age) = readings.oldest_pending_debit_age {
            let gauge = encoder.encode_descriptor(
                "dynamo_oldest_pending_debit_age_seconds",
                "Age of the oldest ledger debit neither accepted nor rejected yet (0: none).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(age).encode(gauge)?;
        }
        if let Some(held) = &readings.held {
            // Declared even when nothing is held, so an empty answer is told
            // apart from a scrape that could not read the holds.
            let mut family = encoder.encode_descriptor(
                "dynamo_upstream_held_seconds",
                "How long the fleet has held requests for a service (present only while held).",
                None,
                MetricType::Gauge,
            )?;
            for (service, seconds) in held {
                ConstGauge::new(*seconds)
                    .encode(family.encode_family(&[("service", service.as_str())])?)?;
            }
        }
        if let Some(spend) = &readings.spend {
            let gauge = encoder.encode_descriptor(
                "dynamo_spend_today_usd",
                "USD spent on images since 00:00 UTC, fleet-wide.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(spend.today_usd).encode(gauge)?;
            if let Some((broadcast, usd)) = spend.broadcast {
                let mut family = encoder.encode_descriptor(
                    "dynamo_spend_broadcast_usd",
                    "USD spent on the current broadcast's images (the newest request that names one).",
                    None,
                    MetricType::Gauge,
                )?;
                let broadcast = broadcast.to_string();
                ConstGauge::new(usd)
                    .encode(family.encode_family(&[("broadcast", broadcast.as_str())])?)?;
            }
        }
        if let Some(budget) = readings.daily_budget_usd {
            let gauge = encoder.encode_descriptor(
                "dynamo_daily_budget_usd",
                "OPENAI_DAILY_BUDGET_USD: images are held once today's spend reaches it.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(budget).encode(gauge)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Metrics {
    exposition: Exposition<Readings>,
    holds: Family<Service, Counter>,
    recovery_sweeps: Counter,
    recovered: Counter,
    finished: Family<Finished, Counter>,
    step_seconds: Family<StepLabel, Sum>,
    steps: Family<StepLabel, Counter>,
    openai_calls: Family<OpenAiCall, Counter>,
    retries: Family<StepLabel, Counter>,
    refused_by_rule: Family<RuleLabel, Counter>,
    infra_failures: Family<InfraFailure, Counter>,
    rate_limiter_wait: Family<Limiter, Sum>,
    dead_lettered: Counter,
    spend: Family<Model, Sum>,
    requeued: Counter,
    chat_messages: Family<ChatOutcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // Counters are registered without their `_total`: the encoder adds it.
        macro_rules! registered {
            ($name:literal, $help:literal) => {{
                let metric = Default::default();
                registry.register($name, $help, Clone::clone(&metric));
                metric
            }};
        }
        let holds = registered!(
            "dynamo_upstream_holds",
            "Times the fleet started holding requests because a service was out (bad key, no credit, every model gone)."
        );
        let recovery_sweeps = registered!(
            "dynamo_recovery_sweeps",
            "Looks for requests nobody owns (due retries, viewers' turns, lapsed leases)."
        );
        let recovered = registered!(
            "dynamo_recovered",
            "Requests taken over after their owner's lease lapsed (its process died or froze)."
        );
        let finished = registered!(
            "dynamo_requests_finished",
            "Requests that reached an end state, by state and style."
        );
        let step_seconds = registered!("dynamo_step_seconds", "Time spent in each pipeline step.");
        let steps = registered!("dynamo_step", "Pipeline steps run.");
        let openai_calls = registered!(
            "dynamo_openai_calls",
            "OpenAI calls by endpoint and outcome."
        );
        let retries = registered!("dynamo_retries", "Transient failures retried, by step.");
        let refused_by_rule = registered!(
            "dynamo_refused_by_rule",
            "Requests the content rules refused, by rule (blocklist, cooldown, cap)."
        );
        let infra_failures = registered!(
            "dynamo_infra_failures",
            "Failures of dynamo's own database or broker under a step, waited out at no cost to the request, by step and component."
        );
        let rate_limiter_wait = registered!(
            "dynamo_rate_limiter_wait_seconds",
            "Time spent waiting for the shared rate limits."
        );
        let dead_lettered = registered!(
            "dynamo_dead_lettered",
            "Malformed messages parked in the dead-letter queue."
        );
        let spend = registered!(
            "dynamo_image_spend_usd",
            "USD spent on images by this process, by model (from the answer's usage, else the model's price)."
        );
        let requeued = registered!(
            "dynamo_requeued",
            "Messages handed back because progress could not be recorded."
        );
        let chat_messages = registered!(
            "dynamo_chat_messages",
            "Chat messages to viewers by outcome: sent, dropped (Twitch did not post it: is_sent false), refused, failed (given up), retried."
        );
        Self {
            exposition: Exposition::new(registry),
            holds,
            recovery_sweeps,
            recovered,
            finished,
            step_seconds,
            steps,
            openai_calls,
            retries,
            refused_by_rule,
            infra_failures,
            rate_limiter_wait,
            dead_lettered,
            spend,
            requeued,
            chat_messages,
        }
    }
}

impl Metrics {
    /// A chat message's outcome (Twitch chat).
    pub fn chat_message(&self, outcome: &str) {
        self.chat_messages
            .get_or_create(&ChatOutcome {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn finished(&self, state: &str, style: &str) {
        self.finished
            .get_or_create(&Finished {
                state: state.to_owned(),
                style: style.to_owned(),
            })
            .inc();
    }

    pub fn step(&self, step: &str, took: Duration) {
        let label = StepLabel {
            step: step.to_owned(),
        };
        self.step_seconds
            .get_or_create(&label)
            .inc_by(took.as_secs_f64());
        self.steps.get_or_create(&label).inc();
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
        self.openai_calls
            .get_or_create(&OpenAiCall {
                endpoint: endpoint.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn retry(&self, step: &str) {
        self.retries
            .get_or_create(&StepLabel {
                step: step.to_owned(),
            })
            .inc();
    }

    /// The content rules refused a request (`rule`: blocklist, cooldown, cap).
    pub fn refused_by_rule(&self, rule: &'static str) {
        self.refused_by_rule
            .get_or_create(&RuleLabel { rule })
            .inc();
    }

    /// dynamo's own `component` (database, broker) failed under `step`.
    pub fn infra_failure(&self, step: &str, component: &'static str) {
        self.infra_failures
            .get_or_create(&InfraFailure {
                step: step.to_owned(),
                component,
            })
            .inc();
    }

    pub fn rate_limiter_waited(&self, limiter: &str, waited: Duration) {
        self.rate_limiter_wait
            .get_or_create(&Limiter {
                limiter: limiter.to_owned(),
            })
            .inc_by(waited.as_secs_f64());
    }

    pub fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }

    pub fn hold_started(&self, service: dynamo_upstream::ServiceId) {
        self.holds
            .get_or_create(&Service {
                service: service.as_str().to_owned(),
            })
            .inc();
    }

    /// An image bought for `usd`.
    pub fn spent(&self, model: &str, usd: f64) {
        self.spend
            .get_or_create(&Model {
                model: model.to_owned(),
            })
            .inc_by(usd);
    }

    pub fn requeued(&self) {
        self.requeued.inc();
    }

    pub fn recovery_sweep(&self, recovered: usize) {
        self.recovery_sweeps.inc();
        self.recovered.inc_by(recovered as u64);
    }

    /// Every metric in the Prometheus text format, with this scrape's readings.
    pub fn render(&self, readings: Readings) -> Result<String, std::fmt::Error> {
        self.exposition.render(readings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &Metrics, readings: Readings) -> String {
        metrics.render(readings).expect("rendering into a String")
    }

    #[test]
    fn today_s_series_names_are_kept() {
        let metrics = Metrics::default();
        metrics.finished("succeeded", "ghost");
        metrics.step("image", Duration::from_millis(5));
        metrics.openai_call::<()>("images", &Ok(()));
        metrics.retry("image");
        metrics.rate_limiter_waited("openai-images", Duration::from_millis(5));
        metrics.dead_lettered();
        metrics.requeued();
        metrics.hold_started(dynamo_upstream::ServiceId::new("openai"));
        metrics.spent("gpt-image-2", 0.053);
        metrics.recovery_sweep(2);
        let text = render(&metrics, Readings::default());
        for sample in [
            r#"dynamo_requests_finished_total{state="succeeded",style="ghost"} 1"#,
            r#"dynamo_step_total{step="image"} 1"#,
            r#"dynamo_step_seconds_total{step="image"} 0.005"#,
            r#"dynamo_openai_calls_total{endpoint="images",outcome="ok"} 1"#,
            r#"dynamo_retries_total{step="image"} 1"#,
            r#"dynamo_rate_limiter_wait_seconds_total{limiter="openai-images"} 0.005"#,
            "dynamo_dead_lettered_total 1",
            "dynamo_requeued_total 1",
            r#"dynamo_upstream_holds_total{service="openai"} 1"#,
            r#"dynamo_image_spend_usd_total{model="gpt-image-2"} 0.053"#,
            "dynamo_recovery_sweeps_total 1",
            "dynamo_recovered_total 2",
        ] {
            assert!(
                text.contains(&format!("\n{sample}\n")),
                "no {sample} in\n{text}"
            );
        }
        assert!(text.contains("# TYPE dynamo_step_total counter"), "{text}");
    }

    #[test]
    fn holds_spend_and_budget_are_read_at_each_scrape() {
        let readings = Readings {
            held: Some(vec![("openai-budget".into(), 1200.5)]),
            spend: Some(SpendReading {
                today_usd: 4.25,
                broadcast: Some((77, 1.5)),
            }),
            daily_budget_usd: Some(10.0),
            ..Readings::default()
        };
        let text = render(&Metrics::default(), readings);
        for sample in [
            r#"dynamo_upstream_held_seconds{service="openai-budget"} 1200.5"#,
            "dynamo_spend_today_usd 4.25",
            r#"dynamo_spend_broadcast_usd{broadcast="77"} 1.5"#,
            "dynamo_daily_budget_usd 10.0",
        ] {
            assert!(
                text.contains(&format!("\n{sample}\n")),
                "no {sample} in\n{text}"
            );
        }
        // Nothing held: no series, so a hold's alert resolves with the hold.
        let text = render(
            &Metrics::default(),
            Readings {
                held: Some(vec![]),
                ..Readings::default()
            },
        );
        assert!(!text.contains("dynamo_upstream_held_seconds{"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.spent("odd\"model\\with\nnewline", 0.5);
        let readings = Readings {
            model_shutdowns: vec![ModelShutdown {
                model: "gpt\"x".into(),
                variable: "OPENAI_IMAGE_MODEL".into(),
                days_left: 12,
            }],
            ..Readings::default()
        };
        let text = render(&metrics, readings);
        assert!(
            text.contains(r#"dynamo_image_spend_usd_total{model="odd\"model\\with\nnewline"} 0.5"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"dynamo_model_shutdown_days{model="gpt\"x",variable="OPENAI_IMAGE_MODEL"} 12"#
            ),
            "{text}"
        );
        // Every line is a comment or one sample: no label broke a line.
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("dynamo_"),
                "{line:?} in {text}"
            );
        }
    }

    #[test]
    fn readings_are_shown_when_they_answered() {
        let metrics = Metrics::default();
        let text = render(&metrics, Readings::default());
        assert!(!text.contains("dynamo_queue_depth"), "{text}");
        assert!(!text.contains("dynamo_model_shutdown_days"), "{text}");
        assert!(
            !text.contains("dynamo_oldest_pending_debit_age_seconds"),
            "{text}"
        );
        let text = render(
            &metrics,
            Readings {
                queue_depth: Some(4),
                oldest_pending_debit_age: Some(12.5),
                ..Readings::default()
            },
        );
        assert!(text.contains("\ndynamo_queue_depth 4\n"), "{text}");
        assert!(
            text.contains("\ndynamo_oldest_pending_debit_age_seconds 12.5\n"),
            "{text}"
        );
    }
}
