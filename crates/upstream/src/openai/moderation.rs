//! Prompt screening through the moderation endpoint (skipped when the
//! server has none).

use super::{OpenAi, Outcome, SERVICE};
use crate::{Moderator, UpstreamError};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

#[async_trait]
impl Moderator for OpenAi {
    fn service(&self) -> crate::ServiceId {
        SERVICE
    }

    async fn screen(&self, prompt: &str) -> Result<(), UpstreamError> {
        if self.lacks.moderation.load(Ordering::Relaxed) {
            return Ok(());
        }
        let request = json!({"model": self.settings.moderation_model, "input": prompt});
        let response: Value = match self
            .call(self.client.moderations().create_byot(request), &[])
            .await
        {
            Outcome::Done(response) => response,
            Outcome::Missing(detail) => {
                // Many compatible servers have none: screening is skipped, not failed.
                if !self.lacks.moderation.swap(true, Ordering::Relaxed) {
                    tracing::info!(base_url = %self.settings.base_url, %detail, "the server has no moderation endpoint; prompts are not screened (set MODERATION=false to silence this)");
                }
                return Ok(());
            }
            Outcome::ModelGone(detail) => {
                return Err(UpstreamError::permanent(
                    SERVICE,
                    format!("{detail}: check OPENAI_MODERATION_MODEL"),
                ));
            }
            Outcome::ParameterRefused { detail, .. } => {
                return Err(UpstreamError::permanent(SERVICE, detail));
            }
            Outcome::Failed(error) => return Err(error),
        };
        let result = response
            .pointer("/results/0")
            .ok_or_else(|| UpstreamError::permanent(SERVICE, "moderation answered no result"))?;
        if result.get("flagged").and_then(Value::as_bool) != Some(true) {
            return Ok(());
        }
        let mut categories: Vec<&str> = result
            .get("categories")
            .and_then(Value::as_object)
            .map(|all| {
                all.iter()
                    .filter(|(_, flagged)| flagged.as_bool() == Some(true))
                    .map(|(name, _)| name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        categories.sort_unstable();
        let reason = if categories.is_empty() {
            "the request was flagged by moderation".to_owned()
        } else {
            format!(
                "the request was flagged by moderation ({})",
                categories.join(", ")
            )
        };
        Err(UpstreamError::Inadmissible(reason))
    }
}
