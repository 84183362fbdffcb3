-- Every request in progress has a live owner (SPEC §6.8): the process working
-- on it holds a lease that it renews while it works. A lease that lapses (its
-- process died or froze) lets any live consumer take the request over within
-- seconds, with or without a message. Every step's commit is fenced by the
-- lease token, so a stale owner that wakes up can never commit over the new one.

ALTER TABLE dynamo.image_request
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_token uuid,
    ADD COLUMN lease_expires_at timestamptz;

COMMENT ON COLUMN dynamo.image_request.lease_owner IS 'The consumer process working on the request (host, pid and a per-start id), while its lease lasts.';
COMMENT ON COLUMN dynamo.image_request.lease_token IS 'Fences every write of the current owner: a write carrying another token changes nothing.';
COMMENT ON COLUMN dynamo.image_request.lease_expires_at IS 'When the owner''s lease lapses unless renewed; NULL when nobody owns the request.';

-- The requests with work left (unfinished, or ended with a refund or result
-- to do): what the scheduler scans for due retries and lapsed leases.
CREATE INDEX image_request_open_idx ON dynamo.image_request (coalesce(next_attempt_at, lease_expires_at))
    WHERE finished_at IS NULL OR settled_at IS NULL OR result_published_at IS NULL;

-- The viewer's in-progress cap counts live leases.
CREATE INDEX image_request_viewer_open_idx ON dynamo.image_request (twitch_user_id)
    WHERE finished_at IS NULL;

-- Step names are a closed set (the pipeline's Step enum).
ALTER TABLE dynamo.step_failure ADD CONSTRAINT step_failure_step_known
    CHECK (step IN ('debit', 'name', 'moderation', 'image', 'upload', 'alert', 'accept', 'refund', 'result'));
