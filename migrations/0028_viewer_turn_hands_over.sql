-- A viewer's waiting requests hand the turn to the one whose turn it is.
--
-- 0024 made a viewer's requests start in the order they came: one that finds
-- an earlier request of the same viewer waiting gives its lease up and looks
-- again a moment later. But every waiting request was due again at a
-- random moment, and the scheduler claims due requests by that moment, not
-- by their age: with a burst of a hundred from one viewer, the one whose turn
-- it was kept being passed over by later ones that then stood aside, and the
-- burst crawled (measured by the chaos benchmark: about 30 requests a minute
-- for three bursting viewers, against 120 and more without the order). Now a
-- request that stands aside for an earlier one makes that earlier one due at
-- once, so the next claim takes it. Only the waiting branch changes: the
-- happy path is still one statement.
CREATE OR REPLACE FUNCTION dynamo.start_if_viewer_has_room(
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
    IF busy < cap THEN
        -- There is room, and an earlier request waits for it: the earliest
        -- waiting one is due now, if it only waits its turn (a retry's
        -- longer wait, after a failed debit, is kept: pulling it forward
        -- would hammer a service that is out).
        UPDATE dynamo.image_request r
        SET next_attempt_at = now()
        WHERE r.id = (
            SELECT w.id FROM dynamo.image_request w
            WHERE w.twitch_user_id = viewer AND w.finished_at IS NULL
              AND w.state = 'received'
              AND (w.lease_expires_at IS NULL OR w.lease_expires_at <= now())
            ORDER BY w.created_at, w.id
            LIMIT 1)
          AND r.next_attempt_at > now() AND r.next_attempt_at <= now() + later;
    END IF;
    RETURN false;
END
$$;
