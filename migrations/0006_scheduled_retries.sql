-- Retries that wait longer than a moment are scheduled here instead of holding
-- a consumer slot: the message is acknowledged, the request keeps its state,
-- and any consumer process picks it up when next_attempt_at comes (the
-- column already exists). The attempt count and the time of the first failure
-- of the current step survive restarts, so the step's limits do too.

ALTER TABLE dynamo.image_request
    ADD COLUMN step_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN step_failing_since timestamptz;

COMMENT ON COLUMN dynamo.image_request.step_attempts IS 'Transient failures of the current step so far; reset when a step completes.';
COMMENT ON COLUMN dynamo.image_request.step_failing_since IS 'When the current step first failed; its retry deadline counts from here.';

CREATE INDEX image_request_due_idx ON dynamo.image_request (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL AND finished_at IS NULL;
