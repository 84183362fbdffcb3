-- On air (SPEC §7): the OBS overlay plays dynamo's image alerts one at a time
-- from a queue kept here, so it survives restarts of either binary and an
-- overlay reloaded mid-queue plays nothing it already showed.
--
-- The queue is filled by a trigger when a request's alert is confirmed
-- (alerted_at is set), whichever process did it; dynamo-server hands the
-- entries out in order and records what was shown.

CREATE TABLE dynamo.overlay_alert (
    id bigserial PRIMARY KEY,
    image_request_id uuid NOT NULL REFERENCES dynamo.image_request (id) ON DELETE CASCADE,
    replay_of bigint REFERENCES dynamo.overlay_alert (id) ON DELETE SET NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    outcome text,
    CONSTRAINT overlay_alert_outcome_known CHECK (
        outcome IS NULL OR outcome IN ('played', 'skipped', 'cleared', 'interrupted')
    ),
    CONSTRAINT overlay_alert_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL))
);

COMMENT ON TABLE dynamo.overlay_alert IS 'The overlay''s play-out queue: one row per time an alert is to air, in id order.';
COMMENT ON COLUMN dynamo.overlay_alert.id IS 'Queue position: entries air in ascending id.';
COMMENT ON COLUMN dynamo.overlay_alert.image_request_id IS 'The request whose image the alert shows.';
COMMENT ON COLUMN dynamo.overlay_alert.replay_of IS 'The entry this one replays (an admin asked to show it again); NULL for the first airing.';
COMMENT ON COLUMN dynamo.overlay_alert.enqueued_at IS 'When the entry joined the queue.';
COMMENT ON COLUMN dynamo.overlay_alert.started_at IS 'When an overlay took it on air; NULL while it waits.';
COMMENT ON COLUMN dynamo.overlay_alert.finished_at IS 'When it left the air (or the queue); NULL while waiting or on air.';
COMMENT ON COLUMN dynamo.overlay_alert.outcome IS 'played, skipped (by an admin), cleared (removed from the queue unplayed) or interrupted (the overlay reloaded while it was on air).';

-- Each confirmed alert joins the queue once, however often the trigger runs.
CREATE UNIQUE INDEX overlay_alert_first_airing ON dynamo.overlay_alert (image_request_id)
    WHERE replay_of IS NULL;
CREATE INDEX overlay_alert_waiting ON dynamo.overlay_alert (id) WHERE finished_at IS NULL;

CREATE TABLE dynamo.overlay_control (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    paused boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dynamo.overlay_control DEFAULT VALUES;

COMMENT ON TABLE dynamo.overlay_control IS 'Playback controls of the overlay: one row.';
COMMENT ON COLUMN dynamo.overlay_control.singleton IS 'Always true: there is one row.';
COMMENT ON COLUMN dynamo.overlay_control.paused IS 'While true, overlays take nothing new on air; alerts keep queueing.';
COMMENT ON COLUMN dynamo.overlay_control.changed_at IS 'When playback was last paused or resumed.';

CREATE TABLE dynamo.overlay_token (
    id uuid PRIMARY KEY,
    label text NOT NULL,
    token_sha256 bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

COMMENT ON TABLE dynamo.overlay_token IS 'Read-only tokens an OBS overlay puts in its URL: they show alerts and nothing else.';
COMMENT ON COLUMN dynamo.overlay_token.id IS 'Names the token in the API (to revoke it); not secret.';
COMMENT ON COLUMN dynamo.overlay_token.label IS 'What the admin called it (which OBS, which scene).';
COMMENT ON COLUMN dynamo.overlay_token.token_sha256 IS 'SHA-256 of the token; the token itself is shown once, at creation.';
COMMENT ON COLUMN dynamo.overlay_token.created_at IS 'When it was created.';
COMMENT ON COLUMN dynamo.overlay_token.revoked_at IS 'When an admin revoked it; a revoked token opens nothing.';

-- A confirmed alert joins the queue.
CREATE FUNCTION dynamo.overlay_enqueue_alert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.alerted_at IS NOT NULL AND OLD.alerted_at IS NULL THEN
        INSERT INTO dynamo.overlay_alert (image_request_id) VALUES (NEW.id)
        ON CONFLICT (image_request_id) WHERE replay_of IS NULL DO NOTHING;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION dynamo.overlay_enqueue_alert() IS
    'Queues a request''s alert for the overlay when its alerted_at is first set.';

CREATE TRIGGER image_request_overlay_enqueue
    AFTER UPDATE OF alerted_at ON dynamo.image_request
    FOR EACH ROW EXECUTE FUNCTION dynamo.overlay_enqueue_alert();

-- Overlays wake on any change of the queue, its controls or the tokens.
CREATE FUNCTION dynamo.overlay_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dynamo_overlay', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION dynamo.overlay_notify() IS
    'Announces a change of the overlay queue, controls or tokens on channel dynamo_overlay (payload: the table name).';

CREATE TRIGGER overlay_alert_notify AFTER INSERT OR UPDATE ON dynamo.overlay_alert
    FOR EACH STATEMENT EXECUTE FUNCTION dynamo.overlay_notify();
CREATE TRIGGER overlay_control_notify AFTER UPDATE ON dynamo.overlay_control
    FOR EACH STATEMENT EXECUTE FUNCTION dynamo.overlay_notify();
CREATE TRIGGER overlay_token_notify AFTER INSERT OR UPDATE ON dynamo.overlay_token
    FOR EACH STATEMENT EXECUTE FUNCTION dynamo.overlay_notify();
