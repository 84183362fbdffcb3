//! The Twitch intake against the fake Twitch (a real HTTP + WebSocket server
//! speaking Twitch's formats), real PostgreSQL and real RabbitMQ: signing in,
//! setting up rewards, redemptions → requests on generation-requests, and
//! every way the EventSub session can go wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::{Env, Shutdown};
use dynamo_store::Store;
use dynamo_testkit::twitch::{BROADCASTER_ID, TOKEN_KEY};
use dynamo_testkit::{
    FakeTwitch, TestBroker, TestCertificates, TestDatabase, eventually, init_logs,
};
use dynamo_twitch::cipher::TokenCipher;
use dynamo_twitch::helix::Helix;
use dynamo_twitch::intake::{Intake, request_id_for};
use dynamo_twitch::{RewardIds, SCOPES, TwitchSettings};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

struct World {
    twitch: FakeTwitch,
    /// What `wss://` trusts: the fake's own authority when it serves TLS.
    roots: rustls::RootCertStore,
    broker: TestBroker,
    _database: TestDatabase,
    store: Store,
    settings: TwitchSettings,
    helix: Helix,
    rewards: RewardIds,
    requests: String,
    shutdown: Shutdown,
    intake: Option<tokio::task::JoinHandle<()>>,
}

impl World {
    /// Signed in, rewards set up, nothing running yet.
    async fn new(tune: impl FnOnce(&FakeTwitch)) -> Self {
        Self::on(None, tune).await
    }

    /// [`World::new`] with the fake Twitch over TLS (`https://`, `wss://`)
    /// with `certificates`, which dynamo's clients trust.
    async fn over_tls(certificates: &TestCertificates) -> Self {
        Self::on(Some(certificates), |_| {}).await
    }

    async fn on(tls: Option<&TestCertificates>, tune: impl FnOnce(&FakeTwitch)) -> Self {
        init_logs();
        let twitch = async {
            match tls {
                Some(certificates) => FakeTwitch::start_tls(certificates).await,
                None => FakeTwitch::start().await,
            }
        };
        let (database, broker, twitch) =
            tokio::join!(TestDatabase::create(), TestBroker::create(), twitch);
        tune(&twitch);
        let env = Env::from_pairs(twitch.env_pairs());
        let settings = TwitchSettings::from_env(&env).unwrap();
        let store = Store::new(database.pool().clone());
        let mut roots = rustls::RootCertStore::empty();
        let mut http = reqwest::Client::builder();
        if let Some(certificates) = tls {
            roots.add(certificates.root.clone()).unwrap();
            http =
                http.tls_certs_only([reqwest::Certificate::from_der(&certificates.root).unwrap()]);
        }
        let helix = dynamo_twitch::client_over(
            http.build().unwrap(),
            &settings,
            store.clone(),
            dynamo_store::GrantAccount::Broadcaster,
        );
        sign_in(&twitch, &helix).await;
        // Through the client made above: over TLS, only it trusts the fake.
        let made = dynamo_twitch::rewards::Rewarder {
            helix: helix.clone(),
            ..dynamo_twitch::rewards::Rewarder::for_settings(&settings, store.clone()).unwrap()
        }
        .setup(&Default::default(), 300)
        .await
        .unwrap();
        let rewards = dynamo_twitch::rewards::golden_ids(&made);
        let requests = broker.capture(&broker.topology.requests_exchange).await;
        Self {
            twitch,
            roots,
            store,
            settings,
            helix,
            rewards,
            requests,
            _database: database,
            broker,
            shutdown: Shutdown::new(),
            intake: None,
        }
    }

    /// Runs the intake and waits until it has subscribed to both rewards.
    async fn start(&mut self) {
        self.intake = Some(tokio::spawn(dynamo_twitch::eventsub::run_trusting(
            self.intake(),
            self.twitch.ws_url.clone(),
            self.roots.clone(),
            self.shutdown.clone(),
        )));
        self.subscribed().await;
    }

    fn intake(&self) -> Arc<Intake> {
        Arc::new(Intake {
            helix: self.helix.clone(),
            store: self.store.clone(),
            publisher: self.broker.publisher.clone(),
            requests_exchange: self.broker.topology.requests_exchange.clone(),
            rewards: dynamo_twitch::book::RewardBook::overrides_only(self.rewards.clone()),
        })
    }

    async fn subscribed(&self) {
        // Redemptions and their updates for both rewards, and the stream's
        // online / offline: the last subscription is made.
        eventually("every subscription made", WAIT, || async {
            (self.twitch.enabled_subscriptions() == 6).then_some(())
        })
        .await;
    }

    fn ghost(&self) -> &str {
        self.rewards.ghost.as_deref().unwrap()
    }

    fn friend(&self) -> &str {
        self.rewards.friend.as_deref().unwrap()
    }

    async fn next_request(&self) -> dynamo_testkit::Captured {
        self.broker
            .next(&self.requests, WAIT)
            .await
            .expect("a request on generation-requests")
    }

    async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.intake.take() {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        }
    }
}

/// The device code flow against the fake, as `dynamoctl twitch login` runs it.
async fn sign_in(twitch: &FakeTwitch, helix: &Helix) {
    let _ = twitch;
    let oauth = helix.tokens().oauth();
    let code = oauth.start_device(SCOPES).await.unwrap();
    let tokens = oauth.wait_for_device(&code, SCOPES).await.unwrap();
    helix.tokens().sign_in(&tokens).await.unwrap();
}

fn cipher() -> TokenCipher {
    TokenCipher::from_base64(TOKEN_KEY).unwrap()
}

#[tokio::test]
async fn device_login_waits_for_the_code_and_stores_the_tokens_encrypted() {
    // Two polls answered authorization_pending before the code is entered.
    let world = World::new(|twitch| twitch.with(|s| s.pending_polls = 2)).await;
    let grant = world
        .store
        .twitch_grant(dynamo_store::GrantAccount::Broadcaster)
        .await
        .unwrap()
        .expect("a stored grant");
    assert_eq!(grant.user_id, BROADCASTER_ID);
    let scopes: Vec<String> = SCOPES.split(' ').map(str::to_owned).collect();
    assert_eq!(grant.scopes, scopes);
    assert!(grant.revoked_at.is_none());
    let refresh = cipher()
        .open("refresh_token", &grant.refresh_token)
        .unwrap();
    let access = cipher().open("access_token", &grant.access_token).unwrap();
    assert!(world.twitch.refresh_token_valid(&refresh));
    for (token, sealed) in [
        (&access, &grant.access_token),
        (&refresh, &grant.refresh_token),
    ] {
        assert!(
            !sealed.windows(token.len()).any(|w| w == token.as_bytes()),
            "tokens are not stored in the clear"
        );
    }
    world.stop().await;
}

#[tokio::test]
async fn setup_creates_one_queued_input_reward_per_style_and_adopts_them_after() {
    let world = World::new(|_| {}).await;
    let rewards = world.twitch.with(|s| s.rewards.clone());
    assert_eq!(rewards.len(), 2);
    for reward in &rewards {
        assert!(reward.is_user_input_required);
        assert!(!reward.should_redemptions_skip_request_queue);
        assert_eq!(reward.cost, 300);
    }
    let again =
        dynamo_twitch::rewards::Rewarder::for_settings(&world.settings, world.store.clone())
            .unwrap()
            .setup(&Default::default(), 300)
            .await
            .unwrap();
    assert!(
        again.iter().all(|r| !r.created),
        "adopted, not created twice"
    );
    assert_eq!(
        dynamo_twitch::rewards::golden_ids(&again).ghost.as_deref(),
        Some(world.ghost())
    );
    assert_eq!(world.twitch.with(|s| s.rewards.len()), 2);
    world.stop().await;
}

#[tokio::test]
async fn a_redemption_becomes_one_request_even_when_its_notification_comes_twice() {
    let mut world = World::new(|_| {}).await;
    world.start().await;
    let first = world.twitch.redeem(
        world.friend(),
        "90790024",
        "WasabiMilkshake",
        "red: a robot who loves soup",
    );
    let request = world.next_request().await;
    assert_eq!(request.message_id, Some(request_id_for(&first).to_string()));
    assert!(request.persistent);
    assert_eq!(request.body["payload"]["style"], "friend");
    assert_eq!(request.body["payload"]["inputs"]["color"], "red");
    assert_eq!(
        request.body["payload"]["inputs"]["subject"],
        "a robot who loves soup"
    );
    assert_eq!(request.body["viewer"]["twitch_user_id"], "90790024");
    assert_eq!(
        request.body["viewer"]["twitch_display_name"],
        "WasabiMilkshake"
    );

    assert!(
        world.twitch.duplicate_last_notification(),
        "the fake repeated it"
    );
    // The next redemption comes after the duplicate on the same socket: once
    // its request is here, the duplicate has been read and dropped.
    let second = world
        .twitch
        .redeem(world.ghost(), "1234", "viewer2", "a seal");
    let next = world.next_request().await;
    assert_eq!(next.message_id, Some(request_id_for(&second).to_string()));
    assert_eq!(
        world.broker.depth(&world.requests).await,
        0,
        "no copy of the first"
    );
    world.stop().await;
}

#[tokio::test]
async fn inadmissible_input_is_cancelled_with_the_reason_recorded() {
    let mut world = World::new(|_| {}).await;
    world.start().await;
    let colour = world
        .twitch
        .redeem(world.friend(), "1", "a", "beige: a robot");
    let long = world
        .twitch
        .redeem(world.ghost(), "2", "b", &"x".repeat(121));
    let blank = world.twitch.redeem(world.ghost(), "3", "c", "   ");
    for (id, why) in [
        (&colour, "unknown colour"),
        (&long, "120"),
        (&blank, "no text"),
    ] {
        eventually("the redemption cancelled", WAIT, || async {
            (world.twitch.status_of(id).as_deref() == Some("CANCELED")).then_some(())
        })
        .await;
        // Recorded once Twitch has answered: wait for the record, not the fake.
        let record = eventually("the cancellation recorded", WAIT, || async {
            let record = world
                .store
                .redemption_for_request(request_id_for(id))
                .await
                .ok()??;
            record.settled_status.is_some().then_some(record)
        })
        .await;
        assert_eq!(record.settled_status.as_deref(), Some("CANCELED"));
        let reason = record.cancel_reason.unwrap_or_default();
        assert!(reason.contains(why), "{reason:?} should say {why:?}");
    }
    assert_eq!(
        world.broker.depth(&world.requests).await,
        0,
        "nothing published"
    );
    world.stop().await;
}

#[tokio::test]
async fn redemptions_made_while_the_socket_was_down_are_taken_in_after_the_reconnect() {
    let mut world = World::new(|_| {}).await;
    world.start().await;
    assert_eq!(world.twitch.drop_sockets(), 1);
    // Redeemed while no subscription is live: no notification is sent.
    assert_eq!(world.twitch.enabled_subscriptions(), 0);
    let a = world.twitch.redeem(world.ghost(), "1", "a", "a seal");
    let b = world.twitch.redeem(world.friend(), "2", "b", "a cloud");
    let mut got = vec![
        world.next_request().await.message_id.unwrap(),
        world.next_request().await.message_id.unwrap(),
    ];
    got.sort();
    let mut want = vec![
        request_id_for(&a).to_string(),
        request_id_for(&b).to_string(),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        world.twitch.with(|s| s.connections),
        2,
        "it connected again"
    );
    world.subscribed().await;
    world.stop().await;
}

#[tokio::test]
async fn a_session_reconnect_moves_to_the_new_socket_and_loses_nothing() {
    let mut world = World::new(|_| {}).await;
    world.start().await;
    let before = world.twitch.redeem(world.ghost(), "1", "a", "before");
    world.next_request().await;
    assert_eq!(world.twitch.send_reconnect(), 1);
    // Redeemed while the client moves: whichever socket it reaches, or none.
    let during = world.twitch.redeem(world.ghost(), "2", "b", "during");
    let got = world.next_request().await;
    assert_eq!(got.message_id, Some(request_id_for(&during).to_string()));
    eventually("the old socket dropped, the new one kept", WAIT, || async {
        let s = world.twitch.with(|s| (s.connections, s.sessions_open()));
        (s == (2, 1)).then_some(())
    })
    .await;
    // Subscriptions moved with the session: nothing to subscribe again.
    assert_eq!(
        world
            .twitch
            .enabled_subscriptions_of(dynamo_testkit::twitch::REDEMPTION_TYPE),
        2
    );
    let after = world.twitch.redeem(world.friend(), "3", "c", "after");
    assert_eq!(
        world.next_request().await.message_id,
        Some(request_id_for(&after).to_string())
    );
    assert_ne!(before, after);
    world.stop().await;
}

#[tokio::test]
async fn silence_past_the_keepalive_timeout_means_connecting_again() {
    let mut world = World::new(|twitch| twitch.with(|s| s.keepalive_secs = 1)).await;
    world.start().await;
    world.twitch.with(|s| s.silent = true);
    eventually("a second connection", WAIT, || async {
        (world.twitch.with(|s| s.connections) >= 2).then_some(())
    })
    .await;
    world.twitch.with(|s| s.silent = false);
    world.subscribed().await;
    let id = world.twitch.redeem(world.ghost(), "1", "a", "a seal");
    assert_eq!(
        world.next_request().await.message_id,
        Some(request_id_for(&id).to_string())
    );
    world.stop().await;
}

/// A redemption made now reaches generation-requests.
async fn a_redemption_still_arrives(world: &World) {
    world.subscribed().await;
    let id = world.twitch.redeem(world.ghost(), "7", "g", "a seal");
    assert_eq!(
        world.next_request().await.message_id,
        Some(request_id_for(&id).to_string())
    );
}

#[tokio::test]
async fn a_reconnect_url_on_another_host_is_not_followed() {
    // A WebSocket "server" on another host that accepts and never answers:
    // a client that follows the URL there is stuck with it.
    let rogue = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let rogue_url = format!("ws://{}/ws", rogue.local_addr().unwrap());
    let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = rogue.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let mut world = World::new(|_| {}).await;
    world.start().await;
    assert_eq!(world.twitch.send_reconnect_to(&rogue_url), 1);
    eventually("a fresh connection to the configured URL", WAIT, || async {
        (world.twitch.with(|s| s.connections) >= 2).then_some(())
    })
    .await;
    a_redemption_still_arrives(&world).await;
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the client connected to the reconnect_url on another host"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_huge_keepalive_timeout_does_not_stop_the_intake() {
    let mut world = World::new(|twitch| twitch.with(|s| s.keepalive_secs = u64::MAX)).await;
    world.start().await;
    a_redemption_still_arrives(&world).await;
    world.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_session_starts_again() {
    let mut world = World::new(|_| {}).await;
    world.start().await;
    // A well-formed keepalive of 1 MiB: nothing Twitch sends is near that.
    let padding = "x".repeat(1024 * 1024);
    let huge = serde_json::json!({
        "metadata": {"message_id": "huge", "message_type": "session_keepalive",
                     "message_timestamp": "2026-12-06T00:00:00Z"},
        "payload": {"padding": padding},
    });
    assert_eq!(world.twitch.send_raw(&huge.to_string()), 1);
    eventually("the session dropped and a new one opened", WAIT, || async {
        (world.twitch.with(|s| s.connections) >= 2).then_some(())
    })
    .await;
    a_redemption_still_arrives(&world).await;
    world.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_stored() {
    let world = World::new(|_| {}).await;
    let before = world
        .store
        .twitch_grant(dynamo_store::GrantAccount::Broadcaster)
        .await
        .unwrap()
        .unwrap();
    let old_refresh = cipher()
        .open("refresh_token", &before.refresh_token)
        .unwrap();
    world.twitch.expire_access_tokens();
    let listed = world.helix.own_rewards(BROADCASTER_ID).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(world.twitch.with(|s| (s.unauthorized, s.refreshes)), (1, 1));
    let after = world
        .store
        .twitch_grant(dynamo_store::GrantAccount::Broadcaster)
        .await
        .unwrap()
        .unwrap();
    let new_refresh = cipher()
        .open("refresh_token", &after.refresh_token)
        .unwrap();
    assert!(after.version > before.version);
    assert!(
        !world.twitch.refresh_token_valid(&old_refresh),
        "Twitch spent the old one"
    );
    assert!(
        world.twitch.refresh_token_valid(&new_refresh),
        "the rotated one is stored"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_revoked_grant_holds_requests_and_says_so_until_the_next_sign_in() {
    let mut world = World::new(|_| {}).await;
    world.start().await;
    world.twitch.revoke();
    let hold = eventually("a hold on twitch", WAIT, || async {
        let holds = world.store.holds().await.unwrap();
        holds.into_iter().find(|h| h.service == "twitch")
    })
    .await;
    assert!(hold.reason.contains("revoked"), "{}", hold.reason);
    assert!(
        hold.reason.contains("dynamoctl twitch login"),
        "{}",
        hold.reason
    );
    let grant = world
        .store
        .twitch_grant(dynamo_store::GrantAccount::Broadcaster)
        .await
        .unwrap()
        .unwrap();
    assert!(grant.revoked_reason.is_some());
    // Redeemed while signed out: nothing can be taken in yet.
    let waiting = world.twitch.redeem(world.ghost(), "1", "a", "a seal");
    assert_eq!(world.broker.depth(&world.requests).await, 0);

    sign_in(&world.twitch, &world.helix).await;
    let got = world.next_request().await;
    assert_eq!(got.message_id, Some(request_id_for(&waiting).to_string()));
    assert!(
        world.store.holds().await.unwrap().is_empty(),
        "the hold ended"
    );
    world.stop().await;
}

/// Twitch is reached over TLS (issue 29: until now only `ws://` was ever
/// connected in a test): the session over `wss://` and the Helix calls
/// over `https://`, to the fake Twitch serving a certificate of an
/// authority made for this test, which dynamo's clients are given to trust.
#[tokio::test]
async fn a_redemption_comes_in_over_wss_with_a_locally_made_certificate() {
    let certificates = TestCertificates::generate();
    let mut world = World::over_tls(&certificates).await;
    assert!(
        world.twitch.ws_url.starts_with("wss://"),
        "{}",
        world.twitch.ws_url
    );
    assert!(
        world.twitch.url.starts_with("https://"),
        "{}",
        world.twitch.url
    );
    world.start().await;
    let id = world.twitch.redeem(
        world.ghost(),
        "90790024",
        "WasabiMilkshake",
        "a seal over TLS",
    );
    let request = world.next_request().await;
    assert_eq!(request.message_id, Some(request_id_for(&id).to_string()));
    assert_eq!(
        request.body["payload"]["inputs"]["subject"],
        "a seal over TLS"
    );
    assert_eq!(world.twitch.with(|s| s.connections), 1);
    world.stop().await;
}

/// One consumer with `TWITCH_INTAKE=true`, as `dynamo-consumer` runs the
/// intake: whenever it holds the lease.
struct Runner {
    holder: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Runner {
    fn start(world: &World, n: usize) -> Self {
        let holder = format!("test-host:{n}:consumer");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(dynamo_twitch::leadership::run(
            world.store.clone(),
            holder.clone(),
            world.intake(),
            None,
            world.twitch.ws_url.clone(),
            shutdown.clone(),
        ));
        Self {
            holder,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Twitch allows a user at most 3 WebSocket connections (the fake refuses
/// a subscription on a 4th, 429) and closes one that has no subscription
/// soon after its welcome (4003: Twitch gives 10 s, the fake here 3 s).
/// Three consumers run the intake; Twitch drops the socket, moves the
/// session, and the holder stops so another takes over, round after round:
/// never more than 3 connections open at once, no subscription refused,
/// no connection closed unused, and a redemption taken in after each step.
#[tokio::test]
async fn reconnects_and_failovers_stay_within_three_connections_and_subscribe_in_time() {
    let world = World::new(|twitch| twitch.with(|s| s.subscribe_within_secs = 3)).await;
    let mut runners: Vec<Runner> = (0..3).map(|n| Runner::start(&world, n)).collect();
    a_redemption_still_arrives(&world).await;
    for round in 0..3 {
        assert_eq!(world.twitch.drop_sockets(), 1, "round {round}: one socket");
        a_redemption_still_arrives(&world).await;
        assert_eq!(
            world.twitch.send_reconnect(),
            1,
            "round {round}: one socket"
        );
        a_redemption_still_arrives(&world).await;

        let (holder, fence) = world.store.intake_holder().await.unwrap().unwrap();
        let at = runners.iter().position(|r| r.holder == holder).unwrap();
        runners.remove(at).stop().await;
        let (_, taken) = eventually("another consumer to take over", WAIT, || async {
            let (now, fence) = world.store.intake_holder().await.unwrap()?;
            (now != holder).then_some((now, fence))
        })
        .await;
        assert!(taken > fence, "round {round}: fenced");
        a_redemption_still_arrives(&world).await;
        runners.push(Runner::start(&world, 3 + round));
    }
    eventually(
        "every connection past its subscribe deadline",
        WAIT,
        || async { (world.twitch.with(|s| s.sessions_before_deadline()) == 0).then_some(()) },
    )
    .await;
    let (most, refused, unused, connections) = world.twitch.with(|s| {
        (
            s.most_sessions_open,
            s.transports_refused,
            s.closed_unused,
            s.connections,
        )
    });
    assert!(
        most <= dynamo_testkit::twitch::MAX_CONNECTIONS,
        "{most} connections open at once"
    );
    assert_eq!(
        refused, 0,
        "no subscription refused for too many connections"
    );
    assert_eq!(unused, 0, "every connection subscribed within the deadline");
    // One to start, then per round: the drop, the move, the takeover.
    assert!(connections > 3 * 3, "{connections} connections");
    for runner in runners {
        runner.stop().await;
    }
    world.stop().await;
}

/// A consumer takes the intake over while the old holder's socket still
/// lingers (it froze, and drops the socket only when it finds its lease
/// gone): the new session's subscriptions are refused 409, the old one
/// still having them. The new session must not sit there without them —
/// Twitch would close it unused (4003), and one subscribed to only some
/// kinds would miss the rest for good — but connect again until it has
/// them all, then take in what came meanwhile.
#[tokio::test]
async fn a_session_whose_subscriptions_another_still_holds_connects_again() {
    let mut world = World::new(|twitch| twitch.with(|s| s.subscribe_within_secs = 2)).await;
    world.start().await;
    let newcomer_stop = Shutdown::new();
    let newcomer = tokio::spawn(dynamo_twitch::eventsub::run(
        world.intake(),
        world.twitch.ws_url.clone(),
        newcomer_stop.clone(),
    ));
    eventually("the newcomer refused 409", WAIT, || async {
        (world.twitch.with(|s| s.conflicts) > 0).then_some(())
    })
    .await;
    // The old holder lets go.
    world.shutdown.trigger();
    if let Some(task) = world.intake.take() {
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }
    world.shutdown = newcomer_stop;
    world.intake = Some(newcomer);
    a_redemption_still_arrives(&world).await;
    eventually(
        "every connection past its subscribe deadline",
        WAIT,
        || async { (world.twitch.with(|s| s.sessions_before_deadline()) == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        world.twitch.with(|s| s.closed_unused),
        0,
        "no connection left without its subscriptions"
    );
    world.stop().await;
}
