//! `dynamoctl`: small operator commands next to dynamo-consumer, using the
//! same `RMQ_*` settings.
//!
//! - `dynamoctl publish FILE...` publishes generation requests (JSON files,
//!   `-` for stdin) with a fresh message id, as the Golden VCR pipeline would.
//!   Each is validated first, so a typo is reported here, not dead-lettered.
//!   This is also how a fixed dead letter is sent again.
//! - `dynamoctl watch` prints every alert and result dynamo publishes, from a
//!   queue of its own bound to `onscreen-events` and `generation-results` —
//!   what an alerts service would see.
//! - `dynamoctl dead-letters` lists the parked messages with their reasons;
//!   `dynamoctl dead-letters --requeue` sends them all back to the requests
//!   exchange (after a fix), keeping their message ids.

use dynamo_broker::{Broker, Connected, Declare, Envelope, Topology, headers};
use dynamo_runtime::{BrokerSettings, Env};
use dynamo_wire::GenerationRequest;
use std::io::Read;
use std::process::ExitCode;

const USAGE: &str = "usage: dynamoctl publish FILE...   (JSON generation requests; - reads stdin)
       dynamoctl watch            (print alerts and results as dynamo publishes them)
       dynamoctl dead-letters [--requeue]  (list parked messages, or send them back)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.split_first() {
        Some((command, files)) if command == "publish" && !files.is_empty() => publish(files).await,
        Some((command, rest)) if command == "watch" && rest.is_empty() => watch().await,
        Some((command, rest)) if command == "dead-letters" && rest.is_empty() => {
            dead_letters(false).await
        }
        Some((command, rest)) if command == "dead-letters" && rest == ["--requeue"] => {
            dead_letters(true).await
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
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
