//! Building the image prompt from a request (SPEC §3): Golden VCR's
//! templates live with their seeding, in the store (both binaries seed them).

pub use dynamo_store::golden_vcr::{DEFAULT_FRIEND, DEFAULT_GHOST, PromptTemplates};
