-- Approval before air (SPEC §7, APPROVAL=manual): a request whose image is
-- stored waits in the state awaiting_approval, before its alert and before its
-- debit is made final, until the streamer approves or declines it or its
-- APPROVAL_TIMEOUT passes. The decision is recorded here by dynamo-server
-- (once: the first decision wins) and carried out by whichever consumer's
-- scheduler claims the request next, so a crash after the decision never
-- loses it.

ALTER TABLE dynamo.image_request DROP CONSTRAINT image_request_state_known;
ALTER TABLE dynamo.image_request ADD CONSTRAINT image_request_state_known CHECK (
    state IN ('received', 'debited', 'named', 'stored', 'awaiting_approval', 'alerted',
              'succeeded', 'rejected', 'failed')
);

ALTER TABLE dynamo.image_request
    ADD COLUMN approval_requested_at timestamptz,
    ADD COLUMN approval_deadline timestamptz,
    ADD COLUMN approval_decision text,
    ADD COLUMN approval_decided_by text,
    ADD COLUMN approval_decided_at timestamptz,
    ADD COLUMN approval_note text,
    ADD CONSTRAINT image_request_approval_decision_known CHECK (
        approval_decision IS NULL OR approval_decision IN ('approved', 'declined')
    ),
    ADD CONSTRAINT image_request_approval_decision_complete CHECK (
        (approval_decision IS NULL) = (approval_decided_at IS NULL)
        AND (approval_decision IS NULL) = (approval_decided_by IS NULL)
    );

COMMENT ON COLUMN dynamo.image_request.state IS 'received -> debited -> named (friends) -> stored -> awaiting_approval (APPROVAL=manual) -> alerted -> succeeded; or rejected / failed.';
COMMENT ON COLUMN dynamo.image_request.approval_requested_at IS 'When the request began waiting for the streamer''s approval (APPROVAL=manual); NULL when it never waited.';
COMMENT ON COLUMN dynamo.image_request.approval_deadline IS 'When APPROVAL_TIMEOUT passes and APPROVAL_TIMEOUT_ACTION decides instead of the streamer.';
COMMENT ON COLUMN dynamo.image_request.approval_decision IS 'approved or declined; NULL while undecided. Written once: the first decision wins.';
COMMENT ON COLUMN dynamo.image_request.approval_decided_by IS 'Who decided: the admin caller (e.g. broadcaster 1234, service dynamo-admin), or timeout.';
COMMENT ON COLUMN dynamo.image_request.approval_decided_at IS 'When the decision was recorded.';
COMMENT ON COLUMN dynamo.image_request.approval_note IS 'The reason an admin gave with a decline (optional); appended to the viewer''s reason.';

-- The page's approval queue and /stats read the requests waiting.
CREATE INDEX image_request_awaiting_approval_idx ON dynamo.image_request (approval_requested_at)
    WHERE state = 'awaiting_approval';
