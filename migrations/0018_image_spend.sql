-- What each image cost (issue 12, SPEC §3): one row per image the service
-- answered, with its request, so spend can be summed for today (the daily
-- budget, fleet-wide) and for a broadcast.

CREATE TABLE dynamo.image_spend (
    id bigserial PRIMARY KEY,
    image_request_id uuid NOT NULL REFERENCES dynamo.image_request (id) ON DELETE CASCADE,
    model text NOT NULL,
    cost_usd double precision NOT NULL CHECK (cost_usd >= 0),
    priced_by text NOT NULL CHECK (priced_by IN ('usage', 'price', 'free')),
    input_tokens integer,
    output_tokens integer,
    spent_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX image_spend_spent_at ON dynamo.image_spend (spent_at);
CREATE INDEX image_spend_request ON dynamo.image_spend (image_request_id);

COMMENT ON TABLE dynamo.image_spend IS 'One row per image the image service answered (and billed): what it cost.';
COMMENT ON COLUMN dynamo.image_spend.id IS 'Order of purchase.';
COMMENT ON COLUMN dynamo.image_spend.image_request_id IS 'The request the image was bought for.';
COMMENT ON COLUMN dynamo.image_spend.model IS 'The model that drew it.';
COMMENT ON COLUMN dynamo.image_spend.cost_usd IS 'What it cost in USD: from the answer''s usage and the model''s token prices, else its per-image price; 0 for a local model.';
COMMENT ON COLUMN dynamo.image_spend.priced_by IS 'usage, price (per-image price from the table or OPENAI_IMAGE_PRICES) or free.';
COMMENT ON COLUMN dynamo.image_spend.input_tokens IS 'Text input tokens, when the answer carried usage.';
COMMENT ON COLUMN dynamo.image_spend.output_tokens IS 'Image output tokens, when the answer carried usage.';
COMMENT ON COLUMN dynamo.image_spend.spent_at IS 'When the answer arrived; the daily budget counts from 00:00 UTC.';
