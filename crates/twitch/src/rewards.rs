//! `dynamoctl twitch setup`: one custom reward per style, created by
//! dynamo's client id (only those can be settled by it), with user input
//! required and the request queue kept (so redemptions wait UNFULFILLED for
//! dynamo to settle). Rewards it created before, found by title, are adopted.

use crate::TwitchError;
use crate::helix::{Helix, HelixReward, NewReward};
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

fn prompt(style: Style) -> &'static str {
    match style {
        Style::Ghost => "What should the ghost be? e.g. \"a seal\"",
        Style::Friend => {
            "Describe your friend, optionally starting with a colour: \"red: a robot who loves soup\""
        }
    }
}

pub async fn ensure_rewards(helix: &Helix, cost: i64) -> Result<Vec<StyleReward>, TwitchError> {
    let broadcaster = helix.broadcaster_id().await?;
    let existing = helix.own_rewards(&broadcaster).await?;
    let mut out = Vec::new();
    for style in Style::ALL {
        if let Some(reward) = existing.iter().find(|r| r.title == title(style)) {
            out.push(StyleReward {
                style,
                reward: reward.clone(),
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
