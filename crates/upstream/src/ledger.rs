//! Points at the ledger service (SPEC §3): a pending outflow per request,
//! accepted once the alert is out, rejected (refunded) otherwise.

use crate::error::exchange;
use crate::{AuthClient, Ledger, UpstreamError};
use async_trait::async_trait;
use dynamo_wire::{Style, Viewer};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const SERVICE: &str = "ledger";

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
        exchange(SERVICE, request, |status| {
            status.is_success() || status == StatusCode::CONFLICT
        })
        .await
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

#[async_trait]
impl Ledger for HttpLedger {
    async fn debit(
        &self,
        viewer: &Viewer,
        request_id: Uuid,
        style: Style,
        points: u32,
    ) -> Result<Uuid, UpstreamError> {
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
            return Err(UpstreamError::NotEnoughPoints);
        }
        let created: OutflowCreated = serde_json::from_str(&text).map_err(|e| {
            UpstreamError::permanent(SERVICE, format!("unexpected answer to POST /outflow: {e}"))
        })?;
        Ok(created.flow_id)
    }

    async fn accept(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), UpstreamError> {
        self.finalize(viewer, Method::PATCH, flow_id).await
    }

    async fn refund(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), UpstreamError> {
        self.finalize(viewer, Method::DELETE, flow_id).await
    }
}
