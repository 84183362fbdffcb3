-- Admission to a rate limit in one round trip (SPEC §6.5), and at a cost that
-- does not grow with the number of calls in the window.
--
-- The consumer used to run these steps as seven statements in a transaction
-- holding the limiter's advisory lock, so every process queued behind the
-- round trips of the one admitted; and both the DELETE and the ORDER BY
-- scanned every recent call (2 ms each with 8,000 calls in a minute's window).
-- Now the index makes the DELETE a range walk, a count per limiter answers
-- "is there room" without looking at the calls, and the function makes the
-- whole admission one statement.

CREATE INDEX rate_limit_call_counts_until_idx
    ON dynamo.rate_limit_call (limiter, (coalesce(finished_at, expires_at)));

CREATE TABLE dynamo.rate_limit_count (
    limiter text PRIMARY KEY,
    calls bigint NOT NULL
);

COMMENT ON TABLE dynamo.rate_limit_count IS 'How many calls each limiter has in rate_limit_call, kept by triggers on it (whoever writes), so admission need not count them.';
COMMENT ON COLUMN dynamo.rate_limit_count.limiter IS 'The limiter.';
COMMENT ON COLUMN dynamo.rate_limit_count.calls IS 'Its rows in rate_limit_call.';

-- Statement-level triggers: one upsert per statement, however many rows, and
-- they hold for every writer (consumers older than this migration included).
CREATE FUNCTION dynamo.rate_limit_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dynamo.rate_limit_count AS c (limiter, calls)
    SELECT limiter, count(*) FROM added GROUP BY limiter
    ON CONFLICT (limiter) DO UPDATE SET calls = c.calls + EXCLUDED.calls;
    RETURN NULL;
END
$$;

CREATE FUNCTION dynamo.rate_limit_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dynamo.rate_limit_count AS c SET calls = greatest(c.calls - gone.calls, 0)
    FROM (SELECT limiter, count(*) AS calls FROM removed GROUP BY limiter) AS gone
    WHERE c.limiter = gone.limiter;
    RETURN NULL;
END
$$;

CREATE FUNCTION dynamo.rate_limit_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dynamo.rate_limit_count;
    RETURN NULL;
END
$$;

CREATE TRIGGER rate_limit_call_added AFTER INSERT ON dynamo.rate_limit_call
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION dynamo.rate_limit_count_added();
CREATE TRIGGER rate_limit_call_removed AFTER DELETE ON dynamo.rate_limit_call
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION dynamo.rate_limit_count_removed();
CREATE TRIGGER rate_limit_call_truncated AFTER TRUNCATE ON dynamo.rate_limit_call
    FOR EACH STATEMENT EXECUTE FUNCTION dynamo.rate_limit_count_truncated();

INSERT INTO dynamo.rate_limit_count (limiter, calls)
SELECT limiter, count(*) FROM dynamo.rate_limit_call GROUP BY limiter;

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
    v_calls bigint;
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
    SELECT calls INTO v_calls FROM dynamo.rate_limit_count WHERE limiter = p_limiter;

    IF coalesce(v_calls, 0) >= p_limit THEN
        -- Full, by the count: the call whose slot must free before one more fits.
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
    END IF;

    INSERT INTO dynamo.rate_limit_call (limiter, called_at, expires_at)
    VALUES (p_limiter, v_now, v_now + p_max_call)
    RETURNING id INTO call_id;
END
$$;

COMMENT ON FUNCTION dynamo.rate_limit_try_acquire IS 'Admits one call to a fleet-wide rate limit, or says how long to wait.';
