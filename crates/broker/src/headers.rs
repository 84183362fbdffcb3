//! Every message header dynamo reads or writes, named once. Values travel as
//! strings (AMQP long strings); [`crate::Delivery::header`] reads them back.

/// Why a message was dead-lettered (set on messages parked in the
/// dead-letter exchange).
pub const REASON: &str = "x-dynamo-reason";
/// The exchange a dead-lettered message first came from.
pub const ORIGINAL_EXCHANGE: &str = "x-dynamo-original-exchange";
/// How many times a quorum queue delivered the message before (set by
/// RabbitMQ on redeliveries; an integer, not a string).
pub const DELIVERY_COUNT: &str = "x-delivery-count";
/// Marks an admin's request as free of charge (`true`).
pub const FREE_OF_CHARGE: &str = "x-dynamo-free-of-charge";
/// An admin's request the content rules do not apply to (`true`).
pub const BYPASS_RULES: &str = "x-dynamo-bypass-rules";
/// An admin's try-out of a style (`true`): made, never aired (`POST
/// /styles/{style}/try`).
pub const TRIAL: &str = "x-dynamo-trial";
/// The request an admin's retry repeats (a UUID).
pub const RETRY_OF: &str = "x-dynamo-retry-of";
/// W3C trace context of the span that published the message; every publish
/// stamps it when traces are exported ([`dynamo_runtime::trace_context`]).
pub const TRACEPARENT: &str = dynamo_runtime::trace_context::TRACEPARENT;
/// Vendor trace state that travels with [`TRACEPARENT`].
pub const TRACESTATE: &str = dynamo_runtime::trace_context::TRACESTATE;
