//! Tokens grant no more than they should (issue 23 item 6), against the
//! fake Golden VCR auth service: the audience when one is configured,
//! service tokens admin only when listed, the signing keys fetched without
//! making every login wait through an auth outage, and spend for admins only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod common;

use common::{Server, VIEWER, WAIT};
use dynamo_testkit::TestWorld;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test]
async fn a_configured_audience_is_required_and_the_default_takes_golden_vcr_tokens() {
    let server = Server::start_in(TestWorld::start().await, |env| {
        env.with("AUTH_AUDIENCE", "dynamo")
    })
    .await;
    let fakes = &server.world.fakes;
    let with_aud = |aud: Option<&str>| {
        let mut claims = json!({"twitch_user_id": VIEWER});
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        fakes.jwt("a", claims)
    };
    assert_eq!(
        server
            .get("/requests", Some(&with_aud(Some("dynamo"))))
            .await
            .0,
        StatusCode::OK
    );
    for other in [None, Some("ledger")] {
        let (status, body) = server.get("/requests", Some(&with_aud(other))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "aud {other:?}: {body}");
    }

    // Golden VCR's tokens carry no aud: without the setting they are taken.
    let default = Server::start().await;
    let plain = default
        .world
        .fakes
        .jwt("a", json!({"twitch_user_id": VIEWER}));
    assert_eq!(
        default.get("/requests", Some(&plain)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn only_listed_services_are_admin_and_a_replayed_service_token_is_its_viewer() {
    let server = Server::start().await;
    let body = json!({"viewer": {"twitch_user_id": VIEWER, "twitch_display_name": "w"},
                      "style": "ghost", "inputs": {"subject": "a seal"}});
    // dynamo's own ledger token: minted for a viewer by service "dynamo".
    let ledger_token = server.world.fakes.jwt(
        "a",
        json!({"gvcr_service": "dynamo", "twitch_user_id": VIEWER, "twitch_display_name": "w"}),
    );
    let (status, answer, _) = server.post("/requests", &ledger_token, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        server.get("/requests", Some(&ledger_token)).await.0,
        StatusCode::OK,
        "it is that viewer"
    );
    let unlisted = server
        .world
        .fakes
        .jwt("a", json!({"gvcr_service": "stagehand"}));
    let (status, answer) = server.get("/requests", Some(&unlisted)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("ADMIN_SERVICES"),
        "{answer}"
    );
    // The tests' environment lists "tests" in ADMIN_SERVICES.
    let (status, answer, _) = server.post("/requests", &server.admin(), &body).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{answer}");
}

#[tokio::test]
async fn spend_is_shown_to_admins_only() {
    let server = Server::start().await;
    let (status, stats) = server.get("/stats", Some(&server.viewer(VIEWER))).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert!(stats.get("spend").is_none(), "{stats}");
    assert!(stats.get("counts").is_some(), "{stats}");
    let (_, stats) = server.get("/stats", Some(&server.admin())).await;
    assert!(stats["spend"]["today_usd"].is_number(), "{stats}");
}

/// An auth service that accepts connections and never answers, counting them.
async fn silent_auth_service() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/auth", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(tcp);
        }
    });
    (url, connections)
}

#[tokio::test]
async fn logins_during_an_auth_outage_share_one_key_fetch_and_back_off() {
    let (auth_url, fetches) = silent_auth_service().await;
    let server = Server::start_in(TestWorld::start().await, |env| {
        env.with("AUTH_URL", auth_url)
    })
    .await;
    let token = server.viewer(VIEWER);
    let logins = (0..6).map(|_| server.get("/requests", Some(&token)));
    let answers: Vec<(StatusCode, Value)> =
        tokio::time::timeout(WAIT, futures::future::join_all(logins))
            .await
            .expect("every login is answered");
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("auth service"),
            "{body}"
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch for all of them"
    );
    // Right after the failed fetch: answered at once, without another fetch.
    let (status, body) = server.get("/requests", Some(&token)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("try again in"),
        "{body}"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}
