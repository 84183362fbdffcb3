//! `generation-results`: one message per request when it ends, for services such
//! as the chatbot that tell the viewer what happened. dynamo defines this schema.

use crate::{StyleId, Viewer};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndState {
    /// The image was shown on stream and the points were debited.
    Succeeded,
    /// The prompt was inadmissible (content policy or moderation); points refunded.
    Rejected,
    /// Anything else that kept the request from completing; points refunded.
    Failed,
}

impl EndState {
    pub fn as_str(self) -> &'static str {
        match self {
            EndState::Succeeded => "succeeded",
            EndState::Rejected => "rejected",
            EndState::Failed => "failed",
        }
    }
}

impl fmt::Display for EndState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The final word on one request. Every field is always present (null when it
/// does not apply), so consumers never have to guess at a missing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationResult {
    /// Always `"image"`, like the request that caused it.
    #[serde(rename = "type")]
    pub kind: crate::RequestKind,
    pub request_id: Uuid,
    pub viewer: Viewer,
    pub style: StyleId,
    /// The viewer's subject.
    pub description: String,
    pub state: EndState,
    /// Why the request did not succeed, in words a viewer can read; null on success.
    pub reason: Option<String>,
    /// The public URL of the image; null unless succeeded.
    pub image_url: Option<String>,
    /// The friend's generated name, for friends that succeeded.
    pub name: Option<String>,
    /// RFC 3339.
    pub finished_at: chrono::DateTime<chrono::Utc>,
}
