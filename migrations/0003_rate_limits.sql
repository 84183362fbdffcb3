-- Fleet-wide rate limits for upstream APIs (SPEC §6.5): every consumer process
-- records each call here before making it, under a per-limiter advisory lock,
-- so the sum over all processes never exceeds the configured rate.

CREATE TABLE dynamo.rate_limit_call (
    limiter text NOT NULL,
    called_at timestamptz NOT NULL
);

COMMENT ON TABLE dynamo.rate_limit_call IS 'Recent upstream calls per limiter; rows older than the window are deleted as new calls are admitted.';
COMMENT ON COLUMN dynamo.rate_limit_call.limiter IS 'Which limit the call counts against, e.g. openai-images.';
COMMENT ON COLUMN dynamo.rate_limit_call.called_at IS 'When the call was admitted (database clock).';

CREATE INDEX rate_limit_call_idx ON dynamo.rate_limit_call (limiter, called_at);

CREATE TABLE dynamo.rate_limit_pause (
    limiter text PRIMARY KEY,
    until timestamptz NOT NULL
);

COMMENT ON TABLE dynamo.rate_limit_pause IS 'A limiter paused for every process, after the upstream answered 429 with a time to wait.';
COMMENT ON COLUMN dynamo.rate_limit_pause.limiter IS 'The paused limiter.';
COMMENT ON COLUMN dynamo.rate_limit_pause.until IS 'No call is admitted before this time.';
