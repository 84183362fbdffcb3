//! The fakes refuse what the real services refuse (SPEC §3, and the
//! services' own references): a test that passes against a lenient fake
//! proves nothing about the real service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_testkit::{Fakes, LEDGER_CLOCK_OFFSET, SHARED_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every OpenAI endpoint dynamo calls, with a body naming `model`.
fn openai_calls(fakes: &Fakes, model: &str) -> Vec<(Method, String, Option<Value>)> {
    let base = format!("{}/openai/v1", fakes.url);
    vec![
        (
            Method::POST,
            format!("{base}/images/generations"),
            Some(json!({"model": model, "prompt": "a seal", "n": 1, "size": "1024x1024"})),
        ),
        (
            Method::POST,
            format!("{base}/chat/completions"),
            Some(json!({"model": model, "messages": [{"role": "user", "content": "a name"}]})),
        ),
        (
            Method::POST,
            format!("{base}/moderations"),
            Some(json!({"model": model, "input": "a seal"})),
        ),
        (Method::GET, format!("{base}/models/{model}"), None),
    ]
}

async fn call(
    method: Method,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn every_openai_endpoint_refuses_a_bad_key_with_401() {
    let fakes = Fakes::start().await;
    let mut calls = openai_calls(&fakes, "gpt-image-2");
    calls.push((Method::GET, format!("{}/openai/v1/models", fakes.url), None));
    for (method, url, body) in calls {
        let (status, _, answer) = call(method, &url, "sk-wrong", body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(answer["error"]["code"], "invalid_api_key", "{url}");
    }
}

#[tokio::test]
async fn every_openai_endpoint_answers_a_gone_model_with_404_model_not_found() {
    let fakes = Fakes::start().await;
    for (method, url, body) in openai_calls(&fakes, "gpt-image-1") {
        let (status, _, answer) = call(method, &url, "sk-test-key", body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
        assert_eq!(answer["error"]["code"], "model_not_found", "{url}");
    }
}

#[tokio::test]
async fn openai_answers_carry_the_rate_limit_headers_counting_down() {
    let fakes = Fakes::start().await;
    fakes.with(|s| s.requests_per_minute = 3);
    let url = format!("{}/openai/v1/models", fakes.url);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = call(Method::GET, &url, "sk-test-key", None).await;
        assert_eq!(status, StatusCode::OK);
        let header = |name: &str| headers[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-ratelimit-limit-requests"), "3");
        assert!(header("x-ratelimit-reset-requests").ends_with('s'));
        remaining.push(header("x-ratelimit-remaining-requests"));
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    // The limit is enforced, as OpenAI does: the next call is refused.
    let (status, headers, answer) = call(Method::GET, &url, "sk-test-key", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer["error"]["code"], "rate_limit_exceeded");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(fakes.with(|s| s.requests_429s), 1);
}

/// A service token as dynamo asks for one, signed.
async fn token_for(fakes: &Fakes, user: &str) -> String {
    let http = reqwest::Client::new();
    let body = serde_json::to_vec(&json!({"service": "dynamo",
        "user": {"id": user, "login": format!("viewer{user}"), "displayName": format!("Viewer{user}")}}))
    .unwrap();
    let request_id = uuid::Uuid::new_v4().to_string();
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signature =
        dynamo_testkit::auth::sign(SHARED_SECRET.as_bytes(), &request_id, &timestamp, &body);
    let response = http
        .post(format!("{}/auth/service-token", fakes.url))
        .header("x-hmac-request-id", request_id)
        .header("x-hmac-request-timestamp", timestamp)
        .header("x-hmac-signature", format!("sha256={signature}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_stale_token_request_is_refused() {
    let fakes = Fakes::start().await;
    let body = br#"{"service":"dynamo","user":{"id":"1","login":"a","displayName":"A"}}"#;
    let request_id = uuid::Uuid::new_v4().to_string();
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(6))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signature = dynamo_testkit::auth::sign(SHARED_SECRET.as_bytes(), &request_id, &stale, body);
    let response = reqwest::Client::new()
        .post(format!("{}/auth/service-token", fakes.url))
        .header("x-hmac-request-id", request_id)
        .header("x-hmac-request-timestamp", stale)
        .header("x-hmac-signature", format!("sha256={signature}"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fakes.with(|s| s.bad_signatures), 1);
}

#[tokio::test]
async fn a_flow_is_settled_only_with_its_own_viewers_token() {
    let fakes = Fakes::start().await;
    let (alice, bob) = (token_for(&fakes, "1").await, token_for(&fakes, "2").await);
    let http = reqwest::Client::new();
    let debit = json!({"type": "alert-redemption", "numPointsToDebit": 200, "alertType": "image-generation",
                       "alertMetadata": {"imageRequestId": uuid::Uuid::new_v4(), "style": "ghost"}});
    let created: Value = http
        .post(format!("{}/ledger/outflow", fakes.url))
        .bearer_auth(&alice)
        .json(&debit)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flow = format!(
        "{}/ledger/outflow/{}",
        fakes.url,
        created["flowId"].as_str().unwrap()
    );
    for method in [Method::PATCH, Method::DELETE] {
        let status = http
            .request(method, &flow)
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND, "not bob's flow");
    }
    let status = http
        .patch(&flow)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fakes.with(|s| s.finalized_by_another_viewer), 2);
}

#[tokio::test]
async fn the_history_runs_on_the_ledgers_clock_among_other_services_flows() {
    let fakes = Fakes::start().await;
    let alice = token_for(&fakes, "1").await;
    let http = reqwest::Client::new();
    let before = chrono::Utc::now();
    let debit = json!({"type": "alert-redemption", "numPointsToDebit": 200, "alertType": "image-generation",
                       "alertMetadata": {"imageRequestId": uuid::Uuid::new_v4(), "style": "ghost"}});
    let created: Value = http
        .post(format!("{}/ledger/outflow", fakes.url))
        .bearer_auth(&alice)
        .json(&debit)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page: Value = http
        .get(format!("{}/ledger/history?max=100", fakes.url))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    let ours = items.iter().find(|i| i["id"] == created["flowId"]).unwrap();
    let at: chrono::DateTime<chrono::Utc> = ours["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(
        at < before,
        "stamped by a clock behind ours ({LEDGER_CLOCK_OFFSET})"
    );
    let lookalikes = items
        .iter()
        .filter(|i| {
            i["id"] != created["flowId"]
                && i["state"] == "pending"
                && i["deltaPoints"] == -200
                && i["description"] == ours["description"]
        })
        .count();
    assert_eq!(
        lookalikes, 1,
        "another service's look-alike pending debit: {items:?}"
    );
    assert!(
        items.iter().any(|i| i["type"] != "alert-redemption"),
        "another flow type"
    );
    let times: Vec<&str> = items
        .iter()
        .map(|i| i["timestamp"].as_str().unwrap())
        .collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);
}

#[tokio::test]
async fn image_parameters_are_checked_against_the_model() {
    let fakes = Fakes::start().await;
    let url = format!("{}/openai/v1/images/generations", fakes.url);
    let image = |extra: Value| {
        let mut body =
            json!({"model": "gpt-image-2", "prompt": "a seal", "n": 1, "size": "1024x1024"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, param, code) in [
        (
            json!({"response_format": "b64_json"}),
            "response_format",
            "unknown_parameter",
        ),
        (json!({"style": "vivid"}), "style", "unknown_parameter"),
        (json!({"quality": "hd"}), "quality", "invalid_value"),
        (
            json!({"output_format": "gif"}),
            "output_format",
            "invalid_value",
        ),
    ] {
        let (status, _, answer) = call(Method::POST, &url, "sk-test-key", Some(image(extra))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}");
        assert_eq!(answer["error"]["param"], param);
        assert_eq!(answer["error"]["code"], code);
    }
    let good = image(json!({"quality": "low", "output_format": "jpeg", "output_compression": 80}));
    let (status, _, answer) = call(Method::POST, &url, "sk-test-key", Some(good)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
