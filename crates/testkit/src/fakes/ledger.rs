//! The fake ledger (SPEC §3): pending outflows accepted or rejected by the
//! token of the viewer who owns them, and a history as the real one reads:
//! newest first, stamped by the ledger's own clock (20 s behind ours unless
//! a test says otherwise), and holding flows of other services beside
//! dynamo's — among them a look-alike pending image debit of the same amount
//! and description, older than anything dynamo asked for.

use super::{DEFAULT_BALANCE, Shared};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// How far the fake ledger's clock is from ours by default: behind, so a
/// debit made just after dynamo's intent is stamped before it.
pub const LEDGER_CLOCK_OFFSET: chrono::Duration = chrono::Duration::seconds(-20);
/// How long before a viewer's first debit another service left its
/// look-alike pending debit: well before any intent of dynamo's.
const FOREIGN_LOOKALIKE_AGE: chrono::Duration = chrono::Duration::minutes(10);
/// The description the ledger gives an image debit (SPEC §3).
const IMAGE_DESCRIPTION: &str = "Redeemed alert of type 'image-generation'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStatus {
    Pending,
    Accepted,
    Rejected,
}

impl FlowStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }
}

/// A debit dynamo made (with its metadata, which the real ledger keeps but
/// never returns: tests group money by request id with it).
#[derive(Debug, Clone)]
pub struct Flow {
    pub viewer: String,
    pub points: i64,
    pub request_id: String,
    pub style: String,
    pub status: FlowStatus,
    /// By our clock; the history shows it by the ledger's.
    pub created_at: DateTime<Utc>,
    /// When it was accepted or rejected.
    pub finalized_at: Option<DateTime<Utc>>,
}

/// A flow another service made for the viewer: dynamo must never settle it.
#[derive(Debug, Clone)]
pub struct ForeignFlow {
    pub id: Uuid,
    pub viewer: String,
    pub kind: &'static str,
    pub description: &'static str,
    pub delta_points: i64,
    pub status: FlowStatus,
    pub at: DateTime<Utc>,
    /// Set when dynamo accepted or rejected it: always a bug.
    pub touched_by_dynamo: Option<FlowStatus>,
}

/// The other services' flows a viewer has by the time of their first debit
/// of `points`: another image service's look-alike pending debit, long
/// before; and, just now, a pending debit of the same amount for another
/// alert, a grant of points and an accepted look-alike.
fn foreign_flows_for(viewer: &str, points: i64, now: DateTime<Utc>) -> Vec<ForeignFlow> {
    let flow = |kind, description, delta_points, status, at| ForeignFlow {
        id: Uuid::new_v4(),
        viewer: viewer.to_owned(),
        kind,
        description,
        delta_points,
        status,
        at,
        touched_by_dynamo: None,
    };
    vec![
        flow(
            "alert-redemption",
            IMAGE_DESCRIPTION,
            -points,
            FlowStatus::Pending,
            now - FOREIGN_LOOKALIKE_AGE,
        ),
        flow(
            "alert-redemption",
            "Redeemed alert of type 'text-to-speech'",
            -points,
            FlowStatus::Pending,
            now,
        ),
        flow(
            "cheer-reward",
            "Points for a cheer",
            points,
            FlowStatus::Accepted,
            now,
        ),
        flow(
            "alert-redemption",
            IMAGE_DESCRIPTION,
            -points,
            FlowStatus::Accepted,
            now,
        ),
    ]
}

/// The viewer of the bearer token, if the fake auth service issued it and
/// it has not expired (401 otherwise, as the real ledger answers).
fn viewer_of(headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    super::auth::token_viewer(token)
}

pub(super) async fn create_outflow(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(viewer) = viewer_of(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let points = body["numPointsToDebit"].as_i64().unwrap_or(0);
    let mut state = state.lock().unwrap();
    if state.debit_failures > 0 {
        state.debit_failures -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let now = Utc::now();
    if !state.foreign_flows.iter().any(|f| f.viewer == viewer) {
        let foreign = foreign_flows_for(&viewer, points, now);
        state.foreign_flows.extend(foreign);
    }
    let pending: i64 = state
        .flows
        .values()
        .filter(|f| f.viewer == viewer && f.status != FlowStatus::Rejected)
        .map(|f| f.points)
        .sum();
    let balance = *state.balances.get(&viewer).unwrap_or(&DEFAULT_BALANCE);
    if balance - pending < points {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "not enough points"})),
        )
            .into_response();
    }
    let id = Uuid::new_v4();
    state.flows.insert(
        id,
        Flow {
            viewer,
            points,
            request_id: body["alertMetadata"]["imageRequestId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            style: body["alertMetadata"]["style"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            status: FlowStatus::Pending,
            created_at: now,
            finalized_at: None,
        },
    );
    if state.debit_answers_lost > 0 {
        state.debit_answers_lost -= 1;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    Json(json!({"flowId": id})).into_response()
}

/// Accept or reject: 404 unless the flow is the token's user's (SPEC §3),
/// 409 once it is final.
fn finalize(state: &Shared, headers: &HeaderMap, id: Uuid, to: FlowStatus) -> Response {
    let Some(viewer) = viewer_of(headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let mut state = state.lock().unwrap();
    if to == FlowStatus::Accepted && state.accept_failures > 0 {
        state.accept_failures -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(foreign) = state
        .foreign_flows
        .iter_mut()
        .find(|f| f.id == id && f.viewer == viewer)
    {
        // The real ledger would obey: the flow is the viewer's.
        foreign.touched_by_dynamo = Some(to);
        if foreign.status != FlowStatus::Pending {
            return StatusCode::CONFLICT.into_response();
        }
        foreign.status = to;
        return StatusCode::NO_CONTENT.into_response();
    }
    match state.flows.get_mut(&id) {
        Some(flow) if flow.viewer != viewer => {
            state.finalized_by_another_viewer += 1;
            StatusCode::NOT_FOUND.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
        Some(flow) if flow.status != FlowStatus::Pending => StatusCode::CONFLICT.into_response(),
        Some(flow) => {
            flow.status = to;
            flow.finalized_at = Some(Utc::now());
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

pub(super) async fn accept_outflow(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Response {
    finalize(&state, &headers, id, FlowStatus::Accepted)
}

pub(super) async fn reject_outflow(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Response {
    finalize(&state, &headers, id, FlowStatus::Rejected)
}

#[derive(serde::Deserialize)]
pub(super) struct HistoryQuery {
    max: Option<usize>,
    from: Option<String>,
}

/// `GET /history`: the token's user's flows, dynamo's and other services',
/// newest first by the ledger's clock, paged by an opaque cursor (here: the
/// offset), as the ledger answers it.
pub(super) async fn history(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let Some(viewer) = viewer_of(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let max = query.max.unwrap_or(50);
    if !(1..=100).contains(&max) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "max must be 1-100"})),
        )
            .into_response();
    }
    let offset: usize = match query.from.as_deref().map(str::parse).transpose() {
        Ok(offset) => offset.unwrap_or(0),
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "bad cursor"})),
            )
                .into_response();
        }
    };
    let gate = {
        let mut state = state.lock().unwrap();
        state.history_asked += 1;
        state.history_gate.clone()
    };
    if let Some(gate) = gate {
        // Never closed by the tests; a closed gate simply lets the answer through.
        if let Ok(permit) = gate.acquire().await {
            permit.forget();
        }
    }
    let mut state = state.lock().unwrap();
    if state.history_failures > 0 {
        state.history_failures -= 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "history unavailable"})),
        )
            .into_response();
    }
    let skew = state.ledger_clock_offset;
    let item = |id: &Uuid,
                at: DateTime<Utc>,
                kind: &str,
                status: FlowStatus,
                delta: i64,
                description: &str| {
        let at = at + skew;
        (
            at,
            json!({"id": id, "timestamp": at, "type": kind, "state": status.as_str(),
                   "deltaPoints": delta, "description": description}),
        )
    };
    let ours = state
        .flows
        .iter()
        .filter(|(_, flow)| flow.viewer == viewer)
        .map(|(id, flow)| {
            let at = flow.finalized_at.unwrap_or(flow.created_at);
            item(
                id,
                at,
                "alert-redemption",
                flow.status,
                -flow.points,
                IMAGE_DESCRIPTION,
            )
        });
    let theirs = state
        .foreign_flows
        .iter()
        .filter(|flow| flow.viewer == viewer)
        .map(|flow| {
            item(
                &flow.id,
                flow.at,
                flow.kind,
                flow.status,
                flow.delta_points,
                flow.description,
            )
        });
    let mut items: Vec<(DateTime<Utc>, Value)> = ours.chain(theirs).collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    state.history_reads += 1;
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(max)
        .map(|(_, item)| item.clone())
        .collect();
    let next = (offset + max < items.len()).then(|| (offset + max).to_string());
    Json(json!({"items": page, "nextCursor": next})).into_response()
}
