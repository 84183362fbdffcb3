//! Which style a reward is for, and which rewards are dynamo's: every
//! style's `reward_id` in the database (kept current by the consumer's copy
//! of the styles, `dynamo_pipeline::styles::Styles`), with
//! `TWITCH_GHOST_REWARD_ID` / `TWITCH_FRIEND_REWARD_ID` overriding ghost's
//! and friend's.

use crate::RewardIds;
use dynamo_pipeline::styles::Styles;
use dynamo_wire::{ColorInput, Style, StyleId};
use std::sync::Arc;

/// The style a reward's redemptions become requests of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardStyle {
    pub id: StyleId,
    pub color: ColorInput,
    pub enabled: bool,
}

impl RewardStyle {
    /// Golden VCR's style as §2 fixes it: a ghost takes no colour, a friend
    /// always has one.
    fn builtin(style: Style) -> Self {
        Self {
            id: style.into(),
            color: match style {
                Style::Ghost => ColorInput::None,
                Style::Friend => ColorInput::Required,
            },
            enabled: true,
        }
    }
}

/// One of dynamo's rewards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedReward {
    pub style: StyleId,
    pub reward_id: String,
    /// The style is enabled (a disabled style's reward stays paused).
    pub enabled: bool,
}

#[derive(Clone)]
pub struct RewardBook {
    overrides: RewardIds,
    styles: Option<Arc<Styles>>,
}

impl std::fmt::Debug for RewardBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.rewards()).finish()
    }
}

impl RewardBook {
    /// Every style's reward, the variables overriding ghost's and friend's.
    pub fn new(overrides: RewardIds, styles: Arc<Styles>) -> Self {
        Self {
            overrides,
            styles: Some(styles),
        }
    }

    /// Only the variables' rewards (ghost and friend), without the database.
    pub fn overrides_only(overrides: RewardIds) -> Self {
        Self {
            overrides,
            styles: None,
        }
    }

    pub fn overrides(&self) -> &RewardIds {
        &self.overrides
    }

    pub fn styles(&self) -> Option<&Arc<Styles>> {
        self.styles.as_ref()
    }

    /// Every reward of dynamo's, by style.
    pub fn rewards(&self) -> Vec<BookedReward> {
        let mut out: Vec<BookedReward> = Vec::new();
        let stored = self.styles.as_ref().map(|s| s.stored()).unwrap_or_default();
        for (style, reward_id) in self.overrides.configured() {
            let enabled = stored
                .iter()
                .find(|s| s.definition.id == style)
                .is_none_or(|s| s.definition.enabled);
            out.push(BookedReward {
                style: style.into(),
                reward_id,
                enabled,
            });
        }
        for style in stored {
            let overridden = style
                .definition
                .id
                .builtin()
                .is_some_and(|builtin| self.overrides.get(builtin).is_some());
            if let (Some(reward_id), false) = (style.reward_id, overridden) {
                out.push(BookedReward {
                    style: style.definition.id,
                    reward_id,
                    enabled: style.definition.enabled,
                });
            }
        }
        out
    }

    /// The style `reward_id` is for; `None`: not one of dynamo's.
    pub fn style_of(&self, reward_id: &str) -> Option<RewardStyle> {
        let stored = self.styles.as_ref().map(|s| s.stored()).unwrap_or_default();
        if let Some(style) = self.overrides.style_of(reward_id) {
            let enabled = stored
                .iter()
                .find(|s| s.definition.id == style)
                .is_none_or(|s| s.definition.enabled);
            return Some(RewardStyle {
                enabled,
                ..RewardStyle::builtin(style)
            });
        }
        let style = stored
            .into_iter()
            .find(|s| s.reward_id.as_deref() == Some(reward_id))?;
        let id = style.definition.id;
        if let Some(builtin) = id.builtin() {
            if self.overrides.get(builtin).is_some() {
                // The variable names another reward for this style.
                return None;
            }
            return Some(RewardStyle {
                enabled: style.definition.enabled,
                ..RewardStyle::builtin(builtin)
            });
        }
        Some(RewardStyle {
            id,
            color: style.definition.color,
            enabled: style.definition.enabled,
        })
    }

    /// Wakes when the styles (and so their rewards) change; `None` without
    /// the database.
    pub fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.styles.as_ref().map(|s| s.changes())
    }
}
