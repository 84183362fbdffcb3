//! `dynamoctl twitch login` and `dynamoctl twitch setup`: signing dynamo in
//! to the streamer's channel and creating its channel-point rewards, with
//! the same TWITCH_* and PG* settings as dynamo-consumer.

use dynamo_runtime::{DatabaseSettings, Env};
use dynamo_store::GrantAccount;
use dynamo_twitch::{BOT_SCOPES, SCOPES, TwitchSettings};
use std::io::Write;

async fn helix() -> anyhow::Result<(dynamo_twitch::helix::Helix, TwitchSettings)> {
    client(GrantAccount::Broadcaster).await
}

async fn client(
    account: GrantAccount,
) -> anyhow::Result<(dynamo_twitch::helix::Helix, TwitchSettings)> {
    let env = Env::from_process()?;
    let settings = TwitchSettings::from_env(&env)?;
    let pool = dynamo_store::connect(&DatabaseSettings::from_env(&env)?).await?;
    let helix = dynamo_twitch::client(&settings, dynamo_store::Store::new(pool), account)?;
    Ok((helix, settings))
}

/// The device code flow: prints the code and where to enter it, waits, and
/// stores the tokens (encrypted) for dynamo-consumer: the streamer's, or
/// with `bot` the chat bot's (sign in on the bot's account).
pub async fn login(bot: bool) -> anyhow::Result<()> {
    let (account, scopes) = if bot {
        (GrantAccount::Bot, BOT_SCOPES)
    } else {
        (GrantAccount::Broadcaster, SCOPES)
    };
    let (helix, _) = client(account).await?;
    let oauth = helix.tokens().oauth();
    let code = oauth.start_device(scopes).await?;
    println!(
        "To sign dynamo in, open {} and enter the code {} (within {} minutes).",
        code.verification_uri,
        code.user_code,
        code.expires_in / 60
    );
    std::io::stdout().flush()?;
    let tokens = oauth.wait_for_device(&code, scopes).await?;
    let who = helix.tokens().sign_in(&tokens).await?;
    if bot {
        println!(
            "The chat bot is signed in as {} (user id {}); set TWITCH_CHAT_AS=bot.",
            who.login, who.user_id
        );
    } else {
        println!("Signed in as {} (user id {}).", who.login, who.user_id);
    }
    Ok(())
}

/// Creates (or adopts) one reward per style and prints the settings naming them.
pub async fn setup(cost: Option<i64>) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let cost = match cost {
        Some(cost) => cost,
        None => env.parse("POINTS_COST", 200)?,
    };
    if cost < 1 {
        anyhow::bail!("a reward costs at least 1 point (--cost or POINTS_COST)");
    }
    let (helix, settings) = helix().await?;
    let rewards = dynamo_twitch::rewards::ensure_rewards(&helix, cost, &settings.limits).await?;
    for reward in &rewards {
        eprintln!(
            "{} reward {:?} ({} points): {}",
            reward.style,
            reward.reward.title,
            reward.reward.cost,
            if reward.created {
                "created"
            } else {
                "adopted (made by dynamo before)"
            }
        );
    }
    eprintln!("Put these in dynamo-consumer's settings:");
    for reward in &rewards {
        println!(
            "{}={}",
            dynamo_twitch::RewardIds::variable(reward.style),
            reward.reward.id
        );
    }
    Ok(())
}
