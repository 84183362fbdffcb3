-- Talking to the viewer in chat (issue 29): what dynamo says to a viewer
-- who redeemed one of its rewards waits in an outbox until a sender, paced
-- fleet-wide under Twitch's per-sender chat limit, has sent it. A burst of
-- redemptions is then sent late, never dropped, and a request's end state
-- never waits for chat.

CREATE TABLE dynamo.twitch_chat_message (
    id bigserial PRIMARY KEY,
    request_id uuid NOT NULL,
    event text NOT NULL CHECK (event IN ('queued', 'declined', 'refused', 'failed', 'on_air')),
    twitch_user_id text NOT NULL,
    message text NOT NULL CHECK (char_length(message) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    claimed_until timestamptz,
    finished_at timestamptz,
    outcome text CHECK (outcome IN ('sent', 'dropped', 'refused', 'failed', 'silent')),
    twitch_message_id text,
    drop_code text,
    drop_message text,
    UNIQUE (request_id, event)
);

CREATE INDEX twitch_chat_message_unfinished_idx ON dynamo.twitch_chat_message (id)
    WHERE finished_at IS NULL;
CREATE INDEX twitch_chat_message_viewer_idx ON dynamo.twitch_chat_message (twitch_user_id, id)
    WHERE finished_at IS NULL;

COMMENT ON TABLE dynamo.twitch_chat_message IS 'The chat outbox: each message dynamo has to tell a viewer, sent in order per viewer, paced under Twitch''s chat limit.';
COMMENT ON COLUMN dynamo.twitch_chat_message.id IS 'Order of writing: a viewer''s messages are sent in this order.';
COMMENT ON COLUMN dynamo.twitch_chat_message.request_id IS 'The request (of a redemption) the message is about.';
COMMENT ON COLUMN dynamo.twitch_chat_message.event IS 'What happened: queued (taken in, with the position), declined (by the streamer or a moderator), refused (content rules, moderation, inadmissible input), failed (refunded), on_air. One message per request and event.';
COMMENT ON COLUMN dynamo.twitch_chat_message.twitch_user_id IS 'The viewer it is for.';
COMMENT ON COLUMN dynamo.twitch_chat_message.message IS 'The text, rendered from the event''s template (at most 500 characters, Twitch''s limit); empty when silent.';
COMMENT ON COLUMN dynamo.twitch_chat_message.created_at IS 'When it was written.';
COMMENT ON COLUMN dynamo.twitch_chat_message.attempts IS 'Sends tried so far.';
COMMENT ON COLUMN dynamo.twitch_chat_message.claimed_until IS 'A sender holds it until then (or it waits until then before its next try); NULL: anyone may take it.';
COMMENT ON COLUMN dynamo.twitch_chat_message.finished_at IS 'When it was sent or given up; NULL: still to send.';
COMMENT ON COLUMN dynamo.twitch_chat_message.outcome IS 'sent; dropped (Twitch accepted the call but did not post it: is_sent false); refused (Twitch answered 4xx); failed (gave up after repeated errors); silent (the event''s template is empty: nothing is said).';
COMMENT ON COLUMN dynamo.twitch_chat_message.twitch_message_id IS 'The message_id Twitch answered.';
COMMENT ON COLUMN dynamo.twitch_chat_message.drop_code IS 'drop_reason.code when Twitch dropped it.';
COMMENT ON COLUMN dynamo.twitch_chat_message.drop_message IS 'drop_reason.message when Twitch dropped it, or the refusal.';

-- The bot account chat may be sent as (`dynamoctl twitch login --bot`):
-- kept like the streamer's sign-in, in the row with id 2.
ALTER TABLE dynamo.twitch_grant DROP CONSTRAINT twitch_grant_id_check;
ALTER TABLE dynamo.twitch_grant ADD CONSTRAINT twitch_grant_id_check CHECK (id IN (1, 2));
COMMENT ON COLUMN dynamo.twitch_grant.id IS '1: the streamer (dynamo acts for one channel); 2: the bot account chat is sent as, if one signed in.';

ALTER TABLE dynamo.twitch_redemption ADD COLUMN user_login text;
COMMENT ON COLUMN dynamo.twitch_redemption.user_login IS 'The viewer''s login, to address them in chat; NULL for redemptions recorded before migration 0021.';

COMMENT ON COLUMN dynamo.twitch_redemption.cancel_reason IS 'Why it was cancelled outside the pipeline: dynamo at intake (inadmissible input), or someone else on Twitch (a moderator in the reward queue); NULL otherwise.';

-- Rewards follow dynamo: whether dynamo last paused its rewards on Twitch,
-- so only one process of the fleet changes them at each turn.
CREATE TABLE dynamo.twitch_reward_pause (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    paused boolean,
    reason text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.twitch_reward_pause IS 'Whether dynamo''s rewards are paused on Twitch, as dynamo last set them: one row.';
COMMENT ON COLUMN dynamo.twitch_reward_pause.id IS 'Always 1.';
COMMENT ON COLUMN dynamo.twitch_reward_pause.paused IS 'true: paused (the fleet holds, or the channel is offline with TWITCH_PAUSE_WHEN_OFFLINE); false: open; NULL: not known (a change failed half-way, and is made again).';
COMMENT ON COLUMN dynamo.twitch_reward_pause.reason IS 'Why they are paused.';
COMMENT ON COLUMN dynamo.twitch_reward_pause.updated_at IS 'When dynamo last changed them.';

-- The channel's live status (stream.online / stream.offline).
CREATE TABLE dynamo.twitch_channel (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    live boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.twitch_channel IS 'Whether the channel is live, from EventSub stream.online / stream.offline: one row, absent until first heard.';
COMMENT ON COLUMN dynamo.twitch_channel.id IS 'Always 1.';
COMMENT ON COLUMN dynamo.twitch_channel.live IS 'Live since the last stream.online, until a stream.offline.';
COMMENT ON COLUMN dynamo.twitch_channel.updated_at IS 'When it was last heard.';
