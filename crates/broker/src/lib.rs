//! RabbitMQ for dynamo, and the only crate that speaks AMQP: connecting and
//! reconnecting ([`Broker`]), the exchanges and queues ([`Topology`]),
//! publishing only once the broker has taken responsibility ([`Publisher`]),
//! consuming ([`Subscription`], [`Delivery`]) and every header name
//! ([`headers`]).
//!
//! Golden VCR convention (SPEC §2): every exchange is a durable fanout,
//! published to with routing key "". dynamo consumes from its own durable,
//! named queue so requests published while it is down are kept.

mod connect;
mod consume;
pub mod headers;
mod link;
mod publisher;
mod topology;

pub use connect::{BrokerError, connect};
pub use consume::{DeadLetterError, Delivery, Subscription};
pub use link::{Broker, Connected, Declare};
pub use publisher::{Envelope, PublishError, Publisher};
pub use topology::{QueueDepth, Topology};
