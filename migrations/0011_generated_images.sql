-- An image is bought once (SPEC §6.9): what the image service answered is kept
-- here from the moment it arrives until the processed image is stored, so a
-- request resumed after a crash (or with storage down) continues from it
-- instead of paying for another.

CREATE TABLE dynamo.generated_image (
    image_request_id uuid PRIMARY KEY REFERENCES dynamo.image_request (id) ON DELETE CASCADE,
    bytes bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE dynamo.generated_image IS 'The image service''s answer for a request, kept until the processed image is stored or the request ends.';
COMMENT ON COLUMN dynamo.generated_image.image_request_id IS 'The request the image was generated for.';
COMMENT ON COLUMN dynamo.generated_image.bytes IS 'The encoded image as the service answered it (PNG, JPEG or WEBP).';
COMMENT ON COLUMN dynamo.generated_image.received_at IS 'When the answer arrived.';
