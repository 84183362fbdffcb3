//! `POST /requests/{id}/approve` and `/decline` over a real socket against the
//! real database: who may decide, what a decision needs, and that exactly one
//! decision is recorded. (What a consumer does with it: crates/consumer/tests/approval.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER};
use dynamo_store::{Decision, NewRequest, Store, StoredImage};
use dynamo_wire::GenerationRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A request as a consumer with `APPROVAL=manual` leaves it: image stored,
/// parked awaiting approval. With `park` false it stays `stored`.
async fn stored_request(server: &Server, park: bool) -> Uuid {
    let store = Store::new(server.world.database.pool().clone());
    let request = GenerationRequest::from_value(json!({
        "type": "image",
        "viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "wasabimilkshake"},
        "payload": {"style": "ghost", "inputs": {"subject": "a seal"}},
    }))
    .unwrap();
    let id = Uuid::new_v4();
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
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let lease = lease.unwrap();
    store
        .mark_debited(&lease, Some(Uuid::new_v4()))
        .await
        .unwrap();
    let image = StoredImage {
        index: 0,
        url: "http://127.0.0.1:1/seal.jpg".into(),
        color: None,
        content_type: "image/jpeg".into(),
        byte_size: 1,
    };
    store.record_image(&lease, &image).await.unwrap();
    if park {
        store
            .park_for_approval(&lease, Duration::from_secs(600))
            .await
            .unwrap();
    }
    id
}

async fn post_raw(
    server: &Server,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = server
        .http
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{path}: every answer is JSON"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn only_admins_decide_and_unknown_or_undecidable_requests_are_refused() {
    let server = Server::start().await;
    let waiting = stored_request(&server, true).await;
    let viewer = server.viewer(VIEWER);
    let admin = server.admin();
    for action in ["approve", "decline"] {
        let path = format!("/requests/{waiting}/{action}");
        let (status, body) = post_raw(&server, &path, None, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{action}: {body}");
        // The viewer owns the request and still may not decide on it.
        let (status, body) = post_raw(&server, &path, Some(&viewer), "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
        assert_eq!(body["error"], "forbidden");

        let unknown = format!("/requests/{}/{action}", Uuid::new_v4());
        let (status, body) = post_raw(&server, &unknown, Some(&admin), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {body}");
        assert_eq!(body["error"], "not_found");

        let not_waiting = stored_request(&server, false).await;
        let path = format!("/requests/{not_waiting}/{action}");
        let (status, body) = post_raw(&server, &path, Some(&admin), "").await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert_eq!(body["error"], "conflict");
        assert!(
            body["detail"].as_str().unwrap().contains("stored"),
            "{body}"
        );
    }
    let store = Store::new(server.world.database.pool().clone());
    let record = store.get(waiting).await.unwrap();
    assert_eq!(record.approval.decision(), None, "nobody decided");
}

#[tokio::test]
async fn an_approval_is_recorded_once_and_shown_on_the_request_and_in_stats() {
    let server = Server::start().await;
    let id = stored_request(&server, true).await;
    let admin = server.admin();

    let (status, stats) = server.get("/stats", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["awaiting_approval"], 1, "{stats}");
    let (_, view) = server.get(&format!("/requests/{id}"), Some(&admin)).await;
    assert_eq!(view["state"], "awaiting_approval");
    assert!(view["approval"]["requested_at"].is_string(), "{view}");
    assert!(view["approval"]["deadline"].is_string(), "{view}");
    assert!(view["approval"]["decision"].is_null(), "{view}");
    assert_eq!(view["ledger_status"], "pending");
    let (_, listed) = server
        .get("/requests?state=awaiting_approval", Some(&admin))
        .await;
    assert_eq!(listed["requests"][0]["id"], id.to_string(), "{listed}");

    let (status, body) = post_raw(
        &server,
        &format!("/requests/{id}/approve"),
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["decision"], "approved");
    assert_eq!(body["location"], format!("/requests/{id}"));

    // A second click, or a decline after it: one decision only.
    for action in ["approve", "decline"] {
        let (status, body) = post_raw(
            &server,
            &format!("/requests/{id}/{action}"),
            Some(&admin),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("already approved"),
            "{body}"
        );
    }
    let (_, view) = server.get(&format!("/requests/{id}"), Some(&admin)).await;
    assert_eq!(view["approval"]["decision"], "approved", "{view}");
    assert_eq!(view["approval"]["decided_by"], "service tests", "{view}");
}

#[tokio::test]
async fn a_decline_takes_an_optional_reason_and_refuses_a_bad_body() {
    let server = Server::start().await;
    let admin = server.admin();
    let id = stored_request(&server, true).await;
    let path = format!("/requests/{id}/decline");
    for bad in [
        r#"{"why": "x"}"#,
        "not json",
        &format!(r#"{{"reason": "{}"}}"#, "x".repeat(201)),
    ] {
        let (status, body) = post_raw(&server, &path, Some(&admin), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, body) = post_raw(
        &server,
        &path,
        Some(&admin),
        r#"{"reason": "not on this stream"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["decision"], "declined");
    let record = Store::new(server.world.database.pool().clone())
        .get(id)
        .await
        .unwrap();
    assert_eq!(record.approval.decision(), Some(Decision::Declined));
    assert_eq!(record.approval.note.as_deref(), Some("not on this stream"));

    // Without a body at all.
    let other = stored_request(&server, true).await;
    let response = server
        .http
        .post(format!("{}/requests/{other}/decline", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}
