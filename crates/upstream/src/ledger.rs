//! Points at the ledger service (SPEC §3): a pending outflow per request,
//! accepted once the alert is out, rejected (refunded) otherwise.

use crate::error::exchange;
use crate::{AuthClient, Ledger, LedgerError, ServiceId, UpstreamError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dynamo_wire::{StyleId, Viewer};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const SERVICE: ServiceId = ServiceId::new("ledger");

#[derive(Debug, Clone)]
pub struct HttpLedger {
    http: reqwest::Client,
    base_url: String,
    auth: AuthClient,
}

impl HttpLedger {
    pub fn new(http: reqwest::Client, base_url: String, auth: AuthClient) -> Self {
        Self {
            http,
            base_url,
            auth,
        }
    }

    async fn send(
        &self,
        viewer: &Viewer,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, String), UpstreamError> {
        let token = self.auth.service_token(viewer).await?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        // 409 carries meaning here (not enough points; already final).
        let answer = exchange(SERVICE, request, |status| {
            status.is_success() || status == StatusCode::CONFLICT
        })
        .await;
        if answer.is_err() {
            // Perhaps the token was refused: the next call takes a new one.
            self.auth.forget_token(viewer);
        }
        answer
    }

    /// Accept and reject both answer 409 when the flow is already final;
    /// either way there is nothing more to do, and the ledger does not say which.
    async fn finalize(
        &self,
        viewer: &Viewer,
        method: Method,
        flow_id: Uuid,
    ) -> Result<(), UpstreamError> {
        let (status, _) = self
            .send(viewer, method, &format!("/outflow/{flow_id}"), None)
            .await?;
        if status == StatusCode::CONFLICT {
            tracing::info!(%flow_id, "ledger flow was already finalized");
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutflowCreated {
    flow_id: Uuid,
}

/// One page of `GET /history`, newest first.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryPage {
    items: Vec<HistoryItem>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryItem {
    id: Uuid,
    timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    kind: String,
    state: String,
    delta_points: i64,
    description: String,
}

impl HistoryItem {
    fn is_pending_image_debit(&self, points: u32) -> bool {
        self.kind == "alert-redemption"
            && self.state == "pending"
            && self.description == "Redeemed alert of type 'image-generation'"
            && self.delta_points == -i64::from(points)
    }
}

/// How far back of the intent a debit still counts as ours: the ledger's
/// clock is not ours.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(30);
/// The look-back is bounded: a viewer with a long history is not read whole.
const HISTORY_PAGES: usize = 10;
const HISTORY_PAGE_SIZE: u32 = 100;

#[async_trait]
impl Ledger for HttpLedger {
    async fn debit(
        &self,
        viewer: &Viewer,
        request_id: Uuid,
        style: &StyleId,
        points: u32,
    ) -> Result<Uuid, LedgerError> {
        let body = json!({
            "type": "alert-redemption",
            "numPointsToDebit": points,
            "alertType": "image-generation",
            "alertMetadata": {"imageRequestId": request_id, "style": style.as_str()},
        });
        let (status, text) = self
            .send(viewer, Method::POST, "/outflow", Some(body))
            .await?;
        if status == StatusCode::CONFLICT {
            return Err(UpstreamError::NotEnoughPoints.into());
        }
        let created: OutflowCreated = serde_json::from_str(&text).map_err(|e| {
            UpstreamError::permanent(SERVICE, format!("unexpected answer to POST /outflow: {e}"))
        })?;
        Ok(created.flow_id)
    }

    async fn accept(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError> {
        Ok(self.finalize(viewer, Method::PATCH, flow_id).await?)
    }

    async fn refund(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError> {
        Ok(self.finalize(viewer, Method::DELETE, flow_id).await?)
    }

    async fn pending_debits_since(
        &self,
        viewer: &Viewer,
        since: DateTime<Utc>,
        points: u32,
    ) -> Result<Vec<Uuid>, LedgerError> {
        let since = since - CLOCK_SKEW;
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..HISTORY_PAGES {
            let mut path = format!("/history?max={HISTORY_PAGE_SIZE}");
            if let Some(cursor) = &cursor {
                path.push_str("&from=");
                path.push_str(&urlencode(cursor));
            }
            let (_, text) = self.send(viewer, Method::GET, &path, None).await?;
            let page: HistoryPage = serde_json::from_str(&text).map_err(|e| {
                UpstreamError::permanent(SERVICE, format!("unexpected answer to GET /history: {e}"))
            })?;
            let reached_older = page.items.iter().any(|item| item.timestamp < since);
            found.extend(
                page.items
                    .iter()
                    .filter(|item| item.timestamp >= since && item.is_pending_image_debit(points))
                    .map(|item| (item.timestamp, item.id)),
            );
            match page.next_cursor {
                Some(next) if !reached_older && !next.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
