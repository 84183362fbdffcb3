//! HTTP metrics kept in memory and rendered in Prometheus text format.
//! A few counters do not justify a metrics framework.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route, status) → count
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP dynamo_http_requests_total HTTP requests served by dynamo-server."
        );
        let _ = writeln!(out, "# TYPE dynamo_http_requests_total counter");
        let http = self
            .http
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((method, route, status), count) in http.iter() {
            let _ = writeln!(
                out,
                "dynamo_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out
    }
}

/// Counts each response by its route template (not the raw path, which
/// would make one series per request id).
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let response = next.run(request).await;
    let key = (method, route, response.status().as_u16());
    *metrics
        .http
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(key)
        .or_default() += 1;
    response
}
