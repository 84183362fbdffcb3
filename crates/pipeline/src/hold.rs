//! Holding the fleet while a service is out (SPEC §6.10). A bad key, no
//! credit or every model gone says nothing about a viewer's prompt, so such
//! an answer does not fail the request: it puts the service on hold for the
//! whole fleet (in PostgreSQL) and the request waits in the database, its
//! retry budget untouched. While the hold is on, no request calls the
//! service except one probe per `UPSTREAM_PROBE_INTERVAL`, fleet-wide; the
//! probe's success ends the hold. Only a hold older than
//! `UPSTREAM_OUTAGE_MAX_WAIT` fails the requests still waiting, with a refund;
//! it is still probed, so the fleet resumes by itself when the service is back.
//!
//! A request not yet debited looks at the hold before its debit: while the
//! fleet holds it waits un-charged (unless it is the probe), so a stream of
//! new requests during an outage is not debited only to wait.

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
    /// `OPENAI_DAILY_BUDGET_USD` (unset: no cap): once today's spend,
    /// fleet-wide, reaches it, image calls are held until the next UTC day
    /// or a higher budget ([`crate::budget`]).
    pub daily_budget_usd: Option<f64>,
}

impl HoldPolicy {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            probe_every: env.duration("UPSTREAM_PROBE_INTERVAL", Duration::from_secs(30))?,
            max_wait: env.duration("UPSTREAM_OUTAGE_MAX_WAIT", Duration::from_secs(30 * 60))?,
            daily_budget_usd: crate::budget::daily_budget(env)?,
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
    /// Before the debit: whether a new request may go on now. While a
    /// service it needs is held it waits un-debited — except the one that
    /// takes the probe, which carries it (`run.probe`) to the held step.
    pub(crate) async fn admit_before_debit(
        &self,
        run: &crate::request::Run<'_>,
    ) -> Result<Option<(DateTime<Utc>, crate::request::Wait)>, PipelineError> {
        for &service in crate::budget::held_services(self) {
            let Some(hold) = self.store.current_hold(service).await? else {
                continue;
            };
            // The budget's "probe" is a sum in the database: any request may look.
            if service == crate::budget::BUDGET_HOLD {
                match self.check_budget(true).await? {
                    Some(until) => return Ok(Some((until, crate::request::Wait::Held))),
                    None => continue,
                }
            }
            // Requests already debited take the probes; this one waits un-charged.
            if self.store.debited_requests_waiting().await? {
                let until =
                    hold.next_probe_at.max(Utc::now()) + chrono::Duration::milliseconds(500);
                return Ok(Some((until, crate::request::Wait::Held)));
            }
            match self.admit(service, true).await? {
                Admission::Go => {}
                Admission::Probe => {
                    run.probe.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                // The held step ends it with a refund; nothing is debited yet.
                Admission::GiveUp(_) => {}
                Admission::Wait(until) => {
                    tracing::debug!(service, "the service is held; waiting before the debit");
                    return Ok(Some((until, crate::request::Wait::Held)));
                }
            }
        }
        Ok(None)
    }

    /// Whether a request may call `service` now. Past `UPSTREAM_OUTAGE_MAX_WAIT`
    /// a request that waited gives up; a `fresh` one (not debited yet) may
    /// still take the probe, since only a probe's answer ends a hold and the
    /// service may come back long after (credit topped up mid-stream).
    pub(crate) async fn admit(
        &self,
        service: &str,
        fresh: bool,
    ) -> Result<Admission, PipelineError> {
        let Some(hold) = self.store.current_hold(service).await? else {
            return Ok(Admission::Go);
        };
        let now = Utc::now();
        let too_long = now - hold.held_since > chrono_duration(self.holds.max_wait);
        let give_up = || {
            Admission::GiveUp(format!(
                "{} (held for longer than UPSTREAM_OUTAGE_MAX_WAIT)",
                hold.reason
            ))
        };
        if too_long && !fresh {
            return Ok(give_up());
        }
        if self
            .store
            .take_probe(service, self.holds.probe_every)
            .await?
        {
            tracing::info!(service, "trying the held service again as its probe");
            return Ok(Admission::Probe);
        }
        if too_long {
            return Ok(give_up());
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
