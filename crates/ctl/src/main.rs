//! `dynamoctl`: small operator commands next to dynamo-consumer, using the
//! same `RMQ_*` settings. What each command does is written once, in its
//! `--help` (the doc comments of [`Command`]).

use clap::{Parser, Subcommand};
use dynamo_broker::{Broker, Connected, Declare, Envelope, Topology, headers};
use dynamo_runtime::{BrokerSettings, Env};
use dynamo_wire::GenerationRequest;
use std::io::Read;
use std::process::ExitCode;

mod styles;
mod twitch;

/// Operator commands for dynamo: publish requests, watch what dynamo
/// publishes, look at and requeue parked (dead-lettered) messages.
///
/// Talks to RabbitMQ with the same RMQ_* settings as dynamo-consumer.
#[derive(Parser)]
#[command(version, after_help = settings_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish generation requests (JSON files) to the requests exchange, each
    /// with a fresh message id, as the Golden VCR pipeline would.
    ///
    /// Each file is validated first, so a typo is reported here instead of
    /// being dead-lettered. Prints "<request id> TAB <file>" per request.
    #[command(after_help = "Examples:
  dynamoctl publish crates/wire/tests/vectors/generation-requests/*.json
  dynamoctl publish - < request.json
  dynamoctl publish fixed.json      # send a corrected dead letter again
")]
    Publish {
        /// JSON generation requests; `-` reads one from stdin.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
    /// Print every alert and result dynamo publishes, as an alerts service
    /// would see them ("<exchange> TAB <json>" per message), until Ctrl-C.
    ///
    /// Uses a queue of its own, deleted when it stops. Alerts need a bound
    /// queue to count as shown, so this also stands in for the alerts service.
    #[command(after_help = "Examples:
  dynamoctl watch
  dynamoctl watch | grep generation-results
")]
    Watch,
    /// List the parked messages with their reasons ("<message id> TAB
    /// <reason> TAB <body>"), leaving them parked; --requeue sends them all
    /// back to the requests exchange, keeping their message ids.
    #[command(after_help = "Examples:
  dynamoctl dead-letters              # look first
  dynamoctl dead-letters --requeue    # after fixing the cause
")]
    DeadLetters {
        /// Send every parked message back to the requests exchange.
        #[arg(long)]
        requeue: bool,
    },
    /// Twitch-native dynamo: sign in to the channel, create the rewards.
    #[command(subcommand)]
    Twitch(TwitchCommand),
    /// The styles as a file (styles.toml, README "Styles"): export them,
    /// apply a file (GitOps, a Kubernetes ConfigMap).
    #[command(subcommand)]
    Styles(StylesCommand),
}

#[derive(Subcommand)]
enum StylesCommand {
    /// Print every style in the database as styles.toml, by id; fields at
    /// their default are left out.
    #[command(after_help = "Examples:
  dynamoctl styles export > styles.toml
")]
    Export,
    /// Create or update each style of a styles.toml in one transaction, and
    /// print what changed, field by field. Idempotent: a second apply
    /// changes nothing and says so. Styles the file leaves out are left
    /// alone (with --prune: disabled). Any problem in the file (named by
    /// line, style and field, with the API's rules) writes nothing and
    /// exits 1. A seeded style (ghost, friend) the file changes stops
    /// following PROMPT_* and POINTS_COST; one it leaves as it is keeps
    /// following them.
    #[command(after_help = "Examples:
  dynamoctl styles apply --dry-run styles.toml   # print the diff, write nothing
  dynamoctl styles apply styles.toml
  kubectl get configmap dynamo-styles -o jsonpath='{.data.styles\\.toml}' | dynamoctl styles apply -
")]
    Apply {
        /// The styles.toml; `-` reads it from stdin.
        #[arg(value_name = "FILE")]
        file: String,
        /// Print what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Disable the enabled styles the file leaves out.
        #[arg(long)]
        prune: bool,
    },
}

#[derive(Subcommand)]
enum TwitchCommand {
    /// Sign dynamo in to the streamer's channel with the device code flow:
    /// prints a code and a URL, waits until the code is entered, and stores
    /// the tokens (encrypted with TWITCH_TOKEN_KEY) in PostgreSQL.
    /// With --bot: sign in the bot account dynamo writes in chat as
    /// (TWITCH_CHAT_AS=bot), with scope user:write:chat only.
    #[command(after_help = "Examples:\n  dynamoctl twitch login\n  dynamoctl twitch login --bot")]
    Login {
        /// Sign in the chat bot account instead of the streamer.
        #[arg(long)]
        bot: bool,
    },
    /// One channel-point reward per enabled style, from its reward settings
    /// (title, prompt, cost, cooldown, limits; TWITCH_REWARD_* for a limit
    /// it leaves unset): created, or adopted and updated when dynamo made it
    /// before; the rewards of disabled styles paused. The reward ids are
    /// stored with the styles; prints "style TAB status TAB reward id TAB
    /// title" per style. Idempotent.
    #[command(after_help = "Example:\n  dynamoctl twitch setup")]
    Setup {
        /// Points ghost's and friend's rewards cost while they follow the
        /// settings, as POINTS_COST (default: POINTS_COST, else 200).
        #[arg(long)]
        cost: Option<i64>,
    },
}

/// The settings part of `--help`: RabbitMQ, and for `twitch` PostgreSQL
/// and the Twitch settings.
fn settings_help() -> String {
    dynamo_runtime::help::settings_help(&["RabbitMQ", "PostgreSQL", "Twitch"], &["POINTS_COST"])
}

#[tokio::main]
async fn main() -> ExitCode {
    // Wrong arguments print the usage and exit 2; --help and --version exit 0.
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Publish { files } => publish(&files).await,
        Command::Watch => watch().await,
        Command::DeadLetters { requeue } => dead_letters(requeue).await,
        Command::Twitch(TwitchCommand::Login { bot }) => twitch::login(bot).await,
        Command::Twitch(TwitchCommand::Setup { cost }) => twitch::setup(cost).await,
        Command::Styles(StylesCommand::Export) => styles::export().await,
        Command::Styles(StylesCommand::Apply {
            file,
            dry_run,
            prune,
        }) => styles::apply(&file, dry_run, prune).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dynamoctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long dynamoctl waits for RabbitMQ before giving up.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn connect() -> anyhow::Result<(Broker, Connected, Topology)> {
    let env = Env::from_process()?;
    let topology = Topology::from_env(&env)?;
    let broker = Broker::start(
        BrokerSettings::from_env(&env)?,
        "dynamoctl",
        topology.clone(),
        Declare::Exchanges,
    );
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, broker.connected())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot reach RabbitMQ within {CONNECT_TIMEOUT:?}; check RMQ_HOST, RMQ_PORT, RMQ_USER and RMQ_PASSWORD"
            )
        })?;
    Ok((broker, connected, topology))
}

async fn publish(files: &[String]) -> anyhow::Result<()> {
    let (broker, _connected, topology) = connect().await?;
    let publisher = broker.publisher();
    for file in files {
        let mut body = Vec::new();
        if file == "-" {
            std::io::stdin().read_to_end(&mut body)?;
        } else {
            body = std::fs::read(file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        }
        GenerationRequest::from_slice(&body).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        let id = uuid::Uuid::new_v4();
        let envelope = Envelope {
            message_id: Some(id),
            mandatory: true,
            headers: Vec::new(),
        };
        publisher
            .publish_json(&topology.requests_exchange, &body, envelope)
            .await
            .map_err(|e| {
                anyhow::anyhow!("{file}: {e} (start dynamo-consumer once so its queue exists)")
            })?;
        println!("{id}\t{file}");
    }
    broker.close().await;
    Ok(())
}

async fn watch() -> anyhow::Result<()> {
    let (broker, connected, topology) = connect().await?;
    let mut deliveries = connected
        .watch(&[&topology.alerts_exchange, &topology.results_exchange])
        .await?;
    eprintln!(
        "watching {} and {} (Ctrl-C to stop)",
        topology.alerts_exchange, topology.results_exchange
    );
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            next = deliveries.next() => match next {
                Ok(delivery) => {
                    println!("{}\t{}", delivery.exchange, String::from_utf8_lossy(&delivery.body));
                    delivery.ack().await?;
                }
                Err(error) => break Err(error.into()),
            },
        }
    };
    broker.close().await;
    result
}

async fn dead_letters(requeue: bool) -> anyhow::Result<()> {
    let (broker, connected, topology) = connect().await?;
    let publisher = broker.publisher();
    let parked = connected.browse(&topology.dead_letter_queue).await?;
    let mut listed = 0;
    while let Some(delivery) = parked.next().await? {
        let reason = delivery
            .header(headers::REASON)
            .or_else(|| delivery.header("x-first-death-reason"))
            .unwrap_or("(no reason recorded)");
        println!(
            "{}\t{reason}\t{}",
            delivery.message_id.as_deref().unwrap_or("-"),
            String::from_utf8_lossy(&delivery.body)
        );
        listed += 1;
        if requeue {
            let envelope = Envelope {
                message_id: delivery.message_uuid(),
                mandatory: true,
                headers: Vec::new(),
            };
            publisher
                .publish_json(&topology.requests_exchange, &delivery.body, envelope)
                .await?;
            delivery.ack().await?;
        }
    }
    parked.close().await?;
    broker.close().await;
    if requeue {
        eprintln!(
            "requeued {listed} parked messages to {}",
            topology.requests_exchange
        );
    } else {
        eprintln!("{listed} parked messages in {}", topology.dead_letter_queue);
    }
    Ok(())
}
