-- dynamo's tables: a superset of the Go service's schema (SPEC §5), so reports
-- written against it keep working, plus the columns the request state machine
-- needs. Each step of a request commits here before the next one starts; a
-- redelivered message resumes from the state it finds.

CREATE TABLE dynamo.image_request (
    id uuid PRIMARY KEY,
    twitch_user_id text NOT NULL,
    broadcast_id bigint,
    screening_id uuid,
    style text NOT NULL,
    inputs jsonb NOT NULL,
    prompt text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error_message text,

    twitch_display_name text NOT NULL,
    tape_id bigint,
    state text NOT NULL DEFAULT 'received',
    attempts integer NOT NULL DEFAULT 0,
    points_cost integer NOT NULL,
    free_of_charge boolean NOT NULL DEFAULT false,
    ledger_flow_id uuid,
    debited_at timestamptz,
    named_at timestamptz,
    stored_at timestamptz,
    alerted_at timestamptz,
    settled_at timestamptz,
    result_published_at timestamptz,
    next_attempt_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    retry_of uuid REFERENCES dynamo.image_request (id),

    CONSTRAINT image_request_state_known CHECK (
        state IN ('received', 'debited', 'named', 'stored', 'alerted', 'succeeded', 'rejected', 'failed')
    ),
    CONSTRAINT image_request_style_known CHECK (style IN ('ghost', 'friend')),
    CONSTRAINT image_request_end_has_reason CHECK (
        state NOT IN ('rejected', 'failed') OR error_message IS NOT NULL
    )
);

COMMENT ON TABLE dynamo.image_request IS 'One row per generation request: what was asked, and how far it got.';
COMMENT ON COLUMN dynamo.image_request.id IS 'The request id: the message_id of the generation-requests message when it had one.';
COMMENT ON COLUMN dynamo.image_request.twitch_user_id IS 'Twitch user id of the viewer who asked.';
COMMENT ON COLUMN dynamo.image_request.broadcast_id IS 'Broadcast during which the request was made; NULL when none (0 on the wire).';
COMMENT ON COLUMN dynamo.image_request.screening_id IS 'Screening during which the request was made; NULL when none (all-zero UUID on the wire).';
COMMENT ON COLUMN dynamo.image_request.style IS 'Image style: ghost or friend.';
COMMENT ON COLUMN dynamo.image_request.inputs IS 'The style''s inputs exactly as received, e.g. {"subject": "a seal"}.';
COMMENT ON COLUMN dynamo.image_request.prompt IS 'The image prompt built from the inputs.';
COMMENT ON COLUMN dynamo.image_request.created_at IS 'When the request was first recorded.';
COMMENT ON COLUMN dynamo.image_request.finished_at IS 'When the request reached its end state (succeeded, rejected or failed).';
COMMENT ON COLUMN dynamo.image_request.error_message IS 'Why the request was rejected or failed, readable by a viewer; NULL on success.';
COMMENT ON COLUMN dynamo.image_request.twitch_display_name IS 'The viewer''s Twitch display name at the time of the request.';
COMMENT ON COLUMN dynamo.image_request.tape_id IS 'Tape being screened when the request was made; NULL when none (0 on the wire).';
COMMENT ON COLUMN dynamo.image_request.state IS 'received -> debited -> named (friends) -> stored -> alerted -> succeeded; or rejected / failed.';
COMMENT ON COLUMN dynamo.image_request.attempts IS 'How many times processing of this request was started.';
COMMENT ON COLUMN dynamo.image_request.points_cost IS 'Points debited from the viewer on success.';
COMMENT ON COLUMN dynamo.image_request.free_of_charge IS 'True when no points are taken (admin requests marked free); no ledger flow is made.';
COMMENT ON COLUMN dynamo.image_request.ledger_flow_id IS 'The pending outflow created at the ledger; accepted on success, rejected (refunded) otherwise.';
COMMENT ON COLUMN dynamo.image_request.debited_at IS 'When the pending outflow was created.';
COMMENT ON COLUMN dynamo.image_request.named_at IS 'When the friend''s name was generated (friends only).';
COMMENT ON COLUMN dynamo.image_request.stored_at IS 'When the processed image was uploaded and its row written.';
COMMENT ON COLUMN dynamo.image_request.alerted_at IS 'When the broker confirmed the onscreen-events alert.';
COMMENT ON COLUMN dynamo.image_request.settled_at IS 'When the outflow was accepted (success) or rejected (refund); NULL while a debit is pending.';
COMMENT ON COLUMN dynamo.image_request.result_published_at IS 'When the broker confirmed the generation-results message.';
COMMENT ON COLUMN dynamo.image_request.next_attempt_at IS 'When a request waiting to retry a transient failure is due again.';
COMMENT ON COLUMN dynamo.image_request.updated_at IS 'When this row last changed.';
COMMENT ON COLUMN dynamo.image_request.retry_of IS 'The earlier request this one retries, when an admin retried a failed request.';

CREATE INDEX image_request_created_idx ON dynamo.image_request (created_at DESC, id DESC);
CREATE INDEX image_request_viewer_idx ON dynamo.image_request (twitch_user_id, created_at DESC);
CREATE INDEX image_request_unsettled_idx ON dynamo.image_request (state)
    WHERE settled_at IS NULL OR result_published_at IS NULL;

CREATE TABLE dynamo.image (
    image_request_id uuid NOT NULL REFERENCES dynamo.image_request (id),
    index integer NOT NULL,
    url text NOT NULL,
    color text,
    created_at timestamptz NOT NULL DEFAULT now(),
    content_type text NOT NULL,
    byte_size integer NOT NULL,
    PRIMARY KEY (image_request_id, index),
    CONSTRAINT image_color_is_hex CHECK (color IS NULL OR color ~ '^#[0-9a-f]{6}$')
);

COMMENT ON TABLE dynamo.image IS 'The stored images of a request (one today; the index leaves room for more).';
COMMENT ON COLUMN dynamo.image.image_request_id IS 'The request the image belongs to.';
COMMENT ON COLUMN dynamo.image.index IS 'Position of the image within its request, from 0.';
COMMENT ON COLUMN dynamo.image.url IS 'Public URL of the stored object.';
COMMENT ON COLUMN dynamo.image.color IS 'Keyed-out background colour as #rrggbb (friends); NULL for ghosts.';
COMMENT ON COLUMN dynamo.image.created_at IS 'When the image was stored.';
COMMENT ON COLUMN dynamo.image.content_type IS 'MIME type of the stored object (image/jpeg, image/webp).';
COMMENT ON COLUMN dynamo.image.byte_size IS 'Size of the stored object in bytes.';

CREATE TABLE dynamo.answer (
    image_request_id uuid NOT NULL REFERENCES dynamo.image_request (id),
    prompt text NOT NULL,
    value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_request_id)
);

COMMENT ON TABLE dynamo.answer IS 'Text generated for a request: the friend''s name.';
COMMENT ON COLUMN dynamo.answer.image_request_id IS 'The request the answer belongs to (one answer per request).';
COMMENT ON COLUMN dynamo.answer.prompt IS 'What the language model was asked.';
COMMENT ON COLUMN dynamo.answer.value IS 'What it answered, cleaned up: the name shown on stream.';
COMMENT ON COLUMN dynamo.answer.created_at IS 'When the answer was recorded.';
