//! What the fleet knows about its models (migration 0013): which are gone,
//! which announce a shutdown, which optional parameters each refused. One
//! process learns it — from `GET /models` or from a call answered
//! `model_not_found` — and every process reads it before its next call.

use crate::{Store, StoreError};
use chrono::NaiveDate;
use std::time::Duration;

/// A configured model as operators see it (`/stats`, metrics).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfiguredModel {
    pub id: String,
    /// `OPENAI_IMAGE_MODEL` or `OPENAI_CHAT_MODEL`.
    pub variable: String,
    /// Its place in the chain, 0 first.
    pub preference: i32,
    pub shutdown_date: Option<NaiveDate>,
    /// Days from today to the shutdown date (negative once past).
    pub days_left: Option<i32>,
    pub gone: bool,
}

/// A model as `GET /models` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub id: String,
    pub shutdown_date: Option<NaiveDate>,
}

/// Serializes the transactions that write several models' rows: consumers
/// starting together configure their chains (in preference order) while one
/// records the catalogue (in the listing's order), and row locks taken in
/// opposite orders deadlock. These writes are rare (start-up, hourly), so
/// one at a time costs nothing. The lock ends with the transaction.
async fn lock_catalogue(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('dynamo.model'))")
        .execute(tx)
        .await?;
    Ok(())
}

impl Store {
    /// Records that `variable` names `models`, in that order of preference.
    /// A model dropped from the setting keeps its lifecycle but is no longer
    /// shown as configured.
    pub async fn configure_models(
        &self,
        variable: &str,
        models: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        lock_catalogue(&mut tx).await?;
        sqlx::query!(
            "UPDATE dynamo.model SET configured_as = NULL, preference = NULL
             WHERE configured_as = $1 AND NOT (id = ANY($2))",
            variable,
            models
        )
        .execute(&mut *tx)
        .await?;
        for (preference, model) in models.iter().enumerate() {
            sqlx::query!(
                "INSERT INTO dynamo.model (id, configured_as, preference) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET configured_as = $2, preference = $3",
                model,
                variable,
                i32::try_from(preference).unwrap_or(i32::MAX)
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims the fleet's next read of `GET /models`: true for one caller per
    /// `every`, so a fleet of any size reads the catalogue once per period.
    pub async fn claim_catalogue_check(
        &self,
        every: Duration,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query!(
            "INSERT INTO dynamo.model_catalogue_check (id, checked_at, checked_by)
             VALUES (true, now(), $2)
             ON CONFLICT (id) DO UPDATE SET checked_at = now(), checked_by = $2
             WHERE dynamo.model_catalogue_check.checked_at <= now() - make_interval(secs => $1)",
            every.as_secs_f64(),
            owner
        )
        .execute(self.pool())
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Records a successful `GET /models`: listed models are usable with the
    /// shutdown date they announce; configured models it does not list are
    /// gone (OpenAI stops listing a model when it shuts it down).
    pub async fn record_catalogue(&self, listed: &[ListedModel]) -> Result<(), StoreError> {
        let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
        let dates: Vec<Option<NaiveDate>> = listed.iter().map(|m| m.shutdown_date).collect();
        let mut tx = self.pool().begin().await?;
        lock_catalogue(&mut tx).await?;
        sqlx::query!("INSERT INTO dynamo.model (id, shutdown_date, listed_at)
             SELECT id, shutdown_date, now() FROM unnest($1::text[], $2::date[]) AS l (id, shutdown_date)
             ON CONFLICT (id) DO UPDATE
             SET shutdown_date = EXCLUDED.shutdown_date, listed_at = now(),
                 gone_at = NULL, gone_reason = NULL", &ids as &[&str], &dates as &[Option<NaiveDate>])
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE dynamo.model SET gone_at = now(), gone_reason = 'not listed by GET /models'
             WHERE configured_as IS NOT NULL AND gone_at IS NULL AND NOT (id = ANY($1))",
            &ids as &[&str]
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks `model` gone for the whole fleet. True when this call is the one
    /// that learned it (so it is reported once, not by every process).
    pub async fn mark_model_gone(&self, model: &str, reason: &str) -> Result<bool, StoreError> {
        let marked = sqlx::query!(
            "INSERT INTO dynamo.model (id, gone_at, gone_reason) VALUES ($1, now(), $2)
             ON CONFLICT (id) DO UPDATE SET gone_at = now(), gone_reason = $2
             WHERE dynamo.model.gone_at IS NULL",
            model,
            reason
        )
        .execute(self.pool())
        .await?;
        Ok(marked.rows_affected() == 1)
    }

    /// Stops sending `parameter` to `model`, fleet-wide.
    pub async fn refuse_parameter(
        &self,
        model: &str,
        parameter: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO dynamo.model_parameter_refusal (model, parameter, detail)
             VALUES ($1, $2, $3) ON CONFLICT (model, parameter) DO NOTHING",
            model,
            parameter,
            detail
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// What the fleet learned about models, in one read: the gone models
    /// and the refused (model, parameter) pairs — what an image call asks
    /// before it picks a model and its parameters.
    pub async fn learned_about_models(&self) -> Result<LearnedModels, StoreError> {
        let row = sqlx::query!(
            r#"SELECT
                 coalesce((SELECT array_agg(id ORDER BY id) FROM dynamo.model
                           WHERE gone_at IS NOT NULL), '{}') AS "gone!",
                 coalesce((SELECT array_agg(model ORDER BY model, parameter)
                           FROM dynamo.model_parameter_refusal), '{}') AS "models!",
                 coalesce((SELECT array_agg(parameter ORDER BY model, parameter)
                           FROM dynamo.model_parameter_refusal), '{}') AS "parameters!""#
        )
        .fetch_one(self.pool())
        .await?;
        Ok(LearnedModels {
            gone: row.gone,
            refused: row.models.into_iter().zip(row.parameters).collect(),
        })
    }

    /// The configured models with their shutdown dates and days left, by
    /// setting and preference: what `/stats` and the metrics show.
    pub async fn configured_models(&self) -> Result<Vec<ConfiguredModel>, StoreError> {
        Ok(sqlx::query_as!(
            ConfiguredModel,
            r#"SELECT id, configured_as AS "variable!", preference AS "preference!", shutdown_date,
                    (shutdown_date - current_date)::int AS days_left,
                    gone_at IS NOT NULL AS "gone!"
             FROM dynamo.model WHERE configured_as IS NOT NULL
             ORDER BY configured_as, preference"#
        )
        .fetch_all(self.pool())
        .await?)
    }
}

/// What the fleet learned about models ([`Store::learned_about_models`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnedModels {
    /// Models known to be gone, by id.
    pub gone: Vec<String>,
    /// (model, parameter) pairs a model refused.
    pub refused: Vec<(String, String)>,
}
