//! What every dynamo process needs before it can do its job: settings read from
//! the environment, logging and traces, metrics exposition, and a shutdown
//! signal.

pub mod help;
pub mod metrics;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;

pub use settings::{BrokerSettings, DatabaseSettings, Env, SettingError};
pub use shutdown::Shutdown;
