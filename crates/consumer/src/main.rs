use dynamo_consumer::ConsumerConfig;
use dynamo_runtime::{Env, Shutdown, telemetry};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let config = match Env::from_process().and_then(|env| ConsumerConfig::from_env(&env)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("dynamo-consumer: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    match dynamo_consumer::run(config, Shutdown::on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<dynamo_consumer::NoModelLeft>() => {
            eprintln!("dynamo-consumer: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            tracing::error!("dynamo-consumer stopped: {error:#}");
            ExitCode::FAILURE
        }
    }
}
