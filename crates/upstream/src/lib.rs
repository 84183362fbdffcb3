//! The services dynamo calls, each behind one small trait with one real
//! implementation (plus the built-in placeholder and filesystem ones that let
//! dynamo run without the cloud). Tests drive the real implementations against
//! fake servers that speak the real wire format.
//!
//! Every failure is an [`UpstreamError`] that says what the service did (or
//! failed to do); the pipeline's retry verdict decides what follows from it.
//! A ledger's calls answer a [`LedgerError`], which may instead be dynamo's
//! own database, where a ledger keeps its records.

mod api_error;
mod auth;
mod credentials;
mod derived_name;
mod discord;
mod download;
mod error;
mod ledger;
mod model_name;
mod models;
mod on_answer;
mod openai;
mod placeholder;
mod rate_budget;
mod redact;
mod retry_hint;
mod service;
mod storage;
mod token_cache;

use async_trait::async_trait;
use dynamo_wire::{Color, Output, StyleId, Viewer};
use uuid::Uuid;

pub use auth::AuthClient;
pub use derived_name::name_from_subject;
pub use discord::DiscordWebhooks;
pub use error::{LedgerError, UpstreamError};
pub use ledger::HttpLedger;
pub use model_name::{Naming, is_openai, looks_like_ollama};
pub use models::{
    CatalogueError, ImageParameter, ImageUsage, ListedModel, MemoryCatalogue, ModelCatalogue,
    ModelChain, ModelParameters, ModelPrice, ModelPrices, PARAMETER_TABLE, PRICE_TABLE, PricedBy,
};
pub use openai::{ModelCheckError, OpenAi, OpenAiSettings, SPEECH_FORMATS, SpeechSettings};
pub use placeholder::Placeholder;
pub use rate_budget::{RateBudget, with_rate_budget};
pub use redact::redact_url;
pub use service::ServiceId;
pub use storage::{FsStorage, S3Settings, S3Storage, StorageBackend};

/// One image to generate.
#[derive(Debug, Clone)]
pub struct ImageJob {
    pub prompt: String,
    /// What the image becomes: a cutout asks for the model's transparency
    /// where it has it.
    pub output: Output,
    /// The style's own image settings (none: the provider's).
    pub quality: Option<String>,
    pub size: Option<String>,
    /// The request's colour, when it has one.
    pub color: Option<Color>,
    /// The viewer's Twitch user id, passed to the API as `user` for abuse tracking.
    pub user: String,
}

/// An image as the provider answered it, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedImage {
    /// The encoded image (PNG, JPEG or WEBP).
    pub bytes: Vec<u8>,
    /// The model that drew it.
    pub model: String,
    /// The answer's token counts, when it carried them.
    pub usage: Option<ImageUsage>,
    /// What it cost, in USD, and how that was found.
    pub cost_usd: f64,
    pub priced_by: PricedBy,
}

impl GeneratedImage {
    /// An image that cost nothing (drawn locally).
    pub fn free(bytes: Vec<u8>, model: &str) -> Self {
        Self {
            bytes,
            model: model.to_owned(),
            usage: None,
            cost_usd: 0.0,
            priced_by: PricedBy::Free,
        }
    }
}

/// Makes images from prompts.
#[async_trait]
pub trait ImageProvider: Send + Sync {
    /// The service's id: it keys the service's holds (and is the name its
    /// `UpstreamError`s carry), so two providers hold on their own.
    fn service(&self) -> ServiceId;
    /// Shown at start-up so operators know what will be billed.
    fn describe(&self) -> String;
    async fn generate(&self, job: &ImageJob) -> Result<GeneratedImage, UpstreamError>;
}

/// Names friends.
#[async_trait]
pub trait NameProvider: Send + Sync {
    /// The service's id: it keys the service's holds (and is the name its
    /// `UpstreamError`s carry), so two providers hold on their own.
    fn service(&self) -> ServiceId;
    /// The prompt sent for `subject`, as recorded in the `answer` table.
    fn prompt(&self, subject: &str) -> String;
    async fn name(&self, subject: &str, user: &str) -> Result<String, UpstreamError>;
}

/// Screens prompts before an image is paid for.
#[async_trait]
pub trait Moderator: Send + Sync {
    /// The service's id: it keys the service's holds (and is the name its
    /// `UpstreamError`s carry), so two providers hold on their own.
    fn service(&self) -> ServiceId;
    /// `Err(UpstreamError::Inadmissible)` when the prompt is flagged.
    async fn screen(&self, prompt: &str) -> Result<(), UpstreamError>;
}

/// Viewers' points at the ledger service. Its calls fail with a
/// [`LedgerError`]: the service's answer, or dynamo's own database.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Creates a pending debit; `Err(UpstreamError::NotEnoughPoints)` on 409.
    async fn debit(
        &self,
        viewer: &Viewer,
        request_id: Uuid,
        style: &StyleId,
        points: u32,
    ) -> Result<Uuid, LedgerError>;
    /// Makes the debit final. Already accepted counts as done.
    async fn accept(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError>;
    /// Cancels the debit, returning the points. Already rejected counts as done.
    async fn refund(&self, viewer: &Viewer, flow_id: Uuid) -> Result<(), LedgerError>;
    /// A request that ended before its debit (the content rules or
    /// moderation refused it): gives back what the ledger held for it
    /// before any debit. Golden VCR's ledger holds nothing then; a Twitch
    /// redemption's points are held from the moment it was redeemed, so it
    /// is CANCELED.
    async fn release_undebited(
        &self,
        _viewer: &Viewer,
        _request_id: Uuid,
    ) -> Result<(), LedgerError> {
        Ok(())
    }
    /// The viewer's pending image debits of `points` created since `since`,
    /// oldest first: how a debit whose answer never reached us is found
    /// (`GET /history`, the ledger's only lookup).
    async fn pending_debits_since(
        &self,
        viewer: &Viewer,
        since: chrono::DateTime<chrono::Utc>,
        points: u32,
    ) -> Result<Vec<Uuid>, LedgerError>;
    /// Why the debit was given back by someone else meanwhile (a moderator
    /// cancelling a redemption on Twitch), if it was: its request is then
    /// withdrawn, neither bought nor aired. Ledgers where only dynamo
    /// settles debits never withdraw one.
    async fn withdrawn(&self, _flow_id: Uuid) -> Result<Option<String>, LedgerError> {
        Ok(None)
    }
}

/// A caption read aloud, as the speech service answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenCaption {
    /// The encoded audio.
    pub bytes: Vec<u8>,
    /// Its MIME type (`audio/mpeg` for mp3) and file extension.
    pub content_type: &'static str,
    pub extension: &'static str,
    /// The model that spoke it.
    pub model: String,
    /// What it cost, in USD, and how that was found.
    pub cost_usd: f64,
    pub priced_by: PricedBy,
}

/// Reads alert captions aloud (text to speech).
#[async_trait]
pub trait Speech: Send + Sync {
    /// The service's id: the holds it looks at before speaking are its.
    fn service(&self) -> ServiceId;
    /// One bounded attempt: it answers within its own timeout, whatever
    /// the service does, so a caption never delays its alert for long.
    async fn speak(&self, text: &str, user: &str) -> Result<SpokenCaption, UpstreamError>;
}

/// Where finished images are kept.
#[async_trait]
pub trait Storage: Send + Sync {
    fn describe(&self) -> String;
    /// Stores a public object and returns its public URL. Putting the same key
    /// again overwrites it, so a retried upload is harmless.
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, UpstreamError>;
}
