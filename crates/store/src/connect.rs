//! Connecting to PostgreSQL and applying the migrations.

use dynamo_runtime::DatabaseSettings;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrate;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use std::time::Duration;

/// Everything dynamo owns lives in this schema.
pub const SCHEMA: &str = "dynamo";
/// sqlx's bookkeeping table, kept inside our schema rather than in `public`.
pub const MIGRATIONS_TABLE: &str = "dynamo._sqlx_migrations";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach PostgreSQL at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("request {id} cannot go from {from} to {to}")]
    IllegalTransition {
        id: uuid::Uuid,
        from: String,
        to: &'static str,
    },
    #[error("request {0} does not exist")]
    NotFound(uuid::Uuid),
    /// This process no longer owns the request: its lease lapsed and another
    /// process took over. Nothing was written.
    #[error("request {0} is no longer ours (its lease lapsed)")]
    LeaseLost(uuid::Uuid),
}

impl StoreError {
    /// True when retrying later may succeed (the database was unreachable or
    /// restarting), as opposed to a bug or a broken invariant.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Query(error) => {
                matches!(
                    error,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                ) || error
                    .as_database_error()
                    .and_then(|e| e.code())
                    // 57P01 admin_shutdown, 57P03 cannot_connect_now, 08*: connection exceptions.
                    .is_some_and(|code| {
                        code == "57P01" || code == "57P03" || code.starts_with("08")
                    })
            }
            _ => false,
        }
    }

    /// True when PostgreSQL refused the values themselves: SQLSTATE class
    /// 22 (a data exception, such as text it cannot hold) or 23 (an
    /// integrity constraint, such as a foreign key to a request that is not
    /// there). The same statement with the same values is refused every
    /// time, so retrying is pointless. Errors about the system instead (a
    /// missing privilege or table, the server away) would refuse every
    /// request alike and are not this.
    pub fn is_refused_data(&self) -> bool {
        match self {
            StoreError::Query(error) => error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
            _ => false,
        }
    }
}

pub fn connect_options(settings: &DatabaseSettings) -> PgConnectOptions {
    let sslmode = match settings.sslmode.as_str() {
        "disable" => PgSslMode::Disable,
        "allow" => PgSslMode::Allow,
        "require" => PgSslMode::Require,
        "verify-ca" => PgSslMode::VerifyCa,
        "verify-full" => PgSslMode::VerifyFull,
        _ => PgSslMode::Prefer,
    };
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&settings.host)
        .port(settings.port)
        .database(&settings.database)
        .username(&settings.user)
        .ssl_mode(sslmode)
        .application_name("dynamo");
    if let Some(password) = &settings.password {
        options = options.password(password.expose_secret());
    }
    options
}

/// How long a consumer's work waits for a connection before the attempt
/// counts as failed (and is retried).
const WORK_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server waits for a connection: its health and reads answer
/// a 503 naming the database within a probe's timeout (1 s by default in
/// Kubernetes) during an outage, instead of hanging until it is over.
pub const SERVE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

fn pool_options(settings: &DatabaseSettings, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(acquire_timeout)
}

/// Connects a pool and brings the schema up to date.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, StoreError> {
    let pool = pool_options(settings, WORK_ACQUIRE_TIMEOUT)
        .connect_with(connect_options(settings))
        .await
        .map_err(|source| StoreError::Connect {
            target: target(settings),
            source,
        })?;
    migrate(&pool).await?;
    Ok(pool)
}

fn target(settings: &DatabaseSettings) -> String {
    format!(
        "{}:{}/{} as {}",
        settings.host, settings.port, settings.database, settings.user
    )
}

/// A pool that connects on first use, and the schema brought up to date in
/// the background as soon as PostgreSQL can be reached: for a process that
/// must start (and say what is missing) while the database is away. Its
/// connections are waited for [`SERVE_ACQUIRE_TIMEOUT`] at most.
pub fn connect_in_background(settings: &DatabaseSettings) -> (PgPool, SchemaReady) {
    let pool =
        pool_options(settings, SERVE_ACQUIRE_TIMEOUT).connect_lazy_with(connect_options(settings));
    let (ready, watch) = tokio::sync::watch::channel(false);
    let migrating = pool.clone();
    let target = target(settings);
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(250);
        loop {
            match migrate(&migrating).await {
                Ok(()) => {
                    let _ = ready.send(true);
                    return;
                }
                Err(error) if error.is_transient() => {
                    tracing::warn!(%target, %error, retry_in = ?wait, "cannot reach PostgreSQL yet; check PGHOST, PGPORT, PGUSER and PGPASSWORD");
                }
                // A migration that fails against a reachable database will
                // not pass by itself; say so, and keep trying in case an
                // operator fixes the database meanwhile.
                Err(error) => {
                    tracing::error!(%error, retry_in = ?wait, "cannot bring the database schema up to date")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ready.closed() => return,
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    });
    (pool, SchemaReady(watch))
}

/// Whether the schema is up to date yet (see [`connect_in_background`]).
#[derive(Debug, Clone)]
pub struct SchemaReady(tokio::sync::watch::Receiver<bool>);

impl SchemaReady {
    /// Already up to date (for a pool from [`connect`]).
    pub fn done() -> Self {
        Self(tokio::sync::watch::channel(true).1)
    }

    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the schema is up to date.
    pub async fn wait(&self) {
        let mut watch = self.0.clone();
        // An error means the migrating task is gone without success: only
        // when the runtime shuts down, so there is nothing left to wait for.
        let _ = watch.wait_for(|ready| *ready).await;
    }
}

/// Applies the migrations under `migrations/`. Safe to run from several
/// processes at once: sqlx holds a PostgreSQL advisory lock while it works, and
/// the schema is created under that lock.
///
/// Logs each migration it applied; when there was none it says nothing.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("../../migrations");
    migrator.create_schema(SCHEMA);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    let mut connection = pool.acquire().await?;
    // `CREATE SCHEMA IF NOT EXISTS` and friends answer with a NOTICE ("schema
    // \"dynamo\" already exists, skipping") that sqlx logs at INFO on every
    // start; on this connection only warnings and errors are worth a line.
    sqlx::query!("SET client_min_messages = warning")
        .execute(&mut *connection)
        .await?;
    // sqlx's advisory lock is taken here rather than inside `run_direct`, so
    // it covers reading what was applied too: a process that waited while
    // another migrated must not report those migrations as its own.
    migrator.set_locking(false);
    // During a rolling upgrade a newer dynamo of the fleet may have migrated
    // first. Migrations only ever add (no drops, no renames), so this one
    // runs on against the newer schema rather than refuse to start.
    migrator.set_ignore_missing(true);
    connection.lock().await?;
    let outcome = match applied_versions(&mut connection).await {
        // `run_direct` is what `run` calls once it holds a connection; through
        // `run(&mut *connection)` the future stops being `Send` (sqlx's own note).
        Ok(before) => migrator
            .run_direct(None, &mut *connection, false)
            .await
            .map(|()| before)
            .map_err(StoreError::from),
        Err(error) => Err(error),
    };
    let unlocked = connection.unlock().await;
    // The connection goes back to the pool: later queries keep the default.
    sqlx::query!("RESET client_min_messages")
        .execute(&mut *connection)
        .await?;
    let before = outcome?;
    unlocked?;
    let newer: Vec<i64> = before
        .iter()
        .copied()
        .filter(|version| !migrator.iter().any(|m| m.version == *version))
        .collect();
    if !newer.is_empty() {
        tracing::warn!(
            versions = ?newer,
            "the database has migrations this build does not know: a newer dynamo migrated it; running on (migrations only add), upgrade this process"
        );
    }
    for migration in migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
    {
        tracing::info!(
            version = migration.version,
            "applied database migration {}",
            migration.description
        );
    }
    Ok(())
}

/// The versions recorded as applied (none before the first migration).
async fn applied_versions(connection: &mut sqlx::PgConnection) -> Result<Vec<i64>, StoreError> {
    let exists = sqlx::query_scalar!(
        r#"SELECT to_regclass($1) IS NOT NULL AS "exists!""#,
        MIGRATIONS_TABLE
    )
    .fetch_one(&mut *connection)
    .await?;
    if !exists {
        return Ok(Vec::new());
    }
    // Runtime-checked: the table is named by MIGRATIONS_TABLE, as sqlx's migrator is told.
    let query = format!("SELECT version FROM {MIGRATIONS_TABLE} WHERE success");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_all(&mut *connection)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sqlx-cli migrates the database the checked queries are prepared
    /// against (scripts/queries.sh) with ../../sqlx.toml: it must lay the
    /// schema out as `migrate` does, or the check would prove nothing.
    #[test]
    fn sqlx_cli_migrates_into_the_same_schema_and_table() {
        let config = include_str!("../../../sqlx.toml");
        let settings: Vec<&str> = config
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .collect();
        assert!(
            settings.contains(&format!("table-name = \"{MIGRATIONS_TABLE}\"").as_str()),
            "{settings:?}"
        );
        assert!(
            settings.contains(&format!("create-schemas = [\"{SCHEMA}\"]").as_str()),
            "{settings:?}"
        );
        assert!(
            settings.contains(&"migrations-dir = \"migrations\""),
            "{settings:?}"
        );
    }
}
