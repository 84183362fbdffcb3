//! Services are types: a provider's holds and rate limits are keyed by its
//! own id ([`ServiceId`]), so one image provider's outage or limit never
//! stops another. The placeholder is the second provider here; OpenAI's
//! hold and limits are set in the database as the fleet would set them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed setup should fail it

mod support;

use dynamo_pipeline::{Outcome, Wait};
use dynamo_store::{RateLimiter, RequestState};
use dynamo_upstream::{ImageProvider, Placeholder};
use std::time::Duration;
use support::{Core, OPENAI, WAIT, assert_succeeded, ghost};

#[tokio::test]
async fn a_hold_on_one_image_provider_does_not_stop_another() {
    let core = Core::start(None).await;
    core.store()
        .hold(OPENAI.as_str(), "no credit left", Duration::from_secs(30))
        .await
        .unwrap();
    let job = ghost("drawn while OpenAI is out");
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert_succeeded(&outcome);
    assert!(
        core.store()
            .current_hold(OPENAI.as_str())
            .await
            .unwrap()
            .is_some(),
        "OpenAI's hold is OpenAI's alone: still on"
    );
}

#[tokio::test]
async fn a_hold_on_the_provider_itself_admits_nothing_and_charges_nothing() {
    let core = Core::start(None).await;
    let placeholder = ImageProvider::service(&Placeholder);
    core.store()
        .hold(
            placeholder.as_str(),
            "drawing is off",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let job = ghost("waits for its provider");
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Waiting {
                state: RequestState::Received,
                why: Wait::Held,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(
        core.flows_of(job.id).is_empty(),
        "nothing debited while held"
    );
}

/// Proof for issue 26, item 4: before each provider had its own limits,
/// the placeholder's image call took a slot of `openai-images`, and waited
/// for OpenAI's limit.
#[tokio::test]
async fn another_provider_s_rate_limit_does_not_slow_the_placeholder() {
    let core = Core::start(Some(1)).await;
    // OpenAI's one image slot a minute is taken, by a call elsewhere in the fleet.
    let elsewhere = RateLimiter::new(
        core.world.database.pool().clone(),
        &OPENAI.limiter("images"),
        1,
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let _slot = tokio::time::timeout(WAIT, elsewhere.acquire())
        .await
        .unwrap()
        .unwrap();
    let job = ghost("drawn while OpenAI's images are at their limit");
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert_succeeded(&outcome);
}
