//! Everything dynamo-server reads from the environment, in one typed struct.

use dynamo_broker::Topology;
use dynamo_runtime::{BrokerSettings, DatabaseSettings, Env, SettingError};
use dynamo_store::golden_vcr::{self, PromptTemplates};
use dynamo_upstream::StorageBackend;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub topology: Topology,
    /// `BIND_ADDR`, default `0.0.0.0`.
    pub bind_addr: IpAddr,
    /// `LISTEN_PORT`, default 8080.
    pub listen_port: u16,
    /// `STORAGE_DIR` when `STORAGE_BACKEND=filesystem`: served under `/images`.
    pub images_dir: Option<PathBuf>,
    /// Where uploaded alert sounds go: the images' storage (`STORAGE_BACKEND`).
    pub storage: StorageBackend,
    /// `SOUND_MAX_BYTES`, default 1048576: larger alert sounds answer 413.
    pub sound_max_bytes: usize,
    pub auth: AuthConfig,
    /// `HEALTH_PUBLIC`, default true: `/healthz`, `/readyz` and `/metrics`
    /// need no token (for load balancers and Prometheus).
    pub health_public: bool,
    /// `MAX_BODY_BYTES`, default 65536: larger bodies answer 413.
    pub max_body_bytes: usize,
    /// `SSE_HEARTBEAT`, default 15s: comment lines that keep idle streams open.
    pub sse_heartbeat: Duration,
    /// `AUTH_FAILURE_LIMIT` (default 20, 0 = off) failed authentications per
    /// client address per `AUTH_FAILURE_WINDOW` (default 60s), then 429.
    pub auth_failure_limit: u32,
    pub auth_failure_window: Duration,
    /// `AUTH_FAILURE_MAX_ADDRESSES`, default 100000: addresses (IPv6: /64
    /// networks) with failures remembered at once; the oldest are forgotten.
    pub auth_failure_max_addresses: usize,
    pub limits: Limits,
    /// `PUBLIC_BASE_URL` when `PUBLIC_GALLERY` is on (default off), else
    /// None: the gallery is served only then, and its share tags need
    /// absolute URLs.
    pub public_base_url: Option<String>,
    /// `PROMPT_GHOST`, `PROMPT_FRIEND`, `POINTS_COST` (and `LEDGER=none`):
    /// Golden VCR's styles as the server creates them on a database that
    /// has none yet (the consumers keep them in line with the settings).
    pub golden_vcr: (PromptTemplates, u32),
}

/// What one client may hold of the server (issue 23: slow and greedy
/// clients are shed, not served forever).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `MAX_CONNECTIONS`, default 1024: open connections at once; past it a
    /// new connection is closed at once.
    pub max_connections: usize,
    /// `HEADER_READ_TIMEOUT`, default 10s: a connection that has not sent a
    /// whole request head within this (an idle keep-alive one too) is closed.
    pub header_read_timeout: Duration,
    /// `REQUEST_TIMEOUT`, default 30s: from the request head to the answer's
    /// head, reading the body included; then 408. Event streams, once
    /// answered, are not cut by it.
    pub request_timeout: Duration,
    /// `SSE_MAX_STREAMS`, default 512: event streams open at once, all callers.
    pub sse_max_streams: usize,
    /// `SSE_MAX_STREAMS_PER_CALLER`, default 8: event streams one token (one
    /// user, service or overlay) holds open at once.
    pub sse_max_streams_per_caller: usize,
}

impl Limits {
    fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            max_connections: positive(env, "MAX_CONNECTIONS", 1024)?,
            header_read_timeout: env.duration("HEADER_READ_TIMEOUT", Duration::from_secs(10))?,
            request_timeout: env.duration("REQUEST_TIMEOUT", Duration::from_secs(30))?,
            sse_max_streams: positive(env, "SSE_MAX_STREAMS", 512)?,
            sse_max_streams_per_caller: positive(env, "SSE_MAX_STREAMS_PER_CALLER", 8)?,
        })
    }
}

/// A count that must be at least 1 (0 would refuse everything).
fn positive(env: &Env, name: &str, default: usize) -> Result<usize, SettingError> {
    match env.parse(name, default)? {
        0 => Err(SettingError::new(name, "must be at least 1")),
        n => Ok(n),
    }
}

/// `AUTH_MODE`: how callers prove who they are.
/// What a Golden VCR JWT must carry, and what it grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoldenVcrSettings {
    /// `AUTH_AUDIENCE`, unset by default: when set, a JWT must name it in
    /// `aud`. Golden VCR's tokens carry no `aud` (SPEC §3), so only set it
    /// when the auth service issues tokens for this audience.
    pub audience: Option<String>,
    /// `ADMIN_SERVICES`, comma-separated, empty by default: the
    /// `gvcr_service` values that are admin here. Any other service token
    /// counts as the user it names (dynamo's own ledger token names a viewer),
    /// so a token meant for another service is no admin key when replayed.
    pub admin_services: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// `goldenvcr` (default): `AUTH_URL` (default `http://localhost:5002`),
    /// `AUTH_ISSUER` (default `https://goldenvcr.com/api/auth`), and
    /// [`GoldenVcrSettings`].
    GoldenVcr {
        auth_url: String,
        issuer: String,
        settings: GoldenVcrSettings,
    },
    /// `standalone`: `ADMIN_TOKEN_SHA256`, comma-separated hex SHA-256 hashes
    /// of the admin tokens (`printf %s "$TOKEN" | sha256sum`).
    Standalone { admin_token_hashes: Vec<[u8; 32]> },
}

impl ServerConfig {
    /// The settings part of `dynamo-server --help`: the ones
    /// [`ServerConfig::from_env`] reads, as `.env.example` describes them.
    pub fn settings_help() -> String {
        dynamo_runtime::help::settings_help(
            &["PostgreSQL", "RabbitMQ", "storage", "server", "logs"],
            &["AUTH_URL"],
        )
    }

    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let storage = StorageBackend::from_env(env)?;
        let images_dir = match &storage {
            StorageBackend::Filesystem { root, .. } => Some(root.clone()),
            StorageBackend::S3(_) => None,
        };
        Ok(Self {
            database: DatabaseSettings::from_env(env)?,
            broker: BrokerSettings::from_env(env)?,
            topology: Topology::from_env(env)?,
            bind_addr: env.parse("BIND_ADDR", IpAddr::from([0, 0, 0, 0]))?,
            listen_port: env.parse("LISTEN_PORT", 8080)?,
            images_dir,
            storage,
            sound_max_bytes: positive(env, "SOUND_MAX_BYTES", 1024 * 1024)?,
            auth: auth_config(env)?,
            health_public: env.flag("HEALTH_PUBLIC", true)?,
            max_body_bytes: env.parse("MAX_BODY_BYTES", 64 * 1024)?,
            sse_heartbeat: env.duration("SSE_HEARTBEAT", Duration::from_secs(15))?,
            auth_failure_limit: env.parse("AUTH_FAILURE_LIMIT", 20)?,
            auth_failure_window: env.duration("AUTH_FAILURE_WINDOW", Duration::from_secs(60))?,
            auth_failure_max_addresses: positive(env, "AUTH_FAILURE_MAX_ADDRESSES", 100_000)?,
            limits: Limits::from_env(env)?,
            public_base_url: public_base_url(env)?,
            golden_vcr: (
                PromptTemplates::from_env(env)?,
                golden_vcr::points_cost_from_env(env)?,
            ),
        })
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.listen_port)
    }
}

/// The gallery's base URL, or None when `PUBLIC_GALLERY` is off.
fn public_base_url(env: &Env) -> Result<Option<String>, SettingError> {
    dynamo_runtime::settings::public_gallery_base(env)
}

fn auth_config(env: &Env) -> Result<AuthConfig, SettingError> {
    match env.string("AUTH_MODE", "goldenvcr").as_str() {
        "goldenvcr" => Ok(AuthConfig::GoldenVcr {
            auth_url: env.http_url("AUTH_URL", "http://localhost:5002")?,
            issuer: env.string("AUTH_ISSUER", "https://goldenvcr.com/api/auth"),
            settings: GoldenVcrSettings {
                audience: env.optional_string("AUTH_AUDIENCE"),
                admin_services: env
                    .string("ADMIN_SERVICES", "")
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
        }),
        "standalone" => {
            let raw = env.required_string("ADMIN_TOKEN_SHA256")?;
            let hashes = raw
                .split(',')
                .map(|hash| {
                    let bytes = hex::decode(hash.trim()).ok()?;
                    <[u8; 32]>::try_from(bytes).ok()
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    SettingError::new(
                        "ADMIN_TOKEN_SHA256",
                        "expected comma-separated 64-character hex SHA-256 hashes (printf %s \"$TOKEN\" | sha256sum)",
                    )
                })?;
            Ok(AuthConfig::Standalone {
                admin_token_hashes: hashes,
            })
        }
        other => Err(SettingError::new(
            "AUTH_MODE",
            format!("cannot use {other:?}: expected goldenvcr or standalone"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pairs` on a server that keeps sounds in a directory (so no bucket is needed).
    fn local<const N: usize>(pairs: [(&str, &str); N]) -> Env {
        pairs.into_iter().fold(
            Env::from_pairs([("STORAGE_BACKEND", "filesystem")]),
            |env, (k, v)| env.with(k, v),
        )
    }

    #[test]
    fn malformed_bind_addr_names_the_variable() {
        let error = ServerConfig::from_env(&local([("BIND_ADDR", "everywhere")])).unwrap_err();
        assert_eq!(error.name, "BIND_ADDR");
    }

    #[test]
    fn images_are_served_only_for_filesystem_storage() {
        let s3 = Env::from_pairs([
            ("SPACES_BUCKET_NAME", "b"),
            ("SPACES_ACCESS_KEY_ID", "AKIA"),
            ("SPACES_SECRET_KEY", "s"),
        ]);
        assert!(ServerConfig::from_env(&s3).unwrap().images_dir.is_none());
        let env = Env::from_pairs([("STORAGE_BACKEND", "filesystem"), ("STORAGE_DIR", "/tmp/x")]);
        assert_eq!(
            ServerConfig::from_env(&env).unwrap().images_dir,
            Some(PathBuf::from("/tmp/x"))
        );
    }

    #[test]
    fn a_zero_limit_names_its_variable() {
        for name in [
            "MAX_CONNECTIONS",
            "SSE_MAX_STREAMS",
            "SSE_MAX_STREAMS_PER_CALLER",
        ] {
            let error = ServerConfig::from_env(&local([(name, "0")])).unwrap_err();
            assert_eq!(error.name, name);
        }
    }

    #[test]
    fn the_gallery_is_off_by_default_and_needs_a_base_url_when_on() {
        assert_eq!(
            ServerConfig::from_env(&local([])).unwrap().public_base_url,
            None
        );
        let on = local([("PUBLIC_GALLERY", "true")]);
        assert_eq!(
            ServerConfig::from_env(&on).unwrap_err().name,
            "PUBLIC_BASE_URL"
        );
        let on = on.with("PUBLIC_BASE_URL", "https://dynamo.example/");
        assert_eq!(
            ServerConfig::from_env(&on)
                .unwrap()
                .public_base_url
                .as_deref(),
            Some("https://dynamo.example")
        );
    }

    #[test]
    fn admin_services_are_an_explicit_list_empty_by_default() {
        let services = |env: &Env| match ServerConfig::from_env(env).unwrap().auth {
            AuthConfig::GoldenVcr { settings, .. } => settings.admin_services,
            AuthConfig::Standalone { .. } => unreachable!("goldenvcr is the default"),
        };
        assert!(services(&local([])).is_empty());
        let env = local([("ADMIN_SERVICES", " bot, ,stagehand ")]);
        assert_eq!(services(&env), ["bot", "stagehand"]);
    }

    #[test]
    fn standalone_mode_needs_well_formed_hashes() {
        let env = local([("AUTH_MODE", "standalone")]);
        assert_eq!(
            ServerConfig::from_env(&env).unwrap_err().name,
            "ADMIN_TOKEN_SHA256"
        );
        let env = env.with("ADMIN_TOKEN_SHA256", "abc");
        assert_eq!(
            ServerConfig::from_env(&env).unwrap_err().name,
            "ADMIN_TOKEN_SHA256"
        );
        let env = env.with("ADMIN_TOKEN_SHA256", "ab".repeat(32));
        assert!(matches!(
            ServerConfig::from_env(&env).unwrap().auth,
            AuthConfig::Standalone { .. }
        ));
    }
}
