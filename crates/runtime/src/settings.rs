//! Reading settings from the environment (SPEC §4).
//!
//! [`Env`] is a snapshot of the variables, taken once: the process environment
//! layered over an optional `.env` file. Nothing here writes to the process
//! environment, so tests build an `Env` from pairs and run side by side.
//! Every getter names the variable in its error, which start-up prints as the
//! single line an operator needs.

use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingError {
    pub name: String,
    pub problem: String,
}

impl SettingError {
    pub fn new(name: &str, problem: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A snapshot of the environment variables dynamo reads.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

// Values may be secrets: never print them.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The process environment over `.env` in the working directory, if any.
    pub fn from_process() -> Result<Self, SettingError> {
        let mut env = Self::from_dotenv(Path::new(".env"))?;
        env.vars.extend(std::env::vars());
        Ok(env)
    }

    fn from_dotenv(path: &Path) -> Result<Self, SettingError> {
        let mut vars = HashMap::new();
        if path.exists() {
            let entries = dotenvy::from_path_iter(path)
                .map_err(|e| SettingError::new(".env", e.to_string()))?;
            for entry in entries {
                let (name, value) = entry.map_err(|e| SettingError::new(".env", e.to_string()))?;
                vars.insert(name, value);
            }
        }
        Ok(Self { vars })
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every variable, for handing this snapshot to a child process.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A copy with some variables set or replaced (handy in tests).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// The value, if set and not blank. A blank value counts as unset, as in
    /// most `.env` tooling, so `FOO=` falls back to the default.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    pub fn optional_string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    pub fn required_string(&self, name: &str) -> Result<String, SettingError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| SettingError::new(name, "is required but not set"))
    }

    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name)
            .map(|value| SecretString::from(value.to_owned()))
    }

    pub fn required_secret(&self, name: &str) -> Result<SecretString, SettingError> {
        self.secret(name)
            .ok_or_else(|| SettingError::new(name, "is required but not set"))
    }

    /// Parses the value with `FromStr`, or returns `default` when unset.
    pub fn parse<T>(&self, name: &str, default: T) -> Result<T, SettingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| SettingError::new(name, format!("cannot use {raw:?}: {e}"))),
        }
    }

    pub fn optional_parse<T>(&self, name: &str) -> Result<Option<T>, SettingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .map(|raw| {
                raw.parse()
                    .map_err(|e| SettingError::new(name, format!("cannot use {raw:?}: {e}")))
            })
            .transpose()
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, SettingError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(SettingError::new(
                name,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    /// A duration such as `90s`, `500ms`, `2m` or `1h`; a bare number is seconds.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, SettingError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).ok_or_else(|| {
                SettingError::new(
                    name,
                    format!("cannot use {raw:?}: expected a duration such as 90s, 500ms, 2m or 1h"),
                )
            }),
        }
    }

    /// An absolute http(s) URL; a trailing slash is removed so paths join cleanly.
    pub fn http_url(&self, name: &str, default: &str) -> Result<String, SettingError> {
        let raw = self.string(name, default);
        check_http_url(name, &raw)
    }

    pub fn optional_http_url(&self, name: &str) -> Result<Option<String>, SettingError> {
        self.get(name)
            .map(|raw| check_http_url(name, raw))
            .transpose()
    }
}

fn check_http_url(name: &str, raw: &str) -> Result<String, SettingError> {
    let parsed = url::Url::parse(raw)
        .map_err(|e| SettingError::new(name, format!("cannot use {raw:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(SettingError::new(
            name,
            format!("cannot use {raw:?}: expected an http:// or https:// URL"),
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The public gallery's base URL (`PUBLIC_BASE_URL`, without a trailing
/// slash) when `PUBLIC_GALLERY` is on, else `None`. Read by the server,
/// which serves the gallery, and by the consumer, whose chat replies link
/// to it.
pub fn public_gallery_base(env: &Env) -> Result<Option<String>, SettingError> {
    if !env.flag("PUBLIC_GALLERY", false)? {
        return Ok(None);
    }
    match env.optional_http_url("PUBLIC_BASE_URL")? {
        Some(url) => Ok(Some(url.trim_end_matches('/').to_owned())),
        None => Err(SettingError::new(
            "PUBLIC_BASE_URL",
            "required when PUBLIC_GALLERY is on: the server's public address, for the gallery's share links",
        )),
    }
}

/// PostgreSQL connection settings, under libpq's own variable names.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `PGHOST`, default `localhost`.
    pub host: String,
    /// `PGPORT`, default 5432.
    pub port: u16,
    /// `PGDATABASE`, default `postgres`.
    pub database: String,
    /// `PGUSER`, default `postgres`.
    pub user: String,
    /// `PGPASSWORD`, default none (trust or peer auth).
    pub password: Option<SecretString>,
    /// `PGSSLMODE`: disable, allow, prefer (default), require, verify-ca, verify-full.
    pub sslmode: String,
    /// `PG_MAX_CONNECTIONS`, default 10: the pool size of one process.
    pub max_connections: u32,
}

impl DatabaseSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let sslmode = env.string("PGSSLMODE", "prefer");
        const MODES: [&str; 6] = [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ];
        if !MODES.contains(&sslmode.as_str()) {
            return Err(SettingError::new(
                "PGSSLMODE",
                format!(
                    "cannot use {sslmode:?}: expected one of {}",
                    MODES.join(", ")
                ),
            ));
        }
        Ok(Self {
            host: env.string("PGHOST", "localhost"),
            port: env.parse("PGPORT", 5432)?,
            database: env.string("PGDATABASE", "postgres"),
            user: env.string("PGUSER", "postgres"),
            password: env.secret("PGPASSWORD"),
            sslmode,
            max_connections: env.parse("PG_MAX_CONNECTIONS", 10)?,
        })
    }
}

/// RabbitMQ connection settings, under the Go service's variable names.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// The first node of `RMQ_HOST`, default `localhost`.
    pub host: String,
    /// The first node's port: its own `:port` in `RMQ_HOST`, else `RMQ_PORT`
    /// (default 5672).
    pub port: u16,
    /// Every node of `RMQ_HOST`, a comma-separated list of `host[:port]`
    /// (a port left out is `RMQ_PORT`): a cluster reached without a load
    /// balancer. The connection moves along the list when its node dies.
    /// Never empty; its first entry is `host`/`port`.
    pub nodes: Vec<(String, u16)>,
    /// `RMQ_VHOST`, default `/`.
    pub vhost: String,
    /// `RMQ_USER`, default `guest`.
    pub user: String,
    /// `RMQ_PASSWORD`, default `guest`.
    pub password: SecretString,
}

impl BrokerSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let port = env.parse("RMQ_PORT", 5672)?;
        let nodes = broker_nodes(&env.string("RMQ_HOST", "localhost"), port)?;
        let (host, port) = nodes[0].clone();
        Ok(Self {
            host,
            port,
            nodes,
            vhost: env.string("RMQ_VHOST", "/"),
            user: env.string("RMQ_USER", "guest"),
            password: env
                .secret("RMQ_PASSWORD")
                .unwrap_or_else(|| SecretString::from("guest")),
        })
    }
}

/// `RMQ_HOST` as a list of nodes: `host`, `host:port` or `[v6]:port`,
/// separated by commas; never empty.
fn broker_nodes(list: &str, default_port: u16) -> Result<Vec<(String, u16)>, SettingError> {
    let refuse = |why: String| SettingError::new("RMQ_HOST", &why);
    list.split(',')
        .map(str::trim)
        .map(|node| {
            if node.is_empty() {
                return Err(refuse(format!(
                    "{list:?} has an empty entry (a comma-separated list of host[:port])"
                )));
            }
            // A bare IPv6 address has colons of its own: only `[..]:port` splits.
            let split = match node.strip_prefix('[') {
                Some(rest) => match rest.split_once(']') {
                    Some((host, "")) => Some((host, None)),
                    Some((host, tail)) => tail.strip_prefix(':').map(|port| (host, Some(port))),
                    None => None,
                },
                None if node.matches(':').count() == 1 => {
                    node.split_once(':').map(|(host, port)| (host, Some(port)))
                }
                None => Some((node, None)),
            };
            let Some((host, port)) = split.filter(|(host, _)| !host.is_empty()) else {
                return Err(refuse(format!("{node:?} is not host[:port]")));
            };
            let port = match port {
                Some(port) => port
                    .parse()
                    .map_err(|_| refuse(format!("{node:?}: the port must be 1-65535")))?,
                None => default_port,
            };
            Ok((host.to_owned(), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn rmq_host_may_list_the_nodes_of_a_cluster() {
        let env = Env::from_pairs([
            ("RMQ_HOST", "rabbit-0, rabbit-1:5701,[::1]:5702,10.0.0.3"),
            ("RMQ_PORT", "5700"),
        ]);
        let broker = BrokerSettings::from_env(&env).unwrap();
        assert_eq!(
            broker.nodes,
            [
                ("rabbit-0".to_owned(), 5700),
                ("rabbit-1".to_owned(), 5701),
                ("::1".to_owned(), 5702),
                ("10.0.0.3".to_owned(), 5700),
            ]
        );
        assert_eq!((broker.host.as_str(), broker.port), ("rabbit-0", 5700));

        for bad in ["a,,b", "a,", "a:", "a:99999", ":5672", "[::1]x", "[::1"] {
            let env = Env::from_pairs([("RMQ_HOST", bad)]);
            let error = BrokerSettings::from_env(&env).unwrap_err();
            assert_eq!(error.name, "RMQ_HOST", "{bad:?}");
        }
    }

    #[test]
    fn defaults_point_at_localhost() {
        let env = Env::default();
        let db = DatabaseSettings::from_env(&env).unwrap();
        assert_eq!((db.host.as_str(), db.port), ("localhost", 5432));
        let broker = BrokerSettings::from_env(&env).unwrap();
        assert_eq!((broker.host.as_str(), broker.port), ("localhost", 5672));
        assert_eq!(broker.password.expose_secret(), "guest");
    }

    #[test]
    fn malformed_port_names_the_variable() {
        let env = Env::from_pairs([("PGPORT", "five")]);
        let error = DatabaseSettings::from_env(&env).unwrap_err();
        assert_eq!(error.name, "PGPORT");
        assert!(error.to_string().starts_with("PGPORT: cannot use \"five\""));

        let env = Env::from_pairs([("RMQ_PORT", "70000")]);
        assert_eq!(BrokerSettings::from_env(&env).unwrap_err().name, "RMQ_PORT");
    }

    #[test]
    fn unknown_sslmode_is_refused() {
        let env = Env::from_pairs([("PGSSLMODE", "sometimes")]);
        let error = DatabaseSettings::from_env(&env).unwrap_err();
        assert_eq!(error.name, "PGSSLMODE");
        assert!(error.problem.contains("verify-full"));
    }

    #[test]
    fn durations_take_units() {
        let env = Env::from_pairs([("A", "90"), ("B", "500ms"), ("C", "2m"), ("D", "soon")]);
        let fallback = Duration::from_secs(1);
        assert_eq!(
            env.duration("A", fallback).unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            env.duration("B", fallback).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            env.duration("C", fallback).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(env.duration("unset", fallback).unwrap(), fallback);
        assert_eq!(env.duration("D", fallback).unwrap_err().name, "D");
    }

    #[test]
    fn blank_counts_as_unset() {
        let env = Env::from_pairs([("AUTH_URL", "  ")]);
        assert_eq!(
            env.string("AUTH_URL", "http://localhost:5002"),
            "http://localhost:5002"
        );
        assert_eq!(
            env.required_string("AUTH_URL").unwrap_err().name,
            "AUTH_URL"
        );
    }

    #[test]
    fn urls_must_be_http() {
        let env = Env::from_pairs([("X", "ftp://a"), ("Y", "http://a:1/b/")]);
        assert_eq!(env.http_url("X", "").unwrap_err().name, "X");
        assert_eq!(env.http_url("Y", "").unwrap(), "http://a:1/b");
    }

    #[test]
    fn flags_accept_common_spellings() {
        let env = Env::from_pairs([("A", "yes"), ("B", "off"), ("C", "maybe")]);
        assert!(env.flag("A", false).unwrap());
        assert!(!env.flag("B", true).unwrap());
        assert_eq!(env.flag("C", true).unwrap_err().name, "C");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let env = Env::from_pairs([("PGPASSWORD", "hunter2-db"), ("RMQ_PASSWORD", "hunter2-mq")]);
        let rendered = format!(
            "{env:?} {:?} {:?}",
            DatabaseSettings::from_env(&env).unwrap(),
            BrokerSettings::from_env(&env).unwrap()
        );
        assert!(!rendered.contains("hunter2"), "{rendered}");
        assert!(
            rendered.contains("PGPASSWORD"),
            "names are still shown: {rendered}"
        );
    }
}
