//! The one retry verdict ([`RetryPolicy::verdict`]): for a failure of the
//! service a step called, given the step's counted failures so far (this
//! one included) and the time since the first, what happens next:
//!
//! - **retry now**: a short wait (up to `RETRY_INLINE_MAX`), in place;
//! - **retry later**: a longer wait, at a time kept in the database, freeing
//!   the consumer's slot;
//! - **hold**: the service as a whole is out, the fleet holds, the request
//!   waits with its tries untouched;
//! - **give up**: trying again cannot help, or the policy ran out: the
//!   request ends (rejected for its prompt, failed otherwise).
//!
//! Both the in-place retries (upload, accept, refund, result) and the
//! deferrable steps (debit, name, image, alert) ask it. dynamo's own
//! database, broker and limiter never reach it: they are not the upstream's
//! failures (`StepError::Infra`, `StepError::Throttled`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed setup should fail it

use dynamo_pipeline::retry::{RetryPolicy, Tally, Verdict, counts, end_state};
use dynamo_store::RequestState;
use dynamo_upstream::{ServiceId, UpstreamError};
use std::time::Duration;

const SERVICE: ServiceId = ServiceId::new("a-provider");

/// RETRY_MAX_ATTEMPTS=3, RETRY_DEADLINE=60s; the wait after the n-th
/// failure is 1s·2ⁿ⁻¹ plus a jitter of up to as much again (after the
/// first: 1–2s, in place; after the second: 2–4s, from the database).
fn policy() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(4),
        max_attempts: 3,
        deadline: Duration::from_secs(60),
        inline_max: Duration::from_secs(2),
        infra_pause: Duration::from_secs(5),
    }
}

/// Each kind of failure the upstream crate reports.
fn failure(kind: &str) -> UpstreamError {
    match kind {
        "5xx" => UpstreamError::Transient {
            service: SERVICE,
            detail: "HTTP 503".into(),
            retry_after: None,
        },
        "5xx asking 30s" => UpstreamError::Transient {
            service: SERVICE,
            detail: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(30)),
        },
        "429 asking 1s" => UpstreamError::RateLimited {
            service: SERVICE,
            detail: "HTTP 429".into(),
            retry_after: Some(Duration::from_secs(1)),
        },
        "timeout" => UpstreamError::TimedOut {
            service: SERVICE,
            detail: "no answer in 150s".into(),
        },
        "outage" => UpstreamError::Outage {
            service: SERVICE,
            reason: "no credit left".into(),
        },
        "models gone" => UpstreamError::ModelsGone {
            service: SERVICE,
            variable: "OPENAI_IMAGE_MODEL",
        },
        "refused" => UpstreamError::Permanent {
            service: SERVICE,
            detail: "HTTP 400".into(),
        },
        "flagged" => UpstreamError::Inadmissible("flagged by moderation".into()),
        "no points" => UpstreamError::NotEnoughPoints,
        other => panic!("no failure {other:?}"),
    }
}

/// The verdict, in the words of the table.
fn decided(kind: &str, failures: u32, failing_for_secs: u64) -> String {
    let policy = policy();
    let error = failure(kind);
    // A failure that does not count is not tallied: the tally stays empty.
    let tally = match counts(&error) {
        true => Tally {
            failures,
            failing_for: Duration::from_secs(failing_for_secs),
        },
        false => Tally::default(),
    };
    match policy.verdict(&error, tally) {
        Verdict::Retry(wait) if wait <= policy.inline_max => "retry now".to_owned(),
        Verdict::Retry(_) => "retry later".to_owned(),
        Verdict::Hold { service, .. } => format!("hold {service}"),
        Verdict::GiveUp => "give up".to_owned(),
    }
}

#[test]
fn the_verdict_table() {
    // kind, failures so far, seconds since the first → verdict
    let table = [
        ("5xx", 1, 0, "retry now"),
        ("5xx", 2, 10, "retry later"),
        ("5xx", 3, 10, "give up"),               // out of tries
        ("5xx", 1, 60, "give up"),               // out of time
        ("5xx asking 30s", 1, 0, "retry later"), // the service's own wait wins
        ("429 asking 1s", 1, 0, "retry now"),
        ("429 asking 1s", 3, 0, "give up"),
        ("timeout", 1, 0, "retry now"),
        ("timeout", 3, 0, "give up"),
        ("outage", 9, 999, "hold a-provider"), // whatever the tally
        ("models gone", 1, 0, "hold a-provider"),
        ("refused", 1, 0, "give up"),
        ("flagged", 1, 0, "give up"),
        ("no points", 1, 0, "give up"),
    ];
    for (kind, failures, secs, expected) in table {
        assert_eq!(
            decided(kind, failures, secs),
            expected,
            "{kind} after {failures} failures over {secs}s"
        );
    }
}

#[test]
fn only_a_failure_that_may_pass_spends_a_try() {
    for kind in ["5xx", "5xx asking 30s", "429 asking 1s", "timeout"] {
        assert!(counts(&failure(kind)), "{kind}");
    }
    for kind in ["outage", "models gone", "refused", "flagged", "no points"] {
        assert!(!counts(&failure(kind)), "{kind}");
    }
}

#[test]
fn the_service_s_own_wait_wins_and_ours_stay_under_the_cap() {
    let policy = policy();
    assert_eq!(
        policy.verdict(&failure("5xx asking 30s"), Tally::default()),
        Verdict::Retry(Duration::from_secs(30))
    );
    let asked = UpstreamError::RateLimited {
        service: SERVICE,
        detail: "HTTP 429".into(),
        retry_after: Some(Duration::from_secs(7)),
    };
    let tally = Tally {
        failures: 1,
        failing_for: Duration::ZERO,
    };
    assert_eq!(
        policy.verdict(&asked, tally),
        Verdict::Retry(Duration::from_secs(7))
    );
    for failures in 1..=10 {
        let wait = policy.delay(failures);
        assert!(wait <= policy.max_delay, "{failures}: {wait:?}");
    }
}

#[test]
fn how_a_request_that_gave_up_ends() {
    let (state, reason) = end_state(&failure("flagged"), "screening the prompt");
    assert_eq!(state, RequestState::Rejected);
    assert_eq!(reason, "flagged by moderation");
    let (state, reason) = end_state(&failure("no points"), "debiting");
    assert_eq!(
        (state, reason.as_str()),
        (RequestState::Failed, "not enough points")
    );
    let (state, reason) = end_state(&failure("refused"), "generating the image");
    assert_eq!(state, RequestState::Failed);
    assert_eq!(
        reason,
        "generating the image failed: a-provider refused: HTTP 400"
    );
}
