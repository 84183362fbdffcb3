//! A channel on the fake Twitch for the consumer's Twitch tests: a test
//! world, the streamer signed in, dynamo's rewards set up, alerts captured,
//! and the consumer's settings for it (`LEDGER=twitch`, the intake on).

use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::{Env, Shutdown};
use dynamo_store::{RequestState, Store};
use dynamo_testkit::twitch::{REDEMPTION_TYPE, REDEMPTION_UPDATE_TYPE};
use dynamo_testkit::{FakeTwitch, TestWorld, eventually};
use dynamo_twitch::helix::Helix;
use dynamo_twitch::intake::request_id_for;
use dynamo_twitch::{RewardIds, SCOPES, TwitchSettings};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

pub struct Channel {
    pub world: TestWorld,
    pub twitch: FakeTwitch,
    pub settings: TwitchSettings,
    pub helix: Helix,
    pub store: Store,
    pub rewards: RewardIds,
    /// The capture of onscreen-events (alerts need a listener to count as shown).
    pub alerts: String,
}

impl Channel {
    /// Signed in, rewards created; no consumer yet.
    pub async fn new() -> Self {
        let (world, twitch) = tokio::join!(TestWorld::start(), FakeTwitch::start());
        let settings = TwitchSettings::from_env(&Env::from_pairs(twitch.env_pairs())).unwrap();
        let store = Store::new(world.database.pool().clone());
        let helix = dynamo_twitch::helix(&settings, store.clone()).unwrap();
        sign_in(&helix, SCOPES).await;
        let made = dynamo_twitch::rewards::Rewarder::for_settings(&settings, store.clone())
            .unwrap()
            .setup(&Default::default(), 200)
            .await
            .unwrap();
        let rewards = dynamo_twitch::rewards::golden_ids(&made);
        let alerts = world
            .broker
            .capture(&world.broker.topology.alerts_exchange)
            .await;
        Self {
            world,
            twitch,
            settings,
            helix,
            store,
            rewards,
            alerts,
        }
    }

    pub fn ghost(&self) -> &str {
        self.rewards.ghost.as_deref().unwrap()
    }

    /// The consumer's settings: the world's, the fake Twitch's, the Twitch
    /// intake and `LEDGER=twitch`, then `extra` (which wins).
    pub fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut env = Env::from_pairs(
            self.world
                .consumer_env()
                .pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .chain(self.twitch.env_pairs()),
        );
        let friend = self.rewards.friend.clone().unwrap();
        for (k, v) in [
            ("LEDGER", "twitch"),
            ("TWITCH_INTAKE", "true"),
            ("UPSTREAM_PROBE_INTERVAL", "1s"),
            ("TWITCH_GHOST_REWARD_ID", self.ghost()),
            ("TWITCH_FRIEND_REWARD_ID", friend.as_str()),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            env = env.with(k, v);
        }
        env
    }

    /// The consumer in this process, with [`Channel::env`].
    pub fn start(
        &self,
        extra: &[(&str, &str)],
    ) -> (Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let config = ConsumerConfig::from_env(&self.env(extra)).unwrap();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(dynamo_consumer::run(config, shutdown.clone()));
        (shutdown, task)
    }

    /// Redemptions of both rewards and their updates are subscribed to.
    pub async fn subscribed(&self) {
        eventually("subscribed", WAIT, || async {
            (self.twitch.enabled_subscriptions_of(REDEMPTION_TYPE) == 2
                && self.twitch.enabled_subscriptions_of(REDEMPTION_UPDATE_TYPE) == 2)
                .then_some(())
        })
        .await;
    }

    /// `None` until the consumer has recorded the redemption's request.
    pub async fn state_of(&self, redemption: &str) -> Option<RequestState> {
        self.store
            .get(request_id_for(redemption))
            .await
            .ok()
            .map(|record| record.state())
    }
}

/// The device code flow against the fake, as `dynamoctl twitch login` runs it.
pub async fn sign_in(helix: &Helix, scopes: &str) {
    let oauth = helix.tokens().oauth();
    let code = oauth.start_device(scopes).await.unwrap();
    let tokens = oauth.wait_for_device(&code, scopes).await.unwrap();
    helix.tokens().sign_in(&tokens).await.unwrap();
}

pub async fn stop(shutdown: Shutdown, task: tokio::task::JoinHandle<anyhow::Result<()>>) {
    shutdown.trigger();
    task.await.unwrap().unwrap();
}

/// The lines posted in chat for `login`, in order, without the `@login `.
pub fn told(twitch: &FakeTwitch, login: &str) -> Vec<String> {
    let prefix = format!("@{login} ");
    twitch
        .chat_posted()
        .into_iter()
        .filter(|line| line.message.starts_with(&prefix))
        .map(|line| line.message[prefix.len()..].to_owned())
        .collect()
}
