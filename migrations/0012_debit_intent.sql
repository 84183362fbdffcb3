-- No orphaned debit (SPEC §6.3): dynamo records that it is about to ask the
-- ledger for a debit before it asks. A request resumed with that intent and
-- no flow id may have a debit the ledger made but whose answer never arrived;
-- it finds it in the ledger's history and adopts it instead of debiting again.

ALTER TABLE dynamo.image_request ADD COLUMN debit_requested_at timestamptz;

COMMENT ON COLUMN dynamo.image_request.debit_requested_at IS 'When dynamo first asked the ledger for this request''s debit; debits the ledger made since then may be this request''s.';

-- A ledger flow belongs to one request at most, whoever adopts it.
CREATE UNIQUE INDEX image_request_ledger_flow_idx ON dynamo.image_request (ledger_flow_id)
    WHERE ledger_flow_id IS NOT NULL;
