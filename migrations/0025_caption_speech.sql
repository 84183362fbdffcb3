-- On air (issue 30, item 2): a style can have its alert's caption ("Sealy,
-- from wasabimilkshake") read aloud. The speech is generated before air by
-- the speech model, stored beside the image, and recorded here; a failed
-- speech call never fails its request: the alert airs without it, and the
-- reason is kept for the page.

ALTER TABLE dynamo.styles ADD COLUMN speak_caption boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN dynamo.styles.speak_caption IS 'Whether this style''s alert caption is read aloud (generated before air by OPENAI_SPEECH_MODELS); false for Golden VCR''s ghost and friend unless edited.';

CREATE TABLE dynamo.caption_speech (
    image_request_id uuid PRIMARY KEY REFERENCES dynamo.image_request (id) ON DELETE CASCADE,
    caption text NOT NULL CHECK (char_length(caption) BETWEEN 1 AND 4096),
    url text,
    object_key text,
    content_type text,
    byte_size integer CHECK (byte_size > 0),
    model text,
    failure text,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Spoken (a stored file) or not (a reason), never both, never neither.
    CONSTRAINT caption_speech_spoken_or_failed CHECK (
        (url IS NOT NULL AND object_key IS NOT NULL AND content_type IS NOT NULL
         AND byte_size IS NOT NULL AND failure IS NULL)
        OR (url IS NULL AND object_key IS NULL AND failure IS NOT NULL))
);

COMMENT ON TABLE dynamo.caption_speech IS 'The spoken caption of a request whose style reads it aloud: the stored audio, or why there is none (the alert aired without it).';
COMMENT ON COLUMN dynamo.caption_speech.image_request_id IS 'The request whose alert it goes with; one spoken caption per request.';
COMMENT ON COLUMN dynamo.caption_speech.caption IS 'The text read aloud: the alert''s caption, as the overlay shows it.';
COMMENT ON COLUMN dynamo.caption_speech.url IS 'The public URL the overlay plays it from; NULL when it failed.';
COMMENT ON COLUMN dynamo.caption_speech.object_key IS 'Its key in storage, beside the image''s (<id>/<id>-0-caption.<ext>).';
COMMENT ON COLUMN dynamo.caption_speech.content_type IS 'The audio''s type (audio/mpeg, audio/wav, ...), from OPENAI_SPEECH_FORMAT.';
COMMENT ON COLUMN dynamo.caption_speech.byte_size IS 'The file''s size in bytes.';
COMMENT ON COLUMN dynamo.caption_speech.model IS 'The speech model that spoke it, when one answered.';
COMMENT ON COLUMN dynamo.caption_speech.failure IS 'Why the alert aired without its spoken caption (the speech call or its upload failed, the service was held, the budget spent); NULL when spoken.';
COMMENT ON COLUMN dynamo.caption_speech.created_at IS 'When it was recorded.';

-- Speech is paid for like images and counted in the same daily budget.
ALTER TABLE dynamo.image_spend ADD COLUMN item text NOT NULL DEFAULT 'image'
    CHECK (item IN ('image', 'speech'));
COMMENT ON COLUMN dynamo.image_spend.item IS 'What was bought: an image, or a spoken caption (speech); both count in the daily budget.';
COMMENT ON TABLE dynamo.image_spend IS 'One row per paid answer (an image, or a spoken caption): what it cost.';

-- The gallery's public id of a request's image, in one place: the gallery
-- pages name images by it, and the "on air" chat reply links to them
-- (TWITCH_CHAT_ON_AIR's {gallery_url}). An opaque digest of the request id,
-- so the link opens no API.
CREATE FUNCTION dynamo.gallery_public_id(request_id uuid) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN left(encode(sha256(convert_to(request_id::text, 'UTF8')), 'hex'), 24);
COMMENT ON FUNCTION dynamo.gallery_public_id(uuid) IS
    'The public gallery''s id of a request''s image (/gallery/{id}): the first 24 hex digits of the SHA-256 of its id.';
