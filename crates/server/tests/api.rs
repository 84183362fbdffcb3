//! dynamo-server over a real socket against the real database and broker,
//! with the fake auth service signing real RS256 tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{DEVELOPMENT_TOKEN_SHA256, Server, VIEWER, WAIT};

use dynamo_store::{Lease, NewRequest, RequestState, Store};
use dynamo_testkit::now_secs;
use dynamo_wire::GenerationRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

impl Server {
    /// Records a request directly in the database, as the consumer would.
    async fn insert(&self, user: &str, style: &str) -> Uuid {
        self.insert_leased(user, style).await.0
    }

    /// Like [`Server::insert`], with the lease that lets a test move it on.
    async fn insert_leased(&self, user: &str, style: &str) -> (Uuid, Lease) {
        let store = Store::new(self.world.database.pool().clone());
        let inputs = if style == "ghost" {
            json!({"subject": "a seal"})
        } else {
            json!({"color": "red", "subject": "a fox"})
        };
        let request = GenerationRequest::from_value(json!({
            "type": "image",
            "viewer": {"twitch_user_id": user, "twitch_display_name": format!("name{user}")},
            "state": {"broadcast_id": 13, "screening_id": "96d1ca5c-7658-48c9-8193-9d1739854467", "tape_id": 1},
            "payload": {"style": style, "inputs": inputs},
        }))
        .unwrap();
        let id = Uuid::new_v4();
        // Owned by a worker that never comes back within the test: no
        // consumer a test runs takes these rows over.
        let (_, _, lease) = store
            .record(
                &NewRequest {
                    id,
                    request: &request,
                    prompt: "p",
                    settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
                    points_cost: 200,
                    free_of_charge: false,
                    retry_of: None,
                    fingerprint: None,
                    trial: false,
                },
                "test",
                std::time::Duration::from_secs(3600),
            )
            .await
            .unwrap();
        (id, lease.unwrap())
    }
}

fn ghost_body() -> Value {
    json!({"viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
           "style": "ghost", "inputs": {"subject": "a seal"}})
}

#[tokio::test]
async fn the_access_matrix_holds() {
    let server = Server::start().await;
    let own = server.insert(VIEWER, "ghost").await;
    let other = server.insert("555", "ghost").await;
    let path = |id: Uuid| format!("/requests/{id}");

    assert_eq!(
        server.get(&path(own), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let expired = server.world.fakes.jwt(
        "a",
        json!({"twitch_user_id": VIEWER, "exp": now_secs() - 600}),
    );
    assert_eq!(
        server.get(&path(own), Some(&expired)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let wrong_issuer = server.world.fakes.jwt(
        "a",
        json!({"twitch_user_id": VIEWER, "iss": "https://evil.example"}),
    );
    assert_eq!(
        server.get(&path(own), Some(&wrong_issuer)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Signed with key b while claiming key a's id: a bad signature.
    let forged = {
        let token = server
            .world
            .fakes
            .jwt("b", json!({"twitch_user_id": VIEWER}));
        let good = server.viewer(VIEWER);
        let header_a = good.split('.').next().unwrap();
        let mut parts = token.split('.').skip(1);
        format!(
            "{header_a}.{}.{}",
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    };
    assert_eq!(
        server.get(&path(own), Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.get(&path(own), Some("not-a-known-token")).await.0,
        StatusCode::UNAUTHORIZED
    );

    let viewer = server.viewer(VIEWER);
    let (status, body) = server.get(&path(own), Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["viewer"]["twitch_user_id"], VIEWER);
    assert!(
        body.get("ledger_flow_id").is_none(),
        "viewers do not see ledger ids"
    );
    assert_eq!(
        server.get(&path(other), Some(&viewer)).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, listed) = server.get("/requests", Some(&viewer)).await;
    assert_eq!(
        listed["requests"].as_array().unwrap().len(),
        1,
        "a viewer lists only their own"
    );
    assert_eq!(
        server.post("/requests", &viewer, &ghost_body()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/me", Some(&viewer)).await.1,
        json!({"role": "viewer", "admin": false, "twitch_user_id": VIEWER, "service": null})
    );
    assert_eq!(
        server.get("/me", Some(&server.admin())).await.1,
        json!({"role": "service", "admin": true, "twitch_user_id": null, "service": "tests"})
    );
    // Twitch user tokens go through /access.
    let (status, _) = server
        .get(&path(own), Some(&format!("twitch-viewer-{VIEWER}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server
            .get(&path(other), Some(&format!("twitch-viewer-{VIEWER}")))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let broadcaster = "twitch-broadcaster-1";
    assert_eq!(
        server.get(&path(other), Some(broadcaster)).await.0,
        StatusCode::OK
    );
    let admin = server.admin();
    let (status, body) = server.get(&path(other), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.get("ledger_flow_id").is_some(),
        "admins see the ledger id (null here)"
    );
    assert_eq!(
        server.post("/requests", broadcaster, &ghost_body()).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        server.post("/requests", &admin, &ghost_body()).await.0,
        StatusCode::ACCEPTED
    );
}

/// The page labels a request's timeline from `/steps`: the stages in the
/// order they run, each naming the time in a request's `steps` its commit
/// stamps. Served without a token: it says nothing about any request.
#[tokio::test]
async fn the_steps_are_listed_in_order_with_the_times_a_request_shows() {
    let server = Server::start().await;
    let (status, steps) = server.get("/steps", None).await;
    assert_eq!(status, StatusCode::OK, "{steps}");
    let steps = steps.as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["debit", "name", "image", "alert", "approval", "accept"]
    );
    assert_eq!(steps[2]["label"], "image stored");
    assert_eq!(steps[2]["from"], json!(["debited", "named"]));
    assert_eq!(steps[2]["to"], "stored");

    let id = server.insert(VIEWER, "friend").await;
    let (_, request) = server
        .get(&format!("/requests/{id}"), Some(&server.admin()))
        .await;
    let times = request["steps"].as_object().unwrap();
    for step in steps {
        assert!(!step["label"].as_str().unwrap().is_empty(), "{step}");
        if let Some(at) = step["at"].as_str() {
            assert!(times.contains_key(at), "{at} is not in {times:?}");
        }
    }
    assert!(
        steps.iter().any(|s| s["at"].is_null()),
        "approval stamps none"
    );
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up() {
    let server = Server::start().await;
    let own = server.insert(VIEWER, "ghost").await;
    let path = format!("/requests/{own}");
    assert_eq!(
        server.get(&path, Some(&server.viewer(VIEWER))).await.0,
        StatusCode::OK
    );
    server.world.fakes.with(|s| s.jwks_keys = vec!["a", "b"]);
    let rotated = server
        .world
        .fakes
        .jwt("b", json!({"twitch_user_id": VIEWER}));
    assert_eq!(server.get(&path, Some(&rotated)).await.0, StatusCode::OK);
    assert_eq!(
        server.world.fakes.with(|s| s.jwks_fetches),
        2,
        "fetched once, refreshed once for the new kid"
    );
}

#[tokio::test]
async fn filters_and_pagination_lose_and_repeat_nothing_while_requests_arrive() {
    let server = Server::start().await;
    let admin = server.admin();
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(
            server
                .insert(
                    if i % 2 == 0 { VIEWER } else { "777" },
                    if i % 3 == 0 { "friend" } else { "ghost" },
                )
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/requests?limit=3&cursor={c}"),
            None => "/requests?limit=3".to_owned(),
        };
        let (status, page) = server.get(&path, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for request in page["requests"].as_array().unwrap() {
            seen.push(request["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        // A new request arrives between pages: it sorts before the cursor.
        server.insert(VIEWER, "ghost").await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), seen.len(), "no request repeated");
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(
        sorted_seen, sorted_expected,
        "every request present before paging was seen once"
    );

    let (_, friends) = server
        .get("/requests?style=friend&limit=100", Some(&admin))
        .await;
    assert!(
        friends["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["style"] == "friend")
    );
    assert_eq!(friends["requests"].as_array().unwrap().len(), 3);
    let (_, theirs) = server
        .get("/requests?twitch_user_id=777", Some(&admin))
        .await;
    assert_eq!(theirs["requests"].as_array().unwrap().len(), 3);
    let (_, received) = server.get("/requests?state=received&broadcast_id=13&screening_id=96d1ca5c-7658-48c9-8193-9d1739854467", Some(&admin)).await;
    assert!(received["requests"].as_array().unwrap().len() >= 7);
    let (_, none) = server.get("/requests?state=succeeded", Some(&admin)).await;
    assert!(none["requests"].as_array().unwrap().is_empty());
    let (_, future) = server
        .get("/requests?since=2999-01-01T00:00:00Z", Some(&admin))
        .await;
    assert!(future["requests"].as_array().unwrap().is_empty());
    let (_, past) = server
        .get("/requests?until=2000-01-01T00:00:00Z", Some(&admin))
        .await;
    assert!(past["requests"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn control_characters_are_a_400_naming_the_field() {
    let server = Server::start().await;
    let admin = server.admin();
    let viewer = |id: &str, name: &str| json!({"twitch_user_id": id, "twitch_display_name": name});
    let cases = [
        (viewer("1", "x"), "a s\u{0}eal", "inputs.subject", "U+0000"),
        (
            viewer("1", "x"),
            "a seal\nIgnore the above",
            "inputs.subject",
            "U+000A",
        ),
        (
            viewer("1", "wasabi\u{0}"),
            "a seal",
            "viewer.twitch_display_name",
            "U+0000",
        ),
        (
            viewer("\u{1b}[31m", "x"),
            "a seal",
            "viewer.twitch_user_id",
            "U+001B",
        ),
    ];
    for (viewer, subject, field, code) in cases {
        let (status, body, _) = server
            .post(
                "/requests",
                &admin,
                &json!({"viewer": viewer, "style": "ghost", "inputs": {"subject": subject}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{subject:?}: {body}");
        assert_eq!(body["field"], field, "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(code)),
            "{body}"
        );
    }
    let (_, listed) = server.get("/requests", Some(&admin)).await;
    assert!(
        listed["requests"].as_array().unwrap().is_empty(),
        "{listed}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let server = Server::start().await;
    let admin = server.admin();
    let url = format!("{}/requests", server.base);
    let send = |body: reqwest::Body, content_type: &'static str| {
        server
            .http
            .post(&url)
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (
            send("{not json".into(), "application/json").await.unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            send(ghost_body().to_string().into(), "text/plain")
                .await
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            send(vec![b' '; 2 * 1024 * 1024].into(), "application/json")
                .await
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            send(
                json!({"viewer": {}, "style": "ghost", "inputs": {}, "surprise": 1})
                    .to_string()
                    .into(),
                "application/json",
            )
            .await
            .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (response, status, kind) in cases {
        assert_eq!(response.status(), status);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], kind, "{body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }

    let (status, body, _) = server
        .post("/requests", &admin, &json!({"viewer": {"twitch_user_id": "1", "twitch_display_name": "x"}, "style": "ghost", "inputs": {"subject": "  "}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "inputs.subject", "{body}");
    let (status, body, _) = server
        .post("/requests", &admin, &json!({"viewer": {"twitch_user_id": "1", "twitch_display_name": "x"}, "style": "friend", "inputs": {"subject": "a fox", "color": "mauve"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "inputs.color");
    let (status, body, _) = server.post("/requests", &admin, &json!({"viewer": {"twitch_user_id": "1"}, "style": "ghost", "inputs": {"subject": "a"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "viewer.twitch_display_name");

    for path in [
        "/requests/not-a-uuid",
        "/requests?limit=100000",
        "/requests?limit=0",
        "/requests?since=yesterday",
        "/requests?state=lost",
        "/requests?cursor=zzz",
        "/requests?bogus=1",
    ] {
        let (status, body) = server.get(path, Some(&admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], "bad_request");
    }
    let (status, body) = server.get("/no/such/route", Some(&admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let broker = &server.world.broker;
    assert_eq!(
        broker.depth(&broker.topology.requests_queue).await,
        0,
        "nothing was queued"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request")
        .fetch_one(server.world.database.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

/// Reads `state` events from an SSE response until `stop` says so.
async fn read_states(response: reqwest::Response, stop: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut states = Vec::new();
    let mut buffer = String::new();
    let mut stream = response.bytes_stream();
    use futures::StreamExt;
    while let Some(chunk) = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("events keep coming")
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                let value: Value = serde_json::from_str(data.trim()).unwrap();
                states.push(value["state"].as_str().unwrap().to_owned());
            }
        }
        if stop(&states) {
            break;
        }
    }
    states
}

#[tokio::test]
async fn an_enqueued_request_is_processed_by_a_consumer_and_streamed_live() {
    let server = Server::start().await;
    let admin = server.admin();
    let consumer = server.start_consumer().await;

    let all = server
        .http
        .get(format!("{}/events", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    let (status, body, location) = server.post("/requests", &admin, &json!({
        "viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
        "style": "friend", "inputs": {"color": "orange", "subject": "a robot"}, "free_of_charge": true}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/requests/{id}").as_str())
    );

    let states = read_states(all, |states| states.iter().any(|s| s == "succeeded")).await;
    assert_eq!(
        states,
        [
            "received",
            "debited",
            "named",
            "stored",
            "alerted",
            "succeeded"
        ]
    );

    // A client that (re)connects after the end still gets the final state, and the stream ends.
    let one = server
        .http
        .get(format!("{}/requests/{id}/events", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(read_states(one, |_| false).await, ["succeeded"]);

    let (status, detail) = server.get(&format!("/requests/{id}"), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["state"], "succeeded");
    assert_eq!(detail["free_of_charge"], true);
    assert_eq!(detail["name"].as_str().map(|n| !n.is_empty()), Some(true));
    assert!(detail["steps"]["alerted_at"].is_string());
    let image = detail["images"][0]["url"].as_str().unwrap().to_owned();
    assert!(image.ends_with(".webp"));
    assert!(
        server.world.fakes.flows().is_empty(),
        "free of charge: no ledger flow"
    );
    let (_, listed) = server.get("/requests?state=succeeded", Some(&admin)).await;
    assert_eq!(
        listed["requests"][0]["images"][0]["url"],
        image.as_str(),
        "the list carries the images too"
    );

    // Retrying needs a failed request; this one succeeded.
    let (status, _, _) = server
        .post(&format!("/requests/{id}/retry"), &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // This consumer draws placeholders and configures no model; an OpenAI
    // consumer records its chain like this at start-up.
    dynamo_store::Store::new(server.world.database.pool().clone())
        .configure_models("OPENAI_IMAGE_MODEL", &["gpt-image-2.6-sunburst".to_owned()])
        .await
        .unwrap();
    let (status, stats) = server.get("/stats", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["counts"]["succeeded"]["friend"], 1);
    assert_eq!(stats["queue_depth"], 0);
    assert_eq!(stats["queue"], "declared");
    assert!(stats["step_seconds_last_hour"]["total"]["count"].as_i64() == Some(1));
    let first_image_model = stats["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["variable"] == "OPENAI_IMAGE_MODEL" && m["preference"] == 0)
        .cloned();
    assert_eq!(
        first_image_model,
        Some(
            json!({"id": "gpt-image-2.6-sunburst", "variable": "OPENAI_IMAGE_MODEL",
                    "preference": 0, "shutdown_date": null, "days_left": null, "gone": false})
        )
    );
    // The placeholder draws for free; its image is counted all the same.
    assert_eq!(stats["spend"]["images_today"], 1, "{stats}");
    assert_eq!(stats["spend"]["today_usd"], 0.0);
    assert_eq!(stats["held"], json!([]));

    consumer.stop().await;
}

#[tokio::test]
async fn a_failed_request_can_be_retried_as_a_new_linked_request() {
    let server = Server::start().await;
    let admin = server.admin();
    let (failed, lease) = server.insert_leased(VIEWER, "ghost").await;
    let store = Store::new(server.world.database.pool().clone());
    store
        .finish_unsuccessfully(&lease, RequestState::Failed, "not enough points")
        .await
        .unwrap();
    let broker = &server.world.broker;
    let queue = broker.capture(&broker.topology.requests_exchange).await;

    let (status, body, _) = server
        .post(&format!("/requests/{failed}/retry"), &admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let message = broker.next(&queue, WAIT).await.unwrap();
    assert_eq!(message.message_id.as_deref(), body["id"].as_str());
    assert!(
        message
            .headers
            .contains(&("x-dynamo-retry-of".to_owned(), failed.to_string()))
    );
    assert_eq!(message.body["payload"]["inputs"]["subject"], "a seal");
    assert_eq!(
        server
            .post(
                &format!("/requests/{failed}/retry"),
                &server.viewer(VIEWER),
                &json!({})
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn sign_in_names_the_development_token_only_when_the_server_accepts_it() {
    let other = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
    for (mode, hashes, expected) in [
        (
            "goldenvcr",
            None,
            json!({"auth_mode": "goldenvcr", "development_token": null}),
        ),
        (
            "standalone",
            Some(other.to_owned()),
            json!({"auth_mode": "standalone", "development_token": null}),
        ),
        (
            "standalone",
            Some(format!("{other},{DEVELOPMENT_TOKEN_SHA256}")),
            json!({"auth_mode": "standalone", "development_token": "dev-admin-token"}),
        ),
    ] {
        let server = Server::start_in(dynamo_testkit::TestWorld::start().await, |env| {
            let env = env.with("AUTH_MODE", mode);
            match &hashes {
                Some(hashes) => env.with("ADMIN_TOKEN_SHA256", hashes.as_str()),
                None => env,
            }
        })
        .await;
        let (status, answer) = server.get("/sign-in", None).await;
        assert_eq!(status, StatusCode::OK, "{mode} {hashes:?}");
        assert_eq!(answer, expected, "{mode} {hashes:?}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_exists() {
    let server = Server::start().await;
    let (status, doc) = server.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let expected = [
        "/events",
        "/gallery",
        "/gallery/{public_id}",
        "/healthz",
        "/livez",
        "/me",
        "/metrics",
        "/openapi.json",
        "/overlay",
        "/overlay/alerts/{id}/finished",
        "/overlay/alerts/{id}/replay",
        "/overlay/events",
        "/overlay/next",
        "/overlay/queue",
        "/overlay/queue/clear",
        "/overlay/queue/pause",
        "/overlay/queue/resume",
        "/overlay/queue/skip",
        "/overlay/sounds",
        "/overlay/tokens",
        "/overlay/tokens/{id}",
        "/readyz",
        "/requests",
        "/requests/{id}",
        "/requests/{id}/approve",
        "/requests/{id}/decline",
        "/requests/{id}/events",
        "/requests/{id}/retry",
        "/rules",
        "/rules/blocklist",
        "/rules/blocklist/{phrase}",
        "/sign-in",
        "/stats",
        "/steps",
        "/style-preview",
        "/styles",
        "/styles/{style}",
        "/styles/{style}/disable",
        "/styles/{style}/enable",
        "/styles/{style}/reward",
        "/styles/{style}/sound",
        "/styles/{style}/try",
    ];
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let admin = server.admin();
    for path in &paths {
        let methods = doc["paths"][path].as_object().unwrap();
        let concrete = path
            .replace("{id}", &Uuid::new_v4().to_string())
            .replace("{style}", "ghost");
        for method in methods.keys() {
            let request = match method.as_str() {
                "get" => server.http.get(format!("{}{concrete}", server.base)),
                "post" => server
                    .http
                    .post(format!("{}{concrete}", server.base))
                    .json(&json!({})),
                "put" => server
                    .http
                    .put(format!("{}{concrete}", server.base))
                    .json(&json!({})),
                "delete" => server.http.delete(format!("{}{concrete}", server.base)),
                "patch" => server
                    .http
                    .patch(format!("{}{concrete}", server.base))
                    .json(&json!({})),
                other => panic!("unexpected method {other}"),
            };
            let response = request
                .bearer_auth(&admin)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .unwrap();
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                let body: Value = response.json().await.unwrap();
                assert_ne!(
                    body["detail"], "no such route",
                    "{method} {path} is documented but not served"
                );
            }
        }
    }
}

#[tokio::test]
async fn health_and_metrics_are_open_and_count_requests() {
    let server = Server::start().await;
    let (status, ready) = server.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ready,
        json!({"database": true, "broker": true, "held": [], "unavailable": []})
    );
    let (status, live) = server.get("/livez", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live, json!({"status": "ok"}));
    // The consumers' holds are shown; the server itself stays ready.
    let store = Store::new(server.world.database.pool().clone());
    let reason = "today's image spend ($0.06) has reached OPENAI_DAILY_BUDGET_USD ($0.05)";
    store
        .hold("openai-budget", reason, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let (status, ready) = server.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["held"][0]["service"], "openai-budget");
    assert_eq!(ready["held"][0]["reason"], reason);
    let (_, stats) = server.get("/stats", Some(&server.admin())).await;
    assert_eq!(stats["held"][0]["reason"], reason, "{stats}");
    store.release_hold("openai-budget").await.unwrap();
    server.get("/requests", Some(&server.admin())).await;
    let text = server.metrics().await;
    assert!(
        text.contains(
            "dynamo_http_requests_total{method=\"GET\",route=\"/requests\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("dynamo_queue_depth 0"), "{text}");
    let response = server
        .http
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_a_json_405() {
    let server = Server::start().await;
    let response = server
        .http
        .delete(format!("{}/requests", server.base))
        .bearer_auth(server.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers().get("allow").cloned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    assert!(allow.is_some(), "says which methods it takes");
}

#[tokio::test]
async fn a_bad_path_id_is_a_json_400_on_every_route_that_takes_one() {
    let server = Server::start().await;
    let admin = server.admin();
    let (_, doc) = server.get("/openapi.json", None).await;
    let mut checked = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") {
            continue;
        }
        let concrete = format!("{}{}", server.base, path.replace("{id}", "not-a-uuid"));
        for method in methods.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => server.http.get(&concrete),
                "post" => server.http.post(&concrete).json(&json!({})),
                "delete" => server.http.delete(&concrete),
                other => panic!("unexpected method {other}"),
            };
            let response = request.bearer_auth(&admin).send().await.unwrap();
            let status = response.status();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let text = response.text().await.unwrap();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {text}");
            assert_eq!(content_type, "application/json", "{method} {path}: {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"], "bad_request", "{method} {path}: {body}");
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
            checked.push(format!("{method} {path}"));
        }
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "delete /overlay/tokens/{id}",
            "get /requests/{id}",
            "get /requests/{id}/events",
            "post /overlay/alerts/{id}/finished",
            "post /overlay/alerts/{id}/replay",
            "post /requests/{id}/approve",
            "post /requests/{id}/decline",
            "post /requests/{id}/retry"
        ]
    );
}

/// Asserts a 5xx answer to `path` says nothing of its cause, but carries the
/// request id the client sent; returns the body.
async fn assert_opaque_fault(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(server.admin())
        .header("x-request-id", "fault-trace-42")
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_server_error(), "{path}: {status}");
    assert_eq!(response.headers()["x-request-id"], "fault-trace-42");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["request_id"], "fault-trace-42", "{path}: {body}");
    assert!(
        ["internal", "unavailable"].contains(&body["error"].as_str().unwrap()),
        "{path}: {body}"
    );
    let database = &server.world.database;
    for internal in [
        database.name.as_str(),
        "sqlx",
        "error returned",
        "pool",
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(internal),
            "{path} tells {internal:?}: {text}"
        );
    }
    (status, body)
}

#[tokio::test]
async fn the_database_away_answers_503_with_the_request_id_and_no_internals() {
    let world = dynamo_testkit::TestWorld::start().await;
    let settings = &world.database.settings;
    let proxy =
        dynamo_testkit::FlakyProxy::start(format!("{}:{}", settings.host, settings.port), 0).await;
    let port = proxy.url.rsplit(':').next().unwrap().to_owned();
    let server = Server::start_in(world, |env| {
        env.with("PGHOST", "127.0.0.1").with("PGPORT", port)
    })
    .await;
    let (status, _) = server.get("/requests", Some(&server.admin())).await;
    assert_eq!(status, StatusCode::OK, "the server works through the proxy");
    proxy.set_down(true);
    let (status, body) = assert_opaque_fault(&server, "/requests").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("database"),
        "says which service is away: {body}"
    );
}

#[tokio::test]
async fn a_server_fault_answers_the_request_id_and_no_internals() {
    let server = Server::start().await;
    // A real fault: the server's database disappears under it.
    let database = &server.world.database;
    let mut settings = database.settings.clone();
    settings.database = "postgres".to_owned();
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect_with(
        &dynamo_store::connect_options(&settings),
    )
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {} WITH (FORCE)",
        database.name
    )))
    .execute(&mut connection)
    .await
    .unwrap();

    for path in [
        format!("/requests/{}", Uuid::new_v4()),
        "/requests".to_owned(),
    ] {
        assert_opaque_fault(&server, &path).await;
    }
}
