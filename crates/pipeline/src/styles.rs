//! The styles this consumer knows (SPEC §8): a copy of `dynamo.styles`, kept
//! current while it runs, and what a request of a style is made with.
//!
//! How changes arrive: LISTEN on [`STYLES_CHANNEL`] (a trigger announces
//! every change, so an edit is seen within a round trip), and, as the
//! fallback for a notification lost while the listener reconnected, the
//! table's fingerprint compared every [`RECHECK`]. A request naming a style
//! the copy does not have (or has disabled) reads the table once more before
//! it is refused, so a style created a moment ago is never refused for
//! being new.

use dynamo_runtime::Shutdown;
use dynamo_store::{STYLES_CHANNEL, Store, StoreError, StoredStyle};
use dynamo_wire::{GenerationRequest, StyleDefinition, StyleId, StyleSettings, render};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the table's fingerprint is compared, whatever LISTEN says.
pub const RECHECK: Duration = Duration::from_secs(5);

/// What a request of a style is made with: recorded on it when recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub prompt: String,
    pub settings: StyleSettings,
    pub points_cost: u32,
}

#[derive(Default)]
struct Known {
    fingerprint: (i64, i64),
    by_id: HashMap<StyleId, StoredStyle>,
}

/// The styles as this process last read them.
pub struct Styles {
    store: Store,
    known: RwLock<Known>,
    /// Bumped on every read that changed the copy: what else follows the
    /// styles (the Twitch rewards) waits on it instead of listening again.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Styles {
    /// Reads every style once.
    pub async fn load(store: Store) -> Result<Arc<Self>, StoreError> {
        let styles = Arc::new(Self {
            store,
            known: RwLock::new(Known::default()),
            changed: tokio::sync::watch::Sender::new(0),
        });
        styles.refresh().await?;
        Ok(styles)
    }

    /// Reads the table again.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let fingerprint = self.store.styles_version().await?;
        let by_id = self
            .store
            .styles()
            .await?
            .into_iter()
            .map(|s| (s.definition.id.clone(), s))
            .collect();
        let changed = {
            // A poisoned lock only means a reader panicked; the data is whole.
            let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
            let changed = known.fingerprint != fingerprint;
            *known = Known { fingerprint, by_id };
            changed
        };
        if changed {
            self.changed.send_modify(|generation| *generation += 1);
        }
        Ok(())
    }

    /// The style `id`, if it is enabled or `disabled_too`.
    fn lookup(&self, id: &StyleId, disabled_too: bool) -> Option<StyleDefinition> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        known
            .by_id
            .get(id)
            .map(|s| &s.definition)
            .filter(|s| s.enabled || disabled_too)
            .cloned()
    }

    /// Every style as last read, with what is kept beside it (its reward),
    /// by id.
    pub fn stored(&self) -> Vec<StoredStyle> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<StoredStyle> = known.by_id.values().cloned().collect();
        all.sort_by(|a, b| a.definition.id.cmp(&b.definition.id));
        all
    }

    /// Wakes on every change of the copy (see [`Styles::follow`]).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The prompt, settings and cost of a request, or why it is refused (an
    /// unknown or disabled style, a colour the style does not take): the
    /// reason a malformed message is dead-lettered with (SPEC §6.6). An
    /// admin's try-out (`trial`) may use a disabled style: a streamer tries
    /// a style before viewers can ask for it.
    pub async fn resolve(
        &self,
        request: &GenerationRequest,
        trial: bool,
    ) -> Result<Resolved, Refusal> {
        let id = request.style();
        let style = match self.lookup(&id, trial) {
            Some(style) => style,
            None => {
                self.refresh().await.map_err(Refusal::Store)?;
                self.lookup(&id, trial).ok_or_else(|| {
                    Refusal::Malformed(format!(
                        "payload.style: no enabled style {id} (see GET /styles)"
                    ))
                })?
            }
        };
        let color = request.payload.color();
        style.color.check(&id, color).map_err(Refusal::Malformed)?;
        Ok(Resolved {
            prompt: render(&style.prompt_template, request.subject().as_str(), color),
            settings: style.settings(),
            points_cost: style.points_cost,
        })
    }

    /// Keeps the copy current until shutdown: LISTEN, and the fingerprint
    /// every [`RECHECK`] (module docs).
    pub fn follow(self: &Arc<Self>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let styles = self.clone();
        tokio::spawn(async move {
            let listen = styles.clone().listen();
            let recheck = styles.recheck();
            tokio::select! {
                () = listen => {}
                () = recheck => {}
                () = shutdown.requested() => {}
            }
        })
    }

    async fn listen(self: Arc<Self>) {
        loop {
            match self.listen_once().await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(%error, "listening for style changes failed; listening again shortly")
                }
            }
            tokio::time::sleep(RECHECK).await;
        }
    }

    async fn listen_once(&self) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(self.store.pool()).await?;
        listener.listen(STYLES_CHANNEL).await?;
        // Whatever changed while nobody listened.
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "could not read the styles");
        }
        loop {
            let notification = listener.recv().await?;
            tracing::info!(
                style = notification.payload(),
                "style changed; reading the styles"
            );
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "could not read the styles; the recheck will");
            }
        }
    }

    async fn recheck(&self) {
        let mut every = tokio::time::interval(RECHECK);
        loop {
            every.tick().await;
            let stale = match self.store.styles_version().await {
                Ok(fingerprint) => {
                    let known = self.known.read().unwrap_or_else(|e| e.into_inner());
                    known.fingerprint != fingerprint
                }
                Err(error) => {
                    tracing::debug!(%error, "could not check the styles' version");
                    false
                }
            };
            if stale && let Err(error) = self.refresh().await {
                tracing::warn!(%error, "could not read the styles");
            }
        }
    }
}

/// Why a request of a style is not made.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The message names no enabled style, or inputs the style does not take.
    #[error("{0}")]
    Malformed(String),
    /// The styles could not be read: not the message's fault.
    #[error(transparent)]
    Store(StoreError),
}
