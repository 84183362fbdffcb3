use clap::Parser;
use dynamo_runtime::telemetry::{self, LogSettings};
use dynamo_runtime::{Env, Shutdown};
use dynamo_server::ServerConfig;
use std::process::ExitCode;

/// Serves dynamo's status API, the live page at /, manual requests and retries
/// for admins, live event streams, health checks and metrics.
///
/// It runs until SIGINT or SIGTERM. For a local stack with the admin token
/// dev-admin-token, run scripts/dev.sh; it sets AUTH_MODE=standalone and
/// ADMIN_TOKEN_SHA256.
#[derive(Parser)]
#[command(version, after_help = ServerConfig::settings_help())]
struct Cli {}

fn main() -> ExitCode {
    // --help and --version end here, before any setting is read or anything starts.
    Cli::parse();
    let settings = Env::from_process()
        .and_then(|env| Ok((LogSettings::from_env(&env)?, ServerConfig::from_env(&env)?)));
    let (logs, config) = match settings {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("dynamo-server: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = telemetry::init(&logs, "dynamo-server");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dynamo-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(config));
    drop(runtime);
    // After the runtime: sending the last spans blocks.
    telemetry.shutdown();
    code
}

async fn serve(config: ServerConfig) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(config.address()).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "dynamo-server: cannot listen on {} (BIND_ADDR, LISTEN_PORT): {error}",
                config.address()
            );
            return ExitCode::from(2);
        }
    };
    match dynamo_server::run(config, listener, Shutdown::on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("dynamo-server stopped: {error:#}");
            ExitCode::FAILURE
        }
    }
}
