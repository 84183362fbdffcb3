-- Messages published without a message_id (the Golden VCR pipeline's) are
-- matched to their request on redelivery by a fingerprint of their body.

ALTER TABLE dynamo.image_request ADD COLUMN message_fingerprint bytea;

COMMENT ON COLUMN dynamo.image_request.message_fingerprint IS
    'SHA-256 of the message body when it came without a message_id; a redelivered copy within a short window resumes this request.';

CREATE INDEX image_request_fingerprint_idx ON dynamo.image_request (message_fingerprint, created_at DESC)
    WHERE message_fingerprint IS NOT NULL;
