//! The built-in stand-ins for OpenAI: deterministic images and names drawn
//! locally, for demos and development without an API key or a bill.

use crate::{GeneratedImage, ImageJob, ImageProvider, NameProvider, ServiceId, UpstreamError};
use async_trait::async_trait;
use dynamo_imaging::placeholder::{Scene, render_png};
use dynamo_wire::Output;

#[derive(Debug, Clone, Default)]
pub struct Placeholder;

/// The placeholder's id: a provider of its own, so an outage or a limit of
/// another image provider never stops it.
pub const SERVICE: ServiceId = ServiceId::new("placeholder");

#[async_trait]
impl ImageProvider for Placeholder {
    fn service(&self) -> ServiceId {
        SERVICE
    }

    fn describe(&self) -> String {
        "the built-in placeholder (images are drawn locally; no API is called)".to_owned()
    }

    async fn generate(&self, job: &ImageJob) -> Result<GeneratedImage, UpstreamError> {
        let scene = match (job.output, job.color) {
            (Output::Cutout, Some(color)) => Scene::Friend { color },
            _ => Scene::Ghost,
        };
        let prompt = job.prompt.clone();
        let png = tokio::task::spawn_blocking(move || render_png(scene, &prompt, 1024))
            .await
            .map_err(|e| UpstreamError::permanent(SERVICE, e))?;
        Ok(GeneratedImage::free(png, "placeholder"))
    }
}

#[async_trait]
impl NameProvider for Placeholder {
    fn service(&self) -> ServiceId {
        SERVICE
    }

    fn prompt(&self, subject: &str) -> String {
        crate::openai::name_prompt(subject)
    }

    async fn name(&self, subject: &str, _user: &str) -> Result<String, UpstreamError> {
        Ok(placeholder_name(subject))
    }
}

/// "a robot who loves soup" → "Robot": the first noun-ish word, capitalised,
/// with a friendly suffix picked by the word's length.
fn placeholder_name(subject: &str) -> String {
    const SKIP: [&str; 4] = ["a", "an", "the", "some"];
    let word = subject
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|w| !w.is_empty() && !SKIP.contains(&w.to_lowercase().as_str()))
        .unwrap_or("Pal");
    let mut chars = word.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>())
        .unwrap_or_default();
    let rest: String = chars.take(12).collect::<String>().to_lowercase();
    let suffix = ["", "y", "o", "bert", "ster"][word.len() % 5];
    format!("{first}{rest}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_subject() {
        assert!(placeholder_name("a robot who loves soup").starts_with("Robot"));
        assert!(placeholder_name("the seal").starts_with("Seal"));
        assert!(
            placeholder_name("  ").starts_with("Pal"),
            "a blank subject still gets a name"
        );
    }
}
