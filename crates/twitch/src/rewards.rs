//! `dynamoctl twitch setup`: one custom reward per style, created by
//! dynamo's client id (only those can be settled by it), with user input
//! required and the request queue kept (so redemptions wait UNFULFILLED for
//! dynamo to settle). Rewards it created before, found by title, are adopted.

use crate::TwitchError;
use crate::helix::{Helix, HelixReward, NewReward, RewardLimits};
use dynamo_wire::Style;

/// A style's reward and whether it was just created.
#[derive(Debug, Clone)]
pub struct StyleReward {
    pub style: Style,
    pub reward: HelixReward,
    pub created: bool,
}

pub fn title(style: Style) -> &'static str {
    match style {
        Style::Ghost => "dynamo: a ghost",
        Style::Friend => "dynamo: a friend",
    }
}

/// The prompt viewers read when they redeem: what to type, and the input
/// rules (input.rs refuses, with a refund, text over 120 characters).
/// Twitch takes at most 200 characters.
pub fn prompt(style: Style) -> &'static str {
    match style {
        Style::Ghost => {
            "What should the ghost be? e.g. \"a seal\". Up to 120 characters; longer is refused and refunded."
        }
        Style::Friend => {
            "Describe your friend, optionally \"colour: subject\", e.g. \"red: a robot who loves soup\". Up to 120 characters; longer is refused and refunded."
        }
    }
}

/// Creates dynamo's rewards that are missing (adopting those it made
/// before), and sets every one's cooldown and limits to `limits`.
pub async fn ensure_rewards(
    helix: &Helix,
    cost: i64,
    limits: &RewardLimits,
) -> Result<Vec<StyleReward>, TwitchError> {
    let broadcaster = helix.broadcaster_id().await?;
    let existing = helix.own_rewards(&broadcaster).await?;
    let mut out = Vec::new();
    for style in Style::ALL {
        if let Some(reward) = existing.iter().find(|r| r.title == title(style)) {
            let mut change =
                serde_json::to_value(limits).map_err(|e| TwitchError::Malformed(e.to_string()))?;
            change["prompt"] = prompt(style).into();
            let reward = helix
                .update_reward(&broadcaster, &reward.id, &change)
                .await?;
            out.push(StyleReward {
                style,
                reward,
                created: false,
            });
            continue;
        }
        let reward = helix
            .create_reward(
                &broadcaster,
                &NewReward {
                    title: title(style).to_owned(),
                    cost,
                    prompt: prompt(style).to_owned(),
                    is_user_input_required: true,
                    should_redemptions_skip_request_queue: false,
                    limits: limits.clone(),
                },
            )
            .await?;
        out.push(StyleReward {
            style,
            reward,
            created: true,
        });
    }
    Ok(out)
}
