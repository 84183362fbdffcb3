-- Every change of a request's state is announced on the channel
-- dynamo_request_events, whichever process made it, so dynamo-server can
-- stream live updates (Server-Sent Events) without polling.

CREATE FUNCTION dynamo.notify_request_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('dynamo_request_events', json_build_object(
            'id', NEW.id,
            'state', NEW.state,
            'style', NEW.style,
            'twitch_user_id', NEW.twitch_user_id,
            'updated_at', NEW.updated_at
        )::text);
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION dynamo.notify_request_change() IS
    'Announces a request''s new state on channel dynamo_request_events (JSON: id, state, style, twitch_user_id, updated_at).';

CREATE TRIGGER image_request_notify
    AFTER INSERT OR UPDATE OF state ON dynamo.image_request
    FOR EACH ROW EXECUTE FUNCTION dynamo.notify_request_change();

-- Event streams catch up from a moment in time after a reconnect.
CREATE INDEX image_request_updated_idx ON dynamo.image_request (updated_at);
