-- Whether a request may start now under its viewer's cap, in one statement
-- (it took three: the viewer's lock, the count, the commit). The function
-- takes the viewer's advisory lock, then counts the viewer's other live
-- leases; as a VOLATILE function it reads each statement with a fresh
-- snapshot, so the count sees every request the lock's last holder let go.
-- A viewer's requests take their turns in the order they came: one that
-- waits to start while an earlier one of the same viewer waits too gives
-- its lease up as if over the cap. Over the cap the request gives its lease
-- up until `later`.
-- Returns true (room), false (it waits), or NULL (the lease was lost).
CREATE FUNCTION dynamo.start_if_viewer_has_room(
    request_id uuid, token uuid, viewer text, cap integer, later interval
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    busy bigint;
    earlier boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('dynamo.viewer.' || viewer));
    SELECT count(*) FILTER (WHERE r.lease_expires_at > now()),
           coalesce(bool_or(r.state = 'received'
               AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
               AND (r.created_at, r.id) < (me.created_at, me.id)), false)
    INTO busy, earlier
    FROM dynamo.image_request r, dynamo.image_request me
    WHERE me.id = request_id AND r.twitch_user_id = viewer AND r.id <> request_id
      AND r.finished_at IS NULL;
    IF busy < cap AND NOT earlier THEN
        RETURN true;
    END IF;
    UPDATE dynamo.image_request r
    SET next_attempt_at = now() + later,
        lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
    WHERE r.id = request_id AND r.lease_token = token;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN false;
END
$$;
