//! The fleet's model catalogue in PostgreSQL, behind the upstream crate's
//! [`ModelCatalogue`] (which knows nothing of the store), and the start-up
//! refusal when a model setting has nothing left to call.

use async_trait::async_trait;
use dynamo_store::{LearnedModels, Store, StoreError};
use dynamo_upstream::{CatalogueError, ListedModel, ModelCatalogue, ModelChain};
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

/// What the store cannot do is the catalogue's own failure, never the
/// model server's (infrastructure is not upstream).
fn unavailable(error: StoreError) -> CatalogueError {
    CatalogueError(error.to_string())
}

/// The catalogue in PostgreSQL, with what it learned kept in memory for a
/// moment: every image call asks which models are gone and which
/// parameters they refuse, and reading that from the database on each call
/// cost each request two statements. What another process learns reaches
/// this one within [`LEARNED_FRESH`] (until then a call may meet the same
/// refusal once more, and learns it itself); what this one learns, it knows
/// at once.
pub struct StoreCatalogue {
    store: Store,
    learned: Mutex<Option<(Instant, LearnedModels)>>,
}

/// How long what the fleet learned about models is taken as current.
const LEARNED_FRESH: Duration = Duration::from_secs(2);

impl StoreCatalogue {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            learned: Mutex::new(None),
        }
    }

    /// What the fleet learned, from memory while fresh, else read once.
    async fn learned(&self) -> Result<LearnedModels, CatalogueError> {
        if let Some((at, learned)) = &*self.cache()
            && at.elapsed() < LEARNED_FRESH
        {
            return Ok(learned.clone());
        }
        let learned = self
            .store
            .learned_about_models()
            .await
            .map_err(unavailable)?;
        *self.cache() = Some((Instant::now(), learned.clone()));
        Ok(learned)
    }

    /// This process learned something: the next call reads the database.
    fn forget(&self) {
        *self.cache() = None;
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, LearnedModels)>> {
        // A poisoned lock only means a thread panicked while replacing a
        // plain value; the value is still usable.
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ModelCatalogue for StoreCatalogue {
    async fn configure(&self, chain: &ModelChain) -> Result<(), CatalogueError> {
        self.store
            .configure_models(chain.variable, &chain.models)
            .await
            .map_err(unavailable)
    }

    async fn claim_check(&self, every: Duration, owner: &str) -> Result<bool, CatalogueError> {
        self.store
            .claim_catalogue_check(every, owner)
            .await
            .map_err(unavailable)
    }

    async fn record_listing(&self, listed: &[ListedModel]) -> Result<(), CatalogueError> {
        let listed: Vec<dynamo_store::ListedModel> = listed
            .iter()
            .map(|m| dynamo_store::ListedModel {
                id: m.id.clone(),
                shutdown_date: m.shutdown_date,
            })
            .collect();
        let recorded = self.store.record_catalogue(&listed).await;
        self.forget();
        recorded.map_err(unavailable)
    }

    async fn gone(&self) -> Result<Vec<String>, CatalogueError> {
        Ok(self.learned().await?.gone)
    }

    async fn mark_gone(&self, model: &str, reason: &str) -> Result<bool, CatalogueError> {
        let marked = self.store.mark_model_gone(model, reason).await;
        self.forget();
        marked.map_err(unavailable)
    }

    async fn refused_parameters(&self) -> Result<Vec<(String, String)>, CatalogueError> {
        Ok(self.learned().await?.refused)
    }

    async fn refuse_parameter(
        &self,
        model: &str,
        parameter: &str,
        detail: &str,
    ) -> Result<(), CatalogueError> {
        let refused = self.store.refuse_parameter(model, parameter, detail).await;
        self.forget();
        refused.map_err(unavailable)
    }
}

/// The consumer will not start: every model a setting names is gone. Shown
/// as one line on stderr, like a configuration error, before anything is
/// consumed.
#[derive(Debug)]
pub struct NoModelLeft {
    pub variable: &'static str,
    /// The models the setting names, in order of preference.
    pub models: Vec<String>,
    pub server: Server,
}

/// Whose catalogue the models are missing from, which decides the advice.
#[derive(Debug)]
pub enum Server {
    /// OpenAI retired them: name its replacement.
    OpenAi { replacement: &'static str },
    /// A local server has not pulled or loaded them: say what it has.
    Local {
        base_url: String,
        /// What its `GET /models` listed (`None`: it lists nothing).
        listed: Option<Vec<String>>,
        /// Ollama-shaped: `ollama pull` is the way to get a model.
        ollama: bool,
    },
}

/// How many of a local server's models the line names.
const LISTED_SHOWN: usize = 8;

impl NoModelLeft {
    /// The refusal for `variable`, given the settings and what the server listed.
    pub fn new(
        variable: &'static str,
        settings: &dynamo_upstream::OpenAiSettings,
        listed: Option<Vec<String>>,
    ) -> Self {
        let chain = match variable {
            "OPENAI_CHAT_MODEL" => &settings.chat_models,
            _ => &settings.image_models,
        };
        let server = if dynamo_upstream::is_openai(&settings.base_url) {
            Server::OpenAi {
                replacement: match variable {
                    "OPENAI_CHAT_MODEL" => crate::config::REPLACEMENT_CHAT_MODEL,
                    _ => crate::config::REPLACEMENT_IMAGE_MODEL,
                },
            }
        } else {
            let ids = listed.iter().flatten().map(String::as_str);
            Server::Local {
                ollama: dynamo_upstream::looks_like_ollama(&settings.base_url, ids),
                base_url: settings.base_url.clone(),
                listed,
            }
        };
        Self {
            variable,
            models: chain.models.clone(),
            server,
        }
    }
}

impl std::error::Error for NoModelLeft {}

impl std::fmt::Display for NoModelLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variable = self.variable;
        let (base_url, listed, ollama) = match &self.server {
            Server::OpenAi { replacement } => {
                return write!(
                    f,
                    "every model in {variable} is shut down; set {variable}={replacement} (OpenAI's replacement)"
                );
            }
            Server::Local {
                base_url,
                listed,
                ollama,
            } => (base_url, listed, *ollama),
        };
        let models = self.models.join(", ");
        write!(
            f,
            "no model in {variable} ({models}) is pulled or loaded on the server at {base_url}, "
        )?;
        match listed.as_deref() {
            None => f.write_str("which does not list its models")?,
            Some([]) => f.write_str("which has no models")?,
            Some(listed) => {
                let shown: Vec<&str> = listed
                    .iter()
                    .take(LISTED_SHOWN)
                    .map(String::as_str)
                    .collect();
                write!(f, "which has {}", shown.join(", "))?;
                if listed.len() > LISTED_SHOWN {
                    write!(f, " and {} more", listed.len() - LISTED_SHOWN)?;
                }
            }
        }
        match (ollama, self.models.first()) {
            (true, Some(first)) => write!(f, "; pull it (ollama pull {first})")?,
            _ => f.write_str("; load it on the server")?,
        }
        write!(f, " or set {variable} to one it has")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(server: Server) -> String {
        NoModelLeft {
            variable: "OPENAI_IMAGE_MODEL",
            models: vec!["x/flux2".to_owned()],
            server,
        }
        .to_string()
    }

    #[test]
    fn a_local_server_is_told_what_it_has_and_how_to_pull() {
        let line = refusal(Server::Local {
            base_url: "http://127.0.0.1:11434/v1".to_owned(),
            listed: Some(vec![
                "x/z-image-turbo:latest".to_owned(),
                "llama3.2:latest".to_owned(),
            ]),
            ollama: true,
        });
        assert_eq!(
            line,
            "no model in OPENAI_IMAGE_MODEL (x/flux2) is pulled or loaded on the server at \
             http://127.0.0.1:11434/v1, which has x/z-image-turbo:latest, llama3.2:latest; \
             pull it (ollama pull x/flux2) or set OPENAI_IMAGE_MODEL to one it has"
        );
        assert!(!line.contains("gpt-"), "no OpenAI model for a local server");
    }

    #[test]
    fn a_long_catalogue_is_trimmed() {
        let line = refusal(Server::Local {
            base_url: "http://127.0.0.1:8080/v1".to_owned(),
            listed: Some((0..20).map(|i| format!("model-{i}")).collect()),
            ollama: false,
        });
        assert!(line.contains("model-7 and 12 more;"), "{line}");
        assert!(!line.contains("model-8"), "{line}");
        assert!(line.contains("load it on the server"), "{line}");
        assert!(!line.contains("ollama"), "{line}");
    }

    #[test]
    fn openai_keeps_its_replacement_advice() {
        let line = refusal(Server::OpenAi {
            replacement: "gpt-image-2.6-sunburst",
        });
        assert_eq!(
            line,
            "every model in OPENAI_IMAGE_MODEL is shut down; set OPENAI_IMAGE_MODEL=gpt-image-2.6-sunburst (OpenAI's replacement)"
        );
    }
}
