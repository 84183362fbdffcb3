-- Styles as data (SPEC §8): every style a request may name, Golden VCR's
-- ghost and friend among them, and the settings each request was made with.

CREATE TABLE dynamo.styles (
    id text PRIMARY KEY CHECK (id ~ '^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$'),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 60),
    color_input text NOT NULL DEFAULT 'none' CHECK (color_input IN ('none', 'optional', 'required')),
    prompt_template text NOT NULL CHECK (position('{subject}' in prompt_template) > 0),
    output text NOT NULL CHECK (output IN ('photo', 'cutout')),
    image_quality text,
    image_size text,
    generate_name boolean NOT NULL DEFAULT false,
    points_cost integer NOT NULL CHECK (points_cost >= 0),
    reward_title text NOT NULL CHECK (char_length(reward_title) BETWEEN 1 AND 45),
    reward_prompt text NOT NULL CHECK (char_length(reward_prompt) <= 200),
    reward_cost integer NOT NULL CHECK (reward_cost >= 1),
    reward_cooldown_seconds integer CHECK (reward_cooldown_seconds >= 1),
    reward_max_per_stream integer CHECK (reward_max_per_stream >= 1),
    reward_max_per_user_per_stream integer CHECK (reward_max_per_user_per_stream >= 1),
    reward_id text,
    on_air_duration_ms integer NOT NULL DEFAULT 8000 CHECK (on_air_duration_ms BETWEEN 1000 AND 60000),
    sound text,
    enabled boolean NOT NULL DEFAULT true,
    follows_settings boolean NOT NULL DEFAULT false,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.styles IS 'The styles requests may name (SPEC §8): ghost and friend, seeded at start-up, and the streamer''s own.';
COMMENT ON COLUMN dynamo.styles.id IS 'The style id: a lowercase slug, as payload.style, the alert''s payload.type and the result''s style carry it.';
COMMENT ON COLUMN dynamo.styles.display_name IS 'The name shown to people (the page, the reward).';
COMMENT ON COLUMN dynamo.styles.color_input IS 'Whether requests give a colour (one of the 13 of SPEC §2): none, optional or required.';
COMMENT ON COLUMN dynamo.styles.prompt_template IS 'The image prompt over {subject}, {color}, {complement} and {article}.';
COMMENT ON COLUMN dynamo.styles.output IS 'photo: stored as JPEG; cutout: transparent WEBP (the model''s transparency, else the {complement} background keyed out).';
COMMENT ON COLUMN dynamo.styles.image_quality IS 'The image quality for this style; NULL: the consumer''s OPENAI_IMAGE_QUALITY.';
COMMENT ON COLUMN dynamo.styles.image_size IS 'The image size for this style (e.g. 1024x1024); NULL: the default.';
COMMENT ON COLUMN dynamo.styles.generate_name IS 'Whether a name is generated for the subject before the image (as for friends).';
COMMENT ON COLUMN dynamo.styles.points_cost IS 'Points debited at the ledger per image (0: free).';
COMMENT ON COLUMN dynamo.styles.reward_title IS 'The Twitch reward''s title (at most 45 characters).';
COMMENT ON COLUMN dynamo.styles.reward_prompt IS 'The Twitch reward''s prompt to the viewer (at most 200 characters).';
COMMENT ON COLUMN dynamo.styles.reward_cost IS 'The Twitch reward''s cost in channel points.';
COMMENT ON COLUMN dynamo.styles.reward_cooldown_seconds IS 'The reward''s global cooldown; NULL: none.';
COMMENT ON COLUMN dynamo.styles.reward_max_per_stream IS 'Redemptions allowed per stream; NULL: no limit.';
COMMENT ON COLUMN dynamo.styles.reward_max_per_user_per_stream IS 'Redemptions allowed per viewer per stream; NULL: no limit.';
COMMENT ON COLUMN dynamo.styles.reward_id IS 'The Twitch reward dynamo created for this style (dynamoctl twitch setup); TWITCH_GHOST_REWARD_ID / TWITCH_FRIEND_REWARD_ID override it.';
COMMENT ON COLUMN dynamo.styles.on_air_duration_ms IS 'How long the overlay shows this style''s alert.';
COMMENT ON COLUMN dynamo.styles.sound IS 'The sound slot the overlay plays with this style''s alert; NULL: none.';
COMMENT ON COLUMN dynamo.styles.enabled IS 'Disabled styles are refused (dead-lettered) and their rewards paused.';
COMMENT ON COLUMN dynamo.styles.follows_settings IS 'A seeded style (ghost, friend) whose prompt and points cost follow PROMPT_GHOST / PROMPT_FRIEND / POINTS_COST at every start until it is edited.';
COMMENT ON COLUMN dynamo.styles.version IS 'Bumped on every change: consumers compare it to see they are current.';
COMMENT ON COLUMN dynamo.styles.created_at IS 'When it was created.';
COMMENT ON COLUMN dynamo.styles.updated_at IS 'Last change.';

-- Every change wakes the consumers (LISTEN dynamo_styles); the payload is
-- the style id, the consumers read the row themselves.
CREATE FUNCTION dynamo.notify_style_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dynamo_styles', coalesce(NEW.id, OLD.id));
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION dynamo.notify_style_change() IS
    'Announces a changed style on channel dynamo_styles (payload: its id).';

CREATE TRIGGER styles_notify AFTER INSERT OR UPDATE OR DELETE ON dynamo.styles
    FOR EACH ROW EXECUTE FUNCTION dynamo.notify_style_change();

-- Any style id may now be requested; the registry says which exist.
ALTER TABLE dynamo.image_request DROP CONSTRAINT image_request_style_known;
ALTER TABLE dynamo.image_request ADD CONSTRAINT image_request_style_slug
    CHECK (style ~ '^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$');
COMMENT ON COLUMN dynamo.image_request.style IS 'The style id (dynamo.styles; ghost and friend are Golden VCR''s).';

ALTER TABLE dynamo.image_request ADD COLUMN style_settings jsonb;
COMMENT ON COLUMN dynamo.image_request.style_settings IS 'The style''s settings the request was made with (output, name, quality, size), written when recorded: editing the style never changes a request in progress. NULL for requests recorded before styles were data (ghost and friend as they were).';
