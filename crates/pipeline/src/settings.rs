//! How the pipeline is configured, read once at start-up: the settings
//! [`crate::request::Pipeline::new`] takes, with their defaults.

use crate::retry::RetryPolicy;
use dynamo_runtime::{Env, SettingError};
use dynamo_store::Decision;
use std::time::Duration;

/// How a pipeline works, as configured (read once at start-up).
pub struct Settings {
    /// The styles requests may name, with their prompts and points costs
    /// (`PROMPT_GHOST`, `PROMPT_FRIEND` and `POINTS_COST` seed Golden VCR's).
    pub styles: std::sync::Arc<crate::styles::Styles>,
    pub retry: RetryPolicy,
    /// `VIEWER_MAX_IN_FLIGHT` (0: no cap).
    pub viewer_max_in_flight: u32,
    /// `LEASE_TTL`.
    pub lease_ttl: Duration,
    pub holds: HoldPolicy,
    pub approval: ApprovalPolicy,
}

#[derive(Debug, Clone, Copy)]
pub struct HoldPolicy {
    /// `UPSTREAM_PROBE_INTERVAL`, default 30s: how often one held request
    /// tries the service again.
    pub probe_every: Duration,
    /// `UPSTREAM_OUTAGE_MAX_WAIT`, default 30m: how long requests are held
    /// before they fail with a refund and the viewer is told.
    pub max_wait: Duration,
    /// `OPENAI_DAILY_BUDGET_USD` (unset: no cap): once today's spend,
    /// fleet-wide, reaches it, image calls are held until the next UTC day
    /// or a higher budget ([`crate::gate`]).
    pub daily_budget_usd: Option<f64>,
}

impl HoldPolicy {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            probe_every: env.duration("UPSTREAM_PROBE_INTERVAL", Duration::from_secs(30))?,
            max_wait: env.duration("UPSTREAM_OUTAGE_MAX_WAIT", Duration::from_secs(30 * 60))?,
            daily_budget_usd: daily_budget(env)?,
        })
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// `APPROVAL`: `off` (default) or `manual`.
    pub manual: bool,
    /// `APPROVAL_TIMEOUT`, default 10m: how long an image waits for a decision.
    pub timeout: Duration,
    /// `APPROVAL_TIMEOUT_ACTION`, default `decline`: what the timeout decides.
    pub on_timeout: Decision,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            manual: false,
            timeout: Duration::from_secs(600),
            on_timeout: Decision::Declined,
        }
    }
}

impl ApprovalPolicy {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let manual = match env.string("APPROVAL", "off").as_str() {
            "off" => false,
            "manual" => true,
            other => {
                return Err(SettingError::new(
                    "APPROVAL",
                    format!("cannot use {other:?}: expected off or manual"),
                ));
            }
        };
        let timeout = env.duration("APPROVAL_TIMEOUT", Duration::from_secs(600))?;
        if timeout < Duration::from_secs(1) {
            return Err(SettingError::new("APPROVAL_TIMEOUT", "must be at least 1s"));
        }
        // An image nobody looked at does not air unless the streamer said so.
        let on_timeout = match env.string("APPROVAL_TIMEOUT_ACTION", "decline").as_str() {
            "decline" => Decision::Declined,
            "approve" => Decision::Approved,
            other => {
                return Err(SettingError::new(
                    "APPROVAL_TIMEOUT_ACTION",
                    format!("cannot use {other:?}: expected approve or decline"),
                ));
            }
        };
        Ok(Self {
            manual,
            timeout,
            on_timeout,
        })
    }
}
