//! Where finished images go: an S3-compatible bucket (DigitalOcean Spaces,
//! AWS, MinIO...) in deployments, or a local directory that dynamo-server
//! serves, for running without any storage service.

use crate::{ServiceId, Storage, UpstreamError};
use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use dynamo_runtime::{Env, SettingError};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::sync::Arc;

const SERVICE: ServiceId = ServiceId::new("storage");
/// Objects are named by request id and never change: let browsers and CDNs keep them.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `SPACES_BUCKET_NAME`.
    pub bucket: String,
    /// `SPACES_REGION_NAME`.
    pub region: String,
    /// `SPACES_ENDPOINT_URL`, e.g. `https://nyc3.digitaloceanspaces.com`.
    pub endpoint: String,
    /// `SPACES_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `SPACES_SECRET_KEY`.
    pub secret_key: SecretString,
    /// `SPACES_FORCE_PATH_STYLE`: address the bucket as `endpoint/bucket`
    /// (MinIO and most local servers) instead of `bucket.endpoint`.
    pub force_path_style: bool,
    /// `SPACES_PUBLIC_URL`: the URL objects are served under; default
    /// `https://<bucket>.<endpoint host>` (or `<endpoint>/<bucket>` path-style).
    pub public_url: String,
}

impl S3Settings {
    /// The public URL base SPEC §3 describes, for the given endpoint.
    pub fn default_public_url(endpoint: &str, bucket: &str, path_style: bool) -> String {
        let endpoint = endpoint.trim_end_matches('/');
        if path_style {
            return format!("{endpoint}/{bucket}");
        }
        match endpoint.split_once("://") {
            Some((_, host)) => format!("https://{bucket}.{host}"),
            None => format!("https://{bucket}.{endpoint}"),
        }
    }
}

/// Where images (and the alert sounds uploaded to dynamo-server) are kept
/// (`STORAGE_BACKEND`): one setting, read the same way by both binaries.
#[derive(Debug, Clone)]
pub enum StorageBackend {
    /// `s3` (the default): the `SPACES_*` settings.
    S3(S3Settings),
    /// `filesystem`: files under `STORAGE_DIR` (default `./data/images`),
    /// public under `STORAGE_PUBLIC_URL` (default `http://localhost:8080/images`).
    Filesystem { root: PathBuf, public_url: String },
}

impl StorageBackend {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        match env.string("STORAGE_BACKEND", "s3").as_str() {
            "s3" => Ok(Self::S3(S3Settings::from_env(env)?)),
            "filesystem" => Ok(Self::Filesystem {
                root: PathBuf::from(env.string("STORAGE_DIR", "./data/images")),
                public_url: env.http_url("STORAGE_PUBLIC_URL", "http://localhost:8080/images")?,
            }),
            other => Err(SettingError::new(
                "STORAGE_BACKEND",
                format!("cannot use {other:?}: expected s3 or filesystem"),
            )),
        }
    }

    /// The one [`Storage`] these settings describe.
    pub fn build(&self) -> Arc<dyn Storage> {
        match self {
            Self::S3(settings) => Arc::new(S3Storage::new(settings.clone())),
            Self::Filesystem { root, public_url } => {
                Arc::new(FsStorage::new(root.clone(), public_url.clone()))
            }
        }
    }
}

impl S3Settings {
    fn from_env(env: &Env) -> Result<Self, SettingError> {
        let bucket = env.required_string("SPACES_BUCKET_NAME")?;
        let endpoint =
            env.http_url("SPACES_ENDPOINT_URL", "https://nyc3.digitaloceanspaces.com")?;
        let force_path_style = env.flag("SPACES_FORCE_PATH_STYLE", false)?;
        let public_url = match env.optional_http_url("SPACES_PUBLIC_URL")? {
            Some(url) => url,
            None => Self::default_public_url(&endpoint, &bucket, force_path_style),
        };
        Ok(Self {
            region: env.string("SPACES_REGION_NAME", "nyc3"),
            access_key_id: env.required_string("SPACES_ACCESS_KEY_ID")?,
            secret_key: env.required_secret("SPACES_SECRET_KEY")?,
            bucket,
            endpoint,
            force_path_style,
            public_url,
        })
    }
}

#[derive(Debug, Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

impl S3Storage {
    pub fn new(settings: S3Settings) -> Self {
        let credentials = Credentials::new(
            &settings.access_key_id,
            settings.secret_key.expose_secret(),
            None,
            None,
            "dynamo-settings",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .endpoint_url(&settings.endpoint)
            .credentials_provider(credentials)
            .force_path_style(settings.force_path_style)
            // One retry policy, dynamo's: the SDK's own retries would
            // multiply its attempts and hide failures from its metrics.
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            settings,
        }
    }
}

fn classify<E, R>(error: SdkError<E, R>) -> UpstreamError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let detail = aws_sdk_s3::error::DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(service) => {
            let status = format!("{:?}", service.raw());
            // 5xx and throttling are worth another try; 4xx (no such bucket,
            // access denied) need an operator.
            if status.contains("status: StatusCode(5") || detail.contains("SlowDown") {
                UpstreamError::transient(SERVICE, detail)
            } else {
                UpstreamError::permanent(SERVICE, detail)
            }
        }
        SdkError::ConstructionFailure(_) => UpstreamError::permanent(SERVICE, detail),
        _ => UpstreamError::transient(SERVICE, detail),
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn describe(&self) -> String {
        format!(
            "S3-compatible bucket {:?} at {}",
            self.settings.bucket, self.settings.endpoint
        )
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, UpstreamError> {
        self.client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .content_type(content_type)
            .cache_control(CACHE_CONTROL)
            .acl(ObjectCannedAcl::PublicRead)
            .send()
            .await
            .map_err(classify)?;
        Ok(format!(
            "{}/{key}",
            self.settings.public_url.trim_end_matches('/')
        ))
    }
}

/// Images as files under a directory, published at `public_url` (dynamo-server
/// serves the directory under `/images`).
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
    public_url: String,
}

impl FsStorage {
    pub fn new(root: PathBuf, public_url: String) -> Self {
        Self { root, public_url }
    }
}

#[async_trait]
impl Storage for FsStorage {
    fn describe(&self) -> String {
        format!(
            "the directory {} served at {}",
            self.root.display(),
            self.public_url
        )
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<String, UpstreamError> {
        // Keys are built by dynamo from UUIDs and fixed extensions; refuse
        // anything else rather than write outside the root.
        if key
            .split('/')
            .any(|part| part.is_empty() || part == ".." || part == ".")
        {
            return Err(UpstreamError::permanent(
                SERVICE,
                format!("refusing key {key:?}"),
            ));
        }
        let path = self.root.join(key);
        let io = |e: std::io::Error| {
            UpstreamError::permanent(SERVICE, format!("{}: {e}", path.display()))
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Write then rename, so a reader never sees half an image.
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, &bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(format!("{}/{key}", self.public_url.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_defaults_follow_the_spec() {
        assert_eq!(
            S3Settings::default_public_url("https://nyc3.digitaloceanspaces.com", "gvcr", false),
            "https://gvcr.nyc3.digitaloceanspaces.com"
        );
        assert_eq!(
            S3Settings::default_public_url("http://127.0.0.1:9000/", "gvcr", true),
            "http://127.0.0.1:9000/gvcr"
        );
    }
}
