//! Building dynamo-consumer from its configuration and running it: connect,
//! consume, and when the broker connection is lost, reconnect with capped
//! backoff and carry on — nothing is acknowledged while disconnected, so the
//! broker redelivers whatever was in flight.

use crate::config::{ConsumerConfig, ImageBackend, StorageBackend};
use crate::consumer::Consumer;
use crate::models::{NoModelLeft, StoreCatalogue};
use backon::{ExponentialBuilder, Retryable};
use dynamo_broker::lapin::Connection;
use dynamo_broker::{BrokerError, Publisher};
use dynamo_pipeline::Metrics;
use dynamo_pipeline::limits::{LimitedImages, LimitedModerator, LimitedNames, RateLimits};
use dynamo_pipeline::{Pipeline, Services};
use dynamo_runtime::Shutdown;
use dynamo_store::Store;
use dynamo_upstream::{
    AuthClient, DiscordWebhooks, FsStorage, HttpLedger, ImageProvider, Moderator, NameProvider,
    OpenAi, Placeholder, S3Storage, Storage, UpstreamError,
};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Connects to everything, then consumes until `shutdown`.
pub async fn run(config: ConsumerConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let pool = dynamo_store::connect(&config.database).await?;
    tracing::info!(host = %config.database.host, database = %config.database.database, "database ready (migrations applied)");
    let Some((connection, publisher)) = connect_broker(&config, &shutdown).await else {
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
    // The current broker connection, for the health port.
    let (broker_tx, broker_rx) = watch::channel(connection.clone());
    if let Some(address) = config.health_addr {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {address} (CONSUMER_HEALTH_ADDR): {e}")
        })?;
        tracing::info!(address = %listener.local_addr()?, "health and metrics served");
        tokio::spawn(crate::health::serve(
            listener,
            pool.clone(),
            broker_rx,
            config.topology.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    let pipeline = Arc::new(Pipeline {
        metrics,
        store: Store::new(pool),
        publisher: tokio::sync::RwLock::new(publisher),
        topology: config.topology.clone(),
        services,
        prompts: config.prompts.clone(),
        points_cost: config.points_cost,
        retry: config.retry,
        viewer_max_in_flight: config.viewer_max_in_flight,
        owner,
        lease_ttl: config.lease_ttl,
        holds: config.holds,
    });
    tracing::info!(owner = %pipeline.owner, lease_ttl = ?config.lease_ttl, "owning requests through leases");
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
        shutdown_grace: config.shutdown_grace,
    });

    let mut connection = connection;
    loop {
        match consumer.run(&connection, &shutdown).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "lost RabbitMQ; reconnecting (nothing is acknowledged meanwhile)")
            }
        }
        let Some((next, publisher)) = connect_broker(&config, &shutdown).await else {
            break;
        };
        *pipeline.publisher.write().await = publisher;
        let _ = broker_tx.send(next.clone());
        connection = next;
        tracing::info!("reconnected to RabbitMQ; consuming again");
    }
    shutdown.trigger();
    let _ = scheduler.await;
    let _ = connection.close(200, "bye".into()).await;
    tracing::info!("dynamo-consumer stopped");
    Ok(())
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

/// Connects to RabbitMQ, declares the topology and opens a confirming
/// publisher, retrying with capped backoff until it works or shutdown is
/// requested (`None`).
async fn connect_broker(
    config: &ConsumerConfig,
    shutdown: &Shutdown,
) -> Option<(Arc<Connection>, Publisher)> {
    let attempt = || async {
        let connection = dynamo_broker::connect(&config.broker, "dynamo-consumer").await?;
        config
            .topology
            .declare_all(&connection.create_channel().await?)
            .await?;
        let publisher = Publisher::open(&connection).await?;
        Ok::<_, BrokerError>((Arc::new(connection), publisher))
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .with_jitter();
    let connecting = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .notify(|error, retry_in| {
            tracing::warn!(%error, ?retry_in, "cannot use RabbitMQ yet; check RMQ_HOST, RMQ_PORT, RMQ_USER and RMQ_PASSWORD");
        });
    tokio::select! {
        _ = shutdown.requested() => None,
        connected = connecting => connected.ok(),
    }
}

type Providers = (
    Arc<dyn ImageProvider>,
    Arc<dyn NameProvider>,
    Option<Arc<dyn Moderator>>,
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
    let ledger = HttpLedger::new(http.clone(), config.ledger_url.clone(), auth);
    let (images, names, moderator): Providers = match &config.images {
        ImageBackend::OpenAi(settings) => {
            let catalogue = Arc::new(StoreCatalogue(Store::new(pool.clone())));
            let openai =
                Arc::new(OpenAi::new(settings.as_ref().clone())?.with_catalogue(catalogue));
            // Before anything is consumed: with no model left, every request
            // would fail, so the consumer refuses to start and the queue keeps them.
            match openai.check_models().await {
                Ok(()) => {}
                Err(UpstreamError::ModelsGone { variable }) => {
                    return Err(NoModelLeft::for_variable(variable).into());
                }
                Err(error) => return Err(error.into()),
            }
            tokio::spawn(openai.clone().watch_catalogue(
                CATALOGUE_EVERY,
                owner.to_owned(),
                shutdown.clone(),
            ));
            let limits = Arc::new(RateLimits::new(
                pool.clone(),
                config.rates,
                settings.timeout,
                config.retry.inline_max,
                metrics.clone(),
            ));
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
