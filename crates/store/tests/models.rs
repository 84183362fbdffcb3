//! The model catalogue is written by every consumer of a fleet at once when
//! they start together: its writers must not deadlock each other.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::{ListedModel, Store};
use dynamo_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_starting_together_write_the_catalogue_without_deadlocks() {
    let database = TestDatabase::create().await;
    // Preference order and the listing's order differ, as they do for real:
    // the two kinds of write meet the same rows in opposite orders.
    let preferred: Vec<String> = (0..8).rev().map(|i| format!("gpt-image-{i}")).collect();
    let listed: Vec<ListedModel> = (0..8)
        .map(|i| ListedModel {
            id: format!("gpt-image-{i}"),
            shutdown_date: None,
        })
        .collect();
    let mut starts = Vec::new();
    for _ in 0..4 {
        let store = Store::new(database.pool().clone());
        let (preferred, listed) = (preferred.clone(), listed.clone());
        starts.push(tokio::spawn(async move {
            for _ in 0..25 {
                store
                    .configure_models("OPENAI_IMAGE_MODEL", &preferred)
                    .await?;
                store.record_catalogue(&listed).await?;
            }
            Ok::<_, dynamo_store::StoreError>(())
        }));
    }
    for start in starts {
        start
            .await
            .unwrap()
            .expect("no write of the catalogue fails");
    }
    let configured = Store::new(database.pool().clone())
        .configured_models()
        .await
        .unwrap();
    assert_eq!(configured.len(), 8, "{configured:?}");
}
