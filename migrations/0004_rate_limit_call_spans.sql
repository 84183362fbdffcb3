-- A call occupies its rate-limit slot until its answer arrived, not only from
-- when it was admitted: the upstream counts a call when it receives it, which
-- can be later than admission on a busy machine. Counting each call until a
-- window after it *finished* keeps the limit true at the upstream's end.

ALTER TABLE dynamo.rate_limit_call
    ADD COLUMN id bigserial PRIMARY KEY,
    ADD COLUMN finished_at timestamptz,
    ADD COLUMN expires_at timestamptz;

COMMENT ON COLUMN dynamo.rate_limit_call.id IS 'Identifies the call so its finish can be recorded.';
COMMENT ON COLUMN dynamo.rate_limit_call.finished_at IS 'When the call''s answer arrived; NULL while in flight.';
COMMENT ON COLUMN dynamo.rate_limit_call.expires_at IS 'When an unfinished call stops counting (its process may have died): admission plus the longest a call may take.';

UPDATE dynamo.rate_limit_call SET finished_at = called_at, expires_at = called_at;
