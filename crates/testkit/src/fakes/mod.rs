//! Fake auth, ledger, OpenAI and Discord: one real HTTP server on 127.0.0.1
//! answering each service's real wire format under its own path prefix, with
//! a scriptable behaviour and a record of every call for assertions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use base64::Engine;
use dynamo_imaging::placeholder::{Scene, render_png};
use dynamo_wire::Color;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub mod auth;
mod compat;
mod ledger;
mod models;
mod openai;
mod speech;
pub mod twitch;

pub use compat::{CompatServer, CompatState, Flavor, ScriptedError};
pub use ledger::{Flow, FlowStatus, ForeignFlow, LEDGER_CLOCK_OFFSET};
pub use models::FakeModel;
pub use speech::{SpeechBehavior, silent_mp3, wav_tone};

pub const SHARED_SECRET: &str = "test-shared-secret";
/// Points every viewer has unless a test sets otherwise.
const DEFAULT_BALANCE: i64 = 1000;
/// The `created` time of every fake OpenAI answer.
const CREATED: u32 = 1_700_000_000;

/// What the fake image endpoint does on its next call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImageBehavior {
    /// `data[0].b64_json` with a realistic PNG.
    Base64,
    /// Like `Base64`, after a pause (a slow upstream).
    Slow { millis: u64 },
    /// `data[0].url` pointing at a PNG on the fake.
    Url,
    /// `data[0].url` pointing at an HTML page.
    UrlNotAnImage,
    /// 400 `moderation_blocked`: how today's image models refuse a prompt
    /// under the content policy.
    ContentPolicy,
    /// 400 `content_policy_violation`: how DALL-E models refused one.
    LegacyContentPolicy,
    /// 500.
    ServerError,
    /// 429 `rate_limit_exceeded` with `retry-after-ms`.
    RateLimited { retry_after_ms: u64 },
    /// 429 `insufficient_quota`.
    OutOfCredit,
}

#[derive(Debug, Clone, Default)]
pub struct FakeState {
    pub balances: HashMap<String, i64>,
    /// dynamo's debits.
    pub flows: HashMap<Uuid, Flow>,
    /// Other services' flows in the same viewers' histories.
    pub foreign_flows: Vec<ForeignFlow>,
    /// Accepts and rejects refused (404) because the token was another
    /// viewer's than the flow's.
    pub finalized_by_another_viewer: usize,
    /// The ledger's clock minus ours, as its history shows times.
    pub ledger_clock_offset: chrono::Duration,
    /// Behaviours for the next image calls, in order; then `Base64`.
    pub image_script: VecDeque<ImageBehavior>,
    /// Every image request body received and answered with an image or an
    /// error of the request (not a refused model or parameter).
    pub image_calls: Vec<Value>,
    /// Every image request body received, including those refused for
    /// their model (`model_not_found`) or a parameter the model lacks.
    pub image_attempts: Vec<Value>,
    /// When each image request arrived.
    pub image_call_times: Vec<std::time::Instant>,
    /// Each image request's prompt and wall-clock arrival (comparable with
    /// timestamps in the database).
    pub image_call_log: Vec<(String, std::time::SystemTime)>,
    /// A pause before every image answer (a realistically slow upstream).
    pub image_delay: Option<std::time::Duration>,
    /// The whole JSON answer, an image as `b64_json`, that every `Base64`
    /// answer is instead of the rendered one (see [`Fakes::serve_image`]).
    pub image_answer: Option<Bytes>,
    /// Enforce OpenAI's image limit: at most this many calls arrive per
    /// window, the rest are answered 429 (and counted in `image_429s`).
    pub image_limit: Option<(usize, std::time::Duration)>,
    pub image_429s: usize,
    pub chat_calls: Vec<Value>,
    /// Every `POST /audio/speech` body that reached the endpoint (past the key).
    pub speech_calls: Vec<Value>,
    /// Behaviours for the next speech calls, in order; then `Speak`.
    pub speech_script: VecDeque<SpeechBehavior>,
    pub moderation_calls: Vec<Value>,
    /// When set, chat completions answer 400 `context_length_exceeded` (a
    /// model that is gone answers 404 `model_not_found`, as every endpoint).
    pub chat_refuses: bool,
    /// When each OpenAI call admitted by the request limit arrived (any endpoint).
    pub openai_call_times: Vec<std::time::Instant>,
    /// The account's request limit, enforced and reported in the
    /// `x-ratelimit-*` headers: this many calls per `requests_window`.
    pub requests_per_minute: usize,
    /// The time the request limit refills over (a minute at OpenAI).
    pub requests_window: std::time::Duration,
    /// The request limit's token bucket: its level and when it was taken.
    pub openai_bucket: Option<(f64, std::time::Instant)>,
    /// OpenAI calls answered 429 for the request limit.
    pub requests_429s: usize,
    /// Until then, image and chat calls answer 429 `insufficient_quota`, as
    /// OpenAI does for an account out of credit (counted in `refused_for_credit`).
    pub out_of_credit_until: Option<std::time::Instant>,
    pub refused_for_credit: usize,
    /// How many accepts (PATCH) to fail with 503 before working.
    pub accept_failures: usize,
    /// How many debits (POST /outflow) to fail with 503 before working.
    pub debit_failures: usize,
    /// How many debits to make and then answer 504, as a gateway does when
    /// the ledger's answer never came back: the debit exists, dynamo never
    /// hears its id.
    pub debit_answers_lost: usize,
    /// Pages of `GET /history` served.
    pub history_reads: usize,
    /// How many `GET /history` calls to answer 503 before working.
    pub history_failures: usize,
    /// `GET /history` calls received (before any gate).
    pub history_asked: usize,
    /// When set, `GET /history` answers only once it gets a permit from
    /// it: a test holds the answer until it has arranged what comes next.
    pub history_gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Service tokens issued (`POST /service-token` answered 200).
    pub tokens_issued: usize,
    /// How long a service token lasts (its `exp`); the real service's ~15
    /// minutes unless a test shortens it.
    pub token_lifetime: Option<std::time::Duration>,
    /// Token requests refused for their signature or a stale timestamp.
    pub bad_signatures: usize,
    /// Token requests refused for their body (not dynamo's, no user, a
    /// login that is not the lowercased display name).
    pub bad_token_requests: usize,
    pub discord_posts: Vec<(String, Value)>,
    /// Which signing keys the JWKS publishes ("a", "b"); default just "a".
    pub jwks_keys: Vec<&'static str>,
    pub jwks_fetches: usize,
    /// `GET /access` calls received, accepted or not.
    pub access_calls: usize,
    /// The models the fake OpenAI offers; today's catalogue unless a test
    /// changes it (see [`Fakes::retire_model`]).
    pub models: Vec<FakeModel>,
    /// When set, `GET /models` answers 404, as many compatible servers do.
    pub no_models_endpoint: bool,
}

#[derive(Debug, Clone)]
pub struct Fakes {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

type Shared = Arc<Mutex<FakeState>>;

impl Fakes {
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            jwks_keys: vec!["a"],
            ledger_clock_offset: LEDGER_CLOCK_OFFSET,
            requests_per_minute: openai::REQUESTS_PER_MINUTE,
            requests_window: openai::REQUESTS_WINDOW,
            models: models::todays_catalogue(),
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/auth/service-token", post(auth::service_token))
            .route("/auth/.well-known/jwks.json", get(auth::jwks))
            .route("/auth/access", get(auth::access))
            .route("/ledger/outflow", post(ledger::create_outflow))
            .route(
                "/ledger/outflow/{id}",
                patch(ledger::accept_outflow).delete(ledger::reject_outflow),
            )
            .route("/ledger/history", get(ledger::history))
            .route("/files/{name}", get(file))
            .route("/redirect", get(redirect))
            .route("/discord/{channel}", post(discord))
            .merge(openai::routes(state.clone()))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    pub fn env_pairs(&self) -> Vec<(String, String)> {
        [
            ("AUTH_URL", format!("{}/auth", self.url)),
            ("AUTH_SHARED_SECRET", SHARED_SECRET.to_owned()),
            ("LEDGER_URL", format!("{}/ledger", self.url)),
            ("OPENAI_BASE_URL", format!("{}/openai/v1", self.url)),
            ("OPENAI_API_KEY", "sk-test-key".to_owned()),
            (
                "DISCORD_GHOSTS_WEBHOOK_URL",
                format!("{}/discord/ghosts", self.url),
            ),
            (
                "DISCORD_FRIENDS_WEBHOOK_URL",
                format!("{}/discord/friends", self.url),
            ),
            (
                "DISCORD_STYLES_WEBHOOK_URL",
                format!("{}/discord/styles", self.url),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The issuer the fake auth service signs tokens as.
    pub const ISSUER: &'static str = "https://goldenvcr.com/api/auth";

    /// Every image answer carries `image` from now on, encoded as
    /// `output_format` ("png", "jpeg") says, as OpenAI's answer names it (the
    /// answer is built once, so the fake stays instant under load).
    pub fn serve_image(&self, image: &[u8], output_format: &str) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(image);
        self.serve_answer(&json!({"created": CREATED, "data": [{"b64_json": b64}], "output_format": output_format}));
    }

    /// Every image answer is `answer` (JSON, as it is) from now on.
    pub fn serve_answer(&self, answer: &Value) {
        // A Value with string keys always serialises.
        let answer = Bytes::from(serde_json::to_vec(answer).unwrap());
        self.with(|state| state.image_answer = Some(answer));
    }

    /// A token signed by the fake auth service with key `key` ("a" or "b"),
    /// holding `claims` plus `iss` and an `exp` an hour away (unless given).
    pub fn jwt(&self, key: &str, claims: Value) -> String {
        let mut claims = claims;
        if claims.get("iss").is_none() {
            claims["iss"] = json!(Self::ISSUER);
        }
        if claims.get("exp").is_none() {
            claims["exp"] = json!(now_secs() + 3600);
        }
        sign_jwt(key, &claims)
    }

    /// Shuts `model` down, as OpenAI does: from now on it answers
    /// `404 model_not_found` and is no longer listed.
    pub fn retire_model(&self, model: &str) {
        self.with(|state| {
            for found in state.models.iter_mut().filter(|m| m.id == model) {
                found.gone = true;
            }
        });
    }

    pub fn flows(&self) -> Vec<Flow> {
        self.with(|s| s.flows.values().cloned().collect())
    }
}

/// `claims` as an RS256 JWT signed with key `key` ("a" or "b"), as the auth
/// service signs its tokens.
fn sign_jwt(key: &str, claims: &Value) -> String {
    let pem = match key {
        "a" => include_bytes!("../../keys/auth-a.pem").as_slice(),
        _ => include_bytes!("../../keys/auth-b.pem").as_slice(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(format!("test-key-{key}"));
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn api_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, Json(body)).into_response()
}

/// A realistic image for the prompt: for a friend prompt ("an orange robot,
/// ... chroma keying") a figure on its complement background, else a ghost.
/// Rendered once per scene and kept: encoding a 1024x1024 PNG per call would
/// make the fake, not dynamo, the bottleneck of load tests.
fn image_for(prompt: &str) -> Arc<Vec<u8>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> =
        std::sync::OnceLock::new();
    let second_word = prompt.split_whitespace().nth(1).unwrap_or_default();
    let color = Color::ALL.into_iter().find(|c| c.name() == second_word);
    let (scene, key) = match color {
        Some(color) if prompt.contains("chroma keying") => {
            (Scene::Friend { color }, color.name().to_owned())
        }
        _ => (Scene::Ghost, "ghost".to_owned()),
    };
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(png) = cache.lock().unwrap().get(&key) {
        return png.clone();
    }
    let png = Arc::new(render_png(scene, &key, 1024));
    cache.lock().unwrap().insert(key, png.clone());
    png
}

/// The image for `prompt` as the API answers `output_format` (png, jpeg or
/// webp) and `background: transparent` (the backdrop drawn transparent, as
/// the 2.6 family does), cached like [`image_for`].
fn image_as(prompt: &str, format: &str, transparent: bool) -> Arc<Vec<u8>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> =
        std::sync::OnceLock::new();
    let key = format!(
        "{format}/{transparent}/{}",
        prompt.split_whitespace().nth(1).unwrap_or_default()
    );
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache.lock().unwrap().get(&key) {
        return found.clone();
    }
    let source = image::load_from_memory(&image_for(prompt))
        .unwrap()
        .into_rgb8();
    let image = if transparent {
        image::DynamicImage::ImageRgba8(dynamo_imaging::key_out_background(&source).image)
    } else {
        image::DynamicImage::ImageRgb8(source)
    };
    let mut bytes = Vec::new();
    let mut cursor = std::io::Cursor::new(&mut bytes);
    match format {
        "jpeg" => image::DynamicImage::ImageRgb8(image.into_rgb8())
            .write_to(&mut cursor, image::ImageFormat::Jpeg)
            .unwrap(),
        "webp" => image
            .write_to(&mut cursor, image::ImageFormat::WebP)
            .unwrap(),
        _ => image
            .write_to(&mut cursor, image::ImageFormat::Png)
            .unwrap(),
    }
    let bytes = Arc::new(bytes);
    cache.lock().unwrap().insert(key, bytes.clone());
    bytes
}

pub(super) async fn generate_image(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.lock().unwrap().image_attempts.push(body.clone());
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(refused) = models::refuse_unless_available(&state, &model) {
        return refused;
    }
    if let Some(refused) = refuse_without_credit(&state) {
        return refused;
    }
    if let Some(refused) = models::refuse_parameters(&model, &body) {
        return refused;
    }
    let transparent = body["background"] == "transparent";
    if transparent && !models::draws_transparency(&model) {
        let body = json!({"error": {"message": format!("Transparent background is not supported for {model}."),
                                    "type": "invalid_request_error", "param": "background", "code": null}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let format = body["output_format"].as_str().unwrap_or("png").to_owned();
    let behavior = {
        let mut state = state.lock().unwrap();
        if let Some((limit, window)) = state.image_limit {
            let now = std::time::Instant::now();
            let recent = state
                .image_call_times
                .iter()
                .filter(|t| now.duration_since(**t) < window)
                .count();
            if recent >= limit {
                state.image_429s += 1;
                return api_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "requests",
                    "rate_limit_exceeded",
                    "Rate limit reached for images per min",
                );
            }
        }
        state.image_calls.push(body.clone());
        state.image_call_times.push(std::time::Instant::now());
        let prompt = body["prompt"].as_str().unwrap_or_default().to_owned();
        state
            .image_call_log
            .push((prompt, std::time::SystemTime::now()));
        state
            .image_script
            .pop_front()
            .unwrap_or(ImageBehavior::Base64)
    };
    let prompt = body["prompt"].as_str().unwrap_or_default().to_owned();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let ImageBehavior::Slow { millis } = behavior {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
    let delay = state.lock().unwrap().image_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match behavior {
        ImageBehavior::Base64 | ImageBehavior::Slow { .. } => {
            let fixed = state.lock().unwrap().image_answer.clone();
            if let Some(answer) = fixed {
                return ([(header::CONTENT_TYPE, "application/json")], answer).into_response();
            }
            let b64 = tokio::task::spawn_blocking(move || {
                let image = if format == "png" && !transparent {
                    image_for(&prompt)
                } else {
                    image_as(&prompt, &format, transparent)
                };
                base64::engine::general_purpose::STANDARD.encode(image.as_slice())
            })
            .await
            .unwrap();
            let usage = image_usage(&body);
            Json(json!({"created": CREATED, "data": [{"b64_json": b64}], "usage": usage}))
                .into_response()
        }
        ImageBehavior::Url => {
            let name = urlencode(&prompt);
            Json(json!({"created": CREATED, "data": [{"url": format!("http://{host}/files/{name}.png")}]}))
                .into_response()
        }
        ImageBehavior::UrlNotAnImage => {
            Json(json!({"created": CREATED, "data": [{"url": format!("http://{host}/files/page.html")}]}))
                .into_response()
        }
        ImageBehavior::ContentPolicy => api_error(
            StatusCode::BAD_REQUEST,
            "image_generation_user_error",
            "moderation_blocked",
            "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID.",
        ),
        ImageBehavior::LegacyContentPolicy => api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "content_policy_violation",
            "Your request was rejected as a result of our safety system.",
        ),
        ImageBehavior::ServerError => api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "", "oops"),
        ImageBehavior::RateLimited { retry_after_ms } => {
            let mut response = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                "Rate limit reached",
            );
            response
                .headers_mut()
                .insert("retry-after-ms", retry_after_ms.to_string().parse().unwrap());
            response
        }
        ImageBehavior::OutOfCredit => out_of_credit(),
    }
}

/// Output tokens of a 1024x1024 image by quality: what gpt-image-2's prices
/// per image come to at $30 per million (SPEC §3).
pub const IMAGE_OUTPUT_TOKENS: [(&str, u64); 3] = [("low", 200), ("high", 7033), ("medium", 1767)];
/// Text input tokens the fake counts for every prompt.
pub const IMAGE_INPUT_TOKENS: u64 = 40;

/// `usage` as GPT-image models answer it.
fn image_usage(body: &Value) -> Value {
    let quality = body["quality"].as_str().unwrap_or("medium");
    let output = IMAGE_OUTPUT_TOKENS
        .iter()
        .find(|(q, _)| *q == quality)
        .map_or(IMAGE_OUTPUT_TOKENS[2].1, |(_, n)| *n);
    json!({"input_tokens": IMAGE_INPUT_TOKENS, "output_tokens": output,
           "total_tokens": IMAGE_INPUT_TOKENS + output,
           "input_tokens_details": {"text_tokens": IMAGE_INPUT_TOKENS, "image_tokens": 0}})
}

fn out_of_credit() -> Response {
    api_error(
        StatusCode::TOO_MANY_REQUESTS,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    )
}

fn refuse_without_credit(state: &Shared) -> Option<Response> {
    let mut state = state.lock().unwrap();
    let broke = state
        .out_of_credit_until
        .is_some_and(|until| std::time::Instant::now() < until);
    if broke {
        state.refused_for_credit += 1;
    }
    broke.then(out_of_credit)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `302` to the URL in `to`: a server sending a download elsewhere.
async fn redirect(
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let to = query.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn file(Path(name): Path<String>) -> Response {
    match name.strip_suffix(".png") {
        Some(prompt) => {
            let prompt = prompt.to_owned();
            let png = tokio::task::spawn_blocking(move || image_for(&prompt))
                .await
                .unwrap();
            ([(header::CONTENT_TYPE, "image/png")], png.as_ref().clone()).into_response()
        }
        None => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html>not an image</html>",
        )
            .into_response(),
    }
}

pub(super) async fn chat(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(refused) =
        models::refuse_unless_available(&state, body["model"].as_str().unwrap_or_default())
    {
        return refused;
    }
    if let Some(refused) = refuse_without_credit(&state) {
        return refused;
    }
    let refuses = {
        let mut state = state.lock().unwrap();
        state.chat_calls.push(body.clone());
        state.chat_refuses
    };
    if refuses {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
            "This model's maximum context length was exceeded.",
        );
    }
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": CREATED,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "\"Sealy.\""}}],
    }))
    .into_response()
}

/// Flags any prompt that mentions "forbidden".
pub(super) async fn moderate(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(refused) =
        models::refuse_unless_available(&state, body["model"].as_str().unwrap_or_default())
    {
        return refused;
    }
    state.lock().unwrap().moderation_calls.push(body.clone());
    let flagged = body["input"]
        .as_str()
        .unwrap_or_default()
        .contains("forbidden");
    Json(json!({
        "id": "modr-1", "model": "omni-moderation-latest",
        "results": [{"flagged": flagged,
                     "categories": {"violence": flagged, "hate": false},
                     "category_scores": {"violence": if flagged { 0.9 } else { 0.01 }, "hate": 0.0}}],
    }))
    .into_response()
}

async fn discord(
    State(state): State<Shared>,
    Path(channel): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    state.lock().unwrap().discord_posts.push((channel, body));
    StatusCode::NO_CONTENT
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
