-- Admission to a rate limit in one round trip (SPEC §6.5), and at a cost that
-- does not grow with the number of calls in the window.
--
-- The consumer used to run these steps as seven statements in a transaction
-- holding the limiter's advisory lock, so every process queued behind the
-- round trips of the one admitted; and both the DELETE and the ORDER BY
-- scanned every recent call (2 ms each with 8,000 calls in a minute's window).
-- The index below turns them into index range walks; the function makes the
-- whole admission one statement.

CREATE INDEX rate_limit_call_counts_until_idx
    ON dynamo.rate_limit_call (limiter, (coalesce(finished_at, expires_at)));

-- Admits a call now (call_id set), or says how long to wait before asking
-- again (wait_ms set; in_flight when the call blocking this one has not
-- answered yet, so it may free its slot sooner than wait_ms says).
CREATE FUNCTION dynamo.rate_limit_try_acquire(
    p_limiter text,
    p_limit bigint,
    p_window interval,
    p_max_call interval,
    OUT call_id bigint,
    OUT wait_ms double precision,
    OUT in_flight boolean
) LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_paused_until timestamptz;
    v_finished timestamptz;
    v_expires timestamptz;
BEGIN
    in_flight := false;
    PERFORM pg_advisory_xact_lock(hashtext('dynamo.rate_limit.' || p_limiter));
    v_now := clock_timestamp();

    SELECT until INTO v_paused_until
    FROM dynamo.rate_limit_pause
    WHERE limiter = p_limiter AND until > v_now;
    IF FOUND THEN
        wait_ms := extract(epoch FROM v_paused_until - v_now) * 1000;
        RETURN;
    END IF;

    -- A call counts until a window after it finished (or after it expired).
    DELETE FROM dynamo.rate_limit_call
    WHERE limiter = p_limiter AND coalesce(finished_at, expires_at) <= v_now - p_window;

    -- The call whose slot must free before one more fits.
    SELECT finished_at, expires_at INTO v_finished, v_expires
    FROM dynamo.rate_limit_call
    WHERE limiter = p_limiter
    ORDER BY coalesce(finished_at, expires_at) DESC
    OFFSET p_limit - 1 LIMIT 1;
    IF FOUND THEN
        in_flight := v_finished IS NULL;
        wait_ms := extract(epoch FROM coalesce(v_finished, v_expires) + p_window - v_now) * 1000;
        RETURN;
    END IF;

    INSERT INTO dynamo.rate_limit_call (limiter, called_at, expires_at)
    VALUES (p_limiter, v_now, v_now + p_max_call)
    RETURNING id INTO call_id;
END
$$;

COMMENT ON FUNCTION dynamo.rate_limit_try_acquire IS 'Admits one call to a fleet-wide rate limit, or says how long to wait.';
