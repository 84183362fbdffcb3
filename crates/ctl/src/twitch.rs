//! `dynamoctl twitch login` and `dynamoctl twitch setup`: signing dynamo in
//! to the streamer's channel and creating its channel-point rewards, with
//! the same TWITCH_* and PG* settings as dynamo-consumer.

use dynamo_runtime::{DatabaseSettings, Env};
use dynamo_store::GrantAccount;
use dynamo_twitch::{BOT_SCOPES, SCOPES, TwitchSettings};
use std::io::Write;

type Client = (
    dynamo_twitch::helix::Helix,
    TwitchSettings,
    dynamo_store::Store,
);

async fn helix() -> anyhow::Result<Client> {
    client(GrantAccount::Broadcaster).await
}

async fn client(account: GrantAccount) -> anyhow::Result<Client> {
    let env = Env::from_process()?;
    let settings = TwitchSettings::from_env(&env)?;
    let pool = dynamo_store::connect(&DatabaseSettings::from_env(&env)?).await?;
    let store = dynamo_store::Store::new(pool);
    let helix = dynamo_twitch::client(&settings, store.clone(), account)?;
    Ok((helix, settings, store))
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
    let (helix, _, _) = client(account).await?;
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

/// One reward per style (dynamo_twitch::rewards), and what became of each.
pub async fn setup(cost: Option<i64>) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let cost: u32 = match cost {
        Some(cost) => u32::try_from(cost).unwrap_or(0),
        None => env.parse("POINTS_COST", 200)?,
    };
    if cost < 1 {
        anyhow::bail!("a reward costs at least 1 point (--cost or POINTS_COST)");
    }
    let prompts = dynamo_pipeline::prompt::PromptTemplates::from_env(&env)?;
    let (_, settings, store) = helix().await?;
    let rewarder = dynamo_twitch::rewards::Rewarder::for_settings(&settings, store)?;
    let rewards = rewarder.setup(&prompts, cost).await?;
    let mut failed = 0;
    for made in &rewards {
        let (id, title) = match &made.reward {
            Some(reward) => (reward.id.as_str(), reward.title.as_str()),
            None => ("-", ""),
        };
        println!("{}\t{}\t{id}\t{title}", made.style, made.status.as_str());
        match (&made.error, &made.reward) {
            (Some(error), _) => {
                failed += 1;
                eprintln!("{}: {error}", made.style);
            }
            (None, Some(reward)) => eprintln!(
                "{} reward {:?} ({} points): {}",
                made.style,
                reward.title,
                reward.cost,
                if made.created {
                    "created"
                } else {
                    "adopted and updated (made by dynamo before)"
                }
            ),
            (None, None) => eprintln!("{}: disabled, no reward made", made.style),
        }
    }
    eprintln!(
        "The reward ids are stored with the styles; dynamo-consumer reads them (TWITCH_GHOST_REWARD_ID / TWITCH_FRIEND_REWARD_ID only override ghost's and friend's)."
    );
    if failed > 0 {
        anyhow::bail!("Twitch refused {failed} reward(s); see above");
    }
    Ok(())
}
