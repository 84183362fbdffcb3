//! Slow and greedy clients are shed (issue 23 item 2): each test opens the
//! slow or greedy connections a hostile client would, on raw sockets where
//! the client misbehaves at the TCP level, and sees them closed or refused
//! while a normal request is still answered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER, WAIT};
use dynamo_testkit::TestWorld;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server_with(settings: &[(&str, &str)]) -> Server {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Server::start_in(TestWorld::start().await, move |mut env| {
        for (name, value) in settings {
            env = env.with(&name, value);
        }
        env
    })
    .await
}

impl Server {
    fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// A raw connection that has sent `bytes` and nothing more.
    async fn half_sent(&self, bytes: &[u8]) -> TcpStream {
        let mut tcp = TcpStream::connect(self.address()).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        tcp
    }
}

/// Reads until the server closes `tcp` (an error counts: a reset); returns
/// what it sent first. Panics if it is still open after [`WAIT`].
async fn closed_by_server(tcp: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server left the connection open for {WAIT:?}"
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// True while the server has neither closed `tcp` nor sent anything on it.
fn still_open(tcp: &TcpStream) -> bool {
    let mut buffer = [0u8; 1];
    matches!(tcp.try_read(&mut buffer), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn healthz(server: &Server) -> StatusCode {
    server.get("/healthz", None).await.0
}

#[tokio::test]
async fn half_sent_and_silent_connections_are_closed_while_others_are_served() {
    let server = server_with(&[("HEADER_READ_TIMEOUT", "5s")]).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(
            server
                .half_sent(b"GET /healthz HTTP/1.1\r\nHost: dynamo\r\nX-Slow: ")
                .await,
        );
    }
    for _ in 0..5 {
        slow.push(server.half_sent(b"").await);
    }
    assert_eq!(healthz(&server).await, StatusCode::OK);
    assert!(
        slow.iter().all(still_open),
        "answered while the slow connections were open"
    );
    for tcp in &mut slow {
        closed_by_server(tcp).await;
    }
    assert_eq!(healthz(&server).await, StatusCode::OK);
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once_and_served_again_when_some_end() {
    // A header timeout far beyond the wait: only the limit can close them.
    let mut server = server_with(&[("MAX_CONNECTIONS", "4"), ("HEADER_READ_TIMEOUT", "1h")]).await;
    // The start-up probe's pooled connection would hold a place: let it go
    // (its close reaches the server a moment later, hence the retries).
    server.http = reqwest::Client::new();
    let held =
        dynamo_testkit::eventually("four connections held, a fifth closed", WAIT, || async {
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(server.half_sent(b"GET /healthz HTTP/1.1\r\n").await);
            }
            let mut extra = server.half_sent(b"").await;
            closed_by_server(&mut extra).await;
            held.iter().all(still_open).then_some(held)
        })
        .await;
    assert_eq!(held.len(), 4);
    drop(held);
    dynamo_testkit::eventually("a normal request to be answered", WAIT, || async {
        let client = reqwest::Client::new();
        let answer = client.get(format!("{}/healthz", server.base)).send().await;
        answer
            .ok()
            .filter(|r| r.status() == StatusCode::OK)
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_is_sent() {
    let server = server_with(&[]).await;
    let admin = server.admin();
    let head = format!(
        "POST /requests HTTP/1.1\r\nHost: dynamo\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
    );
    let mut tcp = server.half_sent(head.as_bytes()).await;
    let answer = closed_by_server(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#""error":"payload_too_large""#),
        "{answer}"
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_while_others_are_served() {
    let server = server_with(&[("REQUEST_TIMEOUT", "3s")]).await;
    let admin = server.admin();
    let head = format!(
        "POST /requests HTTP/1.1\r\nHost: dynamo\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"viewer\":"
    );
    let mut tcp = server.half_sent(head.as_bytes()).await;
    assert_eq!(healthz(&server).await, StatusCode::OK);
    assert!(still_open(&tcp), "answered while the slow body was pending");
    let answer = closed_by_server(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
}

async fn open_stream(server: &Server, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn assert_429(response: reqwest::Response, mentions: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap();
    assert!(retry_after.is_some(), "says when to come back: {body}");
    assert_eq!(body["error"], "too_many_requests", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains(mentions),
        "{body}"
    );
}

#[tokio::test]
async fn event_streams_are_capped_per_caller_and_in_all() {
    let server = server_with(&[
        ("SSE_MAX_STREAMS_PER_CALLER", "2"),
        ("SSE_MAX_STREAMS", "3"),
    ])
    .await;
    let greedy = server.viewer(VIEWER);
    let first = open_stream(&server, "/events", Some(&greedy)).await;
    let second = open_stream(&server, "/events", Some(&greedy)).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_429(
        open_stream(&server, "/events", Some(&greedy)).await,
        "per caller",
    )
    .await;
    let other = open_stream(&server, "/events", Some(&server.viewer("555"))).await;
    assert_eq!(other.status(), StatusCode::OK, "another caller is served");
    let third = server.viewer("777");
    assert_429(
        open_stream(&server, "/events", Some(&third)).await,
        "its limit",
    )
    .await;
    assert_eq!(healthz(&server).await, StatusCode::OK);
    // A stream whose client left frees its place.
    drop(first);
    dynamo_testkit::eventually("a freed place to be taken", WAIT, || async {
        let response = open_stream(&server, "/events", Some(&third)).await;
        (response.status() == StatusCode::OK).then_some(response)
    })
    .await;
}

#[tokio::test]
async fn overlay_streams_are_capped_per_token() {
    let server = server_with(&[("SSE_MAX_STREAMS_PER_CALLER", "2")]).await;
    let (status, created, _) = server
        .post("/overlay/tokens", &server.admin(), &json!({"label": "OBS"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!(
        "/overlay/events?token={}",
        created["token"].as_str().unwrap()
    );
    let open: Vec<_> =
        futures::future::join_all((0..2).map(|_| open_stream(&server, &path, None))).await;
    assert!(open.iter().all(|r| r.status() == StatusCode::OK));
    assert_429(open_stream(&server, &path, None).await, "per caller").await;
}

#[tokio::test]
async fn made_up_methods_make_no_new_metric_series() {
    let server = server_with(&[]).await;
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("PROBE{i}").as_bytes()).unwrap();
        let response = server
            .http
            .request(method, format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let text = server.metrics().await;
    assert!(!text.contains("PROBE"), "{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
}
