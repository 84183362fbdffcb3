-- Content rules (issue 29): the streamer's blocklist, a per-viewer cooldown
-- and a per-viewer cap per broadcast, applied to every request (Golden VCR,
-- admin, Twitch) before anything is paid for. Every consumer reads them for
-- each new request, so a change applies to the next request that arrives.

CREATE TABLE dynamo.content_rules (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    cooldown_seconds integer NOT NULL DEFAULT 0 CHECK (cooldown_seconds BETWEEN 0 AND 86400),
    max_per_broadcast integer NOT NULL DEFAULT 0 CHECK (max_per_broadcast BETWEEN 0 AND 10000),
    broadcast_window_minutes integer NOT NULL DEFAULT 720
        CHECK (broadcast_window_minutes BETWEEN 1 AND 10080),
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO dynamo.content_rules DEFAULT VALUES;

COMMENT ON TABLE dynamo.content_rules IS 'The content rules'' numbers: one row, changed through PUT /rules.';
COMMENT ON COLUMN dynamo.content_rules.id IS 'Always 1: one set of rules.';
COMMENT ON COLUMN dynamo.content_rules.cooldown_seconds IS 'A viewer''s request within this many seconds of their previous one (not refused) is rejected; 0: no cooldown.';
COMMENT ON COLUMN dynamo.content_rules.max_per_broadcast IS 'A viewer''s requests per broadcast beyond this many (not refused) are rejected; 0: no cap.';
COMMENT ON COLUMN dynamo.content_rules.broadcast_window_minutes IS 'What counts as one broadcast for a request without a broadcast_id (Twitch, admin): the last this many minutes.';
COMMENT ON COLUMN dynamo.content_rules.updated_at IS 'Last change.';

CREATE TABLE dynamo.blocked_phrase (
    key text PRIMARY KEY,
    phrase text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.blocked_phrase IS 'The blocklist: words and phrases a request''s subject must not contain.';
COMMENT ON COLUMN dynamo.blocked_phrase.key IS 'The phrase as matched (lower case, no accents, leetspeak undone, one space between words): two spellings of one phrase are one entry.';
COMMENT ON COLUMN dynamo.blocked_phrase.phrase IS 'The phrase as the streamer typed it.';
COMMENT ON COLUMN dynamo.blocked_phrase.added_at IS 'When it was added.';

CREATE TABLE dynamo.rules_verdict (
    request_id uuid PRIMARY KEY REFERENCES dynamo.image_request (id) ON DELETE CASCADE,
    verdict text NOT NULL CHECK (verdict IN ('passed', 'bypassed', 'blocklist', 'cooldown', 'cap')),
    decided_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.rules_verdict IS 'How the content rules judged each request, once, before anything was paid for: passed, refused (which rule), or let through by an admin (bypassed). A request with no row has not been judged yet (or came before the rules).';
COMMENT ON COLUMN dynamo.rules_verdict.request_id IS 'The request.';
COMMENT ON COLUMN dynamo.rules_verdict.verdict IS 'passed; bypassed (an admin asked); or the rule it broke: blocklist, cooldown, cap.';
COMMENT ON COLUMN dynamo.rules_verdict.decided_at IS 'When the rules were applied.';

-- An intake any consumer can run (issue 29): with TWITCH_INTAKE=true on
-- every consumer, exactly one holds the EventSub session at a time, through
-- this lease. Each take bumps the fence, and a renewal names the fence it
-- holds: a holder that was taken over cannot renew, and drops its socket.

CREATE TABLE dynamo.intake_lease (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    holder text NOT NULL,
    fence bigint NOT NULL DEFAULT 1,
    expires_at timestamptz NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.intake_lease IS 'Who runs the Twitch intake (the EventSub session): one row, one holder at a time.';
COMMENT ON COLUMN dynamo.intake_lease.id IS 'Always 1: one intake per channel.';
COMMENT ON COLUMN dynamo.intake_lease.holder IS 'The consumer holding it (host, pid, per-start id).';
COMMENT ON COLUMN dynamo.intake_lease.fence IS 'Bumped on every take: a renewal must name the current fence, so a holder that was taken over learns it lost the lease.';
COMMENT ON COLUMN dynamo.intake_lease.expires_at IS 'Unless renewed by then, any consumer may take the intake over.';
COMMENT ON COLUMN dynamo.intake_lease.taken_at IS 'When the current holder took it.';
