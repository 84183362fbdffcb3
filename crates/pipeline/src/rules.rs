//! The content rules (issue 29), applied to every request — Golden VCR,
//! admin, Twitch — first, before anything is paid for or debited: the
//! streamer's blocklist, a per-viewer cooldown and a per-viewer cap per
//! broadcast. A request that breaks one ends `rejected` with the rule as its
//! reason (never the blocked word itself), charged nothing, and its viewer is
//! told through `generation-results` like any other end.
//!
//! The rules are read from PostgreSQL for each request judged, so a change
//! made on any server applies to the next request on every consumer. A
//! request is judged once: its verdict is recorded, and a run resumed later
//! (its viewer's turn, a crash) goes by it. An admin's request may bypass
//! the rules; that is recorded too (`bypassed`). A resumed request does not
//! carry the admin's ask: should a crash fall between recording a request
//! and judging it, it is judged by the rules — the safe side.

use crate::request::{Pipeline, Run};
use crate::run::{Current, PipelineError};
use dynamo_store::{ContentRules, RequestState, RuleNumbers, RuleVerdict};
use dynamo_wire::{BlockedPhrase, Blocklist};

impl Pipeline {
    /// Whether the request may go on; if not, it has ended `rejected`.
    pub(crate) async fn admitted_by_rules(
        &self,
        run: &Run<'_>,
        current: &mut Current,
    ) -> Result<bool, PipelineError> {
        let rules = self.store.content_rules().await?;
        // A request this run recorded has not been judged yet.
        let recorded = match run.created {
            true => None,
            false => self.store.rules_verdict(run.id()).await?,
        };
        let verdict = match recorded {
            Some(verdict) => verdict,
            None => {
                let verdict = self.judge(run, &rules).await?;
                self.store.record_rules_verdict(run.id(), verdict).await?
            }
        };
        match verdict {
            RuleVerdict::Passed => return Ok(true),
            RuleVerdict::Bypassed => {
                tracing::info!("an admin's request: the content rules do not apply");
                return Ok(true);
            }
            RuleVerdict::Blocklist | RuleVerdict::Cooldown | RuleVerdict::Cap => {}
        }
        self.metrics.refused_by_rule(verdict.as_str());
        let reason = refusal(verdict, rules.numbers);
        run.ensure_owned()?;
        self.end_with(run, current, RequestState::Rejected, reason)
            .await?;
        Ok(false)
    }

    async fn judge(
        &self,
        run: &Run<'_>,
        rules: &ContentRules,
    ) -> Result<RuleVerdict, PipelineError> {
        if run.job.bypass_rules {
            return Ok(RuleVerdict::Bypassed);
        }
        // Phrases were validated when added; one that no longer parses
        // (a stricter build) is left out rather than refusing everything.
        let blocklist = Blocklist::new(
            rules
                .blocklist
                .iter()
                .filter_map(|phrase| BlockedPhrase::parse(phrase).ok())
                .collect(),
        );
        if blocklist.blocks(run.job.request.subject().as_str()) {
            return Ok(RuleVerdict::Blocklist);
        }
        let numbers = rules.numbers;
        if numbers.cooldown_seconds == 0 && numbers.max_per_broadcast == 0 {
            return Ok(RuleVerdict::Passed);
        }
        let history = self
            .store
            .viewer_history(run.id(), numbers.broadcast_window_minutes)
            .await?;
        let cooldown = chrono::Duration::seconds(i64::from(numbers.cooldown_seconds));
        if numbers.cooldown_seconds > 0
            && history
                .last_at
                .is_some_and(|last| history.created_at - last < cooldown)
        {
            return Ok(RuleVerdict::Cooldown);
        }
        if numbers.max_per_broadcast > 0
            && history.in_broadcast >= i64::from(numbers.max_per_broadcast)
        {
            return Ok(RuleVerdict::Cap);
        }
        Ok(RuleVerdict::Passed)
    }
}

/// What the viewer is told: the rule, never the word that broke it.
fn refusal(verdict: RuleVerdict, numbers: RuleNumbers) -> String {
    let rule = match verdict {
        RuleVerdict::Blocklist => "it contains a word or phrase the streamer blocked".to_owned(),
        RuleVerdict::Cooldown => format!(
            "one request per viewer every {} s",
            numbers.cooldown_seconds
        ),
        RuleVerdict::Cap => format!(
            "at most {} requests per viewer per broadcast",
            numbers.max_per_broadcast
        ),
        RuleVerdict::Passed | RuleVerdict::Bypassed => "none".to_owned(),
    };
    format!("refused by the content rules: {rule}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_rule_and_its_number() {
        let numbers = RuleNumbers {
            cooldown_seconds: 30,
            max_per_broadcast: 3,
            broadcast_window_minutes: 720,
        };
        assert_eq!(
            refusal(RuleVerdict::Cooldown, numbers),
            "refused by the content rules: one request per viewer every 30 s"
        );
        assert_eq!(
            refusal(RuleVerdict::Cap, numbers),
            "refused by the content rules: at most 3 requests per viewer per broadcast"
        );
        assert!(refusal(RuleVerdict::Blocklist, numbers).contains("blocked"));
    }
}
