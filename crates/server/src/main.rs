use dynamo_runtime::{Env, Shutdown, telemetry};
use dynamo_server::ServerConfig;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let config = match Env::from_process().and_then(|env| ServerConfig::from_env(&env)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("dynamo-server: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
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
