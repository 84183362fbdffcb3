-- Models retire (SPEC §3), and dynamo must outlive them: what the fleet has
-- learned about the models it is configured with lives here, so one process
-- reading `GET /models`, or one call answered `404 model_not_found`, teaches
-- every process at once.

CREATE TABLE dynamo.model (
    id text PRIMARY KEY,
    configured_as text,
    preference integer,
    shutdown_date date,
    listed_at timestamptz,
    gone_at timestamptz,
    gone_reason text
);

COMMENT ON TABLE dynamo.model IS 'Image and chat models the fleet is configured with or has heard of, with their lifecycle.';
COMMENT ON COLUMN dynamo.model.id IS 'The model id as the API names it (e.g. gpt-image-2.6-sunburst).';
COMMENT ON COLUMN dynamo.model.configured_as IS 'The setting that names this model (OPENAI_IMAGE_MODEL or OPENAI_CHAT_MODEL), null when no process is configured with it.';
COMMENT ON COLUMN dynamo.model.preference IS 'Its place in that setting''s chain, 0 first.';
COMMENT ON COLUMN dynamo.model.shutdown_date IS 'The shutdown date GET /models announced, null when none is announced or the server does not say.';
COMMENT ON COLUMN dynamo.model.listed_at IS 'When GET /models last listed it.';
COMMENT ON COLUMN dynamo.model.gone_at IS 'When the fleet learned the model is shut down (not listed, or answered model_not_found); null while usable.';
COMMENT ON COLUMN dynamo.model.gone_reason IS 'How the fleet learned it is gone.';

CREATE TABLE dynamo.model_parameter_refusal (
    model text NOT NULL,
    parameter text NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now(),
    detail text NOT NULL,
    PRIMARY KEY (model, parameter)
);

COMMENT ON TABLE dynamo.model_parameter_refusal IS 'Optional request parameters a model answered 400 to: they are no longer sent to it, by any process.';
COMMENT ON COLUMN dynamo.model_parameter_refusal.model IS 'The model that refused the parameter.';
COMMENT ON COLUMN dynamo.model_parameter_refusal.parameter IS 'The parameter as the API names it in error.param (e.g. background).';
COMMENT ON COLUMN dynamo.model_parameter_refusal.refused_at IS 'When it was first refused.';
COMMENT ON COLUMN dynamo.model_parameter_refusal.detail IS 'The API''s error message, for operators.';

CREATE TABLE dynamo.model_catalogue_check (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    checked_at timestamptz NOT NULL,
    checked_by text NOT NULL
);

COMMENT ON TABLE dynamo.model_catalogue_check IS 'One row: when GET /models was last read, so the fleet reads it once an hour, not once per process.';
COMMENT ON COLUMN dynamo.model_catalogue_check.id IS 'Always true: the table holds a single row.';
COMMENT ON COLUMN dynamo.model_catalogue_check.checked_at IS 'When the last check was claimed.';
COMMENT ON COLUMN dynamo.model_catalogue_check.checked_by IS 'The process (lease owner id) that claimed it.';
