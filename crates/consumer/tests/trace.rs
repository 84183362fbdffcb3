//! One request, one trace (issue 18): a request an admin enqueues through
//! dynamo-server, generated, stored and alerted by the real `dynamo-consumer`
//! binary, arrives at an OTLP/HTTP collector as one trace whose spans link
//! up across the two processes through the AMQP message headers.
//!
//! The collector is an axum server in this test decoding the protobuf
//! bodies; the server runs in this process (its spans exported by this
//! process's subscriber, as `dynamo-server`), the consumer as a child.
//! Alone in its own test binary: the subscriber is process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use dynamo_runtime::telemetry::{self, LogSettings};
use dynamo_runtime::{Env, Shutdown};
use dynamo_testkit::{Running, TestWorld, command, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use prost::Message;
use serde_json::json;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
const WAIT: Duration = Duration::from_secs(60);

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn text(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(value) => Some((kv.key.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// POST /v1/traces, as an OpenTelemetry collector takes it (OTLP/HTTP, protobuf).
async fn collect(State(spans): State<Spans>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut received = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| text(&r.attributes))
            .unwrap_or_default();
        let service = resource
            .into_iter()
            .find(|(name, _)| name == "service.name")
            .map(|(_, value)| value)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    attributes: text(&span.attributes),
                });
            }
        }
    }
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

async fn start_collector() -> (String, Spans) {
    let spans = Spans::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(collect))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enqueued_request_is_one_trace_across_server_and_consumer() {
    let (collector, spans) = start_collector().await;
    // Before the test world installs its plain log subscriber.
    let logs = LogSettings::from_env(&Env::from_pairs([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("RUST_LOG", "info,sqlx=warn,lapin=error"),
    ]))
    .unwrap();
    let telemetry = telemetry::init(&logs, "dynamo-server");
    assert!(telemetry.exporting());

    let world = TestWorld::start().await;
    let (results, alerts) = world.broker.capture_outputs().await;
    let env = world.consumer_env().with("MODERATION", "false");

    let config = dynamo_server::ServerConfig::from_env(&env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let server = tokio::spawn(dynamo_server::run(config, listener, shutdown.clone()));

    let consumer_env = env
        .clone()
        .with("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str())
        .with("CONSUMER_HEALTH_ADDR", "off");
    let mut consumer = Running::spawn(
        command(BINARY, &consumer_env)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    let http = reqwest::Client::new();
    let admin = world.fakes.jwt("a", json!({"gvcr_service": "tests"}));
    let body = json!({"viewer": {"twitch_user_id": "90790024", "twitch_display_name": "wasabimilkshake"},
                      "style": "ghost", "inputs": {"subject": "a traced seal"}});
    let id: String = eventually("the server to queue the request", WAIT, || {
        let request = http
            .post(format!("{base}/requests"))
            .bearer_auth(&admin)
            // The caller traces too (a chatbot, say): its trace goes on.
            .header("traceparent", CALLER_TRACEPARENT)
            .json(&body)
            .send();
        async move {
            let response = request.await.ok()?;
            if response.status() != StatusCode::ACCEPTED {
                // 503 until the consumer has bound its queue.
                return None;
            }
            let answer: serde_json::Value = response.json().await.ok()?;
            Some(answer["id"].as_str()?.to_owned())
        }
    })
    .await;
    let alert = world
        .broker
        .next(&alerts, WAIT)
        .await
        .expect("the request is alerted");
    let result = world
        .broker
        .next(&results, WAIT)
        .await
        .expect("the request's result is published");

    // A clean stop sends the consumer's last spans; this process's too.
    consumer.signal("TERM");
    let exited = tokio::task::spawn_blocking(move || consumer.wait())
        .await
        .unwrap();
    assert!(exited.success(), "the consumer stops cleanly: {exited}");
    shutdown.trigger();
    server.await.unwrap().unwrap();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();

    let spans = eventually("the spans of both processes", WAIT, || {
        let spans = spans.lock().unwrap().clone();
        let id = id.clone();
        async move {
            let mine = |service: &str, name: &str| {
                spans.iter().any(|s| {
                    s.service == service
                        && s.name == name
                        && s.attribute("request_id") == Some(id.as_str())
                })
            };
            (mine("dynamo-server", "enqueue") && mine("dynamo-consumer", "request"))
                .then_some(spans)
        }
    })
    .await;
    let find = |service: &str, name: &str| -> Received {
        let found: Vec<_> = spans
            .iter()
            .filter(|s| s.service == service && s.name == name)
            .collect();
        assert_eq!(found.len(), 1, "one {name} span from {service}: {spans:#?}");
        found[0].clone()
    };
    // Enqueues answered 503 before the consumer bound its queue are spans too.
    let enqueue = spans
        .iter()
        .find(|s| s.name == "enqueue" && s.attribute("request_id") == Some(id.as_str()))
        .cloned()
        .unwrap();
    assert_eq!(enqueue.service, "dynamo-server");
    let request = find("dynamo-consumer", "request");
    assert_eq!(request.attribute("request_id"), Some(id.as_str()));
    assert_eq!(
        request.trace_id, enqueue.trace_id,
        "the consumer continued the server's trace"
    );
    assert_eq!(
        request.parent_span_id, enqueue.span_id,
        "the request's span is a child of the server's enqueue span"
    );
    let http_span = spans
        .iter()
        .find(|s| s.span_id == enqueue.parent_span_id)
        .expect("the enqueue span's parent is the HTTP request's span");
    assert_eq!(http_span.name, "http");
    assert_eq!(
        (hex(&http_span.trace_id), hex(&http_span.parent_span_id)),
        (CALLER_TRACE_ID.to_owned(), CALLER_SPAN_ID.to_owned()),
        "the server continued the caller's trace"
    );
    for step in ["debit", "image", "alert", "accept"] {
        let span = find("dynamo-consumer", step);
        assert_eq!(span.trace_id, request.trace_id, "{step} is in the trace");
        assert_eq!(
            span.parent_span_id, request.span_id,
            "{step} is a step of the request"
        );
    }
    let image = find("dynamo-consumer", "image");
    let upload = find("dynamo-consumer", "upload");
    assert_eq!(
        upload.parent_span_id, image.span_id,
        "the upload is part of the image step"
    );
    let traced: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id == request.trace_id)
        .collect();
    assert!(
        traced.iter().all(|s| s.trace_id == enqueue.trace_id),
        "one trace id for all"
    );

    // The alert carries the trace on, as a child of the alert step, and the
    // result as a child of the request.
    let alert_step = find("dynamo-consumer", "alert");
    assert_eq!(
        traceparent(&alert.headers),
        format!(
            "00-{}-{}-01",
            hex(&request.trace_id),
            hex(&alert_step.span_id)
        ),
        "the alert's trace context"
    );
    assert_eq!(
        traceparent(&result.headers),
        format!("00-{}-{}-01", hex(&request.trace_id), hex(&request.span_id)),
        "the result's trace context"
    );
}

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
const CALLER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traceparent(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(name, _)| name == "traceparent")
        .map(|(_, value)| value.clone())
        .expect("the message carries a traceparent")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
