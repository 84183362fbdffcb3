//! The messages dynamo exchanges with the rest of the Golden VCR backend.
//!
//! Every type here is the exact wire shape fixed by the other services (SPEC §2),
//! and parsing is validation: a value of [`GenerationRequest`] cannot hold an
//! empty subject, an unknown colour or a missing viewer. Malformed input is
//! reported as a [`RequestError`] naming the offending field.

mod alert;
mod blocklist;
mod color;
mod definition;
mod request;
mod result;
mod style;
mod text;

pub use alert::{CustomDetails, FriendDetails, GhostDetails, ImageAlert, OnscreenEvent};
pub use blocklist::{BlockedPhrase, Blocklist, MAX_PHRASE_CHARS, PhraseError};
pub use color::Color;
pub use definition::{
    DefinitionError, IMAGE_QUALITIES, IMAGE_SIZES, MAX_COUNT, MAX_DISPLAY_NAME_CHARS,
    MAX_REWARD_PROMPT_CHARS, MAX_REWARD_TITLE_CHARS, MAX_SOUND_CHARS, MAX_TEMPLATE_CHARS,
    OnAirSettings, RewardSettings, StyleDefinition, StyleSettings, check_prompt_template,
};
pub use request::{
    BroadcastState, CustomInputs, FriendInputs, GenerationRequest, GhostInputs, ImagePayload,
    MAX_MESSAGE_BYTES, RequestError, RequestKind, Viewer,
};
pub use result::{EndState, GenerationResult};
pub use style::{
    ColorInput, LEGACY_COMPLEMENT, Output, PLACEHOLDERS, Style, StyleId, StyleIdError,
    check_template, render,
};
pub use text::{DisplayName, MAX_TWITCH_FIELD_CHARS, Subject, TextError, TwitchUserId};
