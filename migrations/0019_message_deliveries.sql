-- How many times a message came back (issue 23): a message that keeps
-- coming back without finishing — its processing fails every time, or it
-- takes its consumer down with it — is parked in the dead-letter queue
-- after DELIVERY_LIMIT deliveries instead of being retried forever.
-- Quorum queues count deliveries themselves (x-delivery-count); classic
-- queues do not, so the consumer counts here. Only redeliveries are
-- written: a message that succeeds the first time costs no statement.

CREATE TABLE dynamo.message_delivery (
    message_key bytea PRIMARY KEY,
    deliveries integer NOT NULL CHECK (deliveries > 0),
    first_redelivered_at timestamptz NOT NULL DEFAULT now(),
    last_delivered_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.message_delivery IS 'Messages of the request queue delivered more than once and not yet settled: how often. A row is deleted when its message is acknowledged or parked.';
COMMENT ON COLUMN dynamo.message_delivery.message_key IS 'The message: its message_id (UTF-8 bytes) when it has one, else the SHA-256 of its body.';
COMMENT ON COLUMN dynamo.message_delivery.deliveries IS 'Deliveries so far, the first one included.';
COMMENT ON COLUMN dynamo.message_delivery.first_redelivered_at IS 'When it first came back.';
COMMENT ON COLUMN dynamo.message_delivery.last_delivered_at IS 'When it last came back.';
