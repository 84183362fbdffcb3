//! `dynamoctl twitch login` and `dynamoctl twitch setup`: signing dynamo in
//! to the streamer's channel and creating its channel-point rewards, with
//! the same TWITCH_* and PG* settings as dynamo-consumer.

use dynamo_runtime::{DatabaseSettings, Env};
use dynamo_twitch::{SCOPES, TwitchSettings};
use std::io::Write;

async fn helix() -> anyhow::Result<dynamo_twitch::helix::Helix> {
    let env = Env::from_process()?;
    let settings = TwitchSettings::from_env(&env)?;
    let pool = dynamo_store::connect(&DatabaseSettings::from_env(&env)?).await?;
    Ok(dynamo_twitch::helix(
        &settings,
        dynamo_store::Store::new(pool),
    )?)
}

/// The device code flow: prints the code and where to enter it, waits, and
/// stores the tokens (encrypted) for dynamo-consumer.
pub async fn login() -> anyhow::Result<()> {
    let helix = helix().await?;
    let oauth = helix.tokens().oauth();
    let code = oauth.start_device(SCOPES).await?;
    println!(
        "To sign dynamo in, open {} and enter the code {} (within {} minutes).",
        code.verification_uri,
        code.user_code,
        code.expires_in / 60
    );
    std::io::stdout().flush()?;
    let tokens = oauth.wait_for_device(&code, SCOPES).await?;
    let who = helix.tokens().sign_in(&tokens).await?;
    println!("Signed in as {} (user id {}).", who.login, who.user_id);
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
    let helix = helix().await?;
    let rewards = dynamo_twitch::rewards::ensure_rewards(&helix, cost).await?;
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
