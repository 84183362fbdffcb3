//! A style's whole definition (SPEC §8) as the API, `styles.toml` and the
//! store exchange it, its validation (each problem named by its field), and
//! the part of it a request records ([`StyleSettings`]).

use crate::style::check_template;
use crate::{ColorInput, Output, StyleId};
use serde::{Deserialize, Serialize};

/// Twitch's limits on a custom reward (SPEC §7).
pub const MAX_REWARD_TITLE_CHARS: usize = 45;
pub const MAX_REWARD_PROMPT_CHARS: usize = 200;
pub const MAX_DISPLAY_NAME_CHARS: usize = 60;

/// A style as the streamer defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleDefinition {
    pub id: StyleId,
    pub display_name: String,
    /// Whether requests give a colour.
    #[serde(default = "no_color")]
    pub color: ColorInput,
    /// Over `{subject}`, `{color}`, `{complement}` and `{article}`.
    pub prompt_template: String,
    pub output: Output,
    /// Per-style image settings; none: the consumer's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_quality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<String>,
    /// Whether a name is generated for the subject (as for friends).
    #[serde(default)]
    pub generate_name: bool,
    pub points_cost: u32,
    pub reward: RewardSettings,
    #[serde(default)]
    pub on_air: OnAirSettings,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn no_color() -> ColorInput {
    ColorInput::None
}

fn enabled() -> bool {
    true
}

/// The style's Twitch channel-points reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSettings {
    /// At most 45 characters.
    pub title: String,
    /// What the viewer is asked to type; at most 200 characters.
    pub prompt: String,
    /// In channel points.
    pub cost: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_stream: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_user_per_stream: Option<u32>,
}

/// How the overlay shows the style's alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnAirSettings {
    #[serde(default = "default_duration")]
    pub duration_ms: u32,
    /// The sound slot (filled by the on-air settings); none: silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
}

fn default_duration() -> u32 {
    8000
}

impl Default for OnAirSettings {
    fn default() -> Self {
        Self {
            duration_ms: default_duration(),
            sound: None,
        }
    }
}

/// One problem with a definition, named by its field (dotted, as in JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct DefinitionError {
    pub field: String,
    pub problem: String,
}

impl DefinitionError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

impl StyleDefinition {
    /// The first problem found, in the order of the fields.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        let chars = |s: &str| s.chars().count();
        let display = self.display_name.trim();
        if display.is_empty() || chars(display) > MAX_DISPLAY_NAME_CHARS {
            return Err(DefinitionError::new(
                "display_name",
                format!("must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        check_template(&self.prompt_template, self.color)
            .map_err(|problem| DefinitionError::new("prompt_template", problem))?;
        if let Some(size) = &self.image_size
            && !IMAGE_SIZES.contains(&size.as_str())
        {
            return Err(DefinitionError::new(
                "image_size",
                format!("must be one of {}", IMAGE_SIZES.join(", ")),
            ));
        }
        if let Some(quality) = &self.image_quality
            && !IMAGE_QUALITIES.contains(&quality.as_str())
        {
            return Err(DefinitionError::new(
                "image_quality",
                format!("must be one of {}", IMAGE_QUALITIES.join(", ")),
            ));
        }
        let title = self.reward.title.trim();
        if title.is_empty() || chars(title) > MAX_REWARD_TITLE_CHARS {
            return Err(DefinitionError::new(
                "reward.title",
                format!(
                    "is {} characters; Twitch takes 1 to {MAX_REWARD_TITLE_CHARS}",
                    chars(title)
                ),
            ));
        }
        if chars(&self.reward.prompt) > MAX_REWARD_PROMPT_CHARS {
            return Err(DefinitionError::new(
                "reward.prompt",
                format!(
                    "is {} characters; Twitch takes at most {MAX_REWARD_PROMPT_CHARS}",
                    chars(&self.reward.prompt)
                ),
            ));
        }
        if self.reward.cost == 0 {
            return Err(DefinitionError::new("reward.cost", "must be at least 1"));
        }
        for (field, value) in [
            ("reward.cooldown_seconds", self.reward.cooldown_seconds),
            ("reward.max_per_stream", self.reward.max_per_stream),
            (
                "reward.max_per_user_per_stream",
                self.reward.max_per_user_per_stream,
            ),
        ] {
            if value == Some(0) {
                return Err(DefinitionError::new(
                    field,
                    "must be at least 1 (or be left out for none)",
                ));
            }
        }
        if !(1000..=60_000).contains(&self.on_air.duration_ms) {
            return Err(DefinitionError::new(
                "on_air.duration_ms",
                "must be 1000 to 60000",
            ));
        }
        Ok(())
    }

    /// What a request of this style records when it is made.
    pub fn settings(&self) -> StyleSettings {
        StyleSettings {
            output: self.output,
            generate_name: self.generate_name,
            image_quality: self.image_quality.clone(),
            image_size: self.image_size.clone(),
        }
    }
}

/// The sizes and qualities the images API takes (SPEC §3).
pub const IMAGE_SIZES: [&str; 7] = [
    "256x256",
    "512x512",
    "1024x1024",
    "1536x1024",
    "1024x1536",
    "1792x1024",
    "1024x1792",
];
pub const IMAGE_QUALITIES: [&str; 6] = ["low", "medium", "high", "auto", "standard", "hd"];

/// The settings a request is made with, recorded on it when it is recorded
/// (with its prompt), so that editing the style never changes a request in
/// progress and a retry after a crash uses the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleSettings {
    pub output: Output,
    pub generate_name: bool,
    #[serde(default)]
    pub image_quality: Option<String>,
    #[serde(default)]
    pub image_size: Option<String>,
}

impl StyleSettings {
    /// A request recorded before styles were data: ghosts and friends as
    /// they always were.
    pub fn legacy(style: &StyleId) -> Self {
        let friend = style == &crate::Style::Friend;
        Self {
            output: if friend {
                Output::Cutout
            } else {
                Output::Photo
            },
            generate_name: friend,
            image_quality: None,
            image_size: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sticker() -> StyleDefinition {
        serde_json::from_value(serde_json::json!({
            "id": "sticker",
            "display_name": "Sticker",
            "color": "optional",
            "prompt_template": "a die-cut sticker of {subject}",
            "output": "cutout",
            "points_cost": 100,
            "reward": {"title": "dynamo: a sticker", "prompt": "What should the sticker be?", "cost": 500},
        }))
        .unwrap()
    }

    #[test]
    fn a_good_definition_passes_with_its_defaults() {
        let style = sticker();
        style.validate().unwrap();
        assert!(style.enabled);
        assert_eq!(style.on_air.duration_ms, 8000);
    }

    #[test]
    fn each_problem_names_its_field() {
        let field = |edit: fn(&mut StyleDefinition)| {
            let mut style = sticker();
            edit(&mut style);
            style.validate().unwrap_err().field
        };
        assert_eq!(field(|s| s.reward.title = "x".repeat(46)), "reward.title");
        assert_eq!(
            field(|s| s.reward.prompt = "x".repeat(201)),
            "reward.prompt"
        );
        assert_eq!(
            field(|s| s.prompt_template = "a {subject} {colour}".into()),
            "prompt_template"
        );
        assert_eq!(field(|s| s.display_name = " ".into()), "display_name");
        assert_eq!(field(|s| s.image_size = Some("big".into())), "image_size");
        assert_eq!(field(|s| s.reward.cost = 0), "reward.cost");
    }
}
