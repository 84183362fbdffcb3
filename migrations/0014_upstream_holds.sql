-- The service's own outages are not the viewers' failures (SPEC §6.10): a bad
-- key, no credit, every model gone or the spending cap reached holds the whole
-- fleet. One row per held service; requests wait in the database while it
-- exists, and one probe at a time tries the service again.

CREATE TABLE dynamo.upstream_hold (
    service text PRIMARY KEY,
    reason text NOT NULL,
    held_since timestamptz NOT NULL DEFAULT now(),
    next_probe_at timestamptz NOT NULL
);

COMMENT ON TABLE dynamo.upstream_hold IS 'Services the fleet holds requests for: while a row exists, no request calls the service but its probe.';
COMMENT ON COLUMN dynamo.upstream_hold.service IS 'The service held (openai).';
COMMENT ON COLUMN dynamo.upstream_hold.reason IS 'Why, and what an operator should do, as shown on /readyz, /stats and the page.';
COMMENT ON COLUMN dynamo.upstream_hold.held_since IS 'When the hold began; held requests fail with a refund once it is older than UPSTREAM_OUTAGE_MAX_WAIT.';
COMMENT ON COLUMN dynamo.upstream_hold.next_probe_at IS 'When one request may next try the service as the probe (every UPSTREAM_PROBE_INTERVAL).';
