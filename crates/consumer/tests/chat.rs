//! Issue 29 on the fake Twitch, with the real consumer (in-process),
//! PostgreSQL, RabbitMQ, moto and the fake OpenAI: viewers told in chat,
//! paced and in order; a moderator's cancel withdrawing a request before
//! air; rewards paused while the fleet holds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_runtime::Shutdown;
use dynamo_store::{GrantAccount, RateLimiter, RequestState};
use dynamo_testkit::eventually;
use dynamo_twitch::BOT_SCOPES;
use dynamo_twitch::chat::templates::Templates;
use dynamo_twitch::helix::RewardLimits;
use dynamo_twitch::intake::request_id_for;
use std::sync::Arc;
use std::time::Duration;

mod support;

use support::twitch::{Channel, sign_in, stop, told};

const WAIT: Duration = Duration::from_secs(90);

/// A burst from several viewers, told by a bot paced under a small chat
/// limit (5 per 2 s on the fake, so pacing matters within the test): every
/// viewer hears exactly their messages — queued, then on air, in the order
/// they redeemed (one request of a viewer at a time) — and the refusal of
/// input that cannot be a request, without the input; nothing is dropped.
#[tokio::test]
async fn a_burst_is_told_to_every_viewer_in_order_paced_and_never_dropped() {
    let channel = Channel::new().await;
    channel.twitch.with(|s| {
        s.chat_window = Duration::from_secs(2);
        s.chat_limit = 5;
        s.signing_in = ("9001".to_owned(), "dynamobot".to_owned());
    });
    let bot =
        dynamo_twitch::client(&channel.settings, channel.store.clone(), GrantAccount::Bot).unwrap();
    sign_in(&bot, BOT_SCOPES).await;

    let counted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counter = counted.clone();
    let chat = dynamo_twitch::chat::Chat {
        teller: dynamo_twitch::chat::teller::Teller {
            store: channel.store.clone(),
            templates: Templates {
                queued: "@{viewer} queued #{position}".to_owned(),
                refused: "@{viewer} refused: {reason}".to_owned(),
                on_air: "@{viewer} on air: {subject}".to_owned(),
                ..Templates::default()
            },
        },
        sender: dynamo_twitch::chat::sender::Sender {
            store: channel.store.clone(),
            voice: bot,
            channel: channel.helix.clone(),
            limiter: RateLimiter::new(
                channel.store.pool().clone(),
                "twitch-chat",
                5,
                Duration::from_secs(2),
                Duration::from_secs(10),
            ),
            count: Arc::new(move |c| counter.lock().unwrap().push(c.as_str())),
        },
    };
    let chat_stop = Shutdown::new();
    let chatting = tokio::spawn(dynamo_twitch::chat::run(Arc::new(chat), chat_stop.clone()));
    let (shutdown, task) =
        channel.start(&[("TWITCH_CHAT", "false"), ("VIEWER_MAX_IN_FLIGHT", "1")]);
    channel.subscribed().await;

    const VIEWERS: usize = 4;
    const EACH: usize = 4;
    let too_long = "a".repeat(130);
    for k in 0..EACH {
        for v in 0..VIEWERS {
            channel.twitch.redeem(
                channel.ghost(),
                &format!("{}", 100 + v),
                &format!("Viewer{v}"),
                &format!("seal {v}-{k}"),
            );
        }
    }
    for v in 0..2 {
        channel.twitch.redeem(
            channel.ghost(),
            &format!("{}", 100 + v),
            &format!("Viewer{v}"),
            &too_long,
        );
    }
    let expected = VIEWERS * EACH * 2 + 2;
    eventually("every message posted", WAIT, || async {
        (channel.twitch.chat_posted().len() >= expected).then_some(())
    })
    .await;

    let lines = channel.twitch.with(|s| s.chat.clone());
    assert!(
        lines.iter().all(|line| line.is_sent),
        "nothing dropped: {:?}",
        lines.iter().filter(|l| !l.is_sent).collect::<Vec<_>>()
    );
    assert_eq!(lines.len(), expected, "exactly the messages due, once each");
    assert!(
        lines.iter().all(|line| line.sender_id == "9001"),
        "sent as the bot"
    );
    for v in 0..VIEWERS {
        let said = told(&channel.twitch, &format!("viewer{v}"));
        let on_air: Vec<&String> = said.iter().filter(|m| m.starts_with("on air")).collect();
        let wanted: Vec<String> = (0..EACH).map(|k| format!("on air: seal {v}-{k}")).collect();
        assert_eq!(
            on_air,
            wanted.iter().collect::<Vec<_>>(),
            "viewer{v}'s requests in order: {said:?}"
        );
        // Each request's "queued" comes before its "on air".
        for (k, wanted) in wanted.iter().enumerate() {
            let aired = said.iter().position(|m| m == wanted).unwrap();
            let queued_before = said[..aired]
                .iter()
                .filter(|m| m.starts_with("queued #"))
                .count();
            assert!(
                queued_before > k,
                "viewer{v}: request {k} queued before aired: {said:?}"
            );
        }
        let refused: Vec<&String> = said.iter().filter(|m| m.starts_with("refused")).collect();
        assert_eq!(refused.len(), usize::from(v < 2), "viewer{v}: {said:?}");
        assert!(
            refused.iter().all(|m| !m.contains(&too_long)),
            "never the input itself"
        );
    }
    // The sender counts a message once Twitch has answered its post: the
    // last count may come just after the fake recorded the last post.
    let counted = eventually("every post counted", WAIT, || async {
        let counted = counted.lock().unwrap().clone();
        (counted.len() >= expected).then_some(counted)
    })
    .await;
    assert_eq!(counted.iter().filter(|c| **c == "sent").count(), expected);
    assert!(counted.iter().all(|c| *c == "sent"), "{counted:?}");

    chat_stop.trigger();
    chatting.await.unwrap();
    stop(shutdown, task).await;
}

/// With approval on, a moderator cancels a redemption in Twitch's reward
/// queue while its image waits for the streamer: the request is withdrawn
/// (rejected, never alerted), dynamo does not cancel it a second time, and
/// the viewer is told through the consumer's own chat (as the streamer).
#[tokio::test]
async fn a_moderators_cancel_withdraws_the_request_before_air_with_no_second_refund() {
    let channel = Channel::new().await;
    let (shutdown, task) = channel.start(&[("APPROVAL", "manual"), ("APPROVAL_TIMEOUT", "10m")]);
    channel.subscribed().await;
    let id = channel
        .twitch
        .redeem(channel.ghost(), "4242", "Mallory", "a seal");
    eventually("awaiting approval", WAIT, || async {
        (channel.state_of(&id).await == Some(RequestState::AwaitingApproval)).then_some(())
    })
    .await;
    assert!(channel.twitch.moderator_settles(&id, "CANCELED"));
    eventually("withdrawn", WAIT, || async {
        (channel.state_of(&id).await == Some(RequestState::Rejected)).then_some(())
    })
    .await;
    let record = channel.store.get(request_id_for(&id)).await.unwrap();
    assert!(record.alerted_at.is_none(), "never aired");
    assert_eq!(
        channel.twitch.with(|s| s.updates.clone()),
        Vec::<(String, String)>::new(),
        "dynamo never cancelled it a second time"
    );
    assert_eq!(channel.twitch.status_of(&id).as_deref(), Some("CANCELED"));
    eventually("the viewer told", WAIT, || async {
        let said = told(&channel.twitch, "mallory");
        (said.len() == 2).then_some(said)
    })
    .await;
    let said = told(&channel.twitch, "mallory");
    assert!(
        said[0].starts_with("your image is in the queue"),
        "{said:?}"
    );
    assert!(said[1].contains("cancelled on Twitch"), "{said:?}");
    stop(shutdown, task).await;
}

/// With the public gallery on, the "on air" reply links to the image that
/// just aired (`{gallery_url}`), and that link is the gallery's page of it:
/// a viewer who follows it sees that image.
#[tokio::test]
async fn the_on_air_reply_links_the_aired_image_in_the_public_gallery() {
    let channel = Channel::new().await;
    let (shutdown, task) = channel.start(&[
        ("TWITCH_CHAT_ON_AIR", "@{viewer} on air: {gallery_url}"),
        ("PUBLIC_GALLERY", "true"),
        ("PUBLIC_BASE_URL", "https://dynamo.example/"),
    ]);
    channel.subscribed().await;
    let redemption = channel
        .twitch
        .redeem(channel.ghost(), "4243", "Sealfan", "a seal");
    let said = eventually("the viewer told it is on air", WAIT, || async {
        let said = told(&channel.twitch, "sealfan");
        said.iter().any(|m| m.starts_with("on air")).then_some(said)
    })
    .await;
    let link = said
        .iter()
        .find_map(|m| m.strip_prefix("on air: "))
        .unwrap();
    let public_id = link
        .strip_prefix("https://dynamo.example/gallery/")
        .unwrap_or_else(|| panic!("a gallery link: {said:?}"));
    let image = channel.store.gallery_image(public_id).await.unwrap();
    let image = image.unwrap_or_else(|| panic!("{public_id} is in the gallery"));
    let stored = channel
        .store
        .images(request_id_for(&redemption))
        .await
        .unwrap();
    assert_eq!(image.image_url, stored[0].url, "the image that aired");
    assert_eq!(image.description, "a seal");
    stop(shutdown, task).await;
}

/// While the fleet holds (OpenAI out of credit), dynamo's rewards are
/// paused on Twitch, and reopened when the hold ends; with
/// TWITCH_PAUSE_WHEN_OFFLINE, also while the channel is offline.
#[tokio::test]
async fn rewards_pause_while_the_fleet_holds_and_while_offline() {
    let channel = Channel::new().await;
    let (shutdown, task) = channel.start(&[("TWITCH_PAUSE_WHEN_OFFLINE", "true")]);
    channel.subscribed().await;
    let rewards: Vec<String> = channel
        .rewards
        .configured()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let paused = |want: bool| {
        let rewards = rewards.clone();
        let twitch = channel.twitch.clone();
        async move {
            eventually(&format!("rewards paused: {want}"), WAIT, || async {
                rewards
                    .iter()
                    .all(|id| twitch.reward(id).unwrap().is_paused == want)
                    .then_some(())
            })
            .await;
        }
    };
    channel
        .store
        .hold("openai", "out of credit", Duration::from_secs(60))
        .await
        .unwrap();
    paused(true).await;
    channel.store.release_hold("openai").await.unwrap();
    paused(false).await;

    channel.twitch.set_live(false);
    paused(true).await;
    channel.twitch.set_live(true);
    paused(false).await;
    stop(shutdown, task).await;
}

/// `setup` sets the cooldown and limits from the settings on rewards it
/// creates and on those it adopts, and the prompt states the input rules.
#[tokio::test]
async fn setup_sets_cooldown_limits_and_the_input_rules() {
    let channel = Channel::new().await;
    let limits = RewardLimits {
        global_cooldown_seconds: Some(30),
        max_per_stream: Some(50),
        max_per_user_per_stream: Some(5),
    };
    let adopted = dynamo_twitch::rewards::Rewarder {
        defaults: limits,
        ..dynamo_twitch::rewards::Rewarder::for_settings(&channel.settings, channel.store.clone())
            .unwrap()
    }
    .setup(&Default::default(), 200)
    .await
    .unwrap();
    assert_eq!(adopted.len(), 2, "ghost and friend");
    for made in adopted {
        let reward = channel.twitch.reward(&made.reward.unwrap().id).unwrap();
        assert_eq!(reward.global_cooldown, Some(30));
        assert_eq!(reward.max_per_stream, Some(50));
        assert_eq!(reward.max_per_user_per_stream, Some(5));
        assert!(
            reward.prompt.contains("120 characters"),
            "{}",
            reward.prompt
        );
    }
}
