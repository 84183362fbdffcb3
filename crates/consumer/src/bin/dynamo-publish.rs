//! `dynamo-publish FILE...`: publishes generation requests (JSON files, `-` for
//! stdin) to the requests exchange with a fresh message id, as the Golden VCR
//! pipeline would. Each is validated first, so a typo is reported here rather
//! than dead-lettered. Uses the same RMQ_* settings as dynamo-consumer.

use dynamo_broker::{Envelope, Publisher, Topology};
use dynamo_runtime::{BrokerSettings, Env};
use dynamo_wire::GenerationRequest;
use std::io::Read;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: dynamo-publish FILE... (JSON generation requests; - reads stdin)");
        return ExitCode::from(2);
    }
    match publish_all(&files).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dynamo-publish: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn publish_all(files: &[String]) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let topology = Topology::from_env(&env)?;
    let connection =
        dynamo_broker::connect(&BrokerSettings::from_env(&env)?, "dynamo-publish").await?;
    topology
        .declare_exchanges(&connection.create_channel().await?)
        .await?;
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
                anyhow::anyhow!("{file}: {e} (is dynamo-consumer's queue declared? start it once)")
            })?;
        println!("{id}\t{file}");
    }
    Ok(())
}
