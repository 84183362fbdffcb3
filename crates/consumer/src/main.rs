use clap::Parser;
use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::telemetry::{self, LogSettings};
use dynamo_runtime::{Env, Shutdown};
use std::process::ExitCode;

/// Takes generation requests from RabbitMQ and turns each into an image, an
/// alert and a result: debits points, names friends, stores the image and
/// settles the points once the alert went out.
///
/// It runs until SIGINT or SIGTERM, then lets requests in flight finish.
/// Try it without any cloud account: IMAGE_PROVIDER=placeholder
/// STORAGE_BACKEND=filesystem POINTS_COST=0 (scripts/dev.sh does this).
#[derive(Parser)]
#[command(version, after_help = ConsumerConfig::settings_help())]
struct Cli {}

fn main() -> ExitCode {
    // --help and --version end here, before any setting is read or anything starts.
    Cli::parse();
    let settings = Env::from_process().and_then(|env| {
        Ok((
            LogSettings::from_env(&env)?,
            ConsumerConfig::from_env(&env)?,
        ))
    });
    let (logs, config) = match settings {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("dynamo-consumer: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = telemetry::init(&logs, "dynamo-consumer");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dynamo-consumer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime
        .block_on(async { dynamo_consumer::run(config, Shutdown::on_signals()).await })
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<dynamo_consumer::NoModelLeft>() => {
            eprintln!("dynamo-consumer: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            tracing::error!("dynamo-consumer stopped: {error:#}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    // After the runtime: sending the last spans blocks.
    telemetry.shutdown();
    code
}
