//! The fleet-wide rate limit, with several limiters (standing in for several
//! consumer processes) sharing one database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::{Permit, RateLimiter};
use dynamo_testkit::TestDatabase;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn three_processes_never_exceed_the_limit_in_any_window() {
    let database = TestDatabase::create().await;
    let window = Duration::from_millis(1500);
    let limit = 4;
    let calls = 12;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let limiter = RateLimiter::new(
            database.pool().clone(),
            "openai-images",
            limit,
            window,
            MINUTE,
        );
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for _ in 0..calls / 3 {
                let permit = limiter.acquire().await.unwrap();
                times.push(started.elapsed());
                permit.finish().await.unwrap();
            }
            times
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    times.sort();
    // Times are taken when acquire returns, a few milliseconds after the
    // database admitted the call; allow for that jitter.
    let strict = window - Duration::from_millis(50);
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| **u < *t + strict).count();
        assert!(
            in_window <= limit as usize,
            "{in_window} calls within {window:?} from {t:?}: {times:?}"
        );
    }
    // 12 calls at 4 per window: the last batch starts after two full windows.
    // (How close to that ideal it comes is a figure for the rate_limit bench:
    // an upper bound on wall-clock time fails on a busy 2-core machine.)
    let total = *times.last().unwrap();
    assert!(total >= strict * 2, "{total:?}");
}

#[tokio::test]
async fn a_pause_holds_every_process_back() {
    let database = TestDatabase::create().await;
    let a = RateLimiter::new(
        database.pool().clone(),
        "openai-requests",
        100,
        MINUTE,
        MINUTE,
    );
    let b = RateLimiter::new(
        database.pool().clone(),
        "openai-requests",
        100,
        MINUTE,
        MINUTE,
    );
    let pause = Duration::from_millis(400);
    let paused_at = Instant::now();
    a.pause(pause).await.unwrap();
    let wait = b.try_acquire().await.unwrap().expect_err("paused");
    assert!(wait <= pause, "{wait:?}");
    let _permit = b.acquire().await.unwrap();
    // Ordering, not speed: admitted only once the whole pause was over.
    let admitted_after = paused_at.elapsed();
    assert!(admitted_after >= pause, "{admitted_after:?}");
    let other = RateLimiter::new(database.pool().clone(), "openai-images", 1, MINUTE, MINUTE);
    assert!(
        other.try_acquire().await.unwrap().is_ok(),
        "other limiters are not paused"
    );
}

#[tokio::test]
async fn a_call_holds_its_slot_until_a_window_after_it_finished() {
    let database = TestDatabase::create().await;
    let window = Duration::from_millis(300);
    let limiter = RateLimiter::new(database.pool().clone(), "openai-images", 1, window, MINUTE);
    let permit = limiter.acquire().await.unwrap();
    assert!(limiter.try_acquire().await.unwrap().is_err(), "in flight");
    tokio::time::sleep(window * 2).await; // the call's own duration, not a wait for a condition
    assert!(
        limiter.try_acquire().await.unwrap().is_err(),
        "still in flight after a window"
    );
    permit.finish().await.unwrap();
    let wait = limiter
        .try_acquire()
        .await
        .unwrap()
        .expect_err("a window after the finish");
    assert!(wait > Duration::from_millis(200), "{wait:?}");
    let next = limiter.acquire().await.unwrap();
    assert!(
        next.waited >= Duration::from_millis(200),
        "{:?}",
        next.waited
    );
}

#[tokio::test]
async fn a_call_whose_process_died_stops_counting() {
    let database = TestDatabase::create().await;
    let short = Duration::from_millis(200);
    let limiter = RateLimiter::new(database.pool().clone(), "openai-images", 1, short, short);
    let abandoned = limiter.acquire().await.unwrap();
    std::mem::forget(abandoned); // as if the process was killed mid-call
    let next = limiter.acquire().await.unwrap();
    assert!(
        next.waited >= Duration::from_millis(300),
        "expiry plus a window: {:?}",
        next.waited
    );
}

#[tokio::test]
async fn one_call_finishes_its_permits_of_every_limiter_together() {
    let database = TestDatabase::create().await;
    let window = Duration::from_millis(300);
    let limiter = |name| RateLimiter::new(database.pool().clone(), name, 1, window, MINUTE);
    let (requests, images) = (limiter("openai-requests"), limiter("openai-images"));
    let permits = vec![
        requests.acquire().await.unwrap(),
        images.acquire().await.unwrap(),
    ];
    for limiter in [&requests, &images] {
        let wait = limiter.try_acquire().await.unwrap().expect_err("in flight");
        assert!(
            wait <= Duration::from_millis(100),
            "polls an in-flight call: {wait:?}"
        );
    }
    Permit::finish_all(permits).await.unwrap();
    for limiter in [&requests, &images] {
        let wait = limiter
            .try_acquire()
            .await
            .unwrap()
            .expect_err("a window after the finish");
        assert!(
            wait > Duration::from_millis(200),
            "{}: {wait:?}",
            limiter.name()
        );
    }
}

/// Admission trusts a per-limiter count kept by triggers; calls removed
/// behind the limiter's back (by hand, or by an older consumer) must free
/// exactly their slots, no more.
#[tokio::test]
async fn calls_removed_by_hand_free_exactly_their_slots() {
    let database = TestDatabase::create().await;
    let pool = database.pool();
    let limiter = RateLimiter::new(pool.clone(), "openai-images", 3, MINUTE, MINUTE);
    let other = RateLimiter::new(pool.clone(), "openai-requests", 3, MINUTE, MINUTE);
    let mut permits = Vec::new();
    for _ in 0..3 {
        permits.push(limiter.acquire().await.unwrap());
        permits.push(other.acquire().await.unwrap());
    }
    assert!(limiter.try_acquire().await.unwrap().is_err(), "full");

    sqlx::query(
        "DELETE FROM dynamo.rate_limit_call
         WHERE id = (SELECT min(id) FROM dynamo.rate_limit_call WHERE limiter = 'openai-images')",
    )
    .execute(pool)
    .await
    .unwrap();
    assert!(
        limiter.try_acquire().await.unwrap().is_ok(),
        "one slot freed"
    );
    assert!(limiter.try_acquire().await.unwrap().is_err(), "only one");
    assert!(
        other.try_acquire().await.unwrap().is_err(),
        "the other limiter is untouched"
    );

    sqlx::query("TRUNCATE dynamo.rate_limit_call")
        .execute(pool)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(limiter.try_acquire().await.unwrap().is_ok(), "emptied");
    }
    assert!(limiter.try_acquire().await.unwrap().is_err(), "full again");
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT c.limiter, c.calls, (SELECT count(*) FROM dynamo.rate_limit_call r
                                     WHERE r.limiter = c.limiter)
         FROM dynamo.rate_limit_count c ORDER BY c.limiter",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(counts, vec![("openai-images".to_owned(), 3, 3)]);
}

/// The upstream's own budget, below ours: with 2 calls left until its reset
/// and one of ours still in flight, one more call is admitted, then none
/// until the reset (far off here: the test never races it).
#[tokio::test]
async fn the_upstreams_remaining_budget_reserves_the_slots_beyond_it() {
    let database = TestDatabase::create().await;
    let limiter = RateLimiter::new(
        database.pool().clone(),
        "openai-requests",
        10,
        MINUTE,
        MINUTE,
    );
    let in_flight = limiter.acquire().await.unwrap();
    let reset = Duration::from_secs(30);
    let reserved = limiter.keep_within(2, reset).await.unwrap();
    // 10 slots: the call in flight, one left of the budget, 8 reserved.
    assert_eq!(reserved, 8);
    let admitted = limiter.try_acquire().await.unwrap();
    assert!(admitted.is_ok(), "the budget's last call: {admitted:?}");
    let Err(wait) = limiter.try_acquire().await.unwrap() else {
        panic!("admitted beyond the upstream's budget");
    };
    assert!(wait <= reset, "held until the reset at most: {wait:?}");
    in_flight.finish().await.unwrap();
    assert!(
        limiter.try_acquire().await.unwrap().is_err(),
        "a call that finished spent its share of the budget"
    );
    // With more left than our own limit admits, nothing is reserved.
    let other = RateLimiter::new(database.pool().clone(), "openai-chat", 3, MINUTE, MINUTE);
    assert_eq!(other.keep_within(5, reset).await.unwrap(), 0);
}

/// Reserved slots free at the upstream's reset, not a window later.
#[tokio::test]
async fn reserved_slots_free_at_the_reset() {
    let database = TestDatabase::create().await;
    let limiter = RateLimiter::new(
        database.pool().clone(),
        "openai-requests",
        3,
        MINUTE,
        MINUTE,
    );
    let reserved = limiter
        .keep_within(0, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(reserved, 3, "nothing left: every slot reserved");
    // A deadline far beyond the reset (the window is a minute): its expiry is the failure.
    dynamo_testkit::eventually(
        "the reset to free the slots",
        Duration::from_secs(30),
        || async { limiter.try_acquire().await.unwrap().ok() },
    )
    .await;
    for _ in 0..2 {
        assert!(
            limiter.try_acquire().await.unwrap().is_ok(),
            "every slot is free again"
        );
    }
}
