//! W3C trace context (`traceparent`, `tracestate`) as name/value pairs, the
//! shape message headers have: what a publisher stamps on a message so that
//! the process taking it continues the same trace.
//!
//! Without an exporter (see [`crate::telemetry`]) spans carry no trace
//! context, so nothing is stamped and nothing adopted.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header that names the parent span (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";
/// Vendor trace state that travels with it.
pub const TRACESTATE: &str = "tracestate";

struct Pairs<'a>(&'a mut Vec<(String, String)>);

impl Injector for Pairs<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

struct Lookup<'a>(&'a [(String, String)]);

impl Extractor for Lookup<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// The current span's trace context as header pairs; empty when no trace
/// is being recorded.
pub fn current() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    TraceContextPropagator::new()
        .inject_context(&tracing::Span::current().context(), &mut Pairs(&mut pairs));
    pairs
}

/// Makes `span` a child of the span named in `headers`, when they name one.
/// Call it before the span is first entered.
pub fn adopt(span: &tracing::Span, headers: &[(String, String)]) {
    let parent = TraceContextPropagator::new().extract(&Lookup(headers));
    if parent.span().span_context().is_valid()
        && let Err(error) = span.set_parent(parent)
    {
        tracing::debug!(%error, "could not continue the message's trace");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_nothing_is_stamped() {
        assert_eq!(current(), Vec::new());
    }

    #[test]
    fn a_span_stamps_its_context_and_a_child_in_another_process_adopts_it() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::prelude::*;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let publisher = tracing::info_span!("enqueue");
            let stamped = publisher.in_scope(current);
            let names: Vec<&str> = stamped.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, [TRACEPARENT, TRACESTATE]);
            let sent = publisher.context().span().span_context().clone();
            assert_eq!(
                stamped[0].1,
                format!("00-{}-{}-01", sent.trace_id(), sent.span_id())
            );

            let taker = tracing::info_span!("request");
            adopt(&taker, &stamped);
            let parent = taker.context();
            let adopted = parent.span().span_context().clone();
            assert_eq!(adopted.trace_id(), sent.trace_id(), "the same trace");
            assert_ne!(adopted.span_id(), sent.span_id(), "a span of its own");
        });
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        let span = tracing::Span::none();
        adopt(&span, &[(TRACEPARENT.to_owned(), "nonsense".to_owned())]);
        adopt(&span, &[]);
    }
}
