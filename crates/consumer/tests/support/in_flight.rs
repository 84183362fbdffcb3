//! Requests under way when a fault comes, for the restart tests: sent from
//! viewers of their own (so none waits for its viewer's turn), with images
//! slow enough that the fault finds them in flight, and counted when done.

use dynamo_testkit::{Expected, TestWorld, eventually};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// Sends `count` ghost requests, each from its own viewer with points, while
/// each image takes `image_delay` at the fake OpenAI.
pub async fn send(world: &TestWorld, count: usize, image_delay: Duration) -> Vec<Expected> {
    world.fakes.with(|s| {
        s.image_delay = Some(image_delay);
        for i in 0..count {
            s.balances.insert(format!("in-flight-{i}"), 1_000_000);
        }
    });
    let mut expected = Vec::new();
    for i in 0..count {
        let viewer = format!("in-flight-{i}");
        let body = json!({"type": "image",
            "viewer": {"twitch_user_id": viewer, "twitch_display_name": format!("Viewer{i}")},
            "payload": {"style": "ghost", "inputs": {"subject": format!("a seal {i}")}}});
        let request_id = Uuid::new_v4();
        world
            .broker
            .publish_request(&serde_json::to_vec(&body).unwrap(), Some(request_id))
            .await;
        expected.push(Expected {
            request_id,
            viewer,
            succeeded: true,
        });
    }
    expected
}

/// Waits until this process's consumer holds the lease of at least `count`
/// requests at once: the fault then really comes with work in flight.
pub async fn under_way(world: &TestWorld, count: i64) {
    let pool = world.database.pool().clone();
    let pid = std::process::id().to_string();
    eventually("requests to be in flight", Duration::from_secs(60), || {
        let (pool, pid) = (pool.clone(), pid.clone());
        async move {
            let leased: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM dynamo.image_request
                  WHERE lease_owner LIKE '%:' || $1 || ':%' AND lease_expires_at > now()",
            )
            .bind(pid)
            .fetch_one(&pool)
            .await
            .ok()?;
            (leased >= count).then_some(())
        }
    })
    .await;
}

/// Waits (up to `limit`) until all `count` requests ended, were settled and
/// reported. Polls through the pool, which reconnects after a restart.
pub async fn all_ended(world: &TestWorld, count: i64, limit: Duration) {
    let pool = world.database.pool().clone();
    eventually("every request to end, settled and reported", limit, || {
        let pool = pool.clone();
        async move {
            let ended: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM dynamo.image_request
                  WHERE finished_at IS NOT NULL AND settled_at IS NOT NULL
                    AND result_published_at IS NOT NULL",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (ended >= count).then_some(())
        }
    })
    .await;
}
