//! RabbitMQ for dynamo: the exchanges and queues it uses, and publishing that
//! only reports success once the broker has taken responsibility.
//!
//! Golden VCR convention (SPEC §2): every exchange is a durable fanout,
//! published to with routing key "". dynamo consumes from its own durable,
//! named queue so requests published while it is down are kept.

mod connect;
mod publisher;
mod topology;

pub use connect::{BrokerError, connect};
pub use lapin;
pub use publisher::{Envelope, PublishError, Publisher, REASON_HEADER};
pub use topology::Topology;
