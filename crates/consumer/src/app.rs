//! Building dynamo-consumer from its configuration and running it.

use crate::config::{ConsumerConfig, ImageBackend, StorageBackend};
use crate::consumer::Consumer;
use crate::limits::{LimitedImages, LimitedModerator, LimitedNames, RateLimits};
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, Services};
use dynamo_broker::Publisher;
use dynamo_runtime::Shutdown;
use dynamo_store::Store;
use dynamo_upstream::{
    AuthClient, DiscordWebhooks, FsStorage, HttpLedger, ImageProvider, Moderator, NameProvider,
    OpenAi, Placeholder, S3Storage, Storage,
};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

/// Connects to everything, then consumes until `shutdown`.
pub async fn run(config: ConsumerConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let pool = dynamo_store::connect(&config.database).await?;
    tracing::info!(host = %config.database.host, database = %config.database.database, "database ready (migrations applied)");
    let connection = dynamo_broker::connect(&config.broker, "dynamo-consumer").await?;
    let setup = connection.create_channel().await?;
    config.topology.declare_all(&setup).await?;
    let publisher = Publisher::open(&connection).await?;

    let metrics = Arc::new(Metrics::default());
    let services = services(&config, &pool, &metrics).await?;
    tracing::info!(
        images = %services.images.describe(),
        storage = %services.storage.describe(),
        moderation = services.moderator.is_some(),
        points_cost = config.points_cost,
        "dynamo-consumer ready"
    );
    let connection = Arc::new(connection);
    if let Some(address) = config.health_addr {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {address} (CONSUMER_HEALTH_ADDR): {e}")
        })?;
        tracing::info!(address = %listener.local_addr()?, "health and metrics served");
        tokio::spawn(crate::health::serve(
            listener,
            pool.clone(),
            connection.clone(),
            config.topology.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    let pipeline = Pipeline {
        metrics,
        store: Store::new(pool),
        publisher: publisher.clone(),
        topology: config.topology.clone(),
        services,
        prompts: config.prompts.clone(),
        points_cost: config.points_cost,
        retry: config.retry,
    };
    let pipeline = Arc::new(pipeline);
    let recovery = tokio::spawn(crate::recovery::run(
        pipeline.clone(),
        config.recovery,
        shutdown.clone(),
    ));
    let consumer = Consumer {
        pipeline,
        publisher,
        topology: config.topology.clone(),
        prefetch: config.prefetch,
        shutdown_grace: config.shutdown_grace,
    };
    let consumed = consumer.run(&connection, shutdown.clone()).await;
    shutdown.trigger();
    let _ = recovery.await;
    consumed?;
    let _ = connection.close(200, "bye".into()).await;
    tracing::info!("dynamo-consumer stopped");
    Ok(())
}

type Providers = (
    Arc<dyn ImageProvider>,
    Arc<dyn NameProvider>,
    Option<Arc<dyn Moderator>>,
);

async fn services(
    config: &ConsumerConfig,
    pool: &sqlx::PgPool,
    metrics: &Arc<Metrics>,
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
    let ledger = HttpLedger::new(http.clone(), config.ledger_url.clone(), auth);
    let (images, names, moderator): Providers = match &config.images {
        ImageBackend::OpenAi(settings) => {
            let openai = Arc::new(OpenAi::new(settings.clone())?);
            openai.check_image_model().await;
            let limits = Arc::new(RateLimits::new(pool.clone(), config.rates, metrics.clone()));
            let moderator: Option<Arc<dyn Moderator>> = config.moderation.then(|| {
                Arc::new(LimitedModerator {
                    inner: openai.clone(),
                    limits: limits.clone(),
                }) as Arc<dyn Moderator>
            });
            (
                Arc::new(LimitedImages {
                    inner: openai.clone(),
                    limits: limits.clone(),
                }),
                Arc::new(LimitedNames {
                    inner: openai,
                    limits,
                }),
                moderator,
            )
        }
        ImageBackend::Placeholder => (Arc::new(Placeholder), Arc::new(Placeholder), None),
    };
    let storage: Arc<dyn Storage> = match &config.storage {
        StorageBackend::S3(settings) => Arc::new(S3Storage::new(settings.clone())),
        StorageBackend::Filesystem { root, public_url } => {
            Arc::new(FsStorage::new(root.clone(), public_url.clone()))
        }
    };
    Ok(Services {
        ledger: Arc::new(ledger),
        images,
        names,
        moderator,
        storage,
        discord: DiscordWebhooks::new(
            http,
            config.discord_ghosts_webhook.clone(),
            config.discord_friends_webhook.clone(),
        ),
    })
}
