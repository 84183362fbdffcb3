-- Try it (issue 28): an admin tries a style on the page before viewers see
-- it. A try-out is a request like any other — recorded, generated,
-- post-processed and stored by the normal pipeline, its spend counted — but
-- it is never aired: no alert on onscreen-events (so never on the overlay),
-- no approval, no generation-results, no Discord, not in the gallery, and
-- free of charge. Until now where a request came from was not recorded
-- (an admin's shows only as free_of_charge or a bypassed content-rules
-- verdict, a redemption as a row of twitch_redemption); this flag is the
-- one kind the pipeline must know to behave differently.

ALTER TABLE dynamo.image_request ADD COLUMN trial boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN dynamo.image_request.trial IS 'An admin''s try-out of a style (POST /styles/{style}/try): made like any request but never aired, never charged, no result published; it goes from stored straight to succeeded.';

COMMENT ON COLUMN dynamo.image_request.result_published_at IS 'When the broker confirmed the generation-results message; for a try-out (trial), which publishes none, when it ended.';
