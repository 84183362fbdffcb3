//! One connection to RabbitMQ that heals itself.
//!
//! [`Broker::start`] returns at once and connects in the background: it opens
//! the connection, declares the topology and opens a confirming channel, and
//! when any of that fails, tries again with capped exponential backoff and
//! jitter (many processes restarting together must not hammer a broker that
//! is just coming back). Once connected it watches the connection; when it is
//! lost it says so at once (publishing then fails fast with
//! [`crate::PublishError::Unavailable`]) and starts connecting again.
//!
//! Both binaries use it: the server publishes through it and the consumer
//! also consumes through it, re-subscribing after each reconnect.

use crate::BrokerError;
use crate::consume::Subscription;
use crate::publisher::Publisher;
use crate::topology::{QueueDepth, Topology};
use backon::{ExponentialBuilder, Retryable};
use dynamo_runtime::{BrokerSettings, Shutdown};
use futures::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, Event};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The first pause after a failed attempt; it doubles up to [`MAX_DELAY`].
const MIN_DELAY: Duration = Duration::from_millis(250);
/// The longest pause between attempts: a broker that is back is used within
/// this long (plus jitter).
const MAX_DELAY: Duration = Duration::from_secs(5);
/// How long declaring and opening the channel may take on a connection
/// before the attempt counts as failed: a broker that accepted the
/// connection and then stalls must not stall us. (Each node's connect has a
/// limit of its own.)
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the live connection and channel are checked, besides the
/// connection's own error events.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// What dynamo declares on each (re)connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declare {
    /// Only the exchanges dynamo publishes to (the server).
    Exchanges,
    /// Exchanges, our request queue and the dead-letter queue (the consumer).
    Everything,
}

/// A live connection with its confirming channel. `generation` tells one
/// connection from the next.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) connection: Arc<Connection>,
    /// The confirming channel publishes go through; replaced after a nack
    /// (see [`Link::renew_channel`]).
    channel: Arc<tokio::sync::Mutex<Channel>>,
    pub(crate) generation: u64,
}

impl Link {
    fn new(connection: Connection, channel: Channel, generation: u64) -> Self {
        Self {
            connection: Arc::new(connection),
            channel: Arc::new(tokio::sync::Mutex::new(channel)),
            generation,
        }
    }

    fn healthy(&self) -> bool {
        self.connection.status().connected()
            && self
                .channel
                .try_lock()
                // Being renewed: the connection is what counts.
                .map_or(true, |channel| channel.status().connected())
    }

    /// The confirming channel to publish on, if it is open.
    pub(crate) async fn channel(&self) -> Option<Channel> {
        let channel = self.channel.lock().await;
        channel.status().connected().then(|| channel.clone())
    }

    /// Replaces `nacked` with a fresh confirming channel, unless another
    /// publish replaced it already. A channel that publishes to a quorum
    /// queue whose leader moved keeps being nacked for many seconds after the
    /// new leader is elected; a new channel finds the new leader at once.
    /// The old channel is closed once its outstanding confirms are in.
    pub(crate) async fn renew_channel(&self, nacked: &Channel) -> Result<(), BrokerError> {
        let mut current = self.channel.lock().await;
        if current.id() != nacked.id() {
            return Ok(());
        }
        let fresh = self.connection.create_channel().await?;
        fresh
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let old = std::mem::replace(&mut *current, fresh);
        tracing::info!(
            old = old.id(),
            new = current.id(),
            "RabbitMQ refused a publish; publishing on a fresh channel"
        );
        tokio::spawn(async move {
            // Other publishes may still await their confirms on it.
            let _ = old.wait_for_confirms().await;
            let _ = old.close(200, "renewed".into()).await;
        });
        Ok(())
    }
}

/// A handle on the self-healing connection. Clone it freely.
#[derive(Clone)]
pub struct Broker {
    link: watch::Receiver<Option<Link>>,
    topology: Arc<Topology>,
    stop: Shutdown,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Broker {
    /// Starts connecting in the background and returns at once. `name` is
    /// the connection name operators see in RabbitMQ's management UI.
    pub fn start(
        settings: BrokerSettings,
        name: &str,
        topology: Topology,
        declare: Declare,
    ) -> Self {
        let (sender, link) = watch::channel(None);
        let stop = Shutdown::new();
        let topology = Arc::new(topology);
        tokio::spawn(supervise(
            settings,
            name.to_owned(),
            topology.clone(),
            declare,
            sender,
            stop.clone(),
        ));
        Self {
            link,
            topology,
            stop,
        }
    }

    /// Connected right now (as far as we know).
    pub fn is_connected(&self) -> bool {
        self.link.borrow().as_ref().is_some_and(Link::healthy)
    }

    /// Waits until connected; `None` once the broker handle is closed.
    pub async fn connected(&self) -> Option<Connected> {
        self.connected_after(0).await
    }

    /// Waits for a connection newer than `generation` (one that failed), so
    /// a consumer does not re-subscribe on the connection it just lost.
    pub async fn connected_after(&self, generation: u64) -> Option<Connected> {
        let mut link = self.link.clone();
        tokio::select! {
            _ = self.stop.requested() => None,
            found = link.wait_for(|current| {
                current
                    .as_ref()
                    .is_some_and(|l| l.generation > generation && l.healthy())
            }) => found.ok()?.clone().map(|link| Connected { link }),
        }
    }

    /// Publishes through whichever connection is live; fails fast while none is.
    pub fn publisher(&self) -> Publisher {
        Publisher::following(self.link.clone())
    }

    /// Messages waiting in our request queue, or `None` if the broker did not
    /// say (or the queue is not declared yet: see [`Broker::requests_queue`]).
    pub async fn requests_queue_depth(&self) -> Option<u32> {
        self.requests_queue().await.waiting()
    }

    /// What the broker says about our request queue, including that no
    /// consumer has declared it yet.
    pub async fn requests_queue(&self) -> QueueDepth {
        let link = self.link.borrow().clone();
        match link {
            Some(link) => self.topology.requests_queue(&link.connection).await,
            None => QueueDepth::Unknown,
        }
    }

    /// Closes the connection and stops reconnecting. Call it after the last
    /// publish: in-flight work still needs the connection during shutdown.
    pub async fn close(&self) {
        self.stop.trigger();
        let link = self.link.borrow().clone();
        if let Some(link) = link {
            let _ = link.connection.close(200, "bye".into()).await;
        }
    }
}

/// One live connection, for subscribing. Its [`Connected::generation`] is
/// what [`Broker::connected_after`] takes once it is lost.
pub struct Connected {
    link: Link,
}

impl Connected {
    pub fn generation(&self) -> u64 {
        self.link.generation
    }

    /// Subscribes to `queue`, with at most `prefetch` unacknowledged
    /// deliveries in flight (basic.qos).
    pub async fn consume(&self, queue: &str, prefetch: u16) -> Result<Subscription, BrokerError> {
        let mut subscription = self.subscribe_paused(queue, prefetch).await?;
        subscription.resume().await?;
        Ok(subscription)
    }

    /// [`Connected::consume`], but paused: nothing is taken from the queue
    /// until [`Subscription::resume`] (a consumer that starts while the
    /// fleet holds).
    pub async fn subscribe_paused(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Subscription, BrokerError> {
        Subscription::open_paused(&self.link.connection, queue, prefetch).await
    }
}

async fn supervise(
    settings: BrokerSettings,
    name: String,
    topology: Arc<Topology>,
    declare: Declare,
    sender: watch::Sender<Option<Link>>,
    stop: Shutdown,
) {
    let mut generation = 0;
    // The node of RMQ_HOST to try first: after a loss, the one after the
    // node that was lost (it is likely down).
    let mut first_node = 0;
    loop {
        let attempt = || open(&settings, &name, &topology, declare, first_node);
        let connecting = attempt
            .retry(backoff())
            .sleep(tokio::time::sleep)
            .notify(|error, retry_in| {
                tracing::warn!(%error, ?retry_in, "cannot use RabbitMQ yet; check RMQ_HOST, RMQ_PORT, RMQ_USER and RMQ_PASSWORD");
            });
        let (connection, channel, node) = tokio::select! {
            _ = stop.requested() => return,
            opened = connecting => match opened {
                Ok(opened) => opened,
                // Unreachable: the backoff has no limit on attempts.
                Err(_) => continue,
            },
        };
        generation += 1;
        first_node = (node + 1) % settings.nodes.len().max(1);
        let link = Link::new(connection, channel, generation);
        let mut events = link.connection.events_listener();
        sender.send_replace(Some(link.clone()));
        let (host, port) = settings.nodes.get(node).cloned().unwrap_or_default();
        tracing::info!(connection = %name, generation, node = %format!("{host}:{port}"), "connected to RabbitMQ");
        let mut watch = tokio::time::interval(WATCH_EVERY);
        loop {
            tokio::select! {
                // `close` closes the connection itself.
                _ = stop.requested() => return,
                event = events.next() => match event {
                    // lapin reports a channel closed by the broker (a
                    // passive declare of a missing queue, on a channel of
                    // its own) here too: only a broken link is a loss.
                    Some(Event::Error(error)) if link.healthy() => {
                        tracing::debug!(%error, "RabbitMQ closed a channel; the connection stays");
                    }
                    Some(Event::Error(error)) => {
                        tracing::warn!(%error, "lost RabbitMQ; reconnecting");
                        break;
                    }
                    None => break,
                    Some(_) => {}
                },
                _ = watch.tick() => if sender.is_closed() {
                    // Every handle is gone: nobody will publish again.
                    let _ = link.connection.close(200, "bye".into()).await;
                    return;
                } else if !link.healthy() {
                    tracing::warn!("lost RabbitMQ; reconnecting");
                    break;
                },
            }
        }
        sender.send_replace(None);
        // Best effort, and not awaited: a dead connection may take its time.
        let connection = link.connection.clone();
        tokio::spawn(async move {
            let _ = connection.close(200, "reconnecting".into()).await;
        });
    }
}

/// Capped exponential backoff with full jitter, without a limit on attempts:
/// the caller stops it (shutdown), not a count.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .without_max_times()
        .with_jitter()
}

/// Connects to the first node of `RMQ_HOST` that answers, from `first_node`
/// on, then declares the topology and opens the confirming channel; returns
/// them with the index of the node.
async fn open(
    settings: &BrokerSettings,
    name: &str,
    topology: &Topology,
    declare: Declare,
    first_node: usize,
) -> Result<(Connection, Channel, usize), BrokerError> {
    let (connection, node) = crate::connect::connect_from(settings, name, first_node).await?;
    let prepare = async {
        let channel = connection.create_channel().await?;
        match declare {
            Declare::Exchanges => topology.declare_exchanges(&channel).await?,
            Declare::Everything => topology.declare_all(&channel).await?,
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok::<_, BrokerError>(channel)
    };
    let channel = tokio::time::timeout(ATTEMPT_TIMEOUT, prepare)
        .await
        .map_err(|_| BrokerError::Timeout(ATTEMPT_TIMEOUT))??;
    Ok((connection, channel, node))
}

/// For operators' tools (dynamoctl): looking at queues without consuming them
/// as dynamo-consumer does.
impl Connected {
    /// Everything published to `exchanges` from now on, through a private
    /// queue that goes away with the subscription.
    pub async fn watch(&self, exchanges: &[&str]) -> Result<Subscription, BrokerError> {
        Subscription::watch(&self.link.connection, exchanges).await
    }

    /// Takes the messages waiting in `queue` one by one without consuming the
    /// queue; see [`Browse`].
    pub async fn browse(&self, queue: &str) -> Result<Browse, BrokerError> {
        Ok(Browse {
            channel: self.link.connection.create_channel().await?,
            queue: queue.to_owned(),
        })
    }
}

/// Messages taken from a queue without acknowledging stay reserved for this
/// browse, so each is seen once; [`Browse::close`] hands back those not
/// acknowledged.
pub struct Browse {
    channel: Channel,
    queue: String,
}

impl Browse {
    /// The next waiting message, or `None` when the queue is empty.
    pub async fn next(&self) -> Result<Option<crate::Delivery>, BrokerError> {
        let message = self
            .channel
            .basic_get(
                self.queue.as_str().into(),
                lapin::options::BasicGetOptions::default(),
            )
            .await?;
        Ok(message.map(|m| crate::Delivery::from(m.delivery)))
    }

    pub async fn close(self) -> Result<(), BrokerError> {
        self.channel.close(200, "done".into()).await?;
        Ok(())
    }
}
