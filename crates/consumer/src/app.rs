//! Building dynamo-consumer from its configuration and running it.

use crate::config::{ConsumerConfig, ImageBackend, StorageBackend};
use crate::consumer::Consumer;
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

    let services = services(&config).await?;
    tracing::info!(
        images = %services.images.describe(),
        storage = %services.storage.describe(),
        moderation = services.moderator.is_some(),
        points_cost = config.points_cost,
        "dynamo-consumer ready"
    );
    let pipeline = Pipeline {
        store: Store::new(pool),
        publisher: publisher.clone(),
        topology: config.topology.clone(),
        services,
        prompts: config.prompts.clone(),
        points_cost: config.points_cost,
        retry: config.retry,
    };
    let consumer = Consumer {
        pipeline: Arc::new(pipeline),
        publisher,
        topology: config.topology.clone(),
        prefetch: config.prefetch,
        shutdown_grace: config.shutdown_grace,
    };
    consumer.run(&connection, shutdown).await?;
    let _ = connection.close(200, "bye".into()).await;
    tracing::info!("dynamo-consumer stopped");
    Ok(())
}

type Providers = (
    Arc<dyn ImageProvider>,
    Arc<dyn NameProvider>,
    Option<Arc<dyn Moderator>>,
);

async fn services(config: &ConsumerConfig) -> anyhow::Result<Services> {
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
            let moderator: Option<Arc<dyn Moderator>> = if config.moderation {
                Some(openai.clone())
            } else {
                None
            };
            (openai.clone(), openai, moderator)
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
