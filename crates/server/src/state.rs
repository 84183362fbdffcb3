//! What every handler can reach.

use crate::auth::Authenticator;
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::overlay::OverlayHub;
use crate::streams::StreamLimits;
use dynamo_broker::{Broker, Publisher, Topology};
use dynamo_store::{SchemaReady, Store};
use dynamo_upstream::Storage;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Until the schema is up to date, only health and sign-in are served.
    pub schema: SchemaReady,
    /// Reconnects by itself; the publisher follows it.
    pub broker: Broker,
    pub publisher: Publisher,
    /// Shared: handlers clone the state on every request.
    pub topology: Arc<Topology>,
    pub auth: Arc<Authenticator>,
    pub events: EventHub,
    /// Wakes open overlays when their queue changes.
    pub overlay: OverlayHub,
    pub metrics: Arc<Metrics>,
    /// Event streams open, per caller and in all.
    pub streams: Arc<StreamLimits>,
    pub health_public: bool,
    pub sse_heartbeat: Duration,
    /// Where uploaded alert sounds go (with the images).
    pub storage: Arc<dyn Storage>,
    pub sound_max_bytes: usize,
    /// The public gallery, when `PUBLIC_GALLERY` is on.
    pub gallery: Option<crate::gallery::Gallery>,
}
