//! dynamo-server's Prometheus metrics, kept in one `prometheus-client`
//! registry per process, which escapes label values and help texts as the
//! exposition format requires.
//!
//! Two kinds of metric: HTTP responses, counted as they are served, and
//! readings of the database and the broker (requests by state and style, the
//! queue's depth), taken at each scrape and shown as gauges by [`Readings`].

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use dynamo_runtime::metrics::Exposition;
use dynamo_store::StateCount;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub use dynamo_runtime::metrics::CONTENT_TYPE;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route template, never the raw path (that would make one series
    /// per request id).
    route: String,
    status: u16,
}

/// What one scrape read from the database and the broker.
#[derive(Debug, Default)]
pub struct Readings {
    pub requests: Vec<StateCount>,
    /// `None` when the broker did not say: the gauge is left out rather
    /// than shown as an empty queue.
    pub queue_depth: Option<u32>,
}

impl dynamo_runtime::metrics::Readings for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let readings = self;
        let mut family = encoder.encode_descriptor(
            "dynamo_requests",
            "Generation requests by state and style",
            None,
            MetricType::Gauge,
        )?;
        for count in &readings.requests {
            let labels = [
                ("state", count.state.as_str()),
                ("style", count.style.as_str()),
            ];
            ConstGauge::new(count.count).encode(family.encode_family(&labels)?)?;
        }
        dynamo_runtime::metrics::encode_queue_depth(&mut encoder, readings.queue_depth)
    }
}

#[derive(Debug)]
pub struct Metrics {
    exposition: Exposition<Readings>,
    http_requests: Family<HttpLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        // Registered without the suffix: the encoder adds `_total` to counters.
        registry.register(
            "dynamo_http_requests",
            "HTTP requests served by dynamo-server",
            http_requests.clone(),
        );
        Self {
            exposition: Exposition::new(registry),
            http_requests,
        }
    }
}

impl Metrics {
    pub fn count_response(&self, method: &str, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Every metric in the Prometheus text format, with this scrape's readings.
    pub fn render(&self, readings: Readings) -> Result<String, std::fmt::Error> {
        self.exposition.render(readings)
    }
}

/// The method as a label: one of the standard methods, or `other`, so a
/// client sending made-up methods cannot make one series per method.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|standard| *standard == method)
        .map_or("other", Method::as_str)
}

/// Counts each response by method, route template and status.
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let response = next.run(request).await;
    metrics.count_response(method, &route, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.count_response("GET", "/a\"quote\\backslash\nnewline", 200);
        let readings = Readings {
            requests: vec![StateCount {
                state: "odd\"state".into(),
                style: "ghost\n".into(),
                count: 2,
            }],
            queue_depth: Some(3),
        };
        let text = metrics.render(readings).unwrap_or_default();
        assert!(
            text.contains(
                r#"dynamo_http_requests_total{method="GET",route="/a\"quote\\backslash\nnewline",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"dynamo_requests{state="odd\"state",style="ghost\n"} 2"#),
            "{text}"
        );
        assert!(text.contains("dynamo_queue_depth 3\n"), "{text}");
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
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "BREW"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }

    #[test]
    fn an_unknown_queue_depth_is_left_out() {
        let text = Metrics::default()
            .render(Readings::default())
            .unwrap_or_default();
        assert!(!text.contains("dynamo_queue_depth"), "{text}");
        assert!(text.contains("# TYPE dynamo_requests gauge"), "{text}");
    }
}
