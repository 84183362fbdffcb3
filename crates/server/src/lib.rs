//! dynamo-server: operators see the state of every request over HTTP, admins
//! enqueue and retry requests (through the same queue as everyone else), and
//! live updates stream as Server-Sent Events. `main.rs` loads the
//! configuration and calls [`run`]; tests call [`run`] or [`app`] the same way.

mod approval;
mod auth;
mod auth_limit;
mod config;
mod error;
mod events;
mod extract;
mod gallery;
mod gate;
mod health;
mod jwks;
mod me;
mod metrics;
mod openapi;
mod overlay;
mod page;
mod request_input;
mod request_limits;
mod requests;
mod rules;
mod schemas;
mod serve;
mod sounds;
mod state;
mod steps;
mod streams;
mod style_preview;
mod style_try;
mod styles;

pub use auth::{Admin, Authenticator, Caller};
pub use config::{AuthConfig, GoldenVcrSettings, Limits, ServerConfig};
pub use error::ApiError;
pub use state::AppState;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::{Extension, Router};
use dynamo_broker::{Broker, Declare};
use dynamo_runtime::Shutdown;
use dynamo_runtime::trace_context;
use dynamo_store::Store;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes and their OpenAPI document, from the same declarations.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(requests::list_requests, requests::enqueue))
        .routes(routes!(requests::get_request))
        .routes(routes!(requests::retry))
        .routes(routes!(steps::list_steps))
        .routes(routes!(approval::approve))
        .routes(routes!(approval::decline))
        .routes(routes!(events::all_events))
        .routes(routes!(events::request_events))
        .routes(routes!(health::stats))
        .routes(routes!(health::healthz))
        .routes(routes!(health::livez))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(me::me))
        .routes(routes!(me::sign_in))
        .routes(routes!(overlay::play::stream))
        .routes(routes!(overlay::play::next))
        .routes(routes!(overlay::play::finished))
        .routes(routes!(
            overlay::admin::create_token,
            overlay::admin::list_tokens
        ))
        .routes(routes!(overlay::admin::revoke_token))
        .routes(routes!(overlay::admin::queue))
        .routes(routes!(overlay::admin::pause))
        .routes(routes!(overlay::admin::resume))
        .routes(routes!(overlay::admin::skip))
        .routes(routes!(overlay::admin::clear))
        .routes(routes!(overlay::admin::replay))
        .routes(routes!(rules::get_rules, rules::put_rules))
        .routes(routes!(rules::block_phrase))
        .routes(routes!(rules::unblock_phrase))
        .routes(routes!(page::overlay))
        .routes(routes!(
            sounds::upload,
            sounds::get,
            sounds::set_volume,
            sounds::remove
        ))
        .routes(routes!(sounds::list))
        .routes(routes!(gallery::index))
        .routes(routes!(gallery::image))
        .routes(routes!(styles::list_styles, styles::create_style))
        .routes(routes!(
            styles::get_style,
            styles::put_style,
            styles::delete_style
        ))
        .routes(routes!(styles::enable_style))
        .routes(routes!(styles::disable_style))
        .routes(routes!(styles::publish_style_reward))
        .routes(routes!(style_try::try_style))
        .routes(routes!(style_preview::preview))
        .split_for_parts();
    openapi::complete(&mut doc, gate::WITHOUT_DATABASE);
    (router, doc)
}

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn app(state: AppState, config: &ServerConfig) -> Router {
    let (router, doc) = api();
    let mut router = router.layer(axum::middleware::from_fn_with_state(
        state.schema.clone(),
        gate::require_schema,
    ));
    if let Some(dir) = &config.images_dir {
        router = router.nest_service("/images", ServeDir::new(dir));
    }
    let metrics = state.metrics.clone();
    router
        .merge(page::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this route does not take that method".into())
        })
        .layer(Extension(Arc::new(doc)))
        .layer(axum::middleware::from_fn_with_state(
            auth_limit::AuthLimiter::new(
                config.auth_failure_limit,
                config.auth_failure_window,
                config.auth_failure_max_addresses,
            ),
            auth_limit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            config.limits.request_timeout,
            request_limits::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            request_limits::BodyLimits {
                default: config.max_body_bytes,
                sound: config.sound_max_bytes,
            },
            request_limits::refuse_declared_oversize,
        ))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::record))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn(error::stamp_request_id))
        // Every response carries an x-request-id (the caller's, or a new
        // one), and every log line of the request carries it too.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let span = tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id);
            // A caller that traces (W3C Trace Context) sees its trace continued.
            let caller: Vec<(String, String)> = [trace_context::TRACEPARENT, trace_context::TRACESTATE]
                .into_iter()
                .filter_map(|name| {
                    let value = request.headers().get(name)?.to_str().ok()?;
                    Some((name.to_owned(), value.to_owned()))
                })
                .collect();
            trace_context::adopt(&span, &caller);
            span
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Creates Golden VCR's styles if the database has none yet, once it is
/// reachable: the styles list (the page's *Styles* panel) is then never
/// empty because no consumer has started. The consumers keep them in line
/// with their settings (`dynamo_store::golden_vcr`).
async fn seed_styles(
    store: Store,
    schema: dynamo_store::SchemaReady,
    (prompts, points_cost): (dynamo_store::golden_vcr::PromptTemplates, u32),
    shutdown: Shutdown,
) {
    use dynamo_store::golden_vcr::{Seeding, seed};
    tokio::select! {
        () = schema.wait() => {}
        () = shutdown.requested() => return,
    }
    loop {
        match seed(&store, &prompts, points_cost, Seeding::CreateMissing).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "could not create the seeded styles; trying again shortly")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            () = shutdown.requested() => return,
        }
    }
}

/// How long start-up waits for PostgreSQL and RabbitMQ before serving without them.
const FIRST_CONNECT_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Connects to everything and serves on `listener` until `shutdown`.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // PostgreSQL and RabbitMQ are both connected (and reconnected) in the
    // background: the server starts and says what is missing while either is
    // away, and heals when it is back (SPEC §6.11).
    let (pool, schema) = dynamo_store::connect_in_background(&config.database);
    let events = events::EventHub::start(pool.clone(), shutdown.clone());
    let broker = Broker::start(
        config.broker.clone(),
        "dynamo-server",
        config.topology.clone(),
        Declare::Exchanges,
    );
    // Give the first connections a moment, so a server started together
    // with healthy services does not turn away its first requests; then
    // serve regardless.
    let (database, broker_up) = tokio::join!(
        tokio::time::timeout(FIRST_CONNECT_GRACE, async {
            schema.wait().await;
            events.listening().await;
        }),
        tokio::time::timeout(FIRST_CONNECT_GRACE, broker.connected()),
    );
    if database.is_err() {
        tracing::warn!(grace = ?FIRST_CONNECT_GRACE, "PostgreSQL is not reachable yet; serving health, everything else answers 503 until it is");
    }
    if broker_up.is_err() {
        tracing::warn!(grace = ?FIRST_CONNECT_GRACE, "RabbitMQ is not reachable yet; serving status, enqueueing answers 503 until it is");
    }
    let publisher = broker.publisher();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let auth = match &config.auth {
        AuthConfig::GoldenVcr {
            auth_url,
            issuer,
            settings,
        } => Authenticator::golden_vcr(http, auth_url.clone(), issuer.clone(), settings.clone()),
        AuthConfig::Standalone { admin_token_hashes } => Authenticator::Standalone {
            admin_token_hashes: admin_token_hashes.clone(),
        },
    };
    if auth.accepts_development_token() {
        tracing::warn!(
            "ADMIN_TOKEN_SHA256 accepts the development token {}: anyone who reaches this server is admin",
            auth::DEVELOPMENT_TOKEN
        );
    }
    let overlay = overlay::OverlayHub::start(pool.clone(), shutdown.clone());
    tokio::spawn(seed_styles(
        Store::new(pool.clone()),
        schema.clone(),
        config.golden_vcr.clone(),
        shutdown.clone(),
    ));
    let state = AppState {
        store: Store::new(pool),
        schema,
        broker: broker.clone(),
        publisher,
        topology: Arc::new(config.topology.clone()),
        auth: Arc::new(auth),
        events,
        overlay,
        metrics: Arc::default(),
        streams: streams::StreamLimits::new(
            config.limits.sse_max_streams,
            config.limits.sse_max_streams_per_caller,
        ),
        health_public: config.health_public,
        sse_heartbeat: config.sse_heartbeat,
        storage: config.storage.build(),
        sound_max_bytes: config.sound_max_bytes,
        gallery: config
            .public_base_url
            .clone()
            .map(|base_url| gallery::Gallery {
                base_url: base_url.into(),
            }),
    };
    tracing::info!(address = %listener.local_addr()?, images = ?config.images_dir, "dynamo-server listening");
    let limits = config.limits;
    serve::serve(listener, app(state, &config), limits, shutdown).await;
    broker.close().await;
    tracing::info!("dynamo-server stopped");
    Ok(())
}
