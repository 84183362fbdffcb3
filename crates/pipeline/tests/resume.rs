//! Each step's resume point. A run works on a request's *committed* state:
//! a request found in any state (its last owner died after that commit)
//! goes on from the step after it, and never debits, buys or alerts twice.
//! Each test moves a request by hand to a state, as a run that died there
//! would have left it, lets its lease go, and has the pipeline take it up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed setup should fail it

mod support;

use dynamo_pipeline::{Job, Outcome};
use dynamo_store::{Lease, StoredImage};
use dynamo_testkit::FlowStatus;
use support::{Core, POINTS, assert_succeeded, ghost};

/// The request has ended successfully, with exactly one debit, accepted.
fn assert_succeeded_with_one_accepted_debit(core: &Core, job: &Job, outcome: &Outcome) {
    assert_succeeded(outcome);
    let flows = core.flows_of(job.id);
    assert_eq!(flows.len(), 1, "one debit: {flows:?}");
    assert_eq!(flows[0].status, FlowStatus::Accepted);
}

/// Debits the viewer at the fake ledger and records it, as the debit step does.
async fn debit(core: &Core, job: &Job, lease: &Lease) {
    let flow = core
        .ledger
        .debit(&job.request.viewer, job.id, &job.request.style(), POINTS)
        .await
        .unwrap();
    core.store().mark_debited(lease, Some(flow)).await.unwrap();
}

/// Stores an image, as the image step does after its upload.
async fn store_image(core: &Core, lease: &Lease) {
    let image = StoredImage {
        index: 0,
        url: "http://127.0.0.1/images/stored-before.jpg".to_owned(),
        color: None,
        content_type: "image/jpeg".to_owned(),
        byte_size: 1,
    };
    core.store().record_image(lease, &image).await.unwrap();
}

/// The run that moved it died: its lease is let go.
async fn die(core: &Core, lease: &Lease) {
    core.store().release_lease(lease, None).await.unwrap();
}

#[tokio::test]
async fn a_new_request_is_debited_once_alerted_once_and_accepted() {
    let core = Core::start(None).await;
    let job = ghost("a fresh one");
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert_succeeded_with_one_accepted_debit(&core, &job, &outcome);
    assert_eq!(core.alerts_of(job.id).await, 1);
    // Delivered again (a redelivery): it has ended; nothing happens twice.
    core.pipeline.handle(&job).await.unwrap();
    assert_eq!(core.flows_of(job.id).len(), 1);
    assert_eq!(core.alerts_of(job.id).await, 0);
}

#[tokio::test]
async fn a_request_found_debited_resumes_at_its_image_without_a_second_debit() {
    let core = Core::start(None).await;
    let job = ghost("debited before a crash");
    let (_, lease) = core.record(&job).await;
    debit(&core, &job, &lease).await;
    die(&core, &lease).await;
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert_succeeded_with_one_accepted_debit(&core, &job, &outcome);
    assert_eq!(core.alerts_of(job.id).await, 1);
    let images = core.store().images(job.id).await.unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
}

#[tokio::test]
async fn a_request_found_stored_resumes_at_its_alert_with_the_image_it_has() {
    let core = Core::start(None).await;
    let job = ghost("stored before a crash");
    let (_, lease) = core.record(&job).await;
    debit(&core, &job, &lease).await;
    store_image(&core, &lease).await;
    die(&core, &lease).await;
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert_succeeded_with_one_accepted_debit(&core, &job, &outcome);
    assert_eq!(core.alerts_of(job.id).await, 1);
    let images = core.store().images(job.id).await.unwrap();
    assert_eq!(images.len(), 1, "not drawn again: {images:?}");
    assert_eq!(images[0].url, "http://127.0.0.1/images/stored-before.jpg");
}

#[tokio::test]
async fn a_request_found_alerted_is_accepted_and_not_alerted_again() {
    let core = Core::start(None).await;
    let job = ghost("alerted before a crash");
    let (_, lease) = core.record(&job).await;
    debit(&core, &job, &lease).await;
    store_image(&core, &lease).await;
    core.store().mark_alerted(&lease).await.unwrap();
    die(&core, &lease).await;
    let outcome = core.pipeline.handle(&job).await.unwrap();
    assert_succeeded_with_one_accepted_debit(&core, &job, &outcome);
    assert_eq!(core.alerts_of(job.id).await, 0, "its alert aired before");
}
