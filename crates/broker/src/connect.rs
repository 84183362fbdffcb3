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

/// Connects with the settings' credentials. The URI is built field by field,
/// so passwords and vhosts need no percent-encoding by the operator.
pub async fn connect(settings: &BrokerSettings, name: &str) -> Result<Connection, BrokerError> {
    let uri = AMQPUri {
        scheme: AMQPScheme::AMQP,
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: settings.user.clone(),
                password: settings.password.expose_secret().to_owned(),
            },
            host: settings.host.clone(),
            port: settings.port,
        },
        vhost: settings.vhost.clone(),
        query: AMQPQueryString {
            heartbeat: Some(30),
            frame_max: Some(FRAME_MAX),
            ..AMQPQueryString::default()
        },
    };
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect_uri(uri, properties)
        .await
        .map_err(|source| BrokerError::Connect {
            target: format!(
                "{}:{} vhost {:?} as {}",
                settings.host, settings.port, settings.vhost, settings.user
            ),
            source,
        })
}
