//! While the fleet holds (issue 12 item 3, SPEC §6.10) no consumer takes
//! requests: new ones stay ready in the durable queue, unrecorded, in every
//! process — also one that never met the outage — and all go on, each
//! debited once, when the probe passes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

mod support;

use dynamo_runtime::Shutdown;
use dynamo_testkit::{FlowStatus, TestWorld, eventually};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{Running, WAIT, ghost};

/// Published while the fleet holds.
const DURING_THE_HOLD: usize = 5;

/// A second consumer in this process, with its health port.
struct Second {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    readyz: String,
}

impl Second {
    async fn start(env: &dynamo_runtime::Env) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let readyz = format!("http://{}/readyz", listener.local_addr().unwrap());
        let config = dynamo_consumer::ConsumerConfig::from_env(env).unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(dynamo_consumer::run_with_health(
            config,
            Some(listener),
            shutdown.clone(),
        ));
        Self {
            shutdown,
            task,
            readyz,
        }
    }

    async fn ready(&self) -> Option<Value> {
        readyz(&self.readyz).await
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
    }
}

async fn readyz(url: &str) -> Option<Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

async fn recorded(running: &Running) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM dynamo.image_request")
        .fetch_one(running.world.database.pool())
        .await
        .unwrap()
}

/// A world whose OpenAI is out of credit until the test says otherwise,
/// and a consumer environment probing it every second.
async fn out_of_credit() -> (TestWorld, dynamo_runtime::Env) {
    let world = TestWorld::start().await;
    world.fakes.with(|s| {
        s.out_of_credit_until = Some(Instant::now() + Duration::from_secs(3600));
        // Points for every request of the one viewer.
        s.balances.insert("90790024".into(), 200 * 100);
    });
    let env = world
        .consumer_env()
        .with("MODERATION", "false")
        .with("UPSTREAM_PROBE_INTERVAL", "1s");
    (world, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_fleet_holds_no_consumer_takes_requests_and_all_succeed_after() {
    let (world, env) = out_of_credit().await;
    let running = Running::with_health(world, env.clone()).await;
    let first = running.send(&ghost("a seal")).await;
    eventually("the fleet to hold", WAIT, || async {
        running.store().current_hold("openai").await.unwrap()
    })
    .await;
    // Started during the hold: it never meets the outage itself.
    let second = Second::start(&env).await;
    let paused = eventually("both consumers to pause", WAIT, || async {
        let first = readyz(running.readyz.as_ref().unwrap()).await?;
        let ready = second.ready().await?;
        (first["consuming"] == false && ready["consuming"] == false).then_some(ready)
    })
    .await;
    assert_eq!(paused["held"][0]["service"], "openai", "{paused}");
    // Held, yet ready: Kubernetes must not stall rollouts or node drains
    // for a hold no restart cures (issue 25 item 2).
    let answer = reqwest::get(&second.readyz).await.unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    // The alert's gauge is up for as long as the hold.
    let metrics = second.readyz.replace("/readyz", "/metrics");
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("dynamo_upstream_held_seconds{service=\"openai\"}"),
        "{text}"
    );
    assert!(
        paused["held"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("insufficient_quota"),
        "{paused}"
    );

    let queue = running.world.broker.topology.requests_queue.clone();
    let mut ids = vec![first];
    for i in 0..DURING_THE_HOLD {
        ids.push(running.send(&ghost(&format!("a held otter {i}"))).await);
    }
    // Two more probes come and fail while the requests are in the queue:
    // time enough for any consumer that still consumes to take them.
    let refused = running.world.fakes.with(|s| s.refused_for_credit);
    eventually("two more probes", WAIT, || async {
        let now = running.world.fakes.with(|s| s.refused_for_credit);
        (now >= refused + 2).then_some(())
    })
    .await;
    assert_eq!(
        running.world.broker.depth(&queue).await as usize,
        DURING_THE_HOLD,
        "the requests wait ready in the queue"
    );
    assert_eq!(
        recorded(&running).await,
        1,
        "only the held request is recorded"
    );
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 1, "only the held request was debited");

    // Credit is back: the next probe passes and both consumers take the rest.
    running.world.fakes.with(|s| s.out_of_credit_until = None);
    let mut ended = HashSet::new();
    for _ in 0..=DURING_THE_HOLD {
        let result = running.result().await;
        assert_eq!(result.body["state"], "succeeded", "{}", result.body);
        ended.insert(result.body["request_id"].as_str().unwrap().to_owned());
    }
    let expected: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(ended, expected, "every request succeeded once");
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), ids.len(), "one debit per request");
    assert!(flows.iter().all(|f| f.status == FlowStatus::Accepted));
    let debited: HashSet<String> = flows.iter().map(|f| f.request_id.clone()).collect();
    assert_eq!(debited, expected);
    assert_eq!(running.world.broker.depth(&queue).await, 0);
    let ready = eventually("the second consumer to consume again", WAIT, || async {
        let ready = second.ready().await?;
        (ready["consuming"] == true).then_some(ready)
    })
    .await;
    assert_eq!(ready["held"], serde_json::json!([]), "{ready}");
    second.stop().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_past_the_longest_wait_is_still_probed_and_ends_when_the_service_is_back() {
    let (world, env) = out_of_credit().await;
    let env = env.with("UPSTREAM_OUTAGE_MAX_WAIT", "2s");
    let running = Running::start(world, env).await;
    let given_up = running.send(&ghost("a seal")).await;
    let result = running.result().await;
    assert_eq!(result.body["request_id"], given_up.to_string());
    assert_eq!(result.body["state"], "failed", "{}", result.body);
    assert!(
        result.body["reason"]
            .as_str()
            .unwrap()
            .contains("UPSTREAM_OUTAGE_MAX_WAIT"),
        "{}",
        result.body
    );
    let hold = running.store().current_hold("openai").await.unwrap();
    assert!(hold.is_some(), "the outage outlasted the longest wait");

    // Credit is topped up long after: the next request succeeds, and the
    // hold is over for everyone.
    running.world.fakes.with(|s| s.out_of_credit_until = None);
    let after = running.send(&ghost("a seal, later")).await;
    let result = running.result().await;
    assert_eq!(result.body["request_id"], after.to_string());
    assert_eq!(result.body["state"], "succeeded", "{}", result.body);
    assert_eq!(running.store().current_hold("openai").await.unwrap(), None);
    let flows = running.world.fakes.flows();
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert!(
        flows
            .iter()
            .any(|f| f.request_id == given_up.to_string() && f.status == FlowStatus::Rejected),
        "the request that gave up was refunded: {flows:?}"
    );
    running.stop().await;
}
