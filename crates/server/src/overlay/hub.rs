//! Wakes every open overlay stream when the queue, its controls or the
//! tokens change, in whichever process (PostgreSQL LISTEN/NOTIFY, channel
//! `dynamo_overlay`, migration 0016).

use dynamo_runtime::Shutdown;
use dynamo_store::OVERLAY_CHANNEL;
use sqlx::PgPool;
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct OverlayHub {
    sender: broadcast::Sender<()>,
}

impl OverlayHub {
    /// Listens in the background (see [`crate::events::listen`]).
    pub fn start(pool: PgPool, shutdown: Shutdown) -> Self {
        // A wake carries nothing: each stream reads the state it needs, so a
        // stream that lags behind loses nothing by skipping wakes.
        let (sender, _) = broadcast::channel(16);
        let wake = sender.clone();
        crate::events::listen(pool, OVERLAY_CHANNEL, shutdown, move |_| {
            let _ = wake.send(());
        });
        Self { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.sender.subscribe()
    }
}
