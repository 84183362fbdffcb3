//! The fake OpenAI's model catalogue, as OpenAI's lifecycle stands on
//! 2026-12-01 (SPEC §3): which models answer, which are announced to shut
//! down, and which are gone and answer `404 model_not_found`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{CREATED, Shared, api_error};

/// One model the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeModel {
    pub id: String,
    /// `shutdown_date` as `GET /models` carries it (YYYY-MM-DD).
    pub shutdown_date: Option<String>,
    /// Shut down already: every call naming it answers `model_not_found`.
    pub gone: bool,
}

/// OpenAI's catalogue on 2026-12-01: (id, shutdown date, gone).
const TODAY: &[(&str, Option<&str>, bool)] = &[
    ("dall-e-2", Some("2026-05-12"), true),
    ("dall-e-3", Some("2026-05-12"), true),
    ("gpt-image-1", Some("2026-10-23"), true),
    ("gpt-image-1-mini", Some("2026-12-01"), true),
    ("gpt-image-1.5", Some("2026-12-01"), true),
    ("gpt-image-1.5-2025-12-16", Some("2026-12-01"), true),
    ("chatgpt-image-latest", Some("2026-12-01"), true),
    ("gpt-image-2", None, false),
    ("gpt-image-2-2026-04-21", None, false),
    ("gpt-image-2.5-flare", None, false),
    ("gpt-image-2.5-sunburst", None, false),
    ("gpt-image-2.6-flare", None, false),
    ("gpt-image-2.6-sunburst", None, false),
    ("gpt-4.1-mini", Some("2027-01-14"), false),
    ("gpt-4o-mini", Some("2027-01-14"), false),
    ("gpt-5-mini", Some("2026-12-11"), false),
    ("gpt-6-luna", None, false),
    ("omni-moderation-latest", None, false),
    // Speech: all three announced to shut down on 2027-01-06 (OpenAI's
    // text-to-speech guide), with no successor on /audio/speech.
    ("gpt-4o-mini-tts", Some("2027-01-06"), false),
    ("gpt-4o-mini-tts-2025-12-15", Some("2027-01-06"), false),
    ("tts-1", Some("2027-01-06"), false),
    ("tts-1-hd", Some("2027-01-06"), false),
];

pub(super) fn todays_catalogue() -> Vec<FakeModel> {
    TODAY
        .iter()
        .map(|(id, shutdown_date, gone)| FakeModel {
            id: (*id).to_owned(),
            shutdown_date: shutdown_date.map(str::to_owned),
            gone: *gone,
        })
        .collect()
}

/// The answer OpenAI gives to a call naming a model that is gone or never was.
pub(super) fn not_found(model: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "model_not_found",
        &format!("The model `{model}` does not exist or you do not have access to it."),
    )
}

/// `Some(answer)` when a call naming `model` must be refused as OpenAI would.
pub(super) fn refuse_unless_available(state: &Shared, model: &str) -> Option<Response> {
    let state = state.lock().unwrap();
    let available = state.models.iter().any(|m| m.id == model && !m.gone);
    (!available).then(|| not_found(model))
}

fn describe(model: &FakeModel) -> Value {
    json!({"id": model.id, "object": "model", "created": CREATED, "owned_by": "openai",
           "shutdown_date": model.shutdown_date})
}

/// The 2.6 family takes `background: transparent`; the others answer 400.
pub(super) fn draws_transparency(model: &str) -> bool {
    model.starts_with("gpt-image-2.6")
}

fn is_gpt_image(model: &str) -> bool {
    model.starts_with("gpt-image") || model.starts_with("chatgpt-image")
}

fn unknown_parameter(param: &str) -> Response {
    let body = json!({"error": {"message": format!("Unknown parameter: '{param}'."),
                                "type": "invalid_request_error", "param": param, "code": "unknown_parameter"}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub(super) fn invalid_value(param: &str, value: &Value, supported: &[&str]) -> Response {
    let listed: Vec<String> = supported.iter().map(|v| format!("'{v}'")).collect();
    let body = json!({"error": {"message": format!("Invalid value: {value}. Supported values are: {}.", listed.join(", ")),
                                "type": "invalid_request_error", "param": param, "code": "invalid_value"}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `Some(answer)` when an image request sends a parameter `model` does not
/// take, or a value it does not accept, as the Images API answers it:
/// GPT-image models refuse DALL-E's `response_format` and `style`, DALL-E
/// models refuse the GPT-image ones; `quality` and `output_format` take
/// each family's own values.
pub(super) fn refuse_parameters(model: &str, body: &Value) -> Option<Response> {
    let (foreign, qualities): (&[&str], &[&str]) = if is_gpt_image(model) {
        (
            &["response_format", "style"],
            &["low", "medium", "high", "auto"],
        )
    } else {
        (
            &[
                "output_format",
                "output_compression",
                "background",
                "moderation",
            ],
            &["standard", "hd"],
        )
    };
    if let Some(param) = foreign.iter().find(|p| body.get(**p).is_some()) {
        return Some(unknown_parameter(param));
    }
    let check = |param: &str, supported: &[&str]| {
        body.get(param)
            .filter(|v| !v.as_str().is_some_and(|v| supported.contains(&v)))
            .map(|v| invalid_value(param, v, supported))
    };
    check("quality", qualities)
        .or_else(|| check("output_format", &["png", "jpeg", "webp"]))
        .or_else(|| check("size", &["1024x1024", "1536x1024", "1024x1536", "auto"]))
}

pub(super) async fn list(State(state): State<Shared>) -> Response {
    let state = state.lock().unwrap();
    if state.no_models_endpoint {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let data: Vec<Value> = state
        .models
        .iter()
        .filter(|m| !m.gone)
        .map(describe)
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(super) async fn get_one(State(state): State<Shared>, Path(model): Path<String>) -> Response {
    let state = state.lock().unwrap();
    match state.models.iter().find(|m| m.id == model && !m.gone) {
        Some(found) => Json(describe(found)).into_response(),
        None => not_found(&model),
    }
}
