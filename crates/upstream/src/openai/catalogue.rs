//! The model catalogue: which configured models the server still lists,
//! read at start-up and re-read once for the whole fleet.

use super::{OpenAi, SERVICE};
use crate::UpstreamError;
use crate::credentials::authorize;
use crate::model_name::{Naming, listed_as_configured};
use crate::models::{ListedModel, ModelChain};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Why the start-up check of the models failed: the server's answer, or
/// our own catalogue (the database) not recording the chains.
#[derive(Debug, thiserror::Error)]
pub enum ModelCheckError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Catalogue(#[from] crate::CatalogueError),
}

impl OpenAi {
    /// Start-up: records the chains, reads `GET /models` and reports each
    /// configured model that is gone (one error line naming the setting) or
    /// shuts down within 30 days (a warning). `Err(ModelsGone)` when a chain
    /// has nothing left. A server without `/models` is not an error.
    pub async fn check_models(&self) -> Result<(), ModelCheckError> {
        for chain in self.chains() {
            self.catalogue.configure(chain).await?;
        }
        // Spoken captions are optional: their chain is learned about like
        // the others, but its models all gone never stops the consumer.
        self.catalogue
            .configure(&self.settings.speech.models)
            .await?;
        self.read_catalogue().await;
        let gone = self.gone().await;
        for chain in self.chains() {
            for model in chain.models.iter().filter(|m| gone.contains(*m)) {
                match self.naming {
                    Naming::Exact => {
                        tracing::error!(%model, variable = chain.variable, "{model} is shut down; skipping it (remove it from {})", chain.variable)
                    }
                    Naming::Ollama => {
                        tracing::error!(%model, variable = chain.variable, "{model} is not on the server (not pulled or not loaded); skipping it")
                    }
                }
            }
            if chain.models.iter().all(|m| gone.contains(m)) {
                return Err(UpstreamError::ModelsGone {
                    service: SERVICE,
                    variable: chain.variable,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Re-reads `GET /models` every `every`, once for the whole fleet, until
    /// `shutdown`.
    pub async fn watch_catalogue(
        self: Arc<Self>,
        every: Duration,
        owner: String,
        shutdown: dynamo_runtime::Shutdown,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.requested() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.catalogue.claim_check(every, &owner).await {
                Ok(true) => self.read_catalogue().await,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot claim the model catalogue check"),
            }
        }
    }

    /// What the server's last `GET /models` listed (`None`: it lists nothing).
    pub fn listed_models(&self) -> Option<Vec<String>> {
        // A poisoned lock only means a thread panicked while storing a list.
        self.listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn chains(&self) -> [&ModelChain; 2] {
        [&self.settings.image_models, &self.settings.chat_models]
    }

    /// Reads `GET /models` and records it; warns of configured models that
    /// shut down within 30 days. Any failure is logged, never fatal: many
    /// compatible servers have no such endpoint.
    async fn read_catalogue(&self) {
        let url = format!("{}/models", self.settings.base_url);
        let answer = authorize(self.http.get(url), &self.settings.api_key)
            .send()
            .await;
        let response = match answer {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::info!(status = %response.status(), "the API does not list its models; models are learned from calls instead");
                return;
            }
            Err(error) => {
                let error = crate::redact::redact_reqwest(error);
                tracing::warn!(%error, "cannot read the model catalogue");
                return;
            }
        };
        let cap = crate::download::answer_cap(self.settings.max_download_bytes);
        let Some(body) = crate::download::read_capped(response, cap)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            tracing::info!(
                "the model catalogue answer is not JSON; models are learned from calls instead"
            );
            return;
        };
        let Some(data) = body.get("data").and_then(Value::as_array) else {
            tracing::info!(
                "the model catalogue answer has no data; models are learned from calls instead"
            );
            return;
        };
        let listed: Vec<ListedModel> = data
            .iter()
            .filter_map(|m| {
                Some(ListedModel {
                    id: m.get("id")?.as_str()?.to_owned(),
                    shutdown_date: m
                        .get("shutdown_date")
                        .and_then(Value::as_str)
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                })
            })
            .collect();
        *self.listed.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(listed.iter().map(|l| l.id.clone()).collect());
        let configured = self.chains().into_iter().flat_map(|c| c.models.iter());
        let listed = listed_as_configured(listed, configured, self.naming);
        let today = chrono::Utc::now().date_naive();
        for chain in self.chains() {
            for model in listed.iter().filter(|l| chain.models.contains(&l.id)) {
                if let Some(date) = model.shutdown_date {
                    let days_left = (date - today).num_days();
                    if days_left <= 30 {
                        tracing::warn!(model = %model.id, %date, days_left, variable = chain.variable, "{} shuts down on {date}; put a current model first in {}", model.id, chain.variable);
                    }
                }
            }
        }
        if let Err(error) = self.catalogue.record_listing(&listed).await {
            tracing::warn!(%error, "cannot record the model catalogue");
        }
    }

    /// The models the fleet knows are gone (none, if the catalogue cannot be read).
    pub(super) async fn gone(&self) -> HashSet<String> {
        match self.catalogue.gone().await {
            Ok(gone) => gone.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read which models are gone; trying them all");
                HashSet::new()
            }
        }
    }
}
