//! Friend names from the chat endpoint (or from the subject, when the
//! server has none).

use super::{OpenAi, SERVICE};
use crate::{NameProvider, UpstreamError};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

#[async_trait]
impl NameProvider for OpenAi {
    fn service(&self) -> crate::ServiceId {
        SERVICE
    }

    fn prompt(&self, subject: &str) -> String {
        name_prompt(subject)
    }

    async fn name(&self, subject: &str, user: &str) -> Result<String, UpstreamError> {
        if self.lacks.chat.load(Ordering::Relaxed) {
            return Ok(crate::name_from_subject(subject));
        }
        let chain = &self.settings.chat_models;
        let response: Option<Value> = self
            .on_chain(chain, |model| async move {
                let request = json!({
                    "model": model,
                    "user": user,
                    "messages": [
                        {"role": "system", "content": "You name characters. Answer with the name only: one to three words, no quotes, no punctuation, no explanation."},
                        {"role": "user", "content": name_prompt(subject)},
                    ],
                });
                self.call(self.client.chat().create_byot(request), &[]).await
            })
            .await?;
        let Some(response) = response else {
            // sd-server has no chat endpoint: the friend is named after its subject.
            if !self.lacks.chat.swap(true, Ordering::Relaxed) {
                tracing::info!(base_url = %self.settings.base_url, "the server has no chat endpoint; friends are named after their subject from now on");
            }
            return Ok(crate::name_from_subject(subject));
        };
        let content = response
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        clean_name(content).ok_or_else(|| {
            UpstreamError::transient(SERVICE, format!("no usable name in the answer {content:?}"))
        })
    }
}

/// What the chat model is asked (SPEC §3).
pub(crate) fn name_prompt(subject: &str) -> String {
    format!("Give a single name for a friendly mascot character who is {subject}.")
}

/// Takes the first line, strips quotes and trailing punctuation, and caps the
/// length: models like to chat even when told not to.
pub(crate) fn clean_name(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|line| !line.is_empty())?;
    let line = line
        .strip_prefix("Name:")
        .or_else(|| line.strip_prefix("name:"))
        .unwrap_or(line);
    let name: String = line
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '*' || c == '“' || c == '”')
        .trim_end_matches(['.', '!', ','])
        .trim()
        .chars()
        .take(40)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("\"Sealy.\"\n").as_deref(), Some("Sealy"));
        assert_eq!(
            clean_name("\n  Name: Captain Soup!").as_deref(),
            Some("Captain Soup")
        );
        assert_eq!(clean_name("   \n "), None);
        assert_eq!(clean_name(&"x".repeat(100)).map(|n| n.len()), Some(40));
    }
}
