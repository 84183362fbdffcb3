//! Opening a connection from settings. dynamo's own code goes through
//! [`crate::Broker`]; [`connect`] is public for test kits and benchmarks that
//! talk to RabbitMQ as another service would.

use dynamo_runtime::BrokerSettings;
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Connection, ConnectionProperties};
use secrecy::ExposeSecret;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot reach RabbitMQ at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: lapin::Error,
    },
    #[error("cannot declare {what} on RabbitMQ: {source}")]
    Declare {
        what: String,
        #[source]
        source: lapin::Error,
    },
    #[error("RabbitMQ: {0}")]
    Channel(#[from] lapin::Error),
    #[error("RabbitMQ did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("RabbitMQ ended our subscription to {0:?} (was the queue deleted?)")]
    Cancelled(String),
}

/// The largest AMQP frame we accept. lapin keeps a send and a receive buffer
/// of 32 frames each per connection, resident for the life of the process:
/// at RabbitMQ's default of 128 KiB that is 8 MiB, most of an idle
/// consumer's heap. Our messages are a few KiB of JSON, so 16 KiB frames carry
/// each in one frame (a larger body is split into several) for 1 MiB.
const FRAME_MAX: u32 = 16 * 1024;

/// How long one node may take to accept a connection before the next one in
/// `RMQ_HOST` is tried: a node behind a black hole must not stall the list.
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects with the settings' credentials to the first node of `RMQ_HOST`
/// that answers. The URI is built field by field, so passwords and vhosts
/// need no percent-encoding by the operator.
pub async fn connect(settings: &BrokerSettings, name: &str) -> Result<Connection, BrokerError> {
    Ok(connect_from(settings, name, 0).await?.0)
}

/// Tries the nodes of `RMQ_HOST` in turn, starting at index `first` (the
/// one after a node that just failed), and returns the connection with the
/// index of its node. The error names every node tried.
pub(crate) async fn connect_from(
    settings: &BrokerSettings,
    name: &str,
    first: usize,
) -> Result<(Connection, usize), BrokerError> {
    let count = settings.nodes.len();
    let mut last = None;
    for index in (0..count).map(|i| (first + i) % count) {
        let (host, port) = &settings.nodes[index];
        let attempt = tokio::time::timeout(NODE_TIMEOUT, connect_to(settings, host, *port, name));
        match attempt.await {
            Ok(Ok(connection)) => return Ok((connection, index)),
            Ok(Err(error)) => last = Some(error),
            Err(_) => {
                last = Some(lapin::Error::from(lapin::ErrorKind::IOError(
                    std::sync::Arc::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {NODE_TIMEOUT:?}"),
                    )),
                )))
            }
        }
    }
    let nodes: Vec<String> = settings
        .nodes
        .iter()
        .map(|(host, port)| format!("{host}:{port}"))
        .collect();
    Err(BrokerError::Connect {
        target: format!(
            "{} vhost {:?} as {}",
            nodes.join(", "),
            settings.vhost,
            settings.user
        ),
        source: last.unwrap_or_else(|| {
            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed).into()
        }),
    })
}

async fn connect_to(
    settings: &BrokerSettings,
    host: &str,
    port: u16,
    name: &str,
) -> Result<Connection, lapin::Error> {
    let uri = AMQPUri {
        scheme: AMQPScheme::AMQP,
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: settings.user.clone(),
                password: settings.password.expose_secret().to_owned(),
            },
            host: host.to_owned(),
            port,
        },
        vhost: settings.vhost.clone(),
        query: AMQPQueryString {
            heartbeat: Some(30),
            frame_max: Some(FRAME_MAX),
            ..AMQPQueryString::default()
        },
    };
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect_uri(uri, properties).await
}
