//! Building dynamo-consumer from its configuration and running it: connect,
//! consume, and when the broker connection is lost, wait for the broker
//! crate's [`Broker`] to reconnect (capped backoff with jitter) and
//! subscribe again — nothing is acknowledged while disconnected, so the
//! broker redelivers whatever was in flight.

use crate::config::{ConsumerConfig, ImageBackend, LedgerBackend, SpeechBackend};
use crate::consumer::Consumer;
use crate::models::{NoModelLeft, StoreCatalogue};
use crate::pause::HoldWatch;
use dynamo_broker::{Broker, Declare};
use dynamo_pipeline::Metrics;
use dynamo_pipeline::limits::RateLimits;
use dynamo_pipeline::{Pipeline, Services, Settings};
use dynamo_runtime::Shutdown;
use dynamo_store::Store;
use dynamo_upstream::{
    AuthClient, DiscordWebhooks, HttpLedger, ImageProvider, Ledger, ModelCheckError, Moderator,
    NameProvider, OpenAi, Placeholder, ServiceId, Speech, UpstreamError,
};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

/// Connects to everything, then consumes until `shutdown`; serves health
/// and metrics on `CONSUMER_HEALTH_ADDR` unless it is `off`.
pub async fn run(config: ConsumerConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let health = match config.health_addr {
        // Bound before anything else: a port in use is a start-up error.
        Some(address) => Some(tokio::net::TcpListener::bind(address).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {address} (CONSUMER_HEALTH_ADDR): {e}")
        })?),
        None => None,
    };
    run_with_health(config, health, shutdown).await
}

/// [`run`], serving health and metrics on a listener the caller bound (a
/// test binds port 0 and reads the port back, so no other process can take
/// it in between).
pub async fn run_with_health(
    config: ConsumerConfig,
    health: Option<tokio::net::TcpListener>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let pool = dynamo_store::connect(&config.database).await?;
    tracing::info!(host = %config.database.host, database = %config.database.database, "database ready (migrations applied)");
    let broker = Broker::start(
        config.broker.clone(),
        "dynamo-consumer",
        config.topology.clone(),
        Declare::Everything,
    );
    // Consuming needs the topology declared; wait for the first connection.
    let connected = tokio::select! {
        _ = shutdown.requested() => None,
        connected = broker.connected() => connected,
    };
    let Some(connected) = connected else {
        broker.close().await;
        return Ok(());
    };
    let metrics = Arc::new(Metrics::default());
    let owner = owner_id();
    let services = services(&config, &pool, &metrics, &owner, &shutdown).await?;
    tracing::info!(
        images = %services.images.describe(),
        storage = %services.storage.describe(),
        moderation = services.moderator.is_some(),
        points_cost = config.points_cost,
        "dynamo-consumer ready"
    );
    let holds = HoldWatch::start(
        Store::new(pool.clone()),
        config.holds.max_wait,
        shutdown.clone(),
    )
    .await;
    if let Some(listener) = health {
        tracing::info!(address = %listener.local_addr()?, "health and metrics served");
        tokio::spawn(crate::health::serve(
            listener,
            pool.clone(),
            broker.clone(),
            metrics.clone(),
            holds.clone(),
            config.holds.daily_budget_usd,
            shutdown.clone(),
        ));
    }
    let store = Store::new(pool);
    // Golden VCR's styles follow PROMPT_GHOST / PROMPT_FRIEND / POINTS_COST
    // until edited (dynamo_store::golden_vcr).
    dynamo_store::golden_vcr::seed(
        &store,
        &config.prompts,
        config.points_cost,
        dynamo_store::golden_vcr::Seeding::Follow,
    )
    .await?;
    let styles = dynamo_pipeline::styles::Styles::load(store.clone()).await?;
    styles.follow(shutdown.clone());
    // The Twitch intake reads its rewards from the same copy.
    let rewards = styles.clone();
    let pipeline = Arc::new(Pipeline::new(
        store,
        broker.publisher(),
        config.topology.clone(),
        services,
        Settings {
            styles,
            retry: config.retry,
            viewer_max_in_flight: config.viewer_max_in_flight,
            lease_ttl: config.lease_ttl,
            holds: config.holds,
            approval: config.approval,
        },
        owner,
        metrics,
    ));
    tracing::info!(owner = %pipeline.owner(), lease_ttl = ?config.lease_ttl, "owning requests through leases");
    if config.approval.manual {
        tracing::info!(timeout = ?config.approval.timeout, on_timeout = %config.approval.on_timeout, "stored images wait for the streamer's approval before they air");
    }
    let intake = match (&config.twitch, config.twitch_intake) {
        (Some(twitch), true) => Some(start_twitch_intake(
            twitch,
            &pipeline,
            &rewards,
            &config.topology,
            &shutdown,
        )?),
        _ => None,
    };
    let twitch_tasks = match &config.twitch {
        Some(twitch) => {
            start_twitch_chat(twitch, config.twitch_intake, &pipeline, &rewards, &shutdown)?
        }
        None => Vec::new(),
    };
    let scheduler = tokio::spawn(dynamo_pipeline::scheduler::run(
        pipeline.clone(),
        usize::from(config.prefetch),
        config.shutdown_grace,
        shutdown.clone(),
    ));
    let consumer = Arc::new(Consumer {
        pipeline: pipeline.clone(),
        topology: config.topology.clone(),
        prefetch: config.prefetch,
        delivery_limit: config.delivery_limit,
        shutdown_grace: config.shutdown_grace,
        holds,
    });

    let mut connected = connected;
    // One tracker for every connection: work taken on a lost connection
    // finishes while the next one consumes, and shutdown waits for all.
    let in_flight = tokio_util::task::TaskTracker::new();
    loop {
        match consumer.run(&connected, &in_flight, &shutdown).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "lost RabbitMQ; waiting to reconnect (nothing is acknowledged meanwhile)")
            }
        }
        // A newer connection than the one that failed. (A subscription can
        // also fail on a live connection, e.g. a deleted queue: the pause
        // keeps that from becoming a hot loop.)
        let next = tokio::select! {
            _ = shutdown.requested() => None,
            next = broker.connected_after(connected.generation()) => next,
            _ = tokio::time::sleep(config.retry.infra_pause), if broker.is_connected() => broker.connected().await,
        };
        let Some(next) = next else { break };
        connected = next;
        tracing::info!(generation = connected.generation(), "consuming again");
    }
    // Stopped while disconnected: work taken before still gets its grace.
    consumer.finish(&in_flight).await;
    shutdown.trigger();
    let _ = scheduler.await;
    if let Some(intake) = intake {
        let _ = intake.await;
    }
    for task in twitch_tasks {
        let _ = task.await;
    }
    broker.close().await;
    tracing::info!("dynamo-consumer stopped");
    Ok(())
}

/// The Twitch intake runs beside the consumer: it needs only the database
/// and the broker the consumer already has, and publishes to the same
/// requests exchange as any other producer. Every consumer may have it on:
/// the one holding the intake's lease runs the session (`leadership`).
fn start_twitch_intake(
    twitch: &dynamo_twitch::TwitchSettings,
    pipeline: &Pipeline,
    styles: &Arc<dynamo_pipeline::styles::Styles>,
    topology: &dynamo_broker::Topology,
    shutdown: &Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let rewards = dynamo_twitch::book::RewardBook::new(twitch.rewards.clone(), styles.clone());
    if rewards.rewards().is_empty() {
        // Not fatal: a reward published from the page is taken in at once.
        tracing::warn!(
            "TWITCH_INTAKE is on but no style has a Twitch reward yet: run `dynamoctl twitch setup`, or publish one from the page"
        );
    }
    let intake = dynamo_twitch::intake::Intake {
        helix: dynamo_twitch::helix(twitch, pipeline.store().clone())?,
        store: pipeline.store().clone(),
        publisher: pipeline.publisher().clone(),
        requests_exchange: topology.requests_exchange.clone(),
        rewards: rewards.clone(),
    };
    let rewarder =
        dynamo_twitch::rewards::Rewarder::for_settings(twitch, pipeline.store().clone())?;
    tracing::info!(url = %twitch.eventsub_url, ?rewards, "Twitch intake starting whenever this consumer holds its lease");
    Ok(tokio::spawn(dynamo_twitch::leadership::run(
        pipeline.store().clone(),
        pipeline.owner().to_owned(),
        Arc::new(intake),
        Some(rewarder),
        twitch.eventsub_url.clone(),
        shutdown.clone(),
    )))
}

/// Beside the intake: telling viewers in chat (on every consumer with the
/// Twitch settings, unless TWITCH_CHAT=false: the outbox and the limiter
/// are shared), and, where the intake runs, rewards paused while the fleet
/// holds.
fn start_twitch_chat(
    twitch: &dynamo_twitch::TwitchSettings,
    intake: bool,
    pipeline: &Arc<Pipeline>,
    styles: &Arc<dynamo_pipeline::styles::Styles>,
    shutdown: &Shutdown,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    if twitch.chat.enabled {
        let counter = pipeline.clone();
        let count: dynamo_twitch::chat::sender::Counter =
            Arc::new(move |counted| counter.metrics().chat_message(counted.as_str()));
        let chat = dynamo_twitch::chat(twitch, pipeline.store().clone(), count)?;
        tracing::info!(voice = ?twitch.chat.voice, limit = twitch.chat.limit, "telling viewers in Twitch chat");
        tasks.push(tokio::spawn(dynamo_twitch::chat::run(
            Arc::new(chat),
            shutdown.clone(),
        )));
    }
    if intake {
        let follow = dynamo_twitch::follow::Follow {
            helix: dynamo_twitch::helix(twitch, pipeline.store().clone())?,
            store: pipeline.store().clone(),
            rewards: dynamo_twitch::book::RewardBook::new(twitch.rewards.clone(), styles.clone()),
            pause_when_offline: twitch.pause_when_offline,
        };
        tasks.push(tokio::spawn(dynamo_twitch::follow::run(
            follow,
            shutdown.clone(),
        )));
    }
    Ok(tasks)
}

/// Names this process as the owner of the requests it leases: the host and
/// pid tell an operator where to look, the random part tells two starts of
/// the same pid apart.
fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    let start = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &start[..8])
}

type Providers = (
    Arc<dyn ImageProvider>,
    Arc<dyn NameProvider>,
    Option<Arc<dyn Moderator>>,
    Vec<Arc<RateLimits>>,
    Option<Arc<OpenAi>>,
);

/// How often the fleet re-reads `GET /models` (once for all processes).
const CATALOGUE_EVERY: Duration = Duration::from_secs(3600);

async fn services(
    config: &ConsumerConfig,
    pool: &sqlx::PgPool,
    metrics: &Arc<Metrics>,
    owner: &str,
    shutdown: &Shutdown,
) -> anyhow::Result<Services> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let auth = AuthClient::new(
        http.clone(),
        config.auth_url.clone(),
        config
            .auth_shared_secret
            .clone()
            .unwrap_or_else(|| SecretString::from("")),
    );
    let ledger: Arc<dyn Ledger> = match (config.ledger, &config.twitch) {
        (LedgerBackend::Twitch, Some(twitch)) => Arc::new(dynamo_twitch::ledger::TwitchLedger {
            helix: dynamo_twitch::helix(twitch, Store::new(pool.clone()))?,
            store: Store::new(pool.clone()),
        }),
        // With LEDGER=none the cost is 0: the ledger is never called.
        _ => Arc::new(HttpLedger::new(
            http.clone(),
            config.ledger_url.clone(),
            auth,
        )),
    };
    let rate_limits = |service: ServiceId, timeout: Duration| {
        Arc::new(RateLimits::new(
            pool.clone(),
            service,
            config.rates,
            timeout,
            config.retry.inline_max,
            metrics.clone(),
        ))
    };
    let (images, names, moderator, limits, openai): Providers = match &config.images {
        ImageBackend::OpenAi(settings) => {
            let catalogue = Arc::new(StoreCatalogue::new(Store::new(pool.clone())));
            let openai =
                Arc::new(OpenAi::new(settings.as_ref().clone())?.with_catalogue(catalogue));
            // Before anything is consumed: with no model left, every request
            // would fail, so the consumer refuses to start and the queue keeps them.
            match openai.check_models().await {
                Ok(()) => {}
                Err(ModelCheckError::Upstream(UpstreamError::ModelsGone { variable, .. })) => {
                    let listed = openai.listed_models();
                    return Err(NoModelLeft::new(variable, settings, listed).into());
                }
                Err(error) => return Err(error.into()),
            }
            tokio::spawn(openai.clone().watch_catalogue(
                CATALOGUE_EVERY,
                owner.to_owned(),
                shutdown.clone(),
            ));
            let limits = rate_limits(ImageProvider::service(openai.as_ref()), settings.timeout);
            let moderator: Option<Arc<dyn Moderator>> = config
                .moderation
                .then(|| openai.clone() as Arc<dyn Moderator>);
            (
                openai.clone(),
                openai.clone(),
                moderator,
                vec![limits],
                Some(openai),
            )
        }
        ImageBackend::Placeholder => (
            Arc::new(Placeholder),
            Arc::new(Placeholder),
            None,
            Vec::new(),
            None,
        ),
    };
    // Spoken captions: the image provider's OpenAI client when there is
    // one, else a client of its own (placeholder images, speech from a
    // local OpenAI-compatible server), under its own fleet-wide limits.
    let (speech, limits): (Option<Arc<dyn Speech>>, _) = match (&config.speech, openai) {
        (SpeechBackend::None, _) => (None, limits),
        (SpeechBackend::OpenAi(_), Some(openai)) => (Some(openai as Arc<dyn Speech>), limits),
        (SpeechBackend::OpenAi(settings), None) => {
            let catalogue = Arc::new(StoreCatalogue::new(Store::new(pool.clone())));
            let openai = OpenAi::new(settings.as_ref().clone())?.with_catalogue(catalogue);
            let mut limits = limits;
            limits.push(rate_limits(Speech::service(&openai), settings.timeout));
            (Some(Arc::new(openai) as Arc<dyn Speech>), limits)
        }
    };
    let storage = config.storage.build();
    Ok(Services {
        ledger,
        images,
        names,
        moderator,
        storage,
        discord: DiscordWebhooks::new(
            http,
            config.discord_ghosts_webhook.clone(),
            config.discord_friends_webhook.clone(),
            config.discord_styles_webhook.clone(),
        ),
        limits,
        speech,
    })
}
