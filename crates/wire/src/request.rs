//! `generation-requests`: what a viewer asked for (SPEC §2).

use crate::{Color, DisplayName, Style, StyleId, Subject, TwitchUserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Larger messages are refused before parsing. A real request is a few hundred
/// bytes; the limit only has to keep a runaway publisher from costing memory.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A viewer's request for a generated image, exactly as the Golden VCR pipeline
/// publishes it. Unknown extra fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRequest")]
pub struct GenerationRequest {
    #[serde(rename = "type")]
    pub kind: RequestKind,
    pub viewer: Viewer,
    /// Absent in hand-made requests; all zeros means "not during a broadcast".
    #[serde(default)]
    pub state: BroadcastState,
    pub payload: ImagePayload,
}

/// The kinds of request; `payload`'s shape depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    Image,
}

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Viewer {
    pub twitch_user_id: TwitchUserId,
    pub twitch_display_name: DisplayName,
}

impl Viewer {
    /// A viewer from text given apart (a stored request, a Twitch
    /// redemption), validated as a message's `viewer` is.
    pub fn parse(twitch_user_id: &str, twitch_display_name: &str) -> Result<Self, RequestError> {
        let field = |field: &str, error: crate::TextError| RequestError::Field {
            field: format!("viewer.{field}"),
            problem: error.to_string(),
        };
        Ok(Self {
            twitch_user_id: TwitchUserId::parse(twitch_user_id)
                .map_err(|e| field("twitch_user_id", e))?,
            twitch_display_name: DisplayName::parse(twitch_display_name)
                .map_err(|e| field("twitch_display_name", e))?,
        })
    }
}

/// Where on the stream the request was made. Zero values mean "none": they are
/// kept as they came so that re-serialising gives back the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BroadcastState {
    pub broadcast_id: i64,
    pub screening_id: Uuid,
    pub tape_id: i64,
}

impl BroadcastState {
    pub fn broadcast_id(&self) -> Option<i64> {
        (self.broadcast_id != 0).then_some(self.broadcast_id)
    }

    pub fn screening_id(&self) -> Option<Uuid> {
        (!self.screening_id.is_nil()).then_some(self.screening_id)
    }

    pub fn tape_id(&self) -> Option<i64> {
        (self.tape_id != 0).then_some(self.tape_id)
    }
}

/// What to draw: the style decides which inputs there are. Golden VCR's two
/// keep their exact shapes; any other style id takes a subject and, when
/// given, a colour ([`CustomInputs`]); whether that style exists, is enabled
/// and takes a colour is the style registry's to say, not the message's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagePayload {
    Ghost(GhostInputs),
    Friend(FriendInputs),
    Custom(StyleId, CustomInputs),
}

/// `{"style": <id>, "inputs": {...}}`, as a message carries it.
impl Serialize for ImagePayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut payload = serializer.serialize_struct("ImagePayload", 2)?;
        payload.serialize_field("style", &self.style())?;
        match self {
            ImagePayload::Ghost(inputs) => payload.serialize_field("inputs", inputs)?,
            ImagePayload::Friend(inputs) => payload.serialize_field("inputs", inputs)?,
            ImagePayload::Custom(_, inputs) => payload.serialize_field("inputs", inputs)?,
        }
        payload.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhostInputs {
    pub subject: Subject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendInputs {
    pub color: Color,
    pub subject: Subject,
}

/// The inputs of a streamer-defined style: a subject, and a colour when the
/// style takes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomInputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    pub subject: Subject,
}

impl ImagePayload {
    pub fn style(&self) -> StyleId {
        match self {
            ImagePayload::Ghost(_) => Style::Ghost.into(),
            ImagePayload::Friend(_) => Style::Friend.into(),
            ImagePayload::Custom(style, _) => style.clone(),
        }
    }

    pub fn subject(&self) -> &Subject {
        match self {
            ImagePayload::Ghost(inputs) => &inputs.subject,
            ImagePayload::Friend(inputs) => &inputs.subject,
            ImagePayload::Custom(_, inputs) => &inputs.subject,
        }
    }

    pub fn color(&self) -> Option<Color> {
        match self {
            ImagePayload::Ghost(_) => None,
            ImagePayload::Friend(inputs) => Some(inputs.color),
            ImagePayload::Custom(_, inputs) => inputs.color,
        }
    }

    /// A style and its `inputs` as JSON (as stored in the database, or an
    /// HTTP body), validated like a message's payload; a bad input is named
    /// `payload.inputs.…`.
    pub fn from_inputs(style: &StyleId, inputs: serde_json::Value) -> Result<Self, RequestError> {
        const PREFIX: &str = "payload.inputs";
        Ok(match style.builtin() {
            Some(Style::Ghost) => ImagePayload::Ghost(part(PREFIX, inputs)?),
            Some(Style::Friend) => ImagePayload::Friend(part(PREFIX, inputs)?),
            None => ImagePayload::Custom(style.clone(), part(PREFIX, inputs)?),
        })
    }

    /// The `inputs` object as it appears on the wire (and in the database).
    pub fn inputs_json(&self) -> serde_json::Value {
        let value = match self {
            ImagePayload::Ghost(inputs) => serde_json::to_value(inputs),
            ImagePayload::Friend(inputs) => serde_json::to_value(inputs),
            ImagePayload::Custom(_, inputs) => serde_json::to_value(inputs),
        };
        // Serialising these plain structs of strings cannot fail.
        value.unwrap_or_default()
    }
}

/// Why a message is not an acceptable request. Each variant says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("message is empty")]
    Empty,
    #[error("message is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("message is not valid JSON: {0}")]
    NotJson(String),
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
}

impl RequestError {
    /// The dotted path of the offending field, when one field is to blame.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl GenerationRequest {
    /// Parses and validates a message body.
    pub fn from_slice(body: &[u8]) -> Result<Self, RequestError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(RequestError::Empty);
        }
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(RequestError::TooLarge {
                size: body.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let mut json = serde_json::Deserializer::from_slice(body);
        let raw: RawRequest =
            serde_path_to_error::deserialize(&mut json).map_err(|e| field_error("", e))?;
        json.end()
            .map_err(|e| RequestError::NotJson(e.to_string()))?;
        raw.try_into()
    }

    /// Validates an already-parsed JSON value (e.g. an HTTP body) by the same rules.
    pub fn from_value(value: serde_json::Value) -> Result<Self, RequestError> {
        let raw: RawRequest =
            serde_path_to_error::deserialize(value).map_err(|e| field_error("", e))?;
        raw.try_into()
    }

    /// A request made from values already valid (a stored request, a Twitch
    /// redemption): the one place besides parsing that gives it its `type`.
    pub fn new(viewer: Viewer, state: BroadcastState, payload: ImagePayload) -> Self {
        Self {
            kind: RequestKind::Image,
            viewer,
            state,
            payload,
        }
    }

    /// A request from its parts given apart as JSON (an HTTP body), validated
    /// by the same rules and in the same order as a message, each bad field
    /// named as in a message (`viewer.twitch_user_id`, `payload.style`,
    /// `payload.inputs.subject`).
    pub fn from_parts(
        viewer: serde_json::Value,
        state: Option<serde_json::Value>,
        style: &str,
        inputs: serde_json::Value,
    ) -> Result<Self, RequestError> {
        let style: StyleId = part("payload.style", serde_json::Value::from(style))?;
        let state = match state {
            Some(state) => part("state", state)?,
            None => BroadcastState::default(),
        };
        let viewer = part("viewer", viewer)?;
        let payload = ImagePayload::from_inputs(&style, inputs)?;
        Ok(Self::new(viewer, state, payload))
    }

    pub fn style(&self) -> StyleId {
        self.payload.style()
    }

    pub fn subject(&self) -> &Subject {
        self.payload.subject()
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        // A struct of strings, numbers and UUIDs always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The first stage of parsing: everything but the style-dependent inputs,
/// which are kept as JSON until the style is known. (serde's adjacently tagged
/// enums would do this in one go, but lose the path of a bad input field.)
#[derive(Deserialize)]
struct RawRequest {
    #[serde(rename = "type")]
    kind: RequestKind,
    viewer: Viewer,
    #[serde(default)]
    state: BroadcastState,
    payload: RawPayload,
}

#[derive(Deserialize)]
struct RawPayload {
    style: StyleId,
    inputs: serde_json::Value,
}

impl TryFrom<RawRequest> for GenerationRequest {
    type Error = RequestError;

    fn try_from(raw: RawRequest) -> Result<Self, Self::Error> {
        let payload = ImagePayload::from_inputs(&raw.payload.style, raw.payload.inputs)?;
        Ok(Self {
            kind: raw.kind,
            viewer: raw.viewer,
            state: raw.state,
            payload,
        })
    }
}

/// One part of a request, given as JSON, its bad fields named under `prefix`.
fn part<T: serde::de::DeserializeOwned>(
    prefix: &str,
    value: serde_json::Value,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| field_error(prefix, e))
}

fn field_error(prefix: &str, error: serde_path_to_error::Error<serde_json::Error>) -> RequestError {
    let inner_path = error.path().to_string();
    let path = match (prefix, inner_path.as_str()) {
        ("", inner) => inner.to_owned(),
        (prefix, ".") => prefix.to_owned(),
        (prefix, inner) => format!("{prefix}.{inner}"),
    };
    let inner = error.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return RequestError::NotJson(inner.to_string());
    }
    let problem = strip_position(&inner.to_string());
    // serde reports a missing field against its parent object; name the field itself.
    if let Some(missing) = problem
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let field = if path == "." {
            missing.to_owned()
        } else {
            format!("{path}.{missing}")
        };
        return RequestError::Field {
            field,
            problem: "is required".to_owned(),
        };
    }
    RequestError::Field {
        field: if path == "." {
            "message".to_owned()
        } else {
            path
        },
        problem,
    }
}

/// serde_json appends " at line 1 column 42", which means nothing to a reader
/// once the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}
