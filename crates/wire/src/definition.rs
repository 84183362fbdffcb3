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
pub const MAX_TEMPLATE_CHARS: usize = 4000;
pub const MAX_SOUND_CHARS: usize = 200;
/// The largest cost, cooldown or limit (PostgreSQL's integer).
pub const MAX_COUNT: u32 = i32::MAX as u32;

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
    /// Whether the alert's caption ("Sealy, from wasabimilkshake") is read
    /// aloud: generated before air by the speech model (issue 30).
    #[serde(default)]
    pub speak_caption: bool,
}

fn default_duration() -> u32 {
    8000
}

impl Default for OnAirSettings {
    fn default() -> Self {
        Self {
            duration_ms: default_duration(),
            sound: None,
            speak_caption: false,
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

/// One line of text for `field`: no control characters (PostgreSQL's text
/// cannot hold U+0000, and none belongs in a title or a prompt), at most
/// `max` characters as given (the store checks the same), and, if
/// `not_blank`, something besides whitespace.
fn line(field: &str, text: &str, max: usize, not_blank: bool) -> Result<(), DefinitionError> {
    if let Some((at, c)) = text.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(DefinitionError::new(
            field,
            format!(
                "must be one line of text, without control characters (U+{:04X} at character {})",
                u32::from(c),
                at + 1
            ),
        ));
    }
    let chars = text.chars().count();
    if chars > max || (not_blank && text.trim().is_empty()) {
        let least = usize::from(not_blank);
        return Err(DefinitionError::new(
            field,
            format!("is {chars} characters; it takes {least} to {max}, not all whitespace"),
        ));
    }
    Ok(())
}

/// A prompt template as a definition takes it, for a style whose colour
/// input is `color`: one line, at most [`MAX_TEMPLATE_CHARS`], with
/// `{subject}` and known placeholders only (a problem is named
/// `prompt_template`). The page's preview checks a template being typed
/// by this too.
pub fn check_prompt_template(template: &str, color: ColorInput) -> Result<(), DefinitionError> {
    line("prompt_template", template, MAX_TEMPLATE_CHARS, true)?;
    check_template(template, color)
        .map_err(|problem| DefinitionError::new("prompt_template", problem))
}

impl StyleDefinition {
    /// The first problem found, in the order of the fields.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        line(
            "display_name",
            &self.display_name,
            MAX_DISPLAY_NAME_CHARS,
            true,
        )?;
        check_prompt_template(&self.prompt_template, self.color)?;
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
        line(
            "reward.title",
            &self.reward.title,
            MAX_REWARD_TITLE_CHARS,
            true,
        )?;
        line(
            "reward.prompt",
            &self.reward.prompt,
            MAX_REWARD_PROMPT_CHARS,
            false,
        )?;
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
        if let Some(sound) = &self.on_air.sound {
            line("on_air.sound", sound, MAX_SOUND_CHARS, true)?;
        }
        // The store keeps counts as PostgreSQL integers.
        let counts = [
            ("points_cost", Some(self.points_cost)),
            ("reward.cost", Some(self.reward.cost)),
            ("reward.cooldown_seconds", self.reward.cooldown_seconds),
            ("reward.max_per_stream", self.reward.max_per_stream),
            (
                "reward.max_per_user_per_stream",
                self.reward.max_per_user_per_stream,
            ),
        ];
        for (field, value) in counts {
            if value.is_some_and(|v| v > MAX_COUNT) {
                return Err(DefinitionError::new(
                    field,
                    format!("must be at most {MAX_COUNT}"),
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
            speak_caption: self.on_air.speak_caption,
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
    /// The caption is read aloud before air (absent in requests recorded
    /// before issue 30: not spoken).
    #[serde(default)]
    pub speak_caption: bool,
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
            speak_caption: false,
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

    /// What PostgreSQL cannot hold, or would silently clamp, is refused
    /// with its field rather than failing (or changing) at the store.
    #[test]
    fn text_and_counts_the_store_cannot_keep_are_refused() {
        let field = |edit: fn(&mut StyleDefinition)| {
            let mut style = sticker();
            edit(&mut style);
            style.validate().unwrap_err().field
        };
        assert_eq!(field(|s| s.display_name = "a\u{0}b".into()), "display_name");
        assert_eq!(
            field(|s| s.reward.title = "two\nlines".into()),
            "reward.title"
        );
        assert_eq!(
            field(|s| s.display_name = format!(" {}", "x".repeat(60))),
            "display_name"
        );
        assert_eq!(
            field(|s| s.on_air.sound = Some("\u{7f}".into())),
            "on_air.sound"
        );
        assert_eq!(field(|s| s.points_cost = MAX_COUNT + 1), "points_cost");
        assert_eq!(
            field(|s| s.reward.max_per_stream = Some(u32::MAX)),
            "reward.max_per_stream"
        );
    }
}
