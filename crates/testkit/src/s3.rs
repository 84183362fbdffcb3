//! An S3-protocol server for the tests: moto in server mode, started once per
//! test process (or the one named by `DYNAMO_TEST_S3_ENDPOINT`), with a
//! fresh bucket per test.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::OnceCell;

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing-secret";
const REGION: &str = "us-east-1";

async fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| async {
            if let Ok(endpoint) = std::env::var("DYNAMO_TEST_S3_ENDPOINT") {
                return endpoint;
            }
            // moto binds a port of its own choosing (-p 0) and logs which:
            // taking a free port from the kernel and handing its number on
            // would let another process take it in between. moto must not
            // outlive the test process: a watchdog shell stops it as soon as
            // this process is gone.
            let script = format!(
                "moto_server -H 127.0.0.1 -p 0 2>&1 & m=$!; \
                 while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
                parent = std::process::id()
            );
            // The watchdog ends by itself with this process; nothing waits on it.
            #[allow(clippy::zombie_processes)]
            let mut watchdog = Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("moto_server must be installed for the tests (pip install 'moto[server]')");
            let output = watchdog.stdout.take().expect("moto's output is piped");
            let (found, port) = tokio::sync::oneshot::channel();
            // Reads moto's log to the end, so that moto never blocks on a
            // full pipe; the first "Running on" line names the port.
            std::thread::spawn(move || {
                let mut found = Some(found);
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    if let Some(port) = line
                        .split_once("Running on http://127.0.0.1:")
                        .and_then(|(_, port)| port.trim().parse::<u16>().ok())
                        && let Some(found) = found.take()
                    {
                        let _ = found.send(port);
                    }
                }
            });
            let port = tokio::time::timeout(Duration::from_secs(30), port)
                .await
                .expect("moto_server to say which port it listens on")
                .expect("moto_server to start (is it installed?)");
            let endpoint = format!("http://127.0.0.1:{port}");
            let http = reqwest::Client::new();
            crate::eventually("moto_server to answer", Duration::from_secs(30), || {
                let request = http.get(format!("{endpoint}/")).send();
                async move { request.await.ok().map(|_| ()) }
            })
            .await;
            endpoint
        })
        .await
        .clone()
}

fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A bucket of its own for one test, deleted with its objects when dropped.
#[derive(Debug)]
pub struct TestBucket {
    pub endpoint: String,
    pub name: String,
    pub client: aws_sdk_s3::Client,
}

impl TestBucket {
    pub async fn create() -> Self {
        let endpoint = endpoint().await;
        let client = client(&endpoint);
        let name = format!("dynamo-test-{}", uuid::Uuid::new_v4().simple());
        client.create_bucket().bucket(&name).send().await.unwrap();
        Self {
            endpoint,
            name,
            client,
        }
    }

    pub fn env_pairs(&self) -> Vec<(String, String)> {
        [
            ("SPACES_BUCKET_NAME", self.name.clone()),
            ("SPACES_REGION_NAME", REGION.to_owned()),
            ("SPACES_ENDPOINT_URL", self.endpoint.clone()),
            ("SPACES_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("SPACES_SECRET_KEY", SECRET_KEY.to_owned()),
            ("SPACES_FORCE_PATH_STYLE", "true".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    /// The object's bytes, content type and whether anyone may read it.
    pub async fn object(&self, key: &str) -> (Vec<u8>, Option<String>, bool, Option<String>) {
        let object = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap();
        let content_type = object.content_type().map(str::to_owned);
        let cache_control = object.cache_control().map(str::to_owned);
        let bytes = object.body.collect().await.unwrap().into_bytes().to_vec();
        let acl = self
            .client
            .get_object_acl()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap();
        let public = acl.grants().iter().any(|grant| {
            grant
                .grantee()
                .and_then(|g| g.uri())
                .is_some_and(|uri| uri.ends_with("/global/AllUsers"))
                && grant.permission().is_some_and(|p| p.as_str() == "READ")
        });
        (bytes, content_type, public, cache_control)
    }

    /// Keys of every object in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        // moto keeps every object in memory until the test process ends, and
        // a server named by DYNAMO_TEST_S3_ENDPOINT keeps them for good.
        let endpoint = self.endpoint.clone();
        let name = self.name.clone();
        crate::clean_up("the test's bucket", move || async move {
            delete_bucket(&endpoint, &name).await
        });
    }
}

async fn delete_bucket(endpoint: &str, name: &str) -> anyhow::Result<()> {
    let client = client(endpoint);
    loop {
        let listed = client.list_objects_v2().bucket(name).send().await?;
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        if keys.is_empty() {
            break;
        }
        for key in keys {
            client.delete_object().bucket(name).key(key).send().await?;
        }
    }
    client.delete_bucket().bucket(name).send().await?;
    Ok(())
}
