//! What clients send to `/requests`, checked before anything else looks at
//! it: the list's query (no value the database cannot hold gets through)
//! and the body of a request typed in by an admin. Pure, so the bounded
//! fuzz test below drives the real extractors and checks through a router
//! with no database behind it.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{checked_time, one_line, storable_time};
use chrono::{DateTime, Utc};
use dynamo_store::{Cursor, RequestFilter, RequestState};
use dynamo_wire::{GenerationRequest, StyleId};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

const MAX_LIMIT: i64 = 100;
const DEFAULT_LIMIT: i64 = 50;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// One line of text.
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub twitch_user_id: Option<String>,
    pub broadcast_id: Option<i64>,
    pub screening_id: Option<Uuid>,
    /// received, debited, named, stored, awaiting_approval, alerted, succeeded, rejected, failed
    #[param(schema_with = crate::schemas::state_names)]
    pub state: Option<String>,
    /// ghost or friend
    #[param(schema_with = crate::schemas::style_names)]
    pub style: Option<String>,
    /// RFC 3339, years 0000 to 9999; requests created at or after
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339, years 0000 to 9999; requests created before
    pub until: Option<DateTime<Utc>>,
    /// 1 to 100, default 50
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page
    #[param(pattern = r"^[0-9]{1,16}_[0-9a-f]{32}$")]
    pub cursor: Option<String>,
}

/// A listing's query, checked.
#[derive(Debug)]
pub struct Listing {
    pub filter: RequestFilter,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

impl ListQuery {
    /// The listing `caller` asked for (a viewer's own requests only), or
    /// `None` when a viewer asked for another viewer's: an empty page.
    pub fn checked(self, caller: &Caller) -> Result<Option<Listing>, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let cursor = self
            .cursor
            .as_deref()
            .map(|c| {
                Cursor::decode(c)
                    .filter(|cursor| storable_time(&cursor.created_at))
                    .ok_or_else(|| ApiError::bad_field("cursor", "not a cursor from this API"))
            })
            .transpose()?;
        let since = checked_time("since", self.since)?;
        let until = checked_time("until", self.until)?;
        if let Some(user) = &self.twitch_user_id {
            one_line("twitch_user_id", user)?;
        }
        let state = self
            .state
            .as_deref()
            .map(|s| {
                s.parse::<RequestState>()
                    .map_err(|e| ApiError::bad_field("state", e.to_string()))
            })
            .transpose()?;
        let style = self
            .style
            .as_deref()
            .map(|s| StyleId::parse(s).map_err(|e| ApiError::bad_field("style", e.to_string())))
            .transpose()?;
        let twitch_user_id = match caller {
            Caller::Viewer { twitch_user_id } => {
                if self
                    .twitch_user_id
                    .as_ref()
                    .is_some_and(|asked| asked != twitch_user_id)
                {
                    return Ok(None);
                }
                Some(twitch_user_id.clone())
            }
            _ => self.twitch_user_id,
        };
        Ok(Some(Listing {
            filter: RequestFilter {
                twitch_user_id,
                broadcast_id: self.broadcast_id,
                screening_id: self.screening_id,
                state,
                style,
                since,
                until,
            },
            cursor,
            limit,
        }))
    }
}

/// A request typed in by an admin. Validated by the same rules as queue
/// messages; its schema ([`crate::schemas::enqueue_body`]) says which.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueBody {
    /// `{"twitch_user_id", "twitch_display_name"}`
    pub viewer: Value,
    /// ghost or friend
    pub style: String,
    /// `{"subject"}` for ghosts, `{"color", "subject"}` for friends
    pub inputs: Value,
    /// Optional `{"broadcast_id", "screening_id", "tape_id"}`.
    pub state: Option<Value>,
    /// Take no points for this request.
    #[serde(default)]
    pub free_of_charge: bool,
    /// The content rules do not apply to this request (recorded as `bypassed`).
    #[serde(default)]
    pub bypass_rules: bool,
}

crate::schemas::schema_from!(EnqueueBody, crate::schemas::enqueue_body);

impl EnqueueBody {
    /// The message this body asks to queue, validated as queue messages are
    /// (a bad field named as the body spells it).
    pub fn generation_request(&self) -> Result<GenerationRequest, ApiError> {
        // One-line text, as the document's schema says (and PostgreSQL can hold).
        for (field, text) in [
            ("viewer.twitch_user_id", &self.viewer["twitch_user_id"]),
            (
                "viewer.twitch_display_name",
                &self.viewer["twitch_display_name"],
            ),
            ("inputs.subject", &self.inputs["subject"]),
        ] {
            if let Some(text) = text.as_str() {
                one_line(field, text)?;
            }
        }
        GenerationRequest::from_parts(
            self.viewer.clone(),
            self.state.clone(),
            &self.style,
            self.inputs.clone(),
        )
        .map_err(|e| match e.field() {
            Some(field) => {
                let field = field
                    .replace("payload.inputs", "inputs")
                    .replace("payload.style", "style");
                ApiError::bad_field(field, e.to_string())
            }
            None => ApiError::bad(e.to_string()),
        })
    }
}

/// A bounded fuzz of what clients send (issue 23 item 8): arbitrary query
/// strings, path ids, headers and bodies go through the real extractors and
/// checks, in a router with no database behind it. Whatever a client sends
/// is answered 2xx or a JSON 4xx naming the problem: never a 5xx, never a
/// panic. Bounded by the case counts below (a few seconds); run longer with
/// `PROPTEST_CASES=100000 cargo test -p dynamo-server --lib fuzz`.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::extract::{Json, Path, Query};
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::DefaultBodyLimit;
    use axum::http::{HeaderMap, Request};
    use axum::routing::{get, post};
    use dynamo_testkit::fuzz::{cases, json};
    use proptest::prelude::*;
    use tower::ServiceExt;

    fn router() -> Router {
        let admin = || Caller::Service {
            name: "fuzz".into(),
        };
        Router::new()
            .route(
                "/requests",
                get(move |Query(query): Query<ListQuery>| async move {
                    let listing = query.checked(&admin())?;
                    storable_listing(listing.as_ref())
                })
                .post(|Json(body): Json<EnqueueBody>| async move {
                    let request = body.generation_request()?;
                    storable_text(&[
                        request.viewer.twitch_user_id.as_str(),
                        request.viewer.twitch_display_name.as_str(),
                        request.subject().as_str(),
                    ])
                }),
            )
            .route("/requests/{id}", get(|Path(_): Path<Uuid>| async {}))
            .route(
                "/requests/{id}/decline",
                post(|Path(_): Path<Uuid>, body: Bytes| async move {
                    let body = crate::approval::decline_body(&body)?;
                    storable_text(&[body.reason.as_deref().unwrap_or_default()])
                }),
            )
            .route(
                "/overlay/alerts/{id}/finished",
                post(|Path(_): Path<i64>| async {}),
            )
            .route(
                "/events",
                get(|headers: HeaderMap| async move {
                    match crate::events::last_event_time(&headers)? {
                        Some(time) if !storable_time(&time) => Err(unstorable("Last-Event-ID")),
                        _ => Ok(()),
                    }
                }),
            )
            // As the app answers what no route takes.
            .fallback(|| async { ApiError::NotFound("no such route".into()) })
            .method_not_allowed_fallback(|| async {
                ApiError::MethodNotAllowed("this route does not take that method".into())
            })
            .layer(axum::middleware::from_fn_with_state(
                crate::request_limits::BodyLimits {
                    default: 65536,
                    sound: 65536,
                },
                crate::request_limits::refuse_declared_oversize,
            ))
            .layer(DefaultBodyLimit::max(65536))
    }

    /// What a check let through that PostgreSQL could not hold: a 500, which
    /// fails the property (the database's own refusal, without a database).
    fn unstorable(what: &str) -> ApiError {
        ApiError::internal(format!("{what} passed the checks but cannot be stored"))
    }

    fn storable_listing(listing: Option<&Listing>) -> Result<(), ApiError> {
        let Some(Listing { filter, cursor, .. }) = listing else {
            return Ok(());
        };
        let times = [
            filter.since,
            filter.until,
            cursor.as_ref().map(|c| c.created_at),
        ];
        if times.iter().flatten().any(|time| !storable_time(time)) {
            return Err(unstorable("a time"));
        }
        storable_text(&[filter.twitch_user_id.as_deref().unwrap_or_default()])
    }

    /// PostgreSQL's text holds no U+0000 (and no value here holds any control character).
    fn storable_text(texts: &[&str]) -> Result<(), ApiError> {
        match texts.iter().any(|text| text.chars().any(char::is_control)) {
            true => Err(unstorable("text")),
            false => Ok(()),
        }
    }

    /// Sends `request`; fails unless the answer is 2xx or a JSON 4xx.
    fn answer(request: Request<Body>) -> Result<(), TestCaseError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let described = format!("{} {}", request.method(), request.uri());
        let (status, body) = runtime.block_on(async {
            let response = router()
                .oneshot(request)
                .await
                .unwrap_or_else(|e| match e {});
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            (status, body)
        });
        prop_assert!(
            status.is_success() || status.is_client_error(),
            "{described}: {status}"
        );
        if status.is_client_error() {
            let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                TestCaseError::fail(format!("{described}: {status}, not JSON: {e}"))
            })?;
            prop_assert!(
                body["error"].is_string() && body["detail"].is_string(),
                "{described}: {body}"
            );
        }
        Ok(())
    }

    /// Values near the edges: huge numbers, dates far out, odd text.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            any::<i64>().prop_map(|n| n.to_string()),
            "[+-]?[0-9]{1,22}(\\.[0-9]{0,3})?",
            "[+-]?[0-9]{1,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
            "-?[0-9]{1,20}_[0-9a-f]{32}",
            Just("ghost".to_owned()),
            Just("succeeded".to_owned()),
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("twitch_user_id".to_owned()),
            Just("broadcast_id".to_owned()),
            Just("screening_id".to_owned()),
            Just("state".to_owned()),
            Just("style".to_owned()),
            Just("since".to_owned()),
            Just("until".to_owned()),
            Just("limit".to_owned()),
            Just("cursor".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec((key, value()), 0..4).prop_map(|pairs| {
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish()
            }),
            "[!-~]{0,60}",
        ]
    }

    /// The fields the bodies have.
    const FIELDS: &[&str] = &[
        "viewer",
        "twitch_user_id",
        "twitch_display_name",
        "style",
        "inputs",
        "subject",
        "color",
        "state",
        "tape_id",
        "free_of_charge",
        "bypass_rules",
        "reason",
    ];

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            json(FIELDS, value()).prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..200),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(400), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn list_queries(query in query()) {
            let uri = format!("/requests?{query}");
            // Some generated strings are no URI at all: hyper refuses those first.
            if let Ok(request) = Request::get(uri).body(Body::empty()) {
                answer(request)?;
            }
        }

        #[test]
        fn path_ids(id in any::<String>(), entry in any::<String>()) {
            let escape = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            for uri in [format!("/requests/{}", escape(&id)), format!("/overlay/alerts/{}/finished", escape(&entry))] {
                let method = if uri.starts_with("/overlay") { "POST" } else { "GET" };
                answer(Request::builder().method(method).uri(uri).body(Body::empty()).unwrap())?;
            }
        }

        #[test]
        fn last_event_ids(id in value()) {
            if let Ok(request) = Request::get("/events").header("last-event-id", id).body(Body::empty()) {
                answer(request)?;
            }
        }

        #[test]
        fn bodies(body in body(), json_type in any::<bool>()) {
            let content_type = if json_type { "application/json" } else { "text/plain" };
            let request = |uri: &str| {
                Request::post(uri)
                    .header("content-type", content_type)
                    .body(Body::from(body.clone()))
                    .unwrap()
            };
            answer(request("/requests"))?;
            answer(request("/requests/6f1c3a0e-9b8d-4c2a-8e7f-5d3b1a9c7e5d/decline"))?;
        }
    }
}
