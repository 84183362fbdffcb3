-- A style's Twitch reward as the page sees it (issue 28, item 5): whether it
-- was asked for (POST /styles/{style}/reward), published, paused (the style
-- is disabled) or refused by Twitch, and what was last sent to Twitch, so
-- the consumer holding the intake brings the reward in line when the style
-- changes.

ALTER TABLE dynamo.styles
    ADD COLUMN reward_status text NOT NULL DEFAULT 'none'
        CHECK (reward_status IN ('none', 'requested', 'published', 'paused', 'failed')),
    ADD COLUMN reward_error text CHECK (char_length(reward_error) <= 500),
    ADD COLUMN reward_synced text;

-- Rewards made by `dynamoctl twitch setup` before this migration.
UPDATE dynamo.styles SET reward_status = CASE WHEN enabled THEN 'published' ELSE 'paused' END
    WHERE reward_id IS NOT NULL;

COMMENT ON COLUMN dynamo.styles.reward_status IS 'The Twitch reward: none, requested (asked for, not yet made), published, paused (the style is disabled) or failed (reward_error says why).';
COMMENT ON COLUMN dynamo.styles.reward_error IS 'Why Twitch refused the reward (readable, no internals); NULL unless reward_status is failed.';
COMMENT ON COLUMN dynamo.styles.reward_synced IS 'The reward as last sent to Twitch (its fields as JSON): when the style''s reward settings or enabled differ, the reward is updated.';
