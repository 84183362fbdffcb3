//! Redemptions settled by someone else (`…redemption.update`): a moderator
//! who cancels one in Twitch's reward queue refunds the viewer, so its
//! request is withdrawn — not bought if its image is not made yet, taken
//! out of the approval queue, never aired — and dynamo does not refund it a
//! second time (it is recorded as settled). FULFILLED elsewhere counts as
//! settled, and the request goes on. An update to the status dynamo itself
//! set is its own PATCH's echo (Twitch does not say it leaves those out).

use crate::TwitchError;
use crate::intake::Redemption;
use dynamo_store::{Decision, Store};

/// The reason a withdrawn request ends with, and its viewer reads.
pub const WITHDRAWN: &str = "cancelled on Twitch by the channel";

/// What an update meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Cancelled elsewhere: its request is withdrawn.
    Withdrawn,
    /// Fulfilled elsewhere: settled, the request goes on.
    Fulfilled,
    /// dynamo's own update, a repeat, one that never became a request, or
    /// not one of dynamo's.
    Ignored,
}

pub async fn changed(store: &Store, update: &Redemption) -> Result<Changed, TwitchError> {
    let Some(record) = store.redemption(&update.id).await? else {
        return Ok(Changed::Ignored);
    };
    if record.settled_status.is_some() || record.published_at.is_none() {
        // Settled already (the echo of dynamo's own PATCH, or a repeat), or
        // never a request: the intake settles those itself.
        return Ok(Changed::Ignored);
    }
    // A request that ended settles its redemption itself: an update racing
    // that is its echo, not someone else's decision.
    if store.request_finished(record.request_id).await? {
        return Ok(Changed::Ignored);
    }
    match update.status.as_str() {
        "CANCELED" => {
            if store
                .redemption_cancelled_elsewhere(&update.id, WITHDRAWN)
                .await?
                .is_none()
            {
                return Ok(Changed::Ignored);
            }
            // Waiting for the streamer's approval: declined now. Otherwise
            // the pipeline finds it withdrawn before it buys or airs.
            let declined = store
                .decide_approval(
                    record.request_id,
                    Decision::Declined,
                    "twitch",
                    Some(WITHDRAWN),
                )
                .await
                .is_ok();
            tracing::info!(redemption = %update.id, request = %record.request_id, declined, "cancelled on Twitch by someone else: the request is withdrawn, with no second refund");
            Ok(Changed::Withdrawn)
        }
        "FULFILLED" => {
            store
                .mark_redemption_settled(&update.id, "FULFILLED", None)
                .await?;
            tracing::info!(redemption = %update.id, "fulfilled on Twitch by someone else: counts as settled");
            Ok(Changed::Fulfilled)
        }
        _ => Ok(Changed::Ignored),
    }
}
