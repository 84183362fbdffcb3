-- On air (issue 30): each style can have an alert sound, played by the
-- overlay with the alert's entrance. The sound file itself is stored with
-- the images (S3 or the filesystem); this row says where, and how loud.
--
-- Keyed by the style's id as text (ghost, friend today), so it joins the
-- styles table when styles become data.

CREATE TABLE dynamo.style_sounds (
    style_id text PRIMARY KEY CHECK (style_id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    object_key text NOT NULL,
    url text NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('audio/mpeg', 'audio/ogg', 'audio/wav')),
    bytes integer NOT NULL CHECK (bytes > 0),
    volume_percent smallint NOT NULL DEFAULT 100 CHECK (volume_percent BETWEEN 0 AND 100),
    uploaded_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.style_sounds IS 'The alert sound of a style: played by the overlay with the alert''s entrance.';
COMMENT ON COLUMN dynamo.style_sounds.style_id IS 'The style''s id (ghost, friend, or a style''s slug once styles are data).';
COMMENT ON COLUMN dynamo.style_sounds.object_key IS 'The object''s key in storage (sounds/<style>-<uuid>.<ext>); a new upload gets a new key.';
COMMENT ON COLUMN dynamo.style_sounds.url IS 'The public URL the overlay plays it from.';
COMMENT ON COLUMN dynamo.style_sounds.content_type IS 'audio/mpeg, audio/ogg or audio/wav, as detected from the file''s content.';
COMMENT ON COLUMN dynamo.style_sounds.bytes IS 'The file''s size in bytes.';
COMMENT ON COLUMN dynamo.style_sounds.volume_percent IS 'How loud the overlay plays it, 0..100 (multiplied by the overlay URL''s volume).';
COMMENT ON COLUMN dynamo.style_sounds.uploaded_at IS 'When the sound was uploaded or its volume last changed.';

