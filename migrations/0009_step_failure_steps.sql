-- The steps whose failures are logged, as the consumer names them: 0007's
-- comment listed names it never used, and retries made in place (upload,
-- accept, refund, result) are logged too now.

COMMENT ON COLUMN dynamo.step_failure.step IS 'The step that failed: debit, name, moderation, image, alert (retried by scheduling), or upload, accept, refund, result (retried in place).';
