//! Rate-limit efficiency: a burst of requests over two real `dynamo-consumer`
//! processes sharing one image limit, against a fake OpenAI that takes 2 s
//! per image and answers 429 to any call over the limit. Reports the time to
//! finish against the ideal (requests / limit per minute), the most calls
//! that arrived in any window, and the 429s provoked.
//!
//! `cargo bench -p dynamo-consumer --bench rate_limit`: 100 requests at 30
//! images per 60 s (about 3.5 minutes). Under `cargo test`: 10 requests at 4
//! per 3 s with 200 ms calls, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is the point

use dynamo_testkit::{Running, TestWorld, command, ghost_request};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (requests, limit, window, latency) = if benchmarking {
        (
            100usize,
            30usize,
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
    } else {
        (10, 4, Duration::from_secs(3), Duration::from_millis(200))
    };
    if !benchmarking {
        println!(
            "SMOKE RUN (cargo test): {requests} requests in a {window:?} window, only to prove this \
             benchmark still runs; its figures measure nothing. Measure with \
             `cargo bench -p dynamo-consumer --bench rate_limit`."
        );
    }
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.image_delay = Some(latency);
        s.image_limit = Some((limit, window));
    });
    let (results, _alerts) = world.broker.capture_outputs().await;
    let env = world
        .consumer_env()
        .with("OPENAI_IMAGES_PER_MINUTE", limit.to_string())
        .with("RATE_LIMIT_WINDOW", format!("{}ms", window.as_millis()))
        .with("OPENAI_TIMEOUT", "30s")
        .with("RETRY_DEADLINE", "30m")
        .with("RETRY_MAX_ATTEMPTS", "20")
        .with("CONSUMER_PREFETCH", "16")
        .with("VIEWER_MAX_IN_FLIGHT", "0")
        // One viewer sends the whole burst; points are not what this measures.
        .with("POINTS_COST", "0")
        .with("RUST_LOG", "warn");
    let binary = env!("CARGO_BIN_EXE_dynamo-consumer");
    // Killed on drop: a failed run leaves no consumer behind on its queues.
    let mut processes: Vec<_> = (0..2)
        .map(|_| Running::spawn(command(binary, &env).stdout(std::process::Stdio::null())))
        .collect();
    let started = Instant::now();
    for i in 0..requests {
        world
            .broker
            .publish_request(&ghost_request(&format!("burst {i}")), Some(Uuid::new_v4()))
            .await;
    }
    let mut failed = Vec::new();
    for done in 1..=requests {
        let result = world
            .broker
            .next(&results, window * 10 + Duration::from_secs(60))
            .await
            .expect("every request finishes");
        if result.body["state"] != "succeeded" {
            failed.push(result.body["reason"].to_string());
        }
        if benchmarking && done % 10 == 0 {
            eprintln!("{done}/{requests} finished after {:.0?}", started.elapsed());
        }
    }
    let total = started.elapsed();
    for process in &mut processes {
        process.kill();
    }
    let (times, provoked) = world
        .fakes
        .with(|s| (s.image_call_times.clone(), s.image_429s));
    let busiest = times
        .iter()
        .map(|t| {
            times
                .iter()
                .filter(|u| **u >= *t && u.duration_since(*t) < window)
                .count()
        })
        .max()
        .unwrap_or(0);
    let ideal = window.mul_f64(requests as f64 / limit as f64);
    println!(
        "rate limit: {requests} requests, {limit} images per {window:?}, {latency:?} per image, 2 processes"
    );
    println!(
        "finished in {:.1} s; ideal {:.1} s; ratio {:.3} ({})",
        total.as_secs_f64(),
        ideal.as_secs_f64(),
        total.as_secs_f64() / ideal.as_secs_f64(),
        if benchmarking {
            "target ≤ 1.05"
        } else {
            "smoke run: not compared with the target"
        }
    );
    println!(
        "most calls in any {window:?}: {busiest} (limit {limit}); 429s provoked: {provoked}; failed: {}",
        failed.len()
    );
    assert!(failed.is_empty(), "every request must succeed: {failed:?}");
    assert_eq!(times.len(), requests, "one accepted image call per request");
}
