//! Money and alerts counted from outside dynamo: the fake ledger's own
//! records, grouped by request id and viewer, and what the broker delivered
//! to the alerts service. dynamo's tables say what dynamo believes; these
//! say what the viewer was charged and saw.

use crate::{Fakes, FlowStatus, TestBroker};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// A request a test sent, and how it must end.
#[derive(Debug, Clone)]
pub struct Expected {
    pub request_id: Uuid,
    pub viewer: String,
    pub succeeded: bool,
}

/// What the ledger holds for dynamo, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub accepted: usize,
    pub rejected: usize,
}

impl Fakes {
    /// The ledger's records checked against SPEC §6.3: every debit is for a
    /// request the test sent, in that request's viewer's name; each viewer
    /// has exactly as many accepted debits as succeeded requests; a viewer
    /// with one request has it on that request (with several, a debit whose
    /// answer was lost may be adopted by another request of the same viewer:
    /// the history carries no metadata, so only the viewer's total is
    /// exact); no debit is left pending; no other service's flow was
    /// touched. Panics naming every violation.
    pub fn assert_money(&self, expected: &[Expected]) -> Money {
        let (flows, foreign) = self.with(|s| (s.flows.clone(), s.foreign_flows.clone()));
        let by_id: HashMap<String, &Expected> = expected
            .iter()
            .map(|e| (e.request_id.to_string(), e))
            .collect();
        let mut problems = Vec::new();
        let mut accepted_per_request: HashMap<&str, usize> = HashMap::new();
        let mut accepted_per_viewer: HashMap<&str, usize> = HashMap::new();
        let mut money = Money::default();
        for (flow_id, flow) in &flows {
            match by_id.get(&flow.request_id) {
                None => problems.push(format!("debit {flow_id} is for no request sent: {flow:?}")),
                Some(e) if e.viewer != flow.viewer => problems.push(format!(
                    "debit {flow_id} of request {} charged {} instead of {}",
                    e.request_id, flow.viewer, e.viewer
                )),
                Some(_) => {}
            }
            match flow.status {
                FlowStatus::Pending => problems.push(format!(
                    "debit {flow_id} of request {} left pending",
                    flow.request_id
                )),
                FlowStatus::Accepted => {
                    money.accepted += 1;
                    *accepted_per_request.entry(&flow.request_id).or_default() += 1;
                    *accepted_per_viewer.entry(&flow.viewer).or_default() += 1;
                }
                FlowStatus::Rejected => money.rejected += 1,
            }
        }
        let mut outcomes: HashMap<&str, (usize, usize)> = HashMap::new();
        for e in expected {
            let (succeeded, failed) = outcomes.entry(&e.viewer).or_default();
            *if e.succeeded { succeeded } else { failed } += 1;
        }
        for (viewer, (succeeded, failed)) in &outcomes {
            let accepted = accepted_per_viewer.get(viewer).copied().unwrap_or(0);
            if accepted != *succeeded {
                problems.push(format!(
                    "viewer {viewer} has {accepted} accepted debits for {succeeded} succeeded requests"
                ));
            }
            if succeeded + failed > 1 {
                continue;
            }
            for e in expected.iter().filter(|e| e.viewer == *viewer) {
                let accepted = accepted_per_request
                    .get(e.request_id.to_string().as_str())
                    .copied()
                    .unwrap_or(0);
                if accepted != usize::from(e.succeeded) {
                    problems.push(format!(
                        "request {} ({}) has {accepted} accepted debits",
                        e.request_id,
                        if e.succeeded {
                            "succeeded"
                        } else {
                            "did not succeed"
                        }
                    ));
                }
            }
        }
        for flow in foreign.iter().filter(|f| f.touched_by_dynamo.is_some()) {
            problems.push(format!(
                "another service's flow was settled by dynamo: {flow:?}"
            ));
        }
        assert!(
            problems.is_empty(),
            "money is wrong:\n{}",
            problems.join("\n")
        );
        money
    }
}

/// Every message waiting on `queue`, counted by `message_id` (a message
/// without one counts under "").
pub async fn drain_by_message_id(broker: &TestBroker, queue: &str) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    while let Some(message) = broker.next(queue, Duration::from_millis(300)).await {
        *counts
            .entry(message.message_id.unwrap_or_default())
            .or_default() += 1;
    }
    counts
}

/// Every message waiting on `queue`, taken on `channel` (a connection of
/// the caller's, e.g. one opened after a broker restart), counted by
/// `message_id` (a message without one counts under "").
pub async fn count_by_message_id(channel: &lapin::Channel, queue: &str) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    // A read that fails is the test's failure, never "no more alerts".
    while let Some(message) = channel
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .expect("reading the captured alerts (a channel opened before a broker restart is dead)")
    {
        let id = message.delivery.properties.message_id().as_ref();
        *counts
            .entry(id.map(|id| id.to_string()).unwrap_or_default())
            .or_default() += 1;
    }
    counts
}

/// Alerts as the alerts service received them, checked against SPEC §6.4:
/// one per request that succeeded, none for any other, and repeats only
/// within `repeats_allowed` (the confirm→commit window, one per kill at
/// most). Returns how many alerts were repeated.
pub fn assert_alerts(
    alerts: &HashMap<String, usize>,
    expected: &[Expected],
    repeats_allowed: usize,
) -> usize {
    let mut problems = Vec::new();
    for e in expected {
        let n = alerts.get(&e.request_id.to_string()).copied().unwrap_or(0);
        if e.succeeded && n == 0 {
            problems.push(format!(
                "request {} succeeded unseen: no alert",
                e.request_id
            ));
        }
        if !e.succeeded && n > 0 {
            problems.push(format!(
                "request {} did not succeed but alerted {n} times",
                e.request_id
            ));
        }
    }
    let sent: Vec<String> = expected.iter().map(|e| e.request_id.to_string()).collect();
    for id in alerts.keys().filter(|id| !sent.contains(id)) {
        problems.push(format!("an alert for no request sent: {id:?}"));
    }
    let repeats: usize = alerts.values().map(|n| n - 1).sum();
    if repeats > repeats_allowed {
        problems.push(format!(
            "{repeats} repeated alerts, more than the {repeats_allowed} the confirm→commit window allows"
        ));
    }
    assert!(
        problems.is_empty(),
        "alerts are wrong:\n{}",
        problems.join("\n")
    );
    repeats
}
