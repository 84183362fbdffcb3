//! A consumer running in-process against a [`TestWorld`], shared by the
//! consumer's test files: start it, send requests, read their results.

#![allow(dead_code)] // each test file uses part of it

pub mod in_flight;
pub mod twitch;

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::{Env, Shutdown};
use dynamo_testkit::{Captured, TestWorld};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(60);

pub struct Running {
    pub world: TestWorld,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub alerts: String,
    results: String,
    /// Its `/readyz`, when started [`Running::with_health`].
    pub readyz: Option<String>,
}

impl Running {
    pub async fn start(world: TestWorld, env: Env) -> Self {
        Self::launch(world, env, None).await
    }

    /// Also serving health on a port of its own, read back in `readyz`.
    pub async fn with_health(world: TestWorld, env: Env) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::launch(world, env, Some(listener)).await
    }

    async fn launch(world: TestWorld, env: Env, health: Option<tokio::net::TcpListener>) -> Self {
        let alerts = world
            .broker
            .capture(&world.broker.topology.alerts_exchange)
            .await;
        let results = world
            .broker
            .capture(&world.broker.topology.results_exchange)
            .await;
        let config = ConsumerConfig::from_env(&env).unwrap();
        let shutdown = Shutdown::new();
        let readyz = health
            .as_ref()
            .map(|listener| format!("http://{}/readyz", listener.local_addr().unwrap()));
        let task = match health {
            Some(listener) => tokio::spawn(dynamo_consumer::run_with_health(
                config,
                Some(listener),
                shutdown.clone(),
            )),
            // Health as the settings say (CONSUMER_HEALTH_ADDR).
            None => tokio::spawn(dynamo_consumer::run(config, shutdown.clone())),
        };
        Self {
            world,
            shutdown,
            task,
            alerts,
            results,
            readyz,
        }
    }

    /// With the test world's settings as they are.
    pub async fn default(world: TestWorld) -> Self {
        let env = world.consumer_env();
        Self::start(world, env).await
    }

    pub async fn send(&self, body: &Value) -> Uuid {
        let id = Uuid::new_v4();
        self.world
            .broker
            .publish_request(&serde_json::to_vec(body).unwrap(), Some(id))
            .await;
        id
    }

    pub async fn result(&self) -> Captured {
        self.world
            .broker
            .next(&self.results, WAIT)
            .await
            .expect("a generation-results message")
    }

    /// The next result within `limit`, if one comes.
    pub async fn result_within(&self, limit: Duration) -> Option<Captured> {
        self.world.broker.next(&self.results, limit).await
    }

    pub fn store(&self) -> dynamo_store::Store {
        dynamo_store::Store::new(self.world.database.pool().clone())
    }

    pub async fn stop(self) -> TestWorld {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
        self.world
    }
}

pub fn ghost(subject: &str) -> Value {
    json!({"type":"image",
           "viewer":{"twitch_user_id":"90790024","twitch_display_name":"wasabimilkshake"},
           "state":{"broadcast_id":13,"screening_id":"96d1ca5c-7658-48c9-8193-9d1739854467","tape_id":124},
           "payload":{"style":"ghost","inputs":{"subject":subject}}})
}

pub fn friend(color: &str, subject: &str) -> Value {
    json!({"type":"image",
           "viewer":{"twitch_user_id":"41252365","twitch_display_name":"TapeHead_99"},
           "state":{"broadcast_id":13,"screening_id":"96d1ca5c-7658-48c9-8193-9d1739854467","tape_id":124},
           "payload":{"style":"friend","inputs":{"color":color,"subject":subject}}})
}

/// Runs the consumer binary with `env` until it exits by itself (within
/// [`WAIT`]), as an operator would start it: its exit code and stderr.
pub async fn exit_of(env: &Env) -> (Option<i32>, String) {
    let binary = env!("CARGO_BIN_EXE_dynamo-consumer");
    let child = tokio::process::Command::from(dynamo_testkit::command(binary, env))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the consumer exits by itself")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}
