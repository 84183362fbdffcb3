//! Pipeline overhead: requests through the real `dynamo-consumer` binary with
//! instant fakes (OpenAI answers at once with a realistic 1024x1024 ghost as
//! a JPEG, as it does since dynamo asks for `output_format: jpeg`; auth and
//! ledger instant; real PostgreSQL, RabbitMQ and moto S3), against, in the
//! same run: (a) a bare lapin loop that consumes, publishes with confirm and
//! acks; (b) the store calls the pipeline makes per request, without it;
//! (c) the image step alone on the same answer; (d) S3 PUTs of the same JPEG
//! to the same server. The bound without the image step is what (a), (b) and
//! (d) cost one after the other: 1 / (1/a + 1/b + 1/d) requests/s.
//!
//! For the tail, (b) and (d) also run alone at the latency phase's rate
//! (one started per interval, overlapping as requests do): the p99 its
//! database and storage calls have on this machine by themselves.
//!
//! `cargo bench -p dynamo-consumer --bench pipeline` runs 2,000 requests;
//! under `cargo test` it runs 20 as a smoke test. `PIPELINE_REQUESTS`
//! overrides the count; `PIPELINE_RUST_LOG` the consumer's `RUST_LOG`
//! (`info` shows each request's step timings); `PIPELINE_ANSWER=png` makes
//! the fake answer a PNG instead (what OpenAI sent before dynamo asked for
//! JPEG: the "before" of BENCHMARKS.md §3);
//! `PIPELINE_SMAPS=<file>` keeps the idle consumer's `/proc/PID/smaps` there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is the point

use dynamo_store::{ImageCost, NewRequest, RateLimiter, Store, StoredImage};
use dynamo_testkit::{Running, TestWorld, command};
use dynamo_wire::GenerationRequest;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Distinct viewers the requests come from (each pays for every one of theirs).
const VIEWERS: usize = 200;
/// Requests in flight in the consumer (CONSUMER_PREFETCH) and in the references.
const IN_FLIGHT: usize = 16;
/// CPU per ghost request before ghosts were answered as JPEG (BENCHMARKS.md
/// §3, 2026-11-23), and the target: at most a quarter of it.
const CPU_MS_BEFORE: f64 = 24.7;
/// publish→alert p99 at half load, target in ms.
const P99_TARGET_MS: f64 = 25.0;

fn ghost_png() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/images/ghost-1024.png"))
        .unwrap()
}

fn request_body(i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "image",
        "viewer": {"twitch_user_id": format!("{}", 1000 + i % VIEWERS), "twitch_display_name": format!("viewer{}", i % VIEWERS)},
        "payload": {"style": "ghost", "inputs": {"subject": format!("a seal number {i}")}},
    }))
    .unwrap()
}

/// Arrival time of each alert, by request id, from a consumer on a capture queue.
async fn watch_alerts(channel: Channel, queue: String) -> Arc<Mutex<HashMap<String, Instant>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            record.lock().unwrap().insert(id, Instant::now());
        }
    });
    seen
}

struct Process {
    pid: u32,
}

impl Process {
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap() // kB
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0 // USER_HZ
    }
}

/// What the fake OpenAI answers ghosts with.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// A 1024x1024 JPEG, as OpenAI answers `output_format: jpeg` (today).
    Jpeg,
    /// The PNG itself, as OpenAI answered before dynamo asked for JPEG.
    Png,
}

impl Answer {
    fn from_env() -> Answer {
        match std::env::var("PIPELINE_ANSWER").as_deref() {
            Err(_) | Ok("jpeg") => Answer::Jpeg,
            Ok("png") => Answer::Png,
            Ok(other) => panic!("PIPELINE_ANSWER={other:?}: expected jpeg or png"),
        }
    }

    fn output_format(self) -> &'static str {
        match self {
            Answer::Jpeg => "jpeg",
            Answer::Png => "png",
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_for(seen: &Mutex<HashMap<String, Instant>>, ids: &[Uuid], limit: Duration) {
    let started = Instant::now();
    loop {
        let done = {
            let seen = seen.lock().unwrap();
            ids.iter()
                .filter(|id| seen.contains_key(&id.to_string()))
                .count()
        };
        if done == ids.len() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "only {done} of {} alerts arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (a) consume → publish with confirm → ack, `n` messages, IN_FLIGHT unacked.
async fn bare_lapin(world: &TestWorld, n: usize) -> f64 {
    let connection = &world.broker.connection;
    let source = format!("{}.bare-in", world.broker.topology.requests_exchange);
    let sink = format!("{}.bare-out", world.broker.topology.requests_exchange);
    let channel = connection.create_channel().await.unwrap();
    // auto_delete only removes a queue that had a consumer: the sink never
    // has one, so both are deleted below.
    for queue in [&source, &sink] {
        channel
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    channel
        .basic_qos(IN_FLIGHT as u16, Default::default())
        .await
        .unwrap();
    for i in 0..n {
        channel
            .basic_publish(
                "".into(),
                source.as_str().into(),
                BasicPublishOptions::default(),
                &request_body(i),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
    }
    let out = connection.create_channel().await.unwrap();
    out.confirm_select(Default::default()).await.unwrap();
    let mut consumer = channel
        .basic_consume(
            source.as_str().into(),
            "bare".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = futures::stream::FuturesUnordered::new();
    let mut done = 0;
    while done < n {
        tokio::select! {
            Some(delivery) = consumer.next(), if tasks.len() < IN_FLIGHT => {
                let delivery = delivery.unwrap();
                let out = out.clone();
                let sink = sink.clone();
                tasks.push(async move {
                    out.basic_publish("".into(), sink.as_str().into(), BasicPublishOptions::default(), &delivery.data, BasicProperties::default().with_delivery_mode(2))
                        .await.unwrap().await.unwrap();
                    delivery.ack(BasicAckOptions::default()).await.unwrap();
                });
            }
            Some(()) = tasks.next() => done += 1,
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    channel
        .basic_cancel("bare".into(), Default::default())
        .await
        .unwrap();
    for queue in [&source, &sink] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    rate
}

/// (b) the store calls the pipeline makes for one ghost request, in order
/// (crates/pipeline): record and lease, viewer slot, rate-limit permits for
/// moderation and the image, debit, the kept answer (`answer`, as bought),
/// image, alert, success, result, release.
async fn store_calls(store: &Store, limiters: &[RateLimiter; 2], answer: &[u8], i: usize) {
    let request = GenerationRequest::from_slice(&request_body(i)).unwrap();
    let id = Uuid::new_v4();
    let (_, _, lease) = store
        .record(
            &NewRequest {
                id,
                request: &request,
                prompt: "a ghostly seal",
                settings: &dynamo_wire::StyleSettings::legacy(&request.style()),
                points_cost: 200,
                free_of_charge: false,
                retry_of: None,
                fingerprint: None,
                trial: false,
            },
            "bench",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let lease = lease.unwrap();
    store
        .start_if_viewer_has_room(
            &lease,
            request.viewer.twitch_user_id.as_str(),
            1000,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    limiters[0].acquire().await.unwrap().finish().await.unwrap(); // moderation
    store
        .mark_debited(&lease, Some(Uuid::new_v4()))
        .await
        .unwrap();
    limiters[0].acquire().await.unwrap().finish().await.unwrap(); // image: requests
    limiters[1].acquire().await.unwrap().finish().await.unwrap(); // image: images
    let cost = ImageCost {
        model: "bench",
        cost_usd: 0.0,
        priced_by: "price",
        input_tokens: None,
        output_tokens: None,
    };
    store.keep_bought(&lease, answer, &cost).await.unwrap();
    let image = StoredImage {
        index: 0,
        url: format!("https://x.test/{id}.jpg"),
        color: None,
        content_type: "image/jpeg".into(),
        byte_size: 120_000,
    };
    store.record_image(&lease, &image).await.unwrap();
    store.mark_alerted(&lease).await.unwrap();
    store.mark_succeeded(&lease).await.unwrap();
    store.mark_result_published(&lease).await.unwrap();
    store.release_lease(&lease, None).await.unwrap();
}

/// The store and limiters (b) runs against, as the consumer's.
fn bare_store(world: &TestWorld) -> (Store, Arc<[RateLimiter; 2]>) {
    let store = Store::new(world.database.pool().clone());
    let pool = world.database.pool().clone();
    let limiter = |name: &str| {
        RateLimiter::new(
            pool.clone(),
            name,
            1_000_000,
            Duration::from_secs(60),
            Duration::from_secs(150),
        )
    };
    (
        store,
        Arc::new([limiter("bench-requests"), limiter("bench-images")]),
    )
}

async fn bare_sql(world: &TestWorld, answer: Arc<Vec<u8>>, n: usize) -> f64 {
    let (store, limiters) = bare_store(world);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(IN_FLIGHT, |i| {
            let (store, limiters, answer) = (store.clone(), limiters.clone(), answer.clone());
            async move { store_calls(&store, &limiters, &answer, i).await }
        })
        .await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// How long each of `n` calls took, started one every `interval` whether or
/// not the one before has finished (as requests arrive): the tail a piece
/// has on its own at the rate the latency phase ran, sorted, in ms.
async fn paced<F, Fut>(n: usize, interval: Duration, call: F) -> Vec<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut ticker = tokio::time::interval(interval);
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let call = call(i);
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            call.await;
            started.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut took = Vec::with_capacity(n);
    for call in calls {
        took.push(call.await.unwrap());
    }
    took.sort_by(f64::total_cmp);
    took
}

/// (c) the image step alone on the fake's answer, on every core (as the
/// consumer runs it).
async fn image_step(answer: Arc<Vec<u8>>, n: usize) -> f64 {
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(IN_FLIGHT, |_| {
            let answer = answer.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    dynamo_imaging::process_ghost(&answer).unwrap()
                })
                .await
                .unwrap();
            }
        })
        .await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// One PUT of `body` to the test bucket, as the upload step makes it.
fn s3_put(world: &TestWorld, body: bytes::Bytes, key: String) -> impl Future<Output = ()> + use<> {
    let (client, bucket) = (world.bucket.client.clone(), world.bucket.name.clone());
    async move {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .content_type("image/jpeg")
            .send()
            .await
            .unwrap();
    }
}

/// (d) PUTs of the processed JPEG to the same S3-protocol server.
async fn s3_puts(world: &TestWorld, jpeg: Vec<u8>, n: usize) -> f64 {
    let jpeg = bytes::Bytes::from(jpeg);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(IN_FLIGHT, |i| {
            s3_put(world, jpeg.clone(), format!("bench/{i}.jpg"))
        })
        .await;
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("PIPELINE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benchmarking { 2000 } else { 20 });
    if !benchmarking {
        println!(
            "SMOKE RUN (cargo test): {n} requests, only to prove this benchmark still runs; \
             its figures measure nothing. Measure with `cargo bench -p dynamo-consumer --bench pipeline`."
        );
    }
    let answer_format = Answer::from_env();
    let world = TestWorld::start().await;
    let png = ghost_png();
    // The stored ghost either way; as the JPEG answer, it stands in for
    // OpenAI's own q80 encoding of the same picture (same size, same kind).
    let jpeg = dynamo_imaging::process_ghost(&png).unwrap().bytes;
    let answer = match answer_format {
        Answer::Jpeg => jpeg.clone(),
        Answer::Png => png,
    };
    world
        .fakes
        .serve_image(&answer, answer_format.output_format());
    let answer_json_bytes = world.fakes.with(|s| s.image_answer.as_ref().unwrap().len());
    world.fakes.with(|s| {
        for viewer in 0..VIEWERS {
            s.balances
                .insert(format!("{}", 1000 + viewer), i64::MAX / 2);
        }
    });

    let env = world
        .consumer_env()
        .with("CONSUMER_PREFETCH", IN_FLIGHT.to_string())
        .with("VIEWER_MAX_IN_FLIGHT", "16")
        // The limiter still does its bookkeeping; it just never makes anyone wait.
        .with("OPENAI_REQUESTS_PER_MINUTE", "10000000")
        .with("OPENAI_IMAGES_PER_MINUTE", "10000000")
        .with(
            "RUST_LOG",
            std::env::var("PIPELINE_RUST_LOG").unwrap_or("warn".into()),
        )
        // As the Dockerfile ships it: glibc gives image buffers back.
        .with("MALLOC_MMAP_THRESHOLD_", "131072");
    // Killed on drop: a failed run leaves no consumer behind on its queues.
    let mut child = Running::spawn(&mut command(env!("CARGO_BIN_EXE_dynamo-consumer"), &env));
    let process = Process { pid: child.id() };
    let alerts_queue = world
        .broker
        .capture(&world.broker.topology.alerts_exchange)
        .await;
    let seen = watch_alerts(
        world.broker.connection.create_channel().await.unwrap(),
        alerts_queue,
    )
    .await;

    // Warm-up (and the consumer is ready once it answers).
    let warm: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for (i, id) in warm.iter().enumerate() {
        world
            .broker
            .publish_request(&request_body(i), Some(*id))
            .await;
    }
    wait_for(&seen, &warm, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // let it go idle before reading its idle memory
    let idle_rss = process.status("VmRSS:");
    // How much of it is the mapped binary and libraries rather than heap.
    let idle_file = process.status("RssFile:");
    let idle_threads = process.status("Threads:");
    if let Ok(path) = std::env::var("PIPELINE_SMAPS") {
        // Where idle memory goes, mapping by mapping, for a closer look.
        std::fs::copy(format!("/proc/{}/smaps", process.pid), path).unwrap();
    }

    // Throughput: everything published at once.
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let cpu_before = process.cpu_seconds();
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        world
            .broker
            .publish_request(&request_body(i), Some(*id))
            .await;
    }
    wait_for(&seen, &ids, Duration::from_secs(1800)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let throughput = n as f64 / elapsed;
    let cpu_per_request = (process.cpu_seconds() - cpu_before) / n as f64;

    // Latency at half that rate.
    let paced_n = (n / 4).max(10);
    let interval = Duration::from_secs_f64(2.0 / throughput);
    let mut published = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    let paced_ids: Vec<Uuid> = (0..paced_n).map(|_| Uuid::new_v4()).collect();
    for (i, id) in paced_ids.iter().enumerate() {
        ticker.tick().await;
        published.insert(id.to_string(), Instant::now());
        world
            .broker
            .publish_request(&request_body(i), Some(*id))
            .await;
    }
    wait_for(&seen, &paced_ids, Duration::from_secs(600)).await;
    let mut latencies: Vec<f64> = {
        let seen = seen.lock().unwrap();
        published
            .iter()
            .map(|(id, at)| (seen[id] - *at).as_secs_f64() * 1000.0)
            .collect()
    };
    latencies.sort_by(f64::total_cmp);
    let peak_rss = process.status("VmHWM:");
    child.kill();

    // What the consumer asked for: the JPEG answer must be the one it asks for.
    // Bytes from OpenAI per ghost request: the answer's body, once per image
    // call (/proc/PID/io cannot say: its rchar does not count recv(2)).
    let (image_calls, asked_jpeg) = world.fakes.with(|s| {
        let asked = s
            .image_calls
            .iter()
            .filter(|body| body["output_format"] == "jpeg")
            .count();
        (s.image_calls.len(), asked)
    });
    let jpeg_bytes = jpeg.len();
    let references = [
        (
            "(a) bare lapin consume/publish/ack",
            bare_lapin(&world, n).await,
        ),
        (
            "(b) the pipeline's SQL, no pipeline",
            bare_sql(&world, Arc::new(jpeg.clone()), n).await,
        ),
        (
            match answer_format {
                Answer::Jpeg => "(c) image step alone (JPEG kept)",
                Answer::Png => "(c) image step alone (PNG → JPEG)",
            },
            image_step(Arc::new(answer), n.min(400)).await,
        ),
        (
            "(d) S3 PUT of the JPEG (moto)",
            s3_puts(&world, jpeg.clone(), n.min(400)).await,
        ),
    ];

    // The tail of the pieces alone, at the latency phase's rate: dynamo's
    // p99 cannot be below what its database and storage calls take on
    // this machine on their own.
    let sql_tail = {
        let (store, limiters) = bare_store(&world);
        let answer = Arc::new(jpeg.clone());
        paced(paced_n, interval, move |i| {
            let (store, limiters, answer) = (store.clone(), limiters.clone(), answer.clone());
            async move { store_calls(&store, &limiters, &answer, i).await }
        })
        .await
    };
    let s3_tail = {
        let jpeg = bytes::Bytes::from(jpeg.clone());
        paced(paced_n, interval, |i| {
            s3_put(&world, jpeg.clone(), format!("bench/paced-{i}.jpg"))
        })
        .await
    };

    println!(
        "pipeline overhead: {n} ghost requests, {IN_FLIGHT} in flight, {} cores, \
         fake answers {} ({answer_json_bytes} bytes of JSON; stored JPEG {jpeg_bytes} bytes)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        answer_format.output_format().to_uppercase(),
    );
    println!(
        "  the consumer asked for output_format jpeg in {asked_jpeg} of {image_calls} image calls"
    );
    println!("dynamo-consumer           {throughput:>8.1} requests/s   ({elapsed:.1} s)");
    println!(
        "  publish→alert at {:.1}/s: p50 {:.1} ms, p99 {:.1} ms ({paced_n} requests)",
        throughput / 2.0,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    for (piece, took) in [
        ("(b) its SQL alone", &sql_tail),
        ("(d) its S3 PUT alone", &s3_tail),
    ] {
        println!(
            "    {piece:<22} at that rate: p50 {:.1} ms, p99 {:.1} ms",
            percentile(took, 0.5),
            percentile(took, 0.99)
        );
    }
    println!(
        "  CPU {:.2} ms per request ({:.2}× the {CPU_MS_BEFORE} ms before), {:.1} KB received from OpenAI \
         per request; RSS idle {:.1} MB ({:.1} MB of it mapped files, {idle_threads} threads), peak {:.1} MB",
        cpu_per_request * 1000.0,
        cpu_per_request * 1000.0 / CPU_MS_BEFORE,
        (answer_json_bytes * image_calls) as f64 / (n + 4 + paced_n) as f64 / 1000.0,
        idle_rss as f64 / 1024.0,
        idle_file as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    let slowest = references.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    for (name, rate) in &references {
        println!(
            "{name:<38} {rate:>8.1} /s   dynamo ÷ this = {:.2}",
            throughput / rate
        );
    }
    let verdict = |met: bool| match (benchmarking, met) {
        (false, _) => "not compared (smoke run)",
        (true, true) => "met",
        (true, false) => "missed",
    };
    println!(
        "dynamo ÷ slowest of (a)–(c) = {:.2}",
        throughput
            / references[..3]
                .iter()
                .map(|r| r.1)
                .fold(f64::INFINITY, f64::min),
    );
    // One request costs each of (a), (b) and (d) in turn; with the image
    // step gone (a JPEG answer is stored as it came) nothing else is left.
    let bound = 1.0
        / [0, 1, 3]
            .iter()
            .map(|&i| 1.0 / references[i].1)
            .sum::<f64>();
    let with_image = 1.0 / references.iter().map(|r| 1.0 / r.1).sum::<f64>();
    println!(
        "bound 1/(1/a + 1/b + 1/d) = {bound:.1} /s: dynamo ÷ bound = {:.2} (target ≥ 0.5: {}); \
         with (c) too: {with_image:.1} /s, dynamo ÷ that = {:.2}",
        throughput / bound,
        verdict(throughput / bound >= 0.5),
        throughput / with_image,
    );
    println!(
        "CPU ≤ {:.2} ms per request: {}; p99 ≤ {P99_TARGET_MS} ms: {}; RSS idle < 30 MB: {}, peak < 200 MB: {}",
        CPU_MS_BEFORE / 4.0,
        verdict(cpu_per_request * 1000.0 <= CPU_MS_BEFORE / 4.0),
        verdict(percentile(&latencies, 0.99) <= P99_TARGET_MS),
        verdict(idle_rss < 30 * 1024),
        verdict(peak_rss < 200 * 1024),
    );
    assert!(slowest > 0.0 && throughput > 0.0);
    if answer_format == Answer::Jpeg {
        // The consumer asks for what the fake answers: otherwise the JPEG
        // answer would be a fiction.
        assert_eq!(
            asked_jpeg, image_calls,
            "ghosts must ask for output_format jpeg"
        );
    }
}
