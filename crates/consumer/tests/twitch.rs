//! Twitch-native dynamo end to end: the real consumer (in-process) with
//! `LEDGER=twitch` and the EventSub intake, against the fake Twitch, real
//! PostgreSQL, RabbitMQ and moto, and the fake OpenAI. A redemption is
//! taken in, generated, alerted and then FULFILLED; a failure CANCELs
//! (refunds) it; a revoked sign-in holds requests until the next one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_store::RequestState;
use dynamo_testkit::twitch::BROADCASTER_ID;
use dynamo_testkit::{ImageBehavior, eventually};
use dynamo_twitch::SCOPES;
use dynamo_twitch::intake::{Intake, request_id_for};
use std::time::Duration;

mod support;

use support::twitch::{Channel, sign_in, stop};

const WAIT: Duration = Duration::from_secs(60);

/// The consumer's settings with the Twitch intake on or off.
fn intake(on: bool) -> [(&'static str, &'static str); 1] {
    [("TWITCH_INTAKE", if on { "true" } else { "false" })]
}

/// Takes in what is UNFULFILLED without a socket (the intake's catch-up).
async fn catch_up(channel: &Channel) -> usize {
    let intake = Intake {
        helix: channel.helix.clone(),
        store: channel.store.clone(),
        publisher: channel.world.broker.publisher.clone(),
        requests_exchange: channel.world.broker.topology.requests_exchange.clone(),
        rewards: dynamo_twitch::book::RewardBook::overrides_only(channel.rewards.clone()),
    };
    intake.catch_up(BROADCASTER_ID).await.unwrap()
}

async fn status_becomes(channel: &Channel, redemption: &str, status: &str) {
    eventually(&format!("redemption {status}"), WAIT, || async {
        (channel.twitch.status_of(redemption).as_deref() == Some(status)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_redemption_is_generated_alerted_and_then_fulfilled_once() {
    let channel = Channel::new().await;
    let (shutdown, task) = channel.start(&intake(true));
    eventually("subscribed", WAIT, || async {
        (channel
            .twitch
            .enabled_subscriptions_of(dynamo_testkit::twitch::REDEMPTION_TYPE)
            == 2)
            .then_some(())
    })
    .await;
    let id = channel
        .twitch
        .redeem(channel.ghost(), "90790024", "WasabiMilkshake", "a seal");
    let alert = channel
        .world
        .broker
        .next(&channel.alerts, WAIT)
        .await
        .expect("an alert");
    assert_eq!(alert.body["payload"]["details"]["description"], "a seal");
    assert_eq!(
        alert.message_id,
        Some(request_id_for(&id).to_string()),
        "the request is the redemption's"
    );
    status_becomes(&channel, &id, "FULFILLED").await;
    eventually("succeeded", WAIT, || async {
        (channel.state_of(&id).await == Some(RequestState::Succeeded)).then_some(())
    })
    .await;
    let updates = channel.twitch.with(|s| s.updates.clone());
    assert_eq!(
        updates,
        vec![(id.clone(), "FULFILLED".to_owned())],
        "settled once"
    );
    stop(shutdown, task).await;
}

#[tokio::test]
async fn a_failed_request_cancels_its_redemption_which_refunds_it() {
    let channel = Channel::new().await;
    channel
        .world
        .fakes
        .with(|s| s.image_script.push_back(ImageBehavior::ContentPolicy));
    let id = channel
        .twitch
        .redeem(channel.ghost(), "1", "a", "something refused");
    assert_eq!(catch_up(&channel).await, 1);
    let (shutdown, task) = channel.start(&intake(false));
    status_becomes(&channel, &id, "CANCELED").await;
    eventually("rejected", WAIT, || async {
        (channel.state_of(&id).await == Some(RequestState::Rejected)).then_some(())
    })
    .await;
    assert_eq!(
        channel.twitch.with(|s| s.updates.clone()),
        vec![(id.clone(), "CANCELED".to_owned())]
    );
    stop(shutdown, task).await;
}

#[tokio::test]
async fn a_redemption_fulfilled_by_other_tools_counts_as_settled() {
    let channel = Channel::new().await;
    let id = channel.twitch.redeem(channel.ghost(), "1", "a", "a seal");
    assert_eq!(catch_up(&channel).await, 1);
    channel.twitch.settle_elsewhere(&id, "FULFILLED");
    let (shutdown, task) = channel.start(&intake(false));
    eventually("succeeded", WAIT, || async {
        (channel.state_of(&id).await == Some(RequestState::Succeeded)).then_some(())
    })
    .await;
    let record = channel
        .store
        .redemption_for_request(request_id_for(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.settled_status.as_deref(), Some("FULFILLED"));
    assert!(
        channel.twitch.with(|s| s.updates.is_empty()),
        "not settled twice"
    );
    stop(shutdown, task).await;
}

#[tokio::test]
async fn a_revoked_grant_holds_requests_and_says_so_until_the_streamer_signs_in_again() {
    let channel = Channel::new().await;
    let id = channel.twitch.redeem(channel.ghost(), "1", "a", "a seal");
    assert_eq!(catch_up(&channel).await, 1);
    channel.twitch.revoke();
    let (shutdown, task) = channel.start(&intake(false));
    let hold = eventually("a hold on twitch", WAIT, || async {
        let holds = channel.store.holds().await.unwrap();
        holds.into_iter().find(|h| h.service == "twitch")
    })
    .await;
    assert!(
        hold.reason.contains("dynamoctl twitch login"),
        "{}",
        hold.reason
    );
    assert_eq!(
        channel.state_of(&id).await,
        Some(RequestState::Received),
        "held, not failed"
    );
    assert!(
        channel.world.fakes.with(|s| s.image_calls.is_empty()),
        "nothing paid for while held"
    );
    assert_eq!(
        channel.twitch.status_of(&id).as_deref(),
        Some("UNFULFILLED")
    );

    sign_in(&channel.helix, SCOPES).await;
    status_becomes(&channel, &id, "FULFILLED").await;
    assert!(
        channel
            .world
            .broker
            .next(&channel.alerts, WAIT)
            .await
            .is_some(),
        "the held request was alerted"
    );
    stop(shutdown, task).await;
}

/// `TWITCH_INTAKE=true` on two consumer processes (issue 29): exactly one
/// holds the EventSub session; killed with -9 mid-burst, the other takes the
/// intake over within seconds, lists what was redeemed while nobody
/// listened, and every redemption is settled exactly once — counted in the
/// fake Twitch's own records.
#[tokio::test]
async fn the_intake_moves_to_another_consumer_when_its_holder_is_killed_mid_burst() {
    const BINARY: &str = env!("CARGO_BIN_EXE_dynamo-consumer");
    const BURST: usize = 10;
    let channel = Channel::new().await;
    channel
        .world
        .fakes
        .with(|s| s.image_delay = Some(Duration::from_millis(150)));
    let env = channel.env(&intake(true));
    let spawn = || {
        dynamo_testkit::Running::spawn(
            dynamo_testkit::command(BINARY, &env)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )
    };
    let mut first = spawn();
    eventually("the first consumer to subscribe", WAIT, || async {
        (channel
            .twitch
            .enabled_subscriptions_of(dynamo_testkit::twitch::REDEMPTION_TYPE)
            == 2)
            .then_some(())
    })
    .await;
    let mut second = spawn();
    // Both consume before the burst: on a loaded machine the first could
    // otherwise finish it before the second has started.
    let requests = &channel.world.broker.topology.requests_queue;
    eventually("both consumers to consume", WAIT, || async {
        (channel.world.broker.consumers(requests).await == 2).then_some(())
    })
    .await;

    // `BURST` viewers from `first_viewer` on redeem once each.
    let burst = |first_viewer: usize| -> Vec<String> {
        (first_viewer..first_viewer + BURST)
            .map(|viewer| {
                let subject = format!("seal number {viewer}");
                channel
                    .twitch
                    .redeem(channel.ghost(), &viewer.to_string(), "viewer", &subject)
            })
            .collect()
    };
    let mut redeemed = burst(100);
    // Both work on the burst; only the holder listens to Twitch.
    eventually("the second consumer to work", WAIT, || async {
        channel
            .world
            .database
            .holds_lease(second.id())
            .await
            .then_some(())
    })
    .await;
    assert_eq!(
        channel.twitch.with(|s| s.connections),
        1,
        "one EventSub socket"
    );
    let (holder, fence) = channel.store.intake_holder().await.unwrap().unwrap();
    assert!(holder.contains(&format!(":{}:", first.id())), "{holder}");
    first
        .kill_9_while_working(&channel.world.database, WAIT)
        .await;
    // Redeemed while nobody listens: no notification reaches anyone.
    redeemed.extend(burst(200));

    let (new_holder, new_fence) = eventually(
        "the second consumer to take the intake over",
        WAIT,
        || async {
            let (holder, fence) = channel.store.intake_holder().await.unwrap()?;
            holder
                .contains(&format!(":{}:", second.id()))
                .then_some((holder, fence))
        },
    )
    .await;
    assert!(
        new_fence > fence,
        "{new_holder}: fence {new_fence} after {fence}"
    );
    for id in &redeemed {
        status_becomes(&channel, id, "FULFILLED").await;
    }
    let updates = channel.twitch.with(|s| s.updates.clone());
    let mut settled: Vec<&String> = updates.iter().map(|(id, _)| id).collect();
    settled.sort();
    settled.dedup();
    assert_eq!(
        settled.len(),
        2 * BURST,
        "every redemption settled: {updates:?}"
    );
    assert_eq!(updates.len(), 2 * BURST, "each once: {updates:?}");
    assert!(
        updates.iter().all(|(_, status)| status == "FULFILLED"),
        "{updates:?}"
    );
    // The holder may reconnect; what matters is that only it is connected.
    let (open, connections, unused) = channel
        .twitch
        .with(|s| (s.sessions_open(), s.connections, s.closed_unused));
    assert_eq!(
        open, 1,
        "only the holder's socket: {connections} connections, {unused} closed unused"
    );
    assert!(second.is_running());
}

/// A redemption the content rules refuse ends before any debit (issue 29):
/// it is CANCELED all the same, so the viewer gets the points back.
#[tokio::test]
async fn a_redemption_the_content_rules_refuse_is_cancelled() {
    let channel = Channel::new().await;
    let phrase = dynamo_wire::BlockedPhrase::parse("walrus").unwrap();
    channel
        .store
        .block_phrase(&phrase.key(), phrase.as_str())
        .await
        .unwrap();
    let id = channel
        .twitch
        .redeem(channel.ghost(), "1", "a", "a W4LRUS on ice");
    assert_eq!(catch_up(&channel).await, 1);
    let (shutdown, task) = channel.start(&intake(false));
    status_becomes(&channel, &id, "CANCELED").await;
    eventually("rejected", WAIT, || async {
        (channel.state_of(&id).await == Some(RequestState::Rejected)).then_some(())
    })
    .await;
    assert_eq!(
        channel.twitch.with(|s| s.updates.clone()),
        vec![(id.clone(), "CANCELED".to_owned())]
    );
    assert!(channel.world.fakes.with(|s| s.image_calls.is_empty()));
    stop(shutdown, task).await;
}
