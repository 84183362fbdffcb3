//! An intake any consumer can run (issue 29): with `TWITCH_INTAKE=true` on
//! every consumer, exactly one holds the EventSub session at a time, through
//! the intake lease in PostgreSQL (`Store::take_intake_lease`). The holder
//! renews it every [`RENEW_EVERY`]; the others look every [`LOOK_EVERY`],
//! so when the holder dies (kill -9) one of them takes over within
//! [`LEASE_TTL`] + [`LOOK_EVERY`] — and its session lists the `UNFULFILLED`
//! redemptions on connect, so nothing redeemed meanwhile is lost.
//!
//! A holder that cannot renew — taken over after it froze (the fence moved
//! on), or without its database for longer than the lease — drops its
//! socket at once. Should two sessions overlap for a moment, the intake's
//! writes are idempotent by redemption id: nothing is taken in twice.

use crate::eventsub;
use crate::intake::Intake;
use crate::rewards::Rewarder;
use dynamo_runtime::Shutdown;
use dynamo_store::{IntakeLease, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(6);
/// How often the holder renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often the other consumers look whether it lapsed.
pub const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Runs the intake whenever this consumer (`holder`) holds the lease, until
/// `shutdown`; with `rewarder`, the holder also keeps the styles' rewards
/// in line (rewards::keep_in_line), so one process changes them.
pub async fn run(
    store: Store,
    holder: String,
    intake: Arc<Intake>,
    rewarder: Option<Rewarder>,
    url: String,
    shutdown: Shutdown,
) {
    loop {
        match store.take_intake_lease(&holder, LEASE_TTL).await {
            Ok(Some(lease)) => {
                tracing::info!(fence = lease.fence, "this consumer runs the Twitch intake");
                let shut_down =
                    hold(&store, lease, &intake, rewarder.as_ref(), &url, &shutdown).await;
                if shut_down {
                    if let Err(error) = store.release_intake_lease(lease).await {
                        tracing::warn!(%error, "could not give up the Twitch intake's lease; it lapses by itself");
                    }
                    break;
                }
            }
            Ok(None) => tracing::debug!("another consumer runs the Twitch intake"),
            Err(error) => tracing::warn!(%error, "could not look at the Twitch intake's lease"),
        }
        tokio::select! {
            _ = shutdown.requested() => break,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// Runs the EventSub session while the lease holds; `true` on shutdown,
/// `false` when the lease was lost (the session is stopped and its socket
/// dropped before this returns).
async fn hold(
    store: &Store,
    lease: IntakeLease,
    intake: &Arc<Intake>,
    rewarder: Option<&Rewarder>,
    url: &str,
    shutdown: &Shutdown,
) -> bool {
    let session_stop = Shutdown::new();
    let session = tokio::spawn(eventsub::run(
        intake.clone(),
        url.to_owned(),
        session_stop.clone(),
    ));
    let rewards = match (rewarder, intake.rewards.changes()) {
        (Some(rewarder), Some(changes)) => Some(tokio::spawn(crate::rewards::keep_in_line(
            rewarder.clone(),
            changes,
            session_stop.clone(),
        ))),
        _ => None,
    };
    // Until then nobody else can have taken it, whatever the database says.
    let mut held_until = Instant::now() + LEASE_TTL;
    let shut_down = loop {
        tokio::select! {
            _ = shutdown.requested() => break true,
            _ = tokio::time::sleep(RENEW_EVERY) => {}
        }
        let asked_at = Instant::now();
        match store.renew_intake_lease(lease, LEASE_TTL).await {
            Ok(true) => held_until = asked_at + LEASE_TTL,
            Ok(false) => {
                tracing::warn!(
                    fence = lease.fence,
                    "another consumer took the Twitch intake over; dropping this EventSub session"
                );
                break false;
            }
            Err(error) if Instant::now() + RENEW_EVERY >= held_until => {
                tracing::warn!(%error, "cannot renew the Twitch intake's lease before it lapses; dropping this EventSub session");
                break false;
            }
            Err(error) => {
                tracing::warn!(%error, "could not renew the Twitch intake's lease; trying again")
            }
        }
    };
    session_stop.trigger();
    if let Err(error) = session.await {
        tracing::error!(%error, "the EventSub session task failed");
    }
    if let Some(rewards) = rewards
        && let Err(error) = rewards.await
    {
        tracing::error!(%error, "the rewards task failed");
    }
    shut_down
}
