//! A dynamo-server on a real socket, over the test world's database, broker
//! and fakes; shared by the API and page tests.

#![allow(dead_code)] // each test binary uses a different part of it

use dynamo_runtime::{Env, Shutdown};
use dynamo_server::ServerConfig;
use dynamo_testkit::{TestWorld, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(60);
pub const VIEWER: &str = "90790024";
/// SHA-256 of `dev-admin-token`, as `scripts/dev.sh` configures it.
pub const DEVELOPMENT_TOKEN_SHA256: &str =
    "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd";

pub struct Server {
    pub world: TestWorld,
    pub base: String,
    pub http: reqwest::Client,
    shutdown: Shutdown,
    pub images: std::path::PathBuf,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_in(TestWorld::start().await, |env| env).await
    }

    /// A server in `world`, its environment changed by `configure` (to put
    /// a proxy between it and a service, say).
    pub async fn start_in(world: TestWorld, configure: impl FnOnce(Env) -> Env) -> Self {
        let images = std::env::temp_dir().join(format!("dynamo-server-{}", Uuid::new_v4()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let env = world
            .consumer_env()
            .with("STORAGE_BACKEND", "filesystem")
            .with("STORAGE_DIR", images.to_string_lossy())
            .with("STORAGE_PUBLIC_URL", format!("{base}/images"))
            .with("MAX_BODY_BYTES", "65536")
            .with("SSE_HEARTBEAT", "1s");
        let env = configure(env);
        let config = ServerConfig::from_env(&env).unwrap();
        let shutdown = Shutdown::new();
        tokio::spawn(dynamo_server::run(config, listener, shutdown.clone()));
        // Idle connections are let go before the server closes them
        // (HEADER_READ_TIMEOUT also ends idle keep-alive ones: 5 s in
        // shedding.rs): reusing one as the server closes it fails the
        // request (IncompleteMessage), seen once in a CI run at load 8.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        eventually("the server to answer", WAIT, || {
            let request = http.get(format!("{base}/healthz")).send();
            async move {
                request
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        Self {
            world,
            base,
            http,
            shutdown,
            images,
        }
    }

    pub fn admin(&self) -> String {
        self.world.fakes.jwt("a", json!({"gvcr_service": "tests"}))
    }

    pub fn viewer(&self, id: &str) -> String {
        self.world.fakes.jwt(
            "a",
            json!({"twitch_user_id": id, "twitch_user_login": "v", "twitch_display_name": "V"}),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, Value, Option<String>) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            location,
        )
    }

    /// Any method, as an admin, with an optional JSON body.
    pub async fn send_as_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.admin());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// What `/metrics` shows now.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(format!("{}/metrics", self.base)).send();
        response.await.unwrap().text().await.unwrap()
    }

    /// Queues a request through the API as `token`; returns its id.
    pub async fn enqueue(&self, token: &str, body: &Value) -> String {
        let (status, answer, _) = self.post("/requests", token, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["id"].as_str().unwrap().to_owned()
    }

    /// A dynamo-consumer in this process with the placeholder image provider,
    /// storing into the directory this server serves at /images, with a queue
    /// on the alerts exchange standing in for the alerts service (an alert
    /// nobody receives does not count as shown).
    pub async fn start_consumer(&self) -> Consumer {
        self.start_consumer_with(|env| env).await
    }

    /// [`Server::start_consumer`] with its environment changed by `configure`.
    pub async fn start_consumer_with(&self, configure: impl FnOnce(Env) -> Env) -> Consumer {
        self.world
            .broker
            .capture(&self.world.broker.topology.alerts_exchange)
            .await;
        let env = self
            .world
            .consumer_env()
            .with("IMAGE_PROVIDER", "placeholder")
            .with("STORAGE_BACKEND", "filesystem")
            .with("STORAGE_DIR", self.images.to_string_lossy())
            .with("STORAGE_PUBLIC_URL", format!("{}/images", self.base));
        let env = configure(env);
        let shutdown = Shutdown::new();
        let task = tokio::spawn(dynamo_consumer::run(
            dynamo_consumer::ConsumerConfig::from_env(&env).unwrap(),
            shutdown.clone(),
        ));
        Consumer { shutdown, task }
    }
}

impl Server {
    /// Waits until the request reached a final state.
    pub async fn wait_finished(&self, id: &str) {
        let store = dynamo_store::Store::new(self.world.database.pool().clone());
        let id: Uuid = id.parse().unwrap();
        eventually("the request to finish", WAIT, || {
            let store = store.clone();
            async move { store.get(id).await.ok()?.state().is_final().then_some(()) }
        })
        .await;
    }
}

pub struct Consumer {
    shutdown: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Consumer {
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.images);
    }
}

/// A real WAV file (8 kHz, mono, 8-bit PCM) of a 440 Hz tone lasting `ms`
/// milliseconds: what a streamer's alert sound is, in miniature.
pub fn wav_tone(ms: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<u8> = (0..rate * ms / 1000)
        .map(|i| {
            let phase = f64::from(i) * 440.0 * std::f64::consts::TAU / f64::from(rate);
            (128.0 + 60.0 * phase.sin()) as u8
        })
        .collect();
    let mut file = Vec::with_capacity(44 + samples.len());
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    file.extend_from_slice(b"WAVEfmt ");
    file.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    file.extend_from_slice(&1u16.to_le_bytes()); // PCM
    file.extend_from_slice(&1u16.to_le_bytes()); // mono
    file.extend_from_slice(&rate.to_le_bytes());
    file.extend_from_slice(&rate.to_le_bytes()); // bytes per second
    file.extend_from_slice(&1u16.to_le_bytes()); // block align
    file.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    file.extend_from_slice(b"data");
    file.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    file.extend_from_slice(&samples);
    file
}

impl Server {
    /// Uploads `bytes` as `style`'s alert sound (`query`: e.g. `?volume=50`).
    pub async fn upload_sound(
        &self,
        style: &str,
        query: &str,
        token: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .put(format!("{}/styles/{style}/sound{query}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
