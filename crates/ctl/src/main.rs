//! `dynamoctl`: small operator commands next to dynamo-consumer, using the
//! same `RMQ_*` settings. What each command does is written once, in its
//! `--help` (the doc comments of [`Command`]).

use clap::{Parser, Subcommand};
use dynamo_broker::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions,
};
use dynamo_broker::lapin::types::FieldTable;
use dynamo_broker::{Envelope, Publisher, Topology};
use dynamo_runtime::{BrokerSettings, Env};
use dynamo_wire::GenerationRequest;
use futures::StreamExt;
use std::io::Read;
use std::process::ExitCode;

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
}

/// The settings part of `--help`: dynamoctl only talks to RabbitMQ.
fn settings_help() -> String {
    dynamo_runtime::help::settings_help(&["RabbitMQ"], &[])
}

#[tokio::main]
async fn main() -> ExitCode {
    // Wrong arguments print the usage and exit 2; --help and --version exit 0.
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Publish { files } => publish(&files).await,
        Command::Watch => watch().await,
        Command::DeadLetters { requeue } => dead_letters(requeue).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dynamoctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn connect() -> anyhow::Result<(dynamo_broker::lapin::Connection, Topology)> {
    let env = Env::from_process()?;
    let topology = Topology::from_env(&env)?;
    let connection = dynamo_broker::connect(&BrokerSettings::from_env(&env)?, "dynamoctl").await?;
    topology
        .declare_exchanges(&connection.create_channel().await?)
        .await?;
    Ok((connection, topology))
}

async fn publish(files: &[String]) -> anyhow::Result<()> {
    let (connection, topology) = connect().await?;
    let publisher = Publisher::open(&connection).await?;
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
    Ok(())
}

async fn watch() -> anyhow::Result<()> {
    let (connection, topology) = connect().await?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    for exchange in [&topology.alerts_exchange, &topology.results_exchange] {
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    eprintln!(
        "watching {} and {} (Ctrl-C to stop)",
        topology.alerts_exchange, topology.results_exchange
    );
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "dynamoctl-watch".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    println!("{}\t{}", delivery.exchange, String::from_utf8_lossy(&delivery.data));
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
        }
    }
}

async fn dead_letters(requeue: bool) -> anyhow::Result<()> {
    let (connection, topology) = connect().await?;
    let channel = connection.create_channel().await?;
    let publisher = Publisher::open(&connection).await?;
    // Messages taken without acknowledging stay reserved for this channel, so
    // the loop sees each once; closing the channel hands back the unacknowledged.
    let mut listed = 0;
    while let Some(message) = channel
        .basic_get(
            topology.dead_letter_queue.as_str().into(),
            dynamo_broker::lapin::options::BasicGetOptions::default(),
        )
        .await?
    {
        let delivery = message.delivery;
        let properties = &delivery.properties;
        let reason = header(properties, dynamo_broker::REASON_HEADER)
            .or_else(|| header(properties, "x-first-death-reason"))
            .unwrap_or_else(|| "(no reason recorded)".to_owned());
        let message_id = properties.message_id().as_ref().map(|id| id.to_string());
        println!(
            "{}\t{reason}\t{}",
            message_id.as_deref().unwrap_or("-"),
            String::from_utf8_lossy(&delivery.data)
        );
        listed += 1;
        if requeue {
            let envelope = Envelope {
                message_id: message_id.as_deref().and_then(|id| id.parse().ok()),
                mandatory: true,
                headers: Vec::new(),
            };
            publisher
                .publish_json(&topology.requests_exchange, &delivery.data, envelope)
                .await?;
            delivery.ack(BasicAckOptions::default()).await?;
        }
    }
    channel.close(200, "done".into()).await?;
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

fn header(properties: &dynamo_broker::lapin::BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        dynamo_broker::lapin::types::AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        dynamo_broker::lapin::types::AMQPValue::ShortString(value) => Some(value.to_string()),
        _ => None,
    }
}
