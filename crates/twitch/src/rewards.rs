//! One custom reward per style (SPEC §7, §8), made from the style's `reward`
//! settings by dynamo's client id (only those can be settled by it), with
//! user input required and the request queue kept (so redemptions wait
//! UNFULFILLED for dynamo to settle). One implementation for both callers:
//! `dynamoctl twitch setup` ([`reconcile`] over every style) and the
//! consumer running the intake ([`keep_in_line`]: a style whose reward was
//! asked for on the page, or whose reward settings or switch changed).
//!
//! A reward is found by the style's stored `reward_id` (or, for ghost and
//! friend, `TWITCH_GHOST_REWARD_ID` / `TWITCH_FRIEND_REWARD_ID`), else by
//! its title among dynamo's rewards no other style claims (adopted), else
//! created. A disabled style's reward is paused (`is_paused`); a disabled
//! style without one gets none unless it was asked for. The outcome is
//! written beside the style: its `reward_id` and `reward_status`, with a
//! readable reason when Twitch refused it.

use crate::helix::{Helix, HelixReward, NewReward, RewardLimits};
use crate::{RewardIds, TwitchError};
use dynamo_runtime::Shutdown;
use dynamo_store::{RewardState, RewardStatus, Store, StoredStyle};
use dynamo_wire::{ColorInput, StyleDefinition, StyleId};
use serde::Serialize;
use std::collections::HashSet;

/// Twitch's limit on a reward's prompt.
const PROMPT_MAX: usize = 200;
/// What every reward's prompt ends with, where it fits (input.rs refuses,
/// with a refund, text over 120 characters).
pub const INPUT_RULE: &str = "Up to 120 characters; longer is refused and refunded.";
/// Told on the reward of a style that takes a colour, unless its prompt
/// already speaks of one.
pub const COLOUR_RULE: &str = "Start with a colour to choose it: \"red: a seal\".";

/// A reward as dynamo wants it on Twitch: the flat fields create and update
/// take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    pub title: String,
    pub prompt: String,
    pub cost: i64,
    #[serde(flatten)]
    pub limits: RewardLimits,
    pub is_paused: bool,
}

/// The reward `style` should have: its own settings, the `TWITCH_REWARD_*`
/// settings (`defaults`) for a limit it leaves unset, paused when disabled.
pub fn desired(style: &StyleDefinition, defaults: &RewardLimits) -> Desired {
    let reward = &style.reward;
    Desired {
        title: reward.title.trim().to_owned(),
        prompt: prompt(style),
        cost: i64::from(reward.cost.max(1)),
        limits: RewardLimits {
            global_cooldown_seconds: reward.cooldown_seconds.or(defaults.global_cooldown_seconds),
            max_per_stream: reward.max_per_stream.or(defaults.max_per_stream),
            max_per_user_per_stream: reward
                .max_per_user_per_stream
                .or(defaults.max_per_user_per_stream),
        },
        is_paused: !style.enabled,
    }
}

/// The prompt viewers read: the style's, then the input rules (the colour
/// prefix where the style takes a colour, the 120-character limit) as far
/// as Twitch's 200 characters allow.
pub fn prompt(style: &StyleDefinition) -> String {
    let mut prompt = style.reward.prompt.trim().to_owned();
    let lower = prompt.to_lowercase();
    let mut rules = Vec::new();
    if style.color != ColorInput::None && !lower.contains("colour") && !lower.contains("color") {
        rules.push(COLOUR_RULE);
    }
    rules.push(INPUT_RULE);
    for rule in rules {
        let joined = match prompt.chars().last() {
            None => rule.to_owned(),
            Some('.' | '!' | '?') => format!("{prompt} {rule}"),
            Some(_) => format!("{prompt}. {rule}"),
        };
        if joined.chars().count() <= PROMPT_MAX {
            prompt = joined;
        }
    }
    prompt
}

/// What was sent for a style, as stored in `reward_synced`: a later change
/// of the style's reward settings or switch differs from it.
pub fn fingerprint(style: &StyleDefinition, defaults: &RewardLimits) -> String {
    // A struct of strings, numbers and booleans always serializes.
    serde_json::to_string(&desired(style, defaults)).unwrap_or_default()
}

/// Whether the consumer should bring `style`'s reward in line: asked for,
/// or made before and changed since.
pub fn due(style: &StoredStyle, defaults: &RewardLimits) -> bool {
    match style.reward_status {
        RewardStatus::Requested => true,
        RewardStatus::Published | RewardStatus::Paused => {
            style.reward_synced.as_deref() != Some(&fingerprint(&style.definition, defaults))
        }
        RewardStatus::None | RewardStatus::Failed => false,
    }
}

/// What became of one style's reward.
#[derive(Debug, Clone)]
pub struct StyleReward {
    pub style: StyleId,
    /// The reward on Twitch; `None` when there is none (a disabled style
    /// never published, or a failure).
    pub reward: Option<HelixReward>,
    pub created: bool,
    pub status: RewardStatus,
    /// Why it failed, readable (no tokens, no internals).
    pub error: Option<String>,
}

/// Who makes the rewards, and with which defaults.
#[derive(Debug, Clone)]
pub struct Rewarder {
    pub helix: Helix,
    pub store: Store,
    /// `TWITCH_GHOST_REWARD_ID` / `TWITCH_FRIEND_REWARD_ID`.
    pub overrides: RewardIds,
    /// `TWITCH_REWARD_*`: a style's unset limits.
    pub defaults: RewardLimits,
}

impl Rewarder {
    /// The rewarder of these settings: the streamer's client, the variables'
    /// overrides, the `TWITCH_REWARD_*` defaults.
    pub fn for_settings(
        settings: &crate::TwitchSettings,
        store: Store,
    ) -> Result<Self, TwitchError> {
        Ok(Self {
            helix: crate::helix(settings, store.clone())?,
            store,
            overrides: settings.rewards.clone(),
            defaults: settings.limits.clone(),
        })
    }

    /// Brings each of `styles`' rewards in line on Twitch and records the
    /// outcome beside the style. A style Twitch refuses is recorded failed
    /// (with the reason) and the others go on.
    pub async fn reconcile(&self, styles: &[StoredStyle]) -> Result<Vec<StyleReward>, TwitchError> {
        let listed = async {
            let broadcaster = self.helix.broadcaster_id().await?;
            let own = self.helix.own_rewards(&broadcaster).await?;
            let held = self.store.rewards_paused().await?;
            Ok::<_, TwitchError>((broadcaster, own, held))
        };
        let (broadcaster, mut own, held) = match listed.await {
            Ok(listed) => listed,
            Err(error) => {
                // Nothing can be made: say so on every style asked for.
                let mut out = Vec::new();
                for style in styles {
                    out.push(self.record_failure(style, &error).await?);
                }
                return Ok(out);
            }
        };
        let mut out = Vec::new();
        for style in styles {
            let claimed: HashSet<String> = styles
                .iter()
                .filter(|other| other.definition.id != style.definition.id)
                .filter_map(|other| self.reward_id_of(other).map(str::to_owned))
                .collect();
            let made = self
                .publish(&broadcaster, &mut own, &claimed, style, held)
                .await;
            out.push(match made {
                Ok(made) => self.record(style, made).await?,
                Err(error) => self.record_failure(style, &error).await?,
            });
        }
        Ok(out)
    }

    /// `dynamoctl twitch setup`: Golden VCR's styles seeded as a consumer
    /// seeds them (`prompts`, `points_cost`), then every style's reward in
    /// line, by style id.
    pub async fn setup(
        &self,
        prompts: &dynamo_pipeline::prompt::PromptTemplates,
        points_cost: u32,
    ) -> Result<Vec<StyleReward>, TwitchError> {
        dynamo_store::golden_vcr::seed(
            &self.store,
            prompts,
            points_cost,
            dynamo_store::golden_vcr::Seeding::Follow,
        )
        .await?;
        let styles = self.store.styles().await?;
        self.reconcile(&styles).await
    }

    /// The reward id a style has: the variable's for ghost and friend, else
    /// the stored one.
    fn reward_id_of<'a>(&'a self, style: &'a StoredStyle) -> Option<&'a str> {
        style
            .definition
            .id
            .builtin()
            .and_then(|builtin| self.overrides.get(builtin))
            .or(style.reward_id.as_deref())
    }

    /// Creates, adopts or updates one style's reward; `None`: a disabled
    /// style without one, left so.
    async fn publish(
        &self,
        broadcaster: &str,
        own: &mut Vec<HelixReward>,
        claimed: &HashSet<String>,
        style: &StoredStyle,
        held: bool,
    ) -> Result<Option<(HelixReward, bool)>, TwitchError> {
        let want = desired(&style.definition, &self.defaults);
        // Paused while the fleet holds as well (follow.rs reopens it).
        let paused = want.is_paused || held;
        let known = self.reward_id_of(style);
        let found = known
            .and_then(|id| own.iter().find(|r| r.id == id))
            .or_else(|| {
                own.iter()
                    .find(|r| r.title == want.title && !claimed.contains(&r.id))
            })
            .map(|r| r.id.clone());
        if let Some(id) = found {
            let mut change =
                serde_json::to_value(&want).map_err(|e| TwitchError::Malformed(e.to_string()))?;
            change["is_paused"] = paused.into();
            change["is_user_input_required"] = true.into();
            let reward = self.helix.update_reward(broadcaster, &id, &change).await?;
            if let Some(slot) = own.iter_mut().find(|r| r.id == reward.id) {
                *slot = reward.clone();
            }
            return Ok(Some((reward, false)));
        }
        let asked = style.reward_status == RewardStatus::Requested;
        if !style.definition.enabled && !asked {
            return Ok(None);
        }
        let mut reward = self
            .helix
            .create_reward(
                broadcaster,
                &NewReward {
                    title: want.title.clone(),
                    cost: want.cost,
                    prompt: want.prompt.clone(),
                    is_user_input_required: true,
                    should_redemptions_skip_request_queue: false,
                    limits: want.limits.clone(),
                },
            )
            .await?;
        // Create takes no `is_paused`: a reward born paused is paused after.
        if paused {
            reward = self
                .helix
                .update_reward(
                    broadcaster,
                    &reward.id,
                    &serde_json::json!({"is_paused": true}),
                )
                .await?;
        }
        own.push(reward.clone());
        Ok(Some((reward, true)))
    }

    async fn record(
        &self,
        style: &StoredStyle,
        made: Option<(HelixReward, bool)>,
    ) -> Result<StyleReward, TwitchError> {
        let id = &style.definition.id;
        let synced = fingerprint(&style.definition, &self.defaults);
        let (reward, created) = match made {
            Some((reward, created)) => (Some(reward), created),
            None => (None, false),
        };
        let status = match (&reward, style.definition.enabled) {
            (None, _) => RewardStatus::None,
            (Some(_), true) => RewardStatus::Published,
            (Some(_), false) => RewardStatus::Paused,
        };
        let reward_id = reward
            .as_ref()
            .map(|r| r.id.as_str())
            .or(style.reward_id.as_deref());
        self.store
            .set_style_reward_state(
                id,
                RewardState {
                    reward_id,
                    status,
                    error: None,
                    synced: reward.as_ref().map(|_| synced.as_str()),
                },
            )
            .await?;
        match &reward {
            Some(r) => {
                tracing::info!(style = %id, reward = %r.id, title = %r.title, created, status = status.as_str(), "style's Twitch reward in line")
            }
            None => tracing::info!(style = %id, "style disabled and without a reward: none made"),
        }
        Ok(StyleReward {
            style: id.clone(),
            reward,
            created,
            status,
            error: None,
        })
    }

    async fn record_failure(
        &self,
        style: &StoredStyle,
        error: &TwitchError,
    ) -> Result<StyleReward, TwitchError> {
        let id = &style.definition.id;
        let reason = readable(error, &style.definition.reward.title);
        tracing::warn!(style = %id, %error, "Twitch refused the style's reward");
        self.store
            .set_style_reward_state(
                id,
                RewardState {
                    reward_id: style.reward_id.as_deref(),
                    status: RewardStatus::Failed,
                    error: Some(&reason),
                    synced: None,
                },
            )
            .await?;
        Ok(StyleReward {
            style: id.clone(),
            reward: None,
            created: false,
            status: RewardStatus::Failed,
            error: Some(reason),
        })
    }
}

/// Ghost's and friend's rewards among `made`, as the variables would name
/// them.
pub fn golden_ids(made: &[StyleReward]) -> RewardIds {
    let id = |style: dynamo_wire::Style| {
        made.iter()
            .find(|m| m.style == style)
            .and_then(|m| m.reward.as_ref())
            .map(|r| r.id.clone())
    };
    RewardIds {
        ghost: id(dynamo_wire::Style::Ghost),
        friend: id(dynamo_wire::Style::Friend),
    }
}

/// Why a reward could not be made, as the streamer reads it on the page:
/// Twitch's own message where it gave one, never a token or a URL.
pub fn readable(error: &TwitchError, title: &str) -> String {
    match error {
        TwitchError::Refused {
            status: 400,
            message,
            ..
        } if message.contains("DUPLICATE") => format!(
            "Twitch refused the reward: another reward on the channel is already titled {:?}; choose another title",
            title.trim()
        ),
        TwitchError::Refused {
            what,
            status,
            message,
        } => format!("Twitch refused {what}: {status} {message}"),
        TwitchError::SignedOut(_) => {
            "dynamo is not signed in to Twitch: run `dynamoctl twitch login`".to_owned()
        }
        TwitchError::Cipher(_) => {
            "the stored Twitch sign-in cannot be read with TWITCH_TOKEN_KEY: sign in again"
                .to_owned()
        }
        TwitchError::Unavailable(_) | TwitchError::Malformed(_) | TwitchError::Store(_) => {
            "Twitch could not be reached or answered unexpectedly: publish it again".to_owned()
        }
    }
}

/// Keeps the rewards in line while this consumer runs the intake: at start
/// and on every change of the styles (the consumer's own copy wakes it; see
/// `dynamo_pipeline::styles::Styles::changes`), each style [`due`] is
/// reconciled. Until `stop`.
pub async fn keep_in_line(
    rewarder: Rewarder,
    mut changes: tokio::sync::watch::Receiver<u64>,
    stop: Shutdown,
) {
    loop {
        // The table itself, not the copy: the copy may lag this process's
        // own last write by a notification.
        match rewarder.store.styles().await {
            Ok(styles) => {
                let due: Vec<StoredStyle> = styles
                    .into_iter()
                    .filter(|s| due(s, &rewarder.defaults))
                    .collect();
                if !due.is_empty()
                    && let Err(error) = rewarder.reconcile(&due).await
                {
                    tracing::warn!(%error, "could not record the styles' rewards; trying again at the next change");
                }
            }
            Err(error) => tracing::warn!(%error, "could not read the styles for their rewards"),
        }
        tokio::select! {
            _ = stop.requested() => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}
