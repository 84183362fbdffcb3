//! The world dynamo's tests run in: real PostgreSQL, RabbitMQ and an
//! S3-protocol server (moto), and fake auth, ledger, OpenAI and Discord
//! services that are real HTTP servers on 127.0.0.1 speaking the real wire
//! formats. Every test gets its own database, exchange and queue names and
//! bucket, so tests run in parallel and in any order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed setup should fail loudly

mod broker;
mod cluster;
mod database;
mod fakes;
pub mod fuzz;
mod money;
mod process;
mod proxy;
mod s3;
mod tls;

pub use broker::{Captured, TestBroker};
pub use cluster::RabbitCluster;
pub use database::TestDatabase;
pub use fakes::auth;
pub use fakes::twitch;
pub use fakes::twitch::FakeTwitch;
pub use fakes::{
    CompatServer, CompatState, FakeState, Fakes, Flavor, Flow, FlowStatus, ForeignFlow,
    IMAGE_INPUT_TOKENS, IMAGE_OUTPUT_TOKENS, ImageBehavior, LEDGER_CLOCK_OFFSET, SHARED_SECRET,
    ScriptedError, SpeechBehavior, now_secs, silent_mp3, wav_tone,
};
pub use money::{Expected, Money, assert_alerts, count_by_message_id, drain_by_message_id};
pub use process::Running;
pub use proxy::FlakyProxy;
pub use s3::TestBucket;
pub use tls::{TestCertificates, TlsListener};

use dynamo_runtime::Env;
use std::future::Future;
use std::time::Duration;

/// Logs from tests, shown with `--nocapture`; set up once per test binary.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Log lines written through a subscriber whose writer it is: give one to
/// a test binary's global subscriber (`with_writer(move || logs.clone())`)
/// and read what was logged.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    /// What was logged so far, forgotten.
    pub fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.lock())).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How long a clean-up on drop may take.
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// Runs `cleanup` to its end from a `Drop`: on a thread with a runtime of its
/// own, because the test's runtime cannot be blocked on and, as a
/// `#[tokio::test]` ends, is shutting down (a task spawned there never
/// runs). Bounded by [`CLEANUP_LIMIT`], so that a service a test restarted
/// does not hang it; a failure is printed, never raised from a drop.
pub(crate) fn clean_up<F, Fut>(what: &str, cleanup: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            tokio::time::timeout(CLEANUP_LIMIT, cleanup())
                .await
                .map_err(|_| anyhow::anyhow!("no answer within {CLEANUP_LIMIT:?}"))?
        })
    })
    .join();
    match done {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("{what} was not cleaned up: {error}"),
        Err(_) => eprintln!("cleaning up {what} panicked"),
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
/// Tests wait for conditions, never for fixed times.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A valid ghost request body from viewer "1", as the pipeline publishes it.
pub fn ghost_request(subject: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"type": "image",
        "viewer": {"twitch_user_id": "1", "twitch_display_name": "viewer"},
        "payload": {"style": "ghost", "inputs": {"subject": subject}}}))
    .unwrap()
}

/// Runs a built binary with exactly `env` (nothing inherited but PATH), in an
/// empty working directory so no `.env` is read.
pub fn command(binary: &str, env: &Env) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command.envs(env.pairs()).current_dir(std::env::temp_dir());
    command
}

/// What `binary --help` prints with no environment at all: it must exit 0
/// at once (starting nothing, whatever the defaults would connect to) and log
/// nothing. Panics otherwise.
pub fn help_of(binary: &str) -> String {
    let output = output_within(
        command(binary, &Env::default()).arg("--help"),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(0), "{binary} --help: {output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "{binary} --help logged something"
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Checks that `binary --version` prints `name` and this workspace's version.
pub fn assert_version(binary: &str, name: &str) {
    let output = output_within(
        command(binary, &Env::default()).arg("--version"),
        Duration::from_secs(10),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{binary} --version: {output:?}"
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A whole world for one test: database, broker names, bucket and fakes.
#[derive(Debug)]
pub struct TestWorld {
    pub database: TestDatabase,
    pub broker: TestBroker,
    pub bucket: TestBucket,
    pub fakes: Fakes,
}

impl TestWorld {
    pub async fn start() -> Self {
        init_logs();
        let (database, broker, bucket, fakes) = tokio::join!(
            TestDatabase::create(),
            TestBroker::create(),
            TestBucket::create(),
            Fakes::start(),
        );
        Self {
            database,
            broker,
            bucket,
            fakes,
        }
    }

    /// The environment a consumer of this world runs with: OpenAI pointed at
    /// the fake, S3 at moto, quick retries.
    pub fn consumer_env(&self) -> Env {
        let mut pairs: Vec<(String, String)> = Vec::new();
        pairs.extend(self.database.env_pairs());
        pairs.extend(self.broker.env_pairs());
        pairs.extend(self.bucket.env_pairs());
        pairs.extend(self.fakes.env_pairs());
        pairs.extend(
            [
                ("IMAGE_PROVIDER", "openai"),
                ("STORAGE_BACKEND", "s3"),
                ("POINTS_COST", "200"),
                ("RETRY_MIN_DELAY", "10ms"),
                ("RETRY_MAX_DELAY", "50ms"),
                ("RETRY_MAX_ATTEMPTS", "3"),
                ("RETRY_DEADLINE", "5s"),
                ("SHUTDOWN_GRACE", "30s"),
                ("CONSUMER_HEALTH_ADDR", "off"),
                ("OPENAI_REQUESTS_PER_MINUTE", "1000"),
                ("OPENAI_IMAGES_PER_MINUTE", "1000"),
                // The service names the tests' admin tokens carry.
                ("ADMIN_SERVICES", "tests,chaos"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        Env::from_pairs(pairs)
    }
}

/// Runs `command` to its end and returns what it printed, or kills it and
/// panics if it still runs after `limit`: for invocations that must not start
/// a service, such as `--help`. (Output stays small enough for the pipes.)
pub fn output_within(command: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?} (it started something): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
