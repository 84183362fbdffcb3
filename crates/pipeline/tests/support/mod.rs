//! A `Pipeline` built in the test, as `dynamo-consumer` builds it, against
//! a [`TestWorld`]: real PostgreSQL and RabbitMQ, the fake auth and ledger,
//! images drawn by the placeholder provider and kept on the filesystem.
//! Each test file reads as documentation of the core; this is its set-up.

#![allow(dead_code)] // each test file uses part of it
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed setup should fail the test

use dynamo_pipeline::limits::{RateLimits, RateSettings};
use dynamo_pipeline::prompt::PromptTemplates;
use dynamo_pipeline::retry::RetryPolicy;
use dynamo_pipeline::settings::{ApprovalPolicy, HoldPolicy};
use dynamo_pipeline::styles::Styles;
use dynamo_pipeline::{Job, Metrics, Outcome, Pipeline, Services, Settings};
use dynamo_store::{Lease, NewRequest, RequestRecord, RequestState, Store};
use dynamo_testkit::{SHARED_SECRET, TestWorld};
use dynamo_upstream::{
    AuthClient, DiscordWebhooks, FsStorage, HttpLedger, Ledger, Placeholder, ServiceId,
};
use dynamo_wire::GenerationRequest;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What every ghost costs here.
pub const POINTS: u32 = 200;
/// How long a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(30);
/// OpenAI's id, as its provider names it: here only to set its holds and
/// limits, which must not reach the placeholder.
pub const OPENAI: ServiceId = ServiceId::new("openai");

/// Quick retries, so a test of the verdict does not wait out production's.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_attempts: 3,
        deadline: Duration::from_secs(5),
        inline_max: Duration::from_secs(2),
        infra_pause: Duration::from_millis(200),
    }
}

pub struct Core {
    pub world: TestWorld,
    pub pipeline: Pipeline,
    pub ledger: Arc<dyn Ledger>,
    /// The styles the pipeline resolves requests against.
    pub styles: Arc<Styles>,
    /// The capture queues of `generation-results` and `onscreen-events`.
    pub results: String,
    pub alerts: String,
}

impl Core {
    /// A pipeline whose images and names are the placeholder's. With
    /// `openai_images_per_minute`, the fleet also has OpenAI's rate limits
    /// (as a consumer calling OpenAI for names or moderation would).
    pub async fn start(openai_images_per_minute: Option<u32>) -> Self {
        Self::start_with_ledger(openai_images_per_minute, |ledger| ledger).await
    }

    /// As [`Core::start`], with the ledger the pipeline calls made by
    /// `ledger` from the real one (to put a fault in front of it).
    pub async fn start_with_ledger(
        openai_images_per_minute: Option<u32>,
        ledger: impl FnOnce(Arc<dyn Ledger>) -> Arc<dyn Ledger>,
    ) -> Self {
        let world = TestWorld::start().await;
        let pool = world.database.pool();
        let limits = openai_images_per_minute
            .map(|images| openai_limits(pool, images))
            .into_iter()
            .collect();
        let (results, alerts) = world.broker.capture_outputs().await;
        let store = Store::new(world.database.pool().clone());
        dynamo_store::golden_vcr::seed(
            &store,
            &PromptTemplates::default(),
            POINTS,
            dynamo_store::golden_vcr::Seeding::Follow,
        )
        .await
        .unwrap();
        let styles = Styles::load(store.clone()).await.unwrap();
        let http = reqwest::Client::new();
        let auth = AuthClient::new(
            http.clone(),
            format!("{}/auth", world.fakes.url),
            SHARED_SECRET.to_owned().into(),
        );
        let ledger = ledger(Arc::new(HttpLedger::new(
            http.clone(),
            format!("{}/ledger", world.fakes.url),
            auth,
        )));
        let images_dir = std::env::temp_dir().join(format!("dynamo-pipeline-{}", Uuid::new_v4()));
        let services = Services {
            ledger: ledger.clone(),
            images: Arc::new(Placeholder),
            names: Arc::new(Placeholder),
            moderator: None,
            storage: Arc::new(FsStorage::new(
                images_dir,
                "http://127.0.0.1/images".to_owned(),
            )),
            discord: DiscordWebhooks::new(http, None, None, None),
            limits,
            speech: None,
        };
        let settings = Settings {
            styles: styles.clone(),
            retry: retry_policy(),
            viewer_max_in_flight: 0,
            lease_ttl: Duration::from_secs(30),
            holds: HoldPolicy {
                probe_every: Duration::from_secs(30),
                max_wait: Duration::from_secs(30 * 60),
                daily_budget_usd: None,
            },
            approval: ApprovalPolicy::default(),
        };
        let pipeline = Pipeline::new(
            store,
            world.broker.publisher.clone(),
            world.broker.topology.clone(),
            services,
            settings,
            format!("pipeline-test:{}", Uuid::new_v4().simple()),
            Arc::new(Metrics::default()),
        );
        Self {
            world,
            pipeline,
            ledger,
            styles,
            results,
            alerts,
        }
    }

    pub fn store(&self) -> &Store {
        self.pipeline.store()
    }

    /// Records a ghost request as a delivery would, under a lease of its
    /// own (not the pipeline's), so a test can move it by hand first.
    pub async fn record(&self, job: &Job) -> (RequestRecord, Lease) {
        let style = self
            .styles
            .resolve(&job.request, job.trial)
            .await
            .unwrap_or_else(|_| panic!("the ghost style resolves"));
        let (record, created, lease) = self
            .store()
            .record(
                &NewRequest {
                    id: job.id,
                    request: &job.request,
                    prompt: &style.prompt,
                    settings: &style.settings,
                    points_cost: i32::try_from(style.points_cost).unwrap(),
                    free_of_charge: false,
                    retry_of: None,
                    fingerprint: None,
                    trial: job.trial,
                },
                "a-process-that-died",
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert!(created);
        (record, lease.expect("a new request comes with its lease"))
    }

    /// The flows the fake ledger holds for `id`.
    pub fn flows_of(&self, id: Uuid) -> Vec<dynamo_testkit::Flow> {
        let id = id.to_string();
        self.world
            .fakes
            .flows()
            .into_iter()
            .filter(|flow| flow.request_id == id)
            .collect()
    }

    /// Messages on the alerts exchange for `id` so far.
    pub async fn alerts_of(&self, id: Uuid) -> usize {
        let mut count = 0;
        while let Some(message) = self
            .world
            .broker
            .next(&self.alerts, Duration::from_millis(300))
            .await
        {
            if message.message_id.as_deref() == Some(id.to_string().as_str()) {
                count += 1;
            }
        }
        count
    }
}

/// OpenAI's fleet-wide limits, as `dynamo-consumer` builds them, with
/// `images` image calls per minute.
fn openai_limits(pool: &sqlx::PgPool, images: u32) -> Arc<RateLimits> {
    Arc::new(RateLimits::new(
        pool.clone(),
        OPENAI,
        RateSettings {
            requests_per_window: 1000,
            images_per_window: images,
            window: Duration::from_secs(60),
        },
        Duration::from_secs(60),
        Duration::from_millis(100),
        Arc::new(Metrics::default()),
    ))
}

/// The request ended successfully.
pub fn assert_succeeded(outcome: &Outcome) {
    assert!(
        matches!(
            outcome,
            Outcome::Ended {
                state: RequestState::Succeeded,
                ..
            }
        ),
        "{outcome:?}"
    );
}

/// A ghost request from viewer "1".
pub fn ghost(subject: &str) -> Job {
    Job {
        id: Uuid::new_v4(),
        request: GenerationRequest::from_slice(&dynamo_testkit::ghost_request(subject)).unwrap(),
        free_of_charge: false,
        bypass_rules: false,
        retry_of: None,
        fingerprint: None,
        trace_context: Vec::new(),
        trial: false,
    }
}
