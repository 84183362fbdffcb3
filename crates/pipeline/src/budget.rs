//! `OPENAI_DAILY_BUDGET_USD` (issue 12): once the fleet has spent the day's
//! budget on images — summed over every process from the spend recorded in
//! PostgreSQL — image calls are held like an outage (SPEC §3: "dynamo's own
//! spending cap reached"): requests wait, neither failed nor charged, until
//! the next UTC day or a higher budget. The hold is its own service,
//! [`BUDGET_HOLD`], so names and moderation go on while images wait.

use crate::request::{Pipeline, PipelineError};
use chrono::{DateTime, Utc};
use dynamo_runtime::{Env, SettingError};
use dynamo_store::Step;

/// The hold the budget puts on image calls (shown on `/readyz` and the page).
pub const BUDGET_HOLD: &str = "openai-budget";

/// Services held before the debit, in the order they are looked at.
const WITH_BUDGET: &[&str] = &["openai", BUDGET_HOLD];
const WITHOUT_BUDGET: &[&str] = &["openai"];

/// `OPENAI_DAILY_BUDGET_USD`: a non-negative amount in USD, or unset.
pub(crate) fn daily_budget(env: &Env) -> Result<Option<f64>, SettingError> {
    let budget: Option<f64> = env.optional_parse("OPENAI_DAILY_BUDGET_USD")?;
    match budget {
        Some(usd) if !usd.is_finite() || usd < 0.0 => Err(SettingError::new(
            "OPENAI_DAILY_BUDGET_USD",
            "must be an amount in USD of 0 or more, like 20 or 7.50",
        )),
        other => Ok(other),
    }
}

/// The holds a request looks at before its debit.
pub(crate) fn held_services(pipeline: &Pipeline) -> &'static [&'static str] {
    if pipeline.holds.daily_budget_usd.is_some() {
        WITH_BUDGET
    } else {
        WITHOUT_BUDGET
    }
}

/// The holds that keep a step from calling out.
pub(crate) fn services_for(pipeline: &Pipeline, step: Step) -> &'static [&'static str] {
    match step {
        Step::Image => held_services(pipeline),
        Step::Name | Step::Moderation => WITHOUT_BUDGET,
        _ => &[],
    }
}

impl Pipeline {
    /// Before an image is bought: `Some(when to look again)` when today's
    /// spend has reached the budget (the fleet is then held), `None` when
    /// the image may be bought. `probing`: this request is the budget
    /// hold's probe, and ends the hold when the budget allows again.
    pub(crate) async fn check_budget(
        &self,
        probing: bool,
    ) -> Result<Option<DateTime<Utc>>, PipelineError> {
        let Some(budget) = self.holds.daily_budget_usd else {
            return Ok(None);
        };
        let spent = self.store.spend_today().await?;
        if spent < budget {
            if probing && self.store.release_hold(BUDGET_HOLD).await? {
                tracing::info!(
                    spent_usd = spent,
                    budget_usd = budget,
                    "under the daily budget again; buying images"
                );
            }
            return Ok(None);
        }
        let reason = format!(
            "today's image spend (${spent:.2}) has reached OPENAI_DAILY_BUDGET_USD (${budget:.2}): image calls wait until 00:00 UTC or a higher budget"
        );
        Ok(Some(self.on_outage(BUDGET_HOLD, &reason).await?))
    }
}
