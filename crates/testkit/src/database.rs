//! A fresh PostgreSQL database per test, dropped when the test ends.

use dynamo_runtime::{DatabaseSettings, Env};
use sqlx::{Connection, PgConnection, PgPool};

#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub settings: DatabaseSettings,
    pool: PgPool,
}

/// Where the tests' PostgreSQL is: the usual PG* variables, defaulting to the
/// local server with trust auth as the `postgres` user.
fn server_settings() -> DatabaseSettings {
    let env = Env::from_process().unwrap_or_default();
    let env = Env::from_pairs([
        ("PGHOST", env.string("PGHOST", "127.0.0.1")),
        ("PGPORT", env.string("PGPORT", "5432")),
        ("PGUSER", env.string("PGUSER", "postgres")),
        ("PGPASSWORD", env.string("PGPASSWORD", "")),
        ("PGDATABASE", "postgres".to_owned()),
        ("PGSSLMODE", "disable".to_owned()),
        ("PG_MAX_CONNECTIONS", "5".to_owned()),
    ]);
    DatabaseSettings::from_env(&env).unwrap()
}

async fn admin_connection() -> PgConnection {
    PgConnection::connect_with(&dynamo_store::connect_options(&server_settings()))
        .await
        .expect("PostgreSQL must be running for the tests (see README: Testing)")
}

impl TestDatabase {
    /// An empty database (not migrated).
    pub async fn create_empty() -> Self {
        let name = format!("dynamo_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut settings = server_settings();
        settings.database = name.clone();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect_with(dynamo_store::connect_options(&settings))
            .await
            .unwrap();
        Self {
            name,
            settings,
            pool,
        }
    }

    /// A database with dynamo's schema applied.
    pub async fn create() -> Self {
        let database = Self::create_empty().await;
        dynamo_store::migrate(&database.pool).await.unwrap();
        database
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether consumer process `pid` holds a request's lease, i.e. is
    /// working on it (the lease owner is `host:pid:start`).
    pub async fn holds_lease(&self, pid: u32) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM dynamo.image_request
                            WHERE lease_owner LIKE '%:' || $1 || ':%' AND lease_expires_at > now())",
        )
        .bind(pid.to_string())
        .fetch_one(&self.pool)
        .await
        .unwrap_or(false)
    }

    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let s = &self.settings;
        let mut pairs = vec![
            ("PGHOST".to_owned(), s.host.clone()),
            ("PGPORT".to_owned(), s.port.to_string()),
            ("PGDATABASE".to_owned(), s.database.clone()),
            ("PGUSER".to_owned(), s.user.clone()),
            ("PGSSLMODE".to_owned(), "disable".to_owned()),
        ];
        if let Ok(password) = std::env::var("PGPASSWORD") {
            pairs.push(("PGPASSWORD".to_owned(), password));
        }
        pairs
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        crate::clean_up("the test's database", move || async move {
            let mut admin =
                PgConnection::connect_with(&dynamo_store::connect_options(&server_settings()))
                    .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
            Ok(())
        });
    }
}
