//! The gate before a paid call: service holds and the daily image budget.
//!
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
//!
//! `OPENAI_DAILY_BUDGET_USD` (issue 12): once the fleet has spent the day's
//! budget on images — summed over every process from the spend recorded in
//! PostgreSQL — image calls are held like an outage (SPEC §3: "dynamo's own
//! spending cap reached"): requests wait, neither failed nor charged, until
//! the next UTC day or a higher budget. The hold is its own service,
//! [`BUDGET_HOLD`], so names and moderation go on while images wait.

use crate::metrics::Metrics;
use crate::run::{PipelineError, Wait, chrono_duration};
use crate::settings::HoldPolicy;
use chrono::{DateTime, Utc};
use dynamo_store::{Step, Store};
use dynamo_upstream::ServiceId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The hold the budget puts on image calls (shown on `/readyz` and the page).
pub const BUDGET_HOLD: ServiceId = ServiceId::new("openai-budget");

/// The ids of the services the steps call (each provider's own), which
/// key their holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServiceIds {
    pub(crate) images: ServiceId,
    pub(crate) names: ServiceId,
    pub(crate) moderation: Option<ServiceId>,
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

/// Holds and the daily budget, asked before a paid call (and before a
/// debit): one probe per `UPSTREAM_PROBE_INTERVAL` fleet-wide while a
/// service is held.
pub(crate) struct Gate {
    store: Store,
    policy: HoldPolicy,
    metrics: Arc<Metrics>,
    services: ServiceIds,
}

/// What the gate says before a debit.
pub(crate) enum BeforeDebit {
    /// No hold on any service the request needs.
    Clear,
    /// A hold is on, yet the request goes on (it carries the probe, or the
    /// held step will end it with nothing debited).
    Go,
    /// Wait un-debited until then.
    Wait(DateTime<Utc>, Wait),
}

impl Gate {
    pub(crate) fn new(
        store: Store,
        policy: HoldPolicy,
        metrics: Arc<Metrics>,
        services: ServiceIds,
    ) -> Self {
        Self {
            store,
            policy,
            metrics,
            services,
        }
    }

    /// The holds a request looks at before its debit.
    /// Every service a request may call, then the budget's hold.
    pub(crate) fn held_services(&self) -> Vec<ServiceId> {
        let ServiceIds {
            images,
            names,
            moderation,
        } = self.services;
        let mut held = vec![images];
        for service in [Some(names), moderation].into_iter().flatten() {
            if !held.contains(&service) {
                held.push(service);
            }
        }
        held.extend(self.budget());
        held
    }

    /// The budget's hold, when there is a budget.
    fn budget(&self) -> Option<ServiceId> {
        self.policy.daily_budget_usd.map(|_| BUDGET_HOLD)
    }

    /// The holds that keep a step from calling out.
    pub(crate) fn services_for(&self, step: Step) -> Vec<ServiceId> {
        match step {
            Step::Image => [Some(self.services.images), self.budget()]
                .into_iter()
                .flatten()
                .collect(),
            Step::Name => vec![self.services.names],
            Step::Moderation => self.services.moderation.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Before the debit: whether a new request may go on now. While a
    /// service it needs is held it waits un-debited — except the one that
    /// takes the probe, which carries it (`probe`) to the held step.
    pub(crate) async fn admit_before_debit(
        &self,
        probe: &AtomicBool,
    ) -> Result<BeforeDebit, PipelineError> {
        // One read of every hold on (usually none) rather than one per service.
        let on = self.store.holds().await?;
        let held = self.held_services();
        if !on
            .iter()
            .any(|hold| held.iter().any(|s| *s == hold.service))
        {
            return Ok(BeforeDebit::Clear);
        }
        for service in held {
            let Some(hold) = on.iter().find(|hold| service == hold.service) else {
                continue;
            };
            // The budget's "probe" is a sum in the database: any request may look.
            if service == BUDGET_HOLD {
                match self.check_budget(true).await? {
                    Some(until) => return Ok(BeforeDebit::Wait(until, Wait::Held)),
                    None => continue,
                }
            }
            // Requests already debited take the probes; this one waits un-charged.
            if self.store.debited_requests_waiting().await? {
                let until =
                    hold.next_probe_at.max(Utc::now()) + chrono::Duration::milliseconds(500);
                return Ok(BeforeDebit::Wait(until, Wait::Held));
            }
            match self.admit(service, true).await? {
                Admission::Go => {}
                Admission::Probe => {
                    probe.store(true, Ordering::Relaxed);
                }
                // The held step ends it with a refund; nothing is debited yet.
                Admission::GiveUp(_) => {}
                Admission::Wait(until) => {
                    tracing::debug!(%service, "the service is held; waiting before the debit");
                    return Ok(BeforeDebit::Wait(until, Wait::Held));
                }
            }
        }
        Ok(BeforeDebit::Go)
    }

    /// Whether a request may call `service` now. Past `UPSTREAM_OUTAGE_MAX_WAIT`
    /// a request that waited gives up; a `fresh` one (not debited yet) may
    /// still take the probe, since only a probe's answer ends a hold and the
    /// service may come back long after (credit topped up mid-stream).
    pub(crate) async fn admit(
        &self,
        service: ServiceId,
        fresh: bool,
    ) -> Result<Admission, PipelineError> {
        let Some(hold) = self.store.current_hold(service.as_str()).await? else {
            return Ok(Admission::Go);
        };
        let now = Utc::now();
        let too_long = now - hold.held_since > chrono_duration(self.policy.max_wait);
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
            .take_probe(service.as_str(), self.policy.probe_every)
            .await?
        {
            tracing::info!(%service, "trying the held service again as its probe");
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
        service: ServiceId,
        reason: &str,
    ) -> Result<DateTime<Utc>, PipelineError> {
        if self
            .store
            .hold(service.as_str(), reason, self.policy.probe_every)
            .await?
        {
            self.metrics.hold_started(service);
            tracing::error!(
                %service,
                %reason,
                probe_every = ?self.policy.probe_every,
                "holding every request until the service works again: requests wait, none fails or is charged"
            );
        }
        Ok(Utc::now()
            + chrono_duration(self.policy.probe_every)
            + chrono::Duration::milliseconds(500))
    }

    /// The probe got an answer: the service works again.
    pub(crate) async fn on_probe_answered(&self, service: ServiceId) {
        match self.store.release_hold(service.as_str()).await {
            Ok(true) => {
                tracing::info!(%service, "the held service answered; resuming every request")
            }
            Ok(false) => {}
            // The next probe ends it instead.
            Err(error) => tracing::warn!(%service, %error, "could not end the hold"),
        }
    }

    /// Why an optional call to `service` (a spoken caption) should not be
    /// made now: the service is held, or today's budget is spent. Only
    /// looks: an optional call never takes a probe nor starts a hold, so
    /// it can neither end nor begin an outage for the requests that wait.
    pub(crate) async fn blocks_optional_call(
        &self,
        service: ServiceId,
    ) -> Result<Option<String>, PipelineError> {
        if let Some(hold) = self.store.current_hold(service.as_str()).await? {
            return Ok(Some(format!("{service} is held: {}", hold.reason)));
        }
        if let Some(budget) = self.policy.daily_budget_usd {
            let spent = self.store.spend_today().await?;
            if spent >= budget {
                return Ok(Some(format!(
                    "today's spend (${spent:.2}) has reached OPENAI_DAILY_BUDGET_USD (${budget:.2})"
                )));
            }
        }
        Ok(None)
    }

    /// Before an image is bought: `Some(when to look again)` when today's
    /// spend has reached the budget (the fleet is then held), `None` when
    /// the image may be bought. `probing`: this request is the budget
    /// hold's probe, and ends the hold when the budget allows again.
    pub(crate) async fn check_budget(
        &self,
        probing: bool,
    ) -> Result<Option<DateTime<Utc>>, PipelineError> {
        let Some(budget) = self.policy.daily_budget_usd else {
            return Ok(None);
        };
        let spent = self.store.spend_today().await?;
        if spent < budget {
            if probing && self.store.release_hold(BUDGET_HOLD.as_str()).await? {
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
