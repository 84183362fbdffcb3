//! Text to speech (`POST /audio/speech`, issue 30): an alert's caption read
//! aloud. The same client, key, answer cap and error sorting as the other
//! OpenAI calls, over a model chain of its own (`OPENAI_SPEECH_MODELS`).
//! OpenAI-compatible servers (LocalAI and others) serve the same route.
//!
//! The answer is the audio itself, in the format asked for. OpenAI's three
//! speech models (`gpt-4o-mini-tts`, `tts-1`, `tts-1-hd`) are announced to
//! shut down on 2027-01-06, with no successor on this endpoint: the chain
//! then answers `ModelsGone`, and alerts air without their spoken caption.

use super::{OpenAi, Outcome, SERVICE};
use crate::{PricedBy, ServiceId, Speech, SpokenCaption, UpstreamError};
use async_openai::types::audio::{CreateSpeechRequest, SpeechModel, SpeechResponseFormat, Voice};
use async_trait::async_trait;
use std::time::Duration;

/// The formats dynamo asks for: each one a browser source plays as a file
/// (`pcm` is raw samples with no header, so it is not offered).
pub const SPEECH_FORMATS: [&str; 5] = ["mp3", "opus", "aac", "flac", "wav"];

/// The API's longest input.
const MAX_INPUT_CHARS: usize = 4096;

/// `OPENAI_SPEECH_*`.
#[derive(Debug, Clone)]
pub struct SpeechSettings {
    /// `OPENAI_SPEECH_MODELS`: speech models in order of preference.
    pub models: crate::ModelChain,
    /// `OPENAI_SPEECH_VOICE`.
    pub voice: String,
    /// `OPENAI_SPEECH_FORMAT`: one of [`SPEECH_FORMATS`].
    pub format: String,
    /// `OPENAI_SPEECH_SPEED`: 0.25 to 4.0; none: the API's 1.0.
    pub speed: Option<f32>,
    /// `OPENAI_SPEECH_INSTRUCTIONS`: how to speak (not sent to `tts-1*`,
    /// which do not take it).
    pub instructions: Option<String>,
    /// `OPENAI_SPEECH_TIMEOUT`: the one attempt's bound.
    pub timeout: Duration,
}

/// USD per million input characters, by model-id prefix, first match wins
/// (OpenAI's pricing pages). `gpt-4o-mini-tts` bills $0.60 per million text
/// tokens and $12 per million audio tokens; OpenAI estimates that at $0.015
/// per minute of audio, about $15 per million characters of English speech.
/// A model matching no row (a local server's) costs nothing.
const PRICE_PER_MILLION_CHARS: &[(&str, f64)] = &[
    ("tts-1-hd", 30.0),
    ("tts-1", 15.0),
    ("gpt-4o-mini-tts", 15.0),
];

/// What speaking `chars` characters with `model` cost.
fn speech_cost(model: &str, chars: usize) -> (f64, PricedBy) {
    match PRICE_PER_MILLION_CHARS
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
    {
        Some((_, usd)) => (usd * chars as f64 / 1_000_000.0, PricedBy::PerImage),
        None => (0.0, PricedBy::Free),
    }
}

/// A format's MIME type and file extension (OpenAI's opus comes in Ogg).
fn file_type(format: &str) -> (&'static str, &'static str, SpeechResponseFormat) {
    match format {
        "opus" => ("audio/ogg", "ogg", SpeechResponseFormat::Opus),
        "aac" => ("audio/aac", "aac", SpeechResponseFormat::Aac),
        "flac" => ("audio/flac", "flac", SpeechResponseFormat::Flac),
        "wav" => ("audio/wav", "wav", SpeechResponseFormat::Wav),
        _ => ("audio/mpeg", "mp3", SpeechResponseFormat::Mp3),
    }
}

impl OpenAi {
    async fn speak_with(&self, text: &str, model: String) -> Outcome<SpokenCaption> {
        let settings = &self.settings.speech;
        let (content_type, extension, format) = file_type(&settings.format);
        let request = CreateSpeechRequest {
            input: text.to_owned(),
            model: SpeechModel::Other(model.clone()),
            voice: Voice::Other(settings.voice.clone()),
            instructions: settings
                .instructions
                .clone()
                .filter(|_| !model.starts_with("tts-1")),
            response_format: Some(format),
            speed: settings.speed,
            stream_format: None,
        };
        let answer = match self
            .call(self.client.audio().speech().create(request), &[])
            .await
        {
            Outcome::Done(answer) => answer,
            Outcome::ModelGone(detail) => return Outcome::ModelGone(detail),
            Outcome::ParameterRefused { detail, .. } => {
                return Outcome::Failed(UpstreamError::permanent(SERVICE, detail));
            }
            Outcome::Missing(detail) => return Outcome::Missing(detail),
            Outcome::Failed(error) => return Outcome::Failed(error),
        };
        if answer.bytes.is_empty() {
            return Outcome::Failed(UpstreamError::permanent(
                SERVICE,
                "the speech answer held no audio",
            ));
        }
        let (cost_usd, priced_by) = speech_cost(&model, text.chars().count());
        Outcome::Done(SpokenCaption {
            bytes: answer.bytes.to_vec(),
            content_type,
            extension,
            model,
            cost_usd,
            priced_by,
        })
    }
}

#[async_trait]
impl Speech for OpenAi {
    fn service(&self) -> ServiceId {
        SERVICE
    }

    async fn speak(&self, text: &str, _user: &str) -> Result<SpokenCaption, UpstreamError> {
        let text: String = text.chars().take(MAX_INPUT_CHARS).collect();
        let settings = &self.settings.speech;
        let chain = &settings.models;
        let spoken = self.on_chain(chain, |model| self.speak_with(&text, model));
        match tokio::time::timeout(settings.timeout, spoken).await {
            Ok(answer) => answer?.ok_or_else(|| {
                UpstreamError::permanent(
                    SERVICE,
                    format!(
                        "{} has no /audio/speech endpoint: check OPENAI_BASE_URL",
                        self.settings.base_url
                    ),
                )
            }),
            Err(_) => Err(UpstreamError::transient(
                SERVICE,
                format!(
                    "no speech within OPENAI_SPEECH_TIMEOUT ({:?})",
                    settings.timeout
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_priced_per_character_and_local_models_are_free() {
        let (usd, by) = speech_cost("tts-1-hd", 1_000_000);
        assert!((usd - 30.0).abs() < 1e-9 && by == PricedBy::PerImage);
        let (usd, _) = speech_cost("tts-1", 20);
        assert!((usd - 0.0003).abs() < 1e-12);
        assert_eq!(speech_cost("kokoro", 20), (0.0, PricedBy::Free));
    }

    #[test]
    fn each_format_is_a_file_a_browser_plays() {
        for format in SPEECH_FORMATS {
            let (content_type, extension, _) = file_type(format);
            assert!(content_type.starts_with("audio/"), "{format}");
            assert!(!extension.is_empty());
        }
        assert_eq!(file_type("opus").0, "audio/ogg");
    }
}
