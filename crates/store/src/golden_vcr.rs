//! Golden VCR's two styles as its settings define them (`PROMPT_GHOST`,
//! `PROMPT_FRIEND`, `POINTS_COST`; SPEC §3), and their seeding: one
//! implementation for both binaries. A consumer seeds them at every start and
//! keeps them in line with its settings while they follow them; dynamo-server
//! creates them when missing, so that its styles list (the page's *Styles*
//! panel) is never empty on a fresh database, and leaves the rest to the
//! consumers, which run with the settings that matter.

use crate::{Store, StoreError, Written};
use dynamo_runtime::{Env, SettingError};
use dynamo_wire::{
    ColorInput, ImagePayload, OnAirSettings, Output, RewardSettings, Style, StyleDefinition,
    check_template, render,
};

/// Templates with placeholders: `{subject}` for ghosts; `{article}`, `{color}`,
/// `{subject}` and `{complement}` (or `{background}`, its old name) for
/// friends. They seed the `ghost` and `friend` styles ([`golden_vcr`]).
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

/// Golden VCR's two styles as the settings define them (`PROMPT_GHOST`,
/// `PROMPT_FRIEND`, `POINTS_COST`): seeded at every start, and followed by
/// the stored rows until someone edits them.
pub fn golden_vcr(prompts: &PromptTemplates, points_cost: u32) -> [StyleDefinition; 2] {
    let reward = |style: Style, prompt: &str| RewardSettings {
        title: format!("dynamo: a {style}"),
        prompt: prompt.to_owned(),
        cost: points_cost.max(1),
        cooldown_seconds: None,
        max_per_stream: None,
        max_per_user_per_stream: None,
    };
    [
        StyleDefinition {
            id: Style::Ghost.into(),
            display_name: "Ghost".to_owned(),
            color: ColorInput::None,
            prompt_template: prompts.ghost.clone(),
            output: Output::Photo,
            image_quality: None,
            image_size: None,
            generate_name: false,
            points_cost,
            reward: reward(Style::Ghost, "What should the ghost be? e.g. \"a seal\""),
            on_air: OnAirSettings::default(),
            enabled: true,
        },
        StyleDefinition {
            id: Style::Friend.into(),
            display_name: "Friend".to_owned(),
            color: ColorInput::Required,
            prompt_template: prompts.friend.clone(),
            output: Output::Cutout,
            image_quality: None,
            image_size: None,
            generate_name: true,
            points_cost,
            reward: reward(
                Style::Friend,
                "Describe your friend, optionally starting with a colour: \"red: a robot who loves soup\"",
            ),
            on_air: OnAirSettings::default(),
            enabled: true,
        },
    ]
}

/// Who seeds, and so how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// dynamo-consumer: create them, and bring the ones still following the
    /// settings in line with these.
    Follow,
    /// dynamo-server: create the missing ones, change none.
    CreateMissing,
}

/// Seeds Golden VCR's styles (see [`golden_vcr`]).
pub async fn seed(
    store: &Store,
    prompts: &PromptTemplates,
    points_cost: u32,
    seeding: Seeding,
) -> Result<(), StoreError> {
    for style in golden_vcr(prompts, points_cost) {
        let written: Written = match seeding {
            Seeding::Follow => store.seed_style(&style).await?,
            Seeding::CreateMissing => store.seed_missing_style(&style).await?,
        };
        tracing::debug!(style = %style.id, ?written, ?seeding, "seeded style");
    }
    Ok(())
}

/// The points cost Golden VCR's styles are seeded with: `POINTS_COST`
/// (default 200), 0 with `LEDGER=none` (images are free).
pub fn points_cost_from_env(env: &Env) -> Result<u32, SettingError> {
    let points_cost = env.parse("POINTS_COST", 200)?;
    Ok(if env.string("LEDGER", "golden-vcr") == "none" {
        0
    } else {
        points_cost
    })
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
