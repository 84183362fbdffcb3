//! The fleet's model catalogue in PostgreSQL, behind the upstream crate's
//! [`ModelCatalogue`] (which knows nothing of the store), and the start-up
//! refusal when a model setting has nothing left to call.

use async_trait::async_trait;
use dynamo_store::{Store, StoreError};
use dynamo_upstream::{ListedModel, ModelCatalogue, ModelChain, UpstreamError};
use std::time::Duration;

/// What the store cannot do is a transient failure of the "database" service.
fn unavailable(error: StoreError) -> UpstreamError {
    UpstreamError::Transient {
        service: "database",
        detail: error.to_string(),
        retry_after: None,
    }
}

pub struct StoreCatalogue(pub Store);

#[async_trait]
impl ModelCatalogue for StoreCatalogue {
    async fn configure(&self, chain: &ModelChain) -> Result<(), UpstreamError> {
        self.0
            .configure_models(chain.variable, &chain.models)
            .await
            .map_err(unavailable)
    }

    async fn claim_check(&self, every: Duration, owner: &str) -> Result<bool, UpstreamError> {
        self.0
            .claim_catalogue_check(every, owner)
            .await
            .map_err(unavailable)
    }

    async fn record_listing(&self, listed: &[ListedModel]) -> Result<(), UpstreamError> {
        let listed: Vec<dynamo_store::ListedModel> = listed
            .iter()
            .map(|m| dynamo_store::ListedModel {
                id: m.id.clone(),
                shutdown_date: m.shutdown_date,
            })
            .collect();
        self.0.record_catalogue(&listed).await.map_err(unavailable)
    }

    async fn gone(&self) -> Result<Vec<String>, UpstreamError> {
        self.0.gone_models().await.map_err(unavailable)
    }

    async fn mark_gone(&self, model: &str, reason: &str) -> Result<bool, UpstreamError> {
        self.0
            .mark_model_gone(model, reason)
            .await
            .map_err(unavailable)
    }

    async fn refused_parameters(&self) -> Result<Vec<(String, String)>, UpstreamError> {
        self.0.refused_parameters().await.map_err(unavailable)
    }

    async fn refuse_parameter(
        &self,
        model: &str,
        parameter: &str,
        detail: &str,
    ) -> Result<(), UpstreamError> {
        self.0
            .refuse_parameter(model, parameter, detail)
            .await
            .map_err(unavailable)
    }
}

/// The consumer will not start: every model a setting names is gone. Shown
/// as one line on stderr, like a configuration error, before anything is
/// consumed.
#[derive(Debug, thiserror::Error)]
#[error(
    "every model in {variable} is shut down; set {variable}={replacement} (OpenAI's replacement)"
)]
pub struct NoModelLeft {
    pub variable: &'static str,
    pub replacement: &'static str,
}

impl NoModelLeft {
    pub fn for_variable(variable: &'static str) -> Self {
        let replacement = match variable {
            "OPENAI_CHAT_MODEL" => crate::config::REPLACEMENT_CHAT_MODEL,
            _ => crate::config::REPLACEMENT_IMAGE_MODEL,
        };
        Self {
            variable,
            replacement,
        }
    }
}
