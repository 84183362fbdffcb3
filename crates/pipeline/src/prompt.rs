//! Building the image prompt from a request (SPEC §3).

use dynamo_runtime::{Env, SettingError};
use dynamo_wire::{ImagePayload, check_template, render};

/// Templates with placeholders: `{subject}` for ghosts; `{article}`, `{color}`,
/// `{subject}` and `{complement}` (or `{background}`, its old name) for
/// friends. They seed the `ghost` and `friend` styles ([`crate::styles`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplates {
    /// `PROMPT_GHOST`.
    pub ghost: String,
    /// `PROMPT_FRIEND`.
    pub friend: String,
}

pub const DEFAULT_GHOST: &str =
    "a ghostly image of {subject}, with glitchy VHS artifacts, dark background";
pub const DEFAULT_FRIEND: &str = "{article} {color} {subject}, illustrated in the style of 1990s \
digital clip art images, with a limited 256-color palette and sharp black outlines, with a solid \
{background} background suitable for chroma keying";

impl Default for PromptTemplates {
    fn default() -> Self {
        Self {
            ghost: DEFAULT_GHOST.to_owned(),
            friend: DEFAULT_FRIEND.to_owned(),
        }
    }
}

impl PromptTemplates {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let templates = Self {
            ghost: env.string("PROMPT_GHOST", DEFAULT_GHOST),
            friend: env.string("PROMPT_FRIEND", DEFAULT_FRIEND),
        };
        check_template(&templates.ghost, dynamo_wire::ColorInput::None)
            .map_err(|problem| SettingError::new("PROMPT_GHOST", problem))?;
        check_template(&templates.friend, dynamo_wire::ColorInput::Required)
            .map_err(|problem| SettingError::new("PROMPT_FRIEND", problem))?;
        Ok(templates)
    }

    /// The prompt of a Golden VCR request under these settings, as the
    /// seeded `ghost` / `friend` style renders it (the tests below pin it).
    pub fn build(&self, payload: &ImagePayload) -> Option<String> {
        let template = match payload {
            ImagePayload::Ghost(_) => &self.ghost,
            ImagePayload::Friend(_) => &self.friend,
            ImagePayload::Custom(..) => return None,
        };
        Some(render(
            template,
            payload.subject().as_str(),
            payload.color(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynamo_wire::GenerationRequest;

    fn friend(color: &str, subject: &str) -> ImagePayload {
        let body = serde_json::json!({
            "type": "image",
            "viewer": {"twitch_user_id": "1", "twitch_display_name": "x"},
            "payload": {"style": "friend", "inputs": {"color": color, "subject": subject}},
        });
        GenerationRequest::from_value(body).unwrap().payload
    }

    #[test]
    fn article_follows_the_colour() {
        let prompt = PromptTemplates::default()
            .build(&friend("orange", "a robot who loves soup"))
            .unwrap();
        assert!(
            prompt.starts_with("an orange robot who loves soup, illustrated"),
            "{prompt}"
        );
        assert!(prompt.ends_with("with a solid sky-blue background suitable for chroma keying"));
        let prompt = PromptTemplates::default()
            .build(&friend("red", "an owl"))
            .unwrap();
        assert!(prompt.starts_with("a red owl,"), "{prompt}");
    }

    #[test]
    fn leading_the_is_dropped() {
        let prompt = PromptTemplates::default()
            .build(&friend("indigo", "The moon"))
            .unwrap();
        assert!(prompt.starts_with("an indigo moon,"), "{prompt}");
    }

    #[test]
    fn a_word_starting_with_a_is_not_an_article() {
        let prompt = PromptTemplates::default()
            .build(&friend("blue", "anteater"))
            .unwrap();
        assert!(prompt.starts_with("a blue anteater,"), "{prompt}");
    }

    #[test]
    fn ghost_prompt_matches_the_spec() {
        let body = serde_json::json!({
            "type": "image",
            "viewer": {"twitch_user_id": "1", "twitch_display_name": "x"},
            "payload": {"style": "ghost", "inputs": {"subject": "a seal"}},
        });
        let payload = GenerationRequest::from_value(body).unwrap().payload;
        assert_eq!(
            PromptTemplates::default().build(&payload).unwrap(),
            "a ghostly image of a seal, with glitchy VHS artifacts, dark background"
        );
    }
}
