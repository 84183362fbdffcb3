//! The fake auth service (SPEC §3): service tokens for requests signed with
//! the shared secret, fresh, and naming the service and a whole user; the
//! JWKS; and Twitch access-token checks.

use super::{SHARED_SECRET, Shared};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How far a signed request's timestamp may be from now, either way.
const FRESHNESS: chrono::Duration = chrono::Duration::minutes(5);

/// Why a token request is refused, if it is.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// 401: the signature is wrong, or the timestamp is missing or stale.
    Signature(&'static str),
    /// 400: the body is not a token request of dynamo's for a whole user.
    Body(&'static str),
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Hex of HMAC-SHA256(secret, request id ‖ timestamp ‖ body): written here
/// again rather than borrowed from dynamo, and checked against a vector
/// computed outside Rust (see the test below).
pub fn sign(secret: &[u8], request_id: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(request_id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn check(
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<User, Refusal> {
    let request_id = header_text(headers, "x-hmac-request-id");
    let timestamp = header_text(headers, "x-hmac-request-timestamp");
    if uuid::Uuid::parse_str(request_id).is_err() {
        return Err(Refusal::Signature("x-hmac-request-id is not a UUID"));
    }
    let expected = format!(
        "sha256={}",
        sign(SHARED_SECRET.as_bytes(), request_id, timestamp, body)
    );
    if header_text(headers, "x-hmac-signature") != expected {
        return Err(Refusal::Signature("bad signature"));
    }
    let at = chrono::DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| Refusal::Signature("x-hmac-request-timestamp is not RFC 3339"))?;
    if (now - at.to_utc()).abs() > FRESHNESS {
        return Err(Refusal::Signature("x-hmac-request-timestamp is stale"));
    }
    let request: Value =
        serde_json::from_slice(body).map_err(|_| Refusal::Body("the body is not JSON"))?;
    if request["service"] != "dynamo" {
        return Err(Refusal::Body("service must be dynamo"));
    }
    let user = &request["user"];
    let field = |name: &str| user[name].as_str().filter(|v| !v.is_empty());
    let (Some(id), Some(login), Some(display_name)) =
        (field("id"), field("login"), field("displayName"))
    else {
        return Err(Refusal::Body("user needs id, login and displayName"));
    };
    if login != display_name.to_lowercase() {
        return Err(Refusal::Body("login must be the lowercased display name"));
    }
    Ok(User {
        id: id.to_owned(),
        login: login.to_owned(),
        display_name: display_name.to_owned(),
    })
}

/// The user a token request names.
#[derive(Debug, PartialEq)]
struct User {
    id: String,
    login: String,
    display_name: String,
}

/// The real service's token lifetime (SPEC §3: ~15 min).
const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A service token as the real auth service issues one (SPEC §3): an RS256
/// JWT with `kid`, `iss`, `exp` and the user's claims, for service dynamo.
fn service_jwt(user: &User, exp: chrono::DateTime<chrono::Utc>) -> String {
    super::sign_jwt(
        "a",
        &json!({
            "iss": super::Fakes::ISSUER,
            "exp": exp.timestamp(),
            "gvcr_service": "dynamo",
            "twitch_user_id": user.id,
            "twitch_user_login": user.login,
            "twitch_display_name": user.display_name,
        }),
    )
}

/// The viewer a service token acts for, if the token is one the fake auth
/// service signed and it has not expired: the ledger's check.
pub(super) fn token_viewer(token: &str) -> Option<String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
    let jwk: Jwk = serde_json::from_str(include_str!("../../keys/auth-a.jwk.json")).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_issuer(&[super::Fakes::ISSUER]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()?
        .claims;
    if claims["gvcr_service"] != "dynamo" {
        return None;
    }
    claims["twitch_user_id"].as_str().map(str::to_owned)
}

pub(super) async fn service_token(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match check(&headers, &body, chrono::Utc::now()) {
        Ok(user) => user,
        Err(Refusal::Signature(why)) => {
            state.lock().unwrap().bad_signatures += 1;
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": why}))).into_response();
        }
        Err(Refusal::Body(why)) => {
            state.lock().unwrap().bad_token_requests += 1;
            return (StatusCode::BAD_REQUEST, Json(json!({"error": why}))).into_response();
        }
    };
    let lifetime = {
        let mut state = state.lock().unwrap();
        state.tokens_issued += 1;
        state.token_lifetime.unwrap_or(TOKEN_LIFETIME)
    };
    (
        [(header::CONTENT_TYPE, "application/jwt")],
        service_jwt(&user, chrono::Utc::now() + lifetime),
    )
        .into_response()
}

pub(super) async fn jwks(State(state): State<Shared>) -> Json<Value> {
    let keys = {
        let mut state = state.lock().unwrap();
        state.jwks_fetches += 1;
        state.jwks_keys.clone()
    };
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|key| match key {
            "a" => serde_json::from_str(include_str!("../../keys/auth-a.jwk.json")).unwrap(),
            _ => serde_json::from_str(include_str!("../../keys/auth-b.jwk.json")).unwrap(),
        })
        .collect();
    Json(json!({"keys": keys}))
}

/// Twitch-style opaque tokens: `twitch-viewer-<id>` and `twitch-broadcaster-<id>`.
pub(super) async fn access(State(state): State<Shared>, headers: HeaderMap) -> Response {
    state.lock().unwrap().access_calls += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let (role, id) = if let Some(id) = token.strip_prefix("twitch-viewer-") {
        ("viewer", id)
    } else if let Some(id) = token.strip_prefix("twitch-broadcaster-") {
        ("broadcaster", id)
    } else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad token"})),
        )
            .into_response();
    };
    Json(json!({"user": {"id": id, "login": format!("user{id}"), "displayName": format!("User{id}")}, "role": role}))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known answer computed outside Rust, twice, and agreeing:
    /// ```text
    /// python3 -c 'import hmac,hashlib; print(hmac.new(b"test-shared-secret",
    ///   b"0f8fad5b-d9cb-469f-a165-70867728950e" b"2026-12-06T03:00:00Z" + BODY,
    ///   hashlib.sha256).hexdigest())'
    /// printf %s "$ID$TS$BODY" | openssl dgst -sha256 -hmac test-shared-secret
    /// ```
    const REQUEST_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const TIMESTAMP: &str = "2026-12-06T03:00:00Z";
    const BODY: &str = r#"{"service":"dynamo","user":{"id":"90790024","login":"wasabimilkshake","displayName":"WasabiMilkshake"}}"#;
    const SIGNATURE: &str = "dd7f2e6526dbb610404cb68d949039e063d6cf64a4a9e006f5cf5041c5749a1b";

    fn headers(request_id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-hmac-request-id", request_id.parse().unwrap());
        headers.insert("x-hmac-request-timestamp", timestamp.parse().unwrap());
        headers.insert(
            "x-hmac-signature",
            format!("sha256={signature}").parse().unwrap(),
        );
        headers
    }

    fn at(timestamp: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(timestamp)
            .unwrap()
            .to_utc()
    }

    #[test]
    fn the_known_answer_vector_is_accepted() {
        let headers = headers(REQUEST_ID, TIMESTAMP, SIGNATURE);
        assert_eq!(
            check(&headers, BODY.as_bytes(), at(TIMESTAMP)).map(|user| user.id),
            Ok("90790024".to_owned())
        );
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let now = at(TIMESTAMP);
        let bad = "sha256 of something else".replace(' ', "");
        let wrong_body = BODY.replace("90790024", "90790025");
        let cases = [
            (headers(REQUEST_ID, TIMESTAMP, &bad), BODY.to_owned()),
            (
                headers(REQUEST_ID, "2026-12-06T03:00:01Z", SIGNATURE),
                BODY.to_owned(),
            ),
            (
                headers("0f8fad5b-d9cb-469f-a165-70867728950f", TIMESTAMP, SIGNATURE),
                BODY.to_owned(),
            ),
            (headers(REQUEST_ID, TIMESTAMP, SIGNATURE), wrong_body),
        ];
        for (headers, body) in cases {
            assert_eq!(
                check(&headers, body.as_bytes(), now),
                Err(Refusal::Signature("bad signature"))
            );
        }
    }

    #[test]
    fn a_service_token_is_a_signed_jwt_the_ledger_reads_until_it_expires() {
        let user = User {
            id: "90790024".to_owned(),
            login: "wasabimilkshake".to_owned(),
            display_name: "WasabiMilkshake".to_owned(),
        };
        let now = chrono::Utc::now();
        let token = service_jwt(&user, now + chrono::Duration::seconds(60));
        assert_eq!(token_viewer(&token), Some("90790024".to_owned()));
        let expired = service_jwt(&user, now - chrono::Duration::seconds(1));
        assert_eq!(token_viewer(&expired), None, "expired");
        assert_eq!(token_viewer("token-for.90790024"), None, "not a JWT");
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 2, 'x');
        assert_eq!(token_viewer(&tampered), None, "bad signature");
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused() {
        let headers = headers(REQUEST_ID, TIMESTAMP, SIGNATURE);
        for now in ["2026-12-06T03:05:01Z", "2026-12-06T02:54:59Z"] {
            assert_eq!(
                check(&headers, BODY.as_bytes(), at(now)),
                Err(Refusal::Signature("x-hmac-request-timestamp is stale"))
            );
        }
        assert!(check(&headers, BODY.as_bytes(), at("2026-12-06T03:04:59Z")).is_ok());
    }

    #[test]
    fn a_body_that_is_not_a_whole_token_request_is_refused() {
        let now = at(TIMESTAMP);
        for body in [
            r#"{"service":"other","user":{"id":"1","login":"a","displayName":"A"}}"#,
            r#"{"service":"dynamo","user":{"id":"1","login":"A","displayName":"A"}}"#,
            r#"{"service":"dynamo","user":{"id":"","login":"a","displayName":"A"}}"#,
            r#"{"service":"dynamo","user":{"id":"1","displayName":"A"}}"#,
        ] {
            let signature = sign(
                SHARED_SECRET.as_bytes(),
                REQUEST_ID,
                TIMESTAMP,
                body.as_bytes(),
            );
            let headers = headers(REQUEST_ID, TIMESTAMP, &signature);
            assert!(
                matches!(check(&headers, body.as_bytes(), now), Err(Refusal::Body(_))),
                "{body}"
            );
        }
    }
}
