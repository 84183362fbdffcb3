//! Holding the fleet while a service is out (SPEC §6.10). A bad key, no
//! credit or every model gone says nothing about a viewer's prompt, so such
//! an answer does not fail the request: it puts the service on hold for the
//! whole fleet (in PostgreSQL) and the request waits in the database, its
//! retry budget untouched. While the hold is on, no request calls the
//! service except one probe per `UPSTREAM_PROBE_INTERVAL`, fleet-wide; the
//! probe's success ends the hold. Only a hold older than
//! `UPSTREAM_OUTAGE_MAX_WAIT` fails the requests still waiting, with a refund.

use crate::request::{Pipeline, PipelineError, chrono_duration};
use chrono::{DateTime, Utc};
use dynamo_runtime::{Env, SettingError};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct HoldPolicy {
    /// `UPSTREAM_PROBE_INTERVAL`, default 30s: how often one held request
    /// tries the service again.
    pub probe_every: Duration,
    /// `UPSTREAM_OUTAGE_MAX_WAIT`, default 30m: how long requests are held
    /// before they fail with a refund and the viewer is told.
    pub max_wait: Duration,
}

impl HoldPolicy {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            probe_every: env.duration("UPSTREAM_PROBE_INTERVAL", Duration::from_secs(30))?,
            max_wait: env.duration("UPSTREAM_OUTAGE_MAX_WAIT", Duration::from_secs(30 * 60))?,
        })
    }
}

/// Whether a request may call a service now.
pub(crate) enum Admission {
    /// Not held.
    Go,
    /// Held, and this request is the probe.
    Probe,
    /// Held: wait until then.
    Wait(DateTime<Utc>),
    /// Held for longer than the policy allows: give up, with the reason.
    GiveUp(String),
}

impl Pipeline {
    pub(crate) async fn admit(&self, service: &str) -> Result<Admission, PipelineError> {
        let Some(hold) = self.store.current_hold(service).await? else {
            return Ok(Admission::Go);
        };
        let now = Utc::now();
        if now - hold.held_since > chrono_duration(self.holds.max_wait) {
            return Ok(Admission::GiveUp(format!(
                "{} (held for longer than UPSTREAM_OUTAGE_MAX_WAIT)",
                hold.reason
            )));
        }
        if self
            .store
            .take_probe(service, self.holds.probe_every)
            .await?
        {
            tracing::info!(service, "trying the held service again as its probe");
            return Ok(Admission::Probe);
        }
        // Just after the next probe: by then it has either ended the hold
        // or moved the next probe on.
        let next = hold.next_probe_at.max(now) + chrono::Duration::milliseconds(500);
        Ok(Admission::Wait(next))
    }

    /// The service answered as out of service: hold the fleet. Returns when
    /// this request should look again.
    pub(crate) async fn on_outage(
        &self,
        service: &'static str,
        reason: &str,
    ) -> Result<DateTime<Utc>, PipelineError> {
        if self
            .store
            .hold(service, reason, self.holds.probe_every)
            .await?
        {
            self.metrics.hold_started(service);
            tracing::error!(
                service,
                %reason,
                probe_every = ?self.holds.probe_every,
                "holding every request until the service works again: requests wait, none fails or is charged"
            );
        }
        Ok(Utc::now()
            + chrono_duration(self.holds.probe_every)
            + chrono::Duration::milliseconds(500))
    }

    /// The probe got an answer: the service works again.
    pub(crate) async fn on_probe_answered(&self, service: &str) {
        match self.store.release_hold(service).await {
            Ok(true) => {
                tracing::info!(service, "the held service answered; resuming every request")
            }
            Ok(false) => {}
            // The next probe ends it instead.
            Err(error) => tracing::warn!(service, %error, "could not end the hold"),
        }
    }
}
