//! Building the image prompt from a request (SPEC §3).

use dynamo_runtime::{Env, SettingError};
use dynamo_wire::ImagePayload;

/// Templates with placeholders: `{subject}` for ghosts; `{article}`, `{color}`,
/// `{subject}` and `{background}` for friends.
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
        if !templates.ghost.contains("{subject}") {
            return Err(SettingError::new("PROMPT_GHOST", "must contain {subject}"));
        }
        if !templates.friend.contains("{subject}") {
            return Err(SettingError::new("PROMPT_FRIEND", "must contain {subject}"));
        }
        Ok(templates)
    }

    pub fn build(&self, payload: &ImagePayload) -> String {
        match payload {
            ImagePayload::Ghost(inputs) => self.ghost.replace("{subject}", inputs.subject.as_str()),
            ImagePayload::Friend(inputs) => self
                .friend
                .replace("{article}", inputs.color.article())
                .replace("{color}", inputs.color.name())
                .replace("{background}", inputs.color.complement().name())
                .replace("{subject}", &friend_subject(inputs.subject.as_str())),
        }
    }
}

/// The subject as it reads after "<article> <color>": a leading "a"/"an" is
/// dropped (the article now goes before the colour), and so is "the".
fn friend_subject(subject: &str) -> String {
    for lead in ["a ", "an ", "the "] {
        if subject.len() > lead.len() && subject[..lead.len()].eq_ignore_ascii_case(lead) {
            return subject[lead.len()..].trim_start().to_owned();
        }
    }
    subject.to_owned()
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
        let prompt = PromptTemplates::default().build(&friend("orange", "a robot who loves soup"));
        assert!(
            prompt.starts_with("an orange robot who loves soup, illustrated"),
            "{prompt}"
        );
        assert!(prompt.ends_with("with a solid sky-blue background suitable for chroma keying"));
        let prompt = PromptTemplates::default().build(&friend("red", "an owl"));
        assert!(prompt.starts_with("a red owl,"), "{prompt}");
    }

    #[test]
    fn leading_the_is_dropped() {
        let prompt = PromptTemplates::default().build(&friend("indigo", "The moon"));
        assert!(prompt.starts_with("an indigo moon,"), "{prompt}");
    }

    #[test]
    fn a_word_starting_with_a_is_not_an_article() {
        let prompt = PromptTemplates::default().build(&friend("blue", "anteater"));
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
            PromptTemplates::default().build(&payload),
            "a ghostly image of a seal, with glitchy VHS artifacts, dark background"
        );
    }
}
