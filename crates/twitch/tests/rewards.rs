//! One Twitch reward per style (issue 28, item 5), as `dynamoctl twitch
//! setup` makes them, against the fake Twitch (Helix's reward rules: unique
//! titles, 45 and 200 characters, cost ≥ 1) and real PostgreSQL: made from
//! each style's reward settings, a disabled style's paused, idempotent, and
//! a refusal recorded beside the style with a readable reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Env;
use dynamo_store::{RewardStatus, Store, StoredStyle};
use dynamo_testkit::{FakeTwitch, TestDatabase, init_logs};
use dynamo_twitch::helix::Helix;
use dynamo_twitch::rewards::{Rewarder, StyleReward};
use dynamo_twitch::{SCOPES, TwitchSettings};
use dynamo_wire::{StyleDefinition, StyleId};
use serde_json::json;

struct Channel {
    twitch: FakeTwitch,
    _database: TestDatabase,
    store: Store,
    rewarder: Rewarder,
}

impl Channel {
    /// Signed in, no reward yet.
    async fn new() -> Self {
        init_logs();
        let (database, twitch) = tokio::join!(TestDatabase::create(), FakeTwitch::start());
        let settings = TwitchSettings::from_env(&Env::from_pairs(twitch.env_pairs())).unwrap();
        let store = Store::new(database.pool().clone());
        let rewarder = Rewarder::for_settings(&settings, store.clone()).unwrap();
        sign_in(&rewarder.helix).await;
        Self {
            twitch,
            _database: database,
            store,
            rewarder,
        }
    }

    async fn setup(&self) -> Vec<StyleReward> {
        self.rewarder.setup(&Default::default(), 200).await.unwrap()
    }

    async fn stored(&self, id: &str) -> StoredStyle {
        let id = StyleId::parse(id).unwrap();
        self.store.style(&id).await.unwrap().unwrap()
    }

    fn reward_count(&self) -> usize {
        self.twitch.with(|s| s.rewards.len())
    }
}

async fn sign_in(helix: &Helix) {
    let oauth = helix.tokens().oauth();
    let code = oauth.start_device(SCOPES).await.unwrap();
    let tokens = oauth.wait_for_device(&code, SCOPES).await.unwrap();
    helix.tokens().sign_in(&tokens).await.unwrap();
}

/// A sticker style (colour optional) with its own reward settings.
fn sticker(cost: u32, enabled: bool) -> StyleDefinition {
    serde_json::from_value(json!({
        "id": "sticker",
        "display_name": "Sticker",
        "color": "optional",
        "prompt_template": "{subject} as a die-cut sticker",
        "output": "cutout",
        "points_cost": 50,
        "reward": {"title": "dynamo: a sticker", "prompt": "What should the sticker be?",
                   "cost": cost, "cooldown_seconds": 45, "max_per_stream": 20,
                   "max_per_user_per_stream": 2},
        "enabled": enabled,
    }))
    .unwrap()
}

fn made<'a>(made: &'a [StyleReward], style: &str) -> &'a StyleReward {
    made.iter().find(|m| m.style.as_str() == style).unwrap()
}

#[tokio::test]
async fn setup_makes_one_reward_per_enabled_style_from_its_settings_and_pauses_a_disabled_one() {
    let channel = Channel::new().await;
    channel.store.put_style(&sticker(150, true)).await.unwrap();
    let mut pixel = sticker(100, false);
    pixel.id = StyleId::parse("pixel").unwrap();
    pixel.reward.title = "dynamo: pixel art".to_owned();
    channel.store.put_style(&pixel).await.unwrap();

    let first = channel.setup().await;
    assert_eq!(first.len(), 4, "{first:?}");
    for style in ["ghost", "friend", "sticker"] {
        let m = made(&first, style);
        assert!(m.created, "{style} created");
        assert_eq!(m.status, RewardStatus::Published);
    }
    assert!(
        made(&first, "pixel").reward.is_none(),
        "a disabled style gets none"
    );
    assert_eq!(channel.reward_count(), 3);

    let sticker_id = made(&first, "sticker").reward.clone().unwrap().id;
    let reward = channel.twitch.reward(&sticker_id).unwrap();
    assert_eq!(reward.title, "dynamo: a sticker");
    assert_eq!(reward.cost, 150);
    assert_eq!(reward.global_cooldown, Some(45));
    assert_eq!(reward.max_per_stream, Some(20));
    assert_eq!(reward.max_per_user_per_stream, Some(2));
    assert!(reward.is_user_input_required);
    assert!(!reward.should_redemptions_skip_request_queue);
    assert!(!reward.is_paused);
    assert!(reward.prompt.starts_with("What should the sticker be?"));
    assert!(
        reward.prompt.contains("\"red: a seal\""),
        "{}",
        reward.prompt
    );
    assert!(
        reward.prompt.contains("120 characters"),
        "{}",
        reward.prompt
    );
    let ghost = channel
        .twitch
        .reward(&made(&first, "ghost").reward.clone().unwrap().id)
        .unwrap();
    assert!(
        !ghost.prompt.contains("colour:") && !ghost.prompt.contains("red:"),
        "a ghost takes no colour: {}",
        ghost.prompt
    );

    let stored = channel.stored("sticker").await;
    assert_eq!(stored.reward_id.as_deref(), Some(sticker_id.as_str()));
    assert_eq!(stored.reward_status, RewardStatus::Published);
    assert_eq!(stored.reward_error, None);
    let pixel = channel.stored("pixel").await;
    assert_eq!(
        (pixel.reward_id, pixel.reward_status),
        (None, RewardStatus::None)
    );

    // Again: adopted by id, nothing created twice, nothing stored changes.
    let version = channel.stored("sticker").await.version;
    let again = channel.setup().await;
    assert!(again.iter().all(|m| !m.created), "{again:?}");
    assert_eq!(channel.reward_count(), 3);
    assert_eq!(
        made(&again, "sticker").reward.as_ref().unwrap().id,
        sticker_id
    );
    assert_eq!(channel.stored("sticker").await.version, version);

    // Disabled: its reward is paused, not deleted; re-enabled with a new
    // price: reopened at that price.
    let sticker_style = StyleId::parse("sticker").unwrap();
    channel
        .store
        .set_style_enabled(&sticker_style, false)
        .await
        .unwrap();
    let paused = channel.setup().await;
    assert_eq!(made(&paused, "sticker").status, RewardStatus::Paused);
    assert!(channel.twitch.reward(&sticker_id).unwrap().is_paused);
    assert_eq!(
        channel.stored("sticker").await.reward_status,
        RewardStatus::Paused
    );
    channel.store.put_style(&sticker(175, true)).await.unwrap();
    channel.setup().await;
    let reward = channel.twitch.reward(&sticker_id).unwrap();
    assert!(!reward.is_paused);
    assert_eq!(reward.cost, 175);
    assert_eq!(channel.reward_count(), 3);
}

#[tokio::test]
async fn a_title_taken_on_the_channel_fails_that_style_readably_and_the_others_go_on() {
    let channel = Channel::new().await;
    // The streamer made a reward of that title by hand: Twitch refuses a
    // second one (400), and dynamo cannot adopt a reward it did not make.
    channel.twitch.add_foreign_reward("dynamo: a sticker");
    channel.store.put_style(&sticker(150, true)).await.unwrap();

    let made_now = channel.setup().await;
    let failed = made(&made_now, "sticker");
    assert_eq!(failed.status, RewardStatus::Failed);
    let stored = channel.stored("sticker").await;
    assert_eq!(stored.reward_status, RewardStatus::Failed);
    assert_eq!(stored.reward_id, None);
    let reason = stored.reward_error.unwrap();
    assert!(
        reason.contains("already titled \"dynamo: a sticker\""),
        "{reason}"
    );
    assert!(
        !reason.contains("Bearer") && !reason.contains("http"),
        "{reason}"
    );
    assert_eq!(made(&made_now, "ghost").status, RewardStatus::Published);
    assert_eq!(made(&made_now, "friend").status, RewardStatus::Published);
}
