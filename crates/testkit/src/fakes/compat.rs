//! Fakes of the OpenAI-compatible image servers a streamer can run locally
//! (SPEC §3), each answering as the real one does on the routes it has and
//! with a plain 404 on those it lacks:
//!
//! - stable-diffusion.cpp's `sd-server` (examples/server, routes_openai.cpp):
//!   `POST /v1/images/generations` answering `b64_json` (and `output_format`,
//!   `created` as a date in its first versions) with whatever model it
//!   loaded, whatever the request names; `GET /v1/models` listing the one id
//!   `sd-cpp-local`; errors `{"error":"<text>"}`, or
//!   `{"error":"server_error","message":"<text>"}` on an exception; no chat
//!   or moderation endpoint (cpp-httplib's bare 404).
//! - LocalAI (core/http/app.go, echo): images answered as `data[0].url` under
//!   `/generated-images/`, its own `usage` counts; chat and `GET /v1/models`;
//!   errors `{"error":{"code":<number>,"message":…}}`, a route it lacks
//!   `404 Resource not found` in that shape; no moderation endpoint.
//! - Ollama (openai/openai.go, middleware/openai.go): images as `b64_json`
//!   only (ignores `n` and `quality`); chat; `GET /v1/models` lists each
//!   pulled model by its tagged name (`llama3.2:latest`), `owned_by` its
//!   namespace; a request names a model as Ollama's `ParseName` reads it
//!   (`llama3.2` is `registry.ollama.ai/library/llama3.2:latest`); one not
//!   pulled is `404 model "x" not found, try pulling it first` as an OpenAI
//!   error of type `not_found_error`; no moderation endpoint (gin's plain
//!   `404 page not found`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Which server a [`CompatServer`] plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    SdServer,
    LocalAi,
    Ollama,
}

/// The models each fake offers, as its `GET /v1/models` lists them.
impl Flavor {
    pub fn image_model(self) -> &'static str {
        match self {
            Flavor::SdServer => "sd-cpp-local",
            Flavor::LocalAi => "stablediffusion",
            Flavor::Ollama => "x/z-image-turbo:latest",
        }
    }

    /// `None`: the server has no chat endpoint.
    pub fn chat_model(self) -> Option<&'static str> {
        match self {
            Flavor::SdServer => None,
            Flavor::LocalAi => Some("llama-3.2-1b-instruct"),
            Flavor::Ollama => Some("llama3.2:latest"),
        }
    }

    /// Whether a request naming `requested` is served by the listed model
    /// `listed`. sd-server draws with what it loaded whatever the name;
    /// Ollama fills in its default host, namespace and tag (case-blind);
    /// LocalAI looks the name up as given.
    pub fn serves(self, requested: &str, listed: &str) -> bool {
        match self {
            Flavor::SdServer => true,
            Flavor::LocalAi => requested == listed,
            Flavor::Ollama => ollama_full_name(requested) == ollama_full_name(listed),
        }
    }
}

/// `name` as Ollama stores it: `host/namespace/model:tag`, lower-cased.
fn ollama_full_name(name: &str) -> String {
    let name = name.to_lowercase();
    let tagged = match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => name.clone(),
        _ => format!("{name}:latest"),
    };
    match tagged.matches('/').count() {
        0 => format!("registry.ollama.ai/library/{tagged}"),
        1 => format!("registry.ollama.ai/{tagged}"),
        _ => tagged,
    }
}

/// An error the next image call answers with: (status, the exact body).
pub type ScriptedError = (u16, String);

#[derive(Debug, Default)]
pub struct CompatState {
    /// Every image request body received.
    pub image_calls: Vec<Value>,
    pub chat_calls: Vec<Value>,
    /// Every request to a route the server lacks: (method and path).
    pub missing_calls: Vec<String>,
    /// The `Authorization` header of every request (None when absent).
    pub authorizations: Vec<Option<String>>,
    /// Answers for the next image calls, in order; then images.
    pub image_errors: std::collections::VecDeque<ScriptedError>,
}

#[derive(Debug, Clone)]
pub struct CompatServer {
    pub flavor: Flavor,
    /// The server's root; its API is under `/v1`.
    pub url: String,
    pub state: Arc<Mutex<CompatState>>,
}

type Shared = (Flavor, Arc<Mutex<CompatState>>);

impl CompatServer {
    pub async fn start(flavor: Flavor) -> Self {
        let state = Arc::new(Mutex::new(CompatState::default()));
        let mut app = Router::new()
            .route("/v1/images/generations", post(generate))
            .route("/v1/models", get(models));
        if flavor != Flavor::SdServer {
            app = app.route("/v1/chat/completions", post(chat));
        }
        if flavor == Flavor::LocalAi {
            app = app.route("/generated-images/{name}", get(generated));
        }
        let app = app.fallback(missing).with_state((flavor, state.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { flavor, url, state }
    }

    /// `OPENAI_*` settings for a consumer using this server: an empty key
    /// (none), and the models by the ids the server lists.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("OPENAI_BASE_URL".to_owned(), format!("{}/v1", self.url)),
            ("OPENAI_API_KEY".to_owned(), String::new()),
            (
                "OPENAI_IMAGE_MODEL".to_owned(),
                self.flavor.image_model().to_owned(),
            ),
        ];
        // sd-server has no chat; its one listed id passes the start-up
        // check, and the call's 404 has friends named after their subject.
        let chat = self
            .flavor
            .chat_model()
            .unwrap_or(self.flavor.image_model());
        pairs.push(("OPENAI_CHAT_MODEL".to_owned(), chat.to_owned()));
        pairs
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut CompatState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn note_auth(state: &Arc<Mutex<CompatState>>, headers: &HeaderMap) {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.lock().unwrap().authorizations.push(auth);
}

/// An error in the flavour's own shape.
fn error(flavor: Flavor, status: StatusCode, message: &str) -> Response {
    let body = match flavor {
        Flavor::SdServer if status.is_server_error() => {
            json!({"error": "server_error", "message": message})
        }
        Flavor::SdServer => json!({"error": message}),
        Flavor::LocalAi => {
            json!({"error": {"code": status.as_u16(), "message": message, "type": ""}})
        }
        Flavor::Ollama => {
            let kind = match status {
                StatusCode::BAD_REQUEST => "invalid_request_error",
                StatusCode::NOT_FOUND => "not_found_error",
                _ => "api_error",
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    };
    (status, Json(body)).into_response()
}

async fn generate(
    State((flavor, state)): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    note_auth(&state, &headers);
    let scripted = {
        let mut state = state.lock().unwrap();
        state.image_calls.push(body.clone());
        state.image_errors.pop_front()
    };
    if let Some((status, body)) = scripted {
        let status = StatusCode::from_u16(status).unwrap();
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let prompt = body["prompt"].as_str().unwrap_or_default().to_owned();
    if prompt.is_empty() {
        return error(flavor, StatusCode::BAD_REQUEST, "prompt required");
    }
    let model = body["model"].as_str().unwrap_or_default();
    if flavor == Flavor::Ollama && !flavor.serves(model, flavor.image_model()) {
        let message = format!("model \"{model}\" not found, try pulling it first");
        return error(flavor, StatusCode::NOT_FOUND, &message);
    }
    let format = body["output_format"].as_str().unwrap_or("png").to_owned();
    if flavor == Flavor::SdServer && !matches!(format.as_str(), "png" | "jpeg") {
        return error(
            flavor,
            StatusCode::BAD_REQUEST,
            "invalid output_format, must be one of [png, jpeg]",
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match flavor {
        Flavor::LocalAi => {
            let name = super::urlencode(&prompt);
            Json(json!({
                "created": super::CREATED,
                "id": uuid::Uuid::new_v4(),
                "data": [{"embedding": null, "index": 0,
                          "url": format!("http://{host}/generated-images/{name}.png")}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }))
            .into_response()
        }
        Flavor::SdServer | Flavor::Ollama => {
            let b64 = tokio::task::spawn_blocking(move || {
                let image = if format == "png" {
                    super::image_for(&prompt)
                } else {
                    super::image_as(&prompt, &format, false)
                };
                base64::engine::general_purpose::STANDARD.encode(image.as_slice())
            })
            .await
            .unwrap();
            if flavor == Flavor::SdServer {
                Json(json!({"created": chrono::Utc::now().to_rfc3339(),
                            "data": [{"b64_json": b64}], "output_format": "png"}))
                .into_response()
            } else {
                Json(json!({"created": super::CREATED, "data": [{"b64_json": b64}]}))
                    .into_response()
            }
        }
    }
}

async fn generated(Path(name): Path<String>) -> Response {
    let prompt = name.strip_suffix(".png").unwrap_or(&name).to_owned();
    let png = tokio::task::spawn_blocking(move || super::image_for(&prompt))
        .await
        .unwrap();
    ([(header::CONTENT_TYPE, "image/png")], png.as_ref().clone()).into_response()
}

async fn chat(
    State((flavor, state)): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    note_auth(&state, &headers);
    state.lock().unwrap().chat_calls.push(body.clone());
    let model = body["model"].as_str().unwrap_or_default();
    if !flavor
        .chat_model()
        .is_some_and(|chat| flavor.serves(model, chat))
    {
        let message = format!("model \"{model}\" not found, try pulling it first");
        return error(flavor, StatusCode::NOT_FOUND, &message);
    }
    Json(json!({
        "id": "chatcmpl-local", "object": "chat.completion", "created": super::CREATED,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Captain Flipper"}}],
    }))
    .into_response()
}

async fn models(State((flavor, state)): State<Shared>, headers: HeaderMap) -> Json<Value> {
    note_auth(&state, &headers);
    let ids = [Some(flavor.image_model()), flavor.chat_model()];
    let data: Vec<Value> = ids
        .into_iter()
        .flatten()
        .map(|id| match flavor {
            Flavor::SdServer => json!({"id": id, "object": "model", "owned_by": "local"}),
            Flavor::LocalAi => json!({"id": id, "object": "model"}),
            Flavor::Ollama => {
                // Ollama's `ParseName(id).Namespace`.
                let namespace = id.split_once('/').map_or("library", |(n, _)| n);
                json!({"id": id, "object": "model", "created": super::CREATED, "owned_by": namespace})
            }
        })
        .collect();
    match flavor {
        // sd-server's list carries no `object`.
        Flavor::SdServer => Json(json!({"data": data})),
        _ => Json(json!({"object": "list", "data": data})),
    }
}

/// A route the server does not have, answered as that server does.
async fn missing(
    State((flavor, state)): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    note_auth(&state, &headers);
    state
        .lock()
        .unwrap()
        .missing_calls
        .push(format!("{method} {}", uri.path()));
    match flavor {
        Flavor::SdServer => StatusCode::NOT_FOUND.into_response(),
        Flavor::LocalAi => error(flavor, StatusCode::NOT_FOUND, "Resource not found"),
        Flavor::Ollama => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
    }
}
