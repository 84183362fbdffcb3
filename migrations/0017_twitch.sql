-- Twitch-native intake and settlement (SPEC §7): the streamer's sign-in and
-- the channel-point redemptions taken in as requests.

CREATE TABLE dynamo.twitch_grant (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    user_id text NOT NULL,
    user_login text NOT NULL,
    scopes text[] NOT NULL,
    access_token bytea NOT NULL,
    refresh_token bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    revoked_at timestamptz,
    revoked_reason text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.twitch_grant IS 'The streamer''s Twitch sign-in (dynamoctl twitch login): one row, tokens encrypted with TWITCH_TOKEN_KEY.';
COMMENT ON COLUMN dynamo.twitch_grant.id IS 'Always 1: dynamo acts for one channel.';
COMMENT ON COLUMN dynamo.twitch_grant.user_id IS 'The Twitch user id of the signed-in streamer (the broadcaster id unless TWITCH_BROADCASTER_ID says otherwise).';
COMMENT ON COLUMN dynamo.twitch_grant.user_login IS 'Their login, for logs and /readyz.';
COMMENT ON COLUMN dynamo.twitch_grant.scopes IS 'The scopes Twitch granted.';
COMMENT ON COLUMN dynamo.twitch_grant.access_token IS 'The user access token: XChaCha20-Poly1305, 24-byte nonce then ciphertext.';
COMMENT ON COLUMN dynamo.twitch_grant.refresh_token IS 'The refresh token, encrypted like access_token; Twitch rotates it on every refresh.';
COMMENT ON COLUMN dynamo.twitch_grant.expires_at IS 'When the access token expires; it is refreshed a while before.';
COMMENT ON COLUMN dynamo.twitch_grant.version IS 'Bumped on every refresh: a refresh is stored only over the version it started from, so two processes refreshing at once cannot keep a spent refresh token.';
COMMENT ON COLUMN dynamo.twitch_grant.revoked_at IS 'When Twitch refused the grant (revoked, password changed): requests are held until the streamer signs in again.';
COMMENT ON COLUMN dynamo.twitch_grant.revoked_reason IS 'What Twitch said, and what to do.';
COMMENT ON COLUMN dynamo.twitch_grant.updated_at IS 'Last change.';

CREATE TABLE dynamo.twitch_redemption (
    redemption_id text PRIMARY KEY,
    request_id uuid NOT NULL UNIQUE,
    broadcaster_id text NOT NULL,
    reward_id text NOT NULL,
    twitch_user_id text NOT NULL,
    user_input text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    settled_status text CHECK (settled_status IN ('FULFILLED', 'CANCELED')),
    settled_at timestamptz,
    cancel_reason text
);

COMMENT ON TABLE dynamo.twitch_redemption IS 'Channel-point redemptions of dynamo''s rewards: each is one request (LEDGER=twitch settles it).';
COMMENT ON COLUMN dynamo.twitch_redemption.redemption_id IS 'Twitch''s redemption id: notifications and listings of it are one redemption.';
COMMENT ON COLUMN dynamo.twitch_redemption.request_id IS 'The request it became: a UUID v5 of the redemption id, also the message_id it was published with.';
COMMENT ON COLUMN dynamo.twitch_redemption.broadcaster_id IS 'The channel.';
COMMENT ON COLUMN dynamo.twitch_redemption.reward_id IS 'Which of dynamo''s rewards (and so which style).';
COMMENT ON COLUMN dynamo.twitch_redemption.twitch_user_id IS 'The viewer who redeemed it.';
COMMENT ON COLUMN dynamo.twitch_redemption.user_input IS 'What the viewer typed.';
COMMENT ON COLUMN dynamo.twitch_redemption.received_at IS 'When dynamo first saw it.';
COMMENT ON COLUMN dynamo.twitch_redemption.published_at IS 'When its request was confirmed by the broker on generation-requests; NULL: not yet (published again on the next sighting).';
COMMENT ON COLUMN dynamo.twitch_redemption.settled_status IS 'FULFILLED or CANCELED once settled on Twitch (by dynamo or, seen afterwards, by other tools).';
COMMENT ON COLUMN dynamo.twitch_redemption.settled_at IS 'When it was settled.';
COMMENT ON COLUMN dynamo.twitch_redemption.cancel_reason IS 'Why dynamo cancelled it at intake (inadmissible input); NULL otherwise.';
