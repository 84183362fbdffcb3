-- Each transient failure of a step, so an operator can see why a request took
-- long or how it came to fail: the page's timeline and GET /requests/{id}
-- show them. image_request.step_attempts only counts the current step.

CREATE TABLE dynamo.step_failure (
    id bigserial PRIMARY KEY,
    image_request_id uuid NOT NULL REFERENCES dynamo.image_request (id) ON DELETE CASCADE,
    step text NOT NULL,
    attempt integer NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL
);

CREATE INDEX step_failure_request_idx ON dynamo.step_failure (image_request_id, id);

COMMENT ON TABLE dynamo.step_failure IS 'Transient failures of pipeline steps that were retried (or ended the request when retries ran out).';
COMMENT ON COLUMN dynamo.step_failure.id IS 'Orders the failures of a request.';
COMMENT ON COLUMN dynamo.step_failure.image_request_id IS 'The request whose step failed.';
COMMENT ON COLUMN dynamo.step_failure.step IS 'The step that failed: debit, moderate, name, image, store, alert, settle.';
COMMENT ON COLUMN dynamo.step_failure.attempt IS 'Which attempt of the step this was, from 1.';
COMMENT ON COLUMN dynamo.step_failure.failed_at IS 'When the attempt failed.';
COMMENT ON COLUMN dynamo.step_failure.reason IS 'The error, as logged.';
