//! What the pipeline publishes, built from a request's record.

use dynamo_store::{RequestRecord, StoredImage};
use dynamo_wire::{
    EndState, FriendDetails, GenerationRequest, GenerationResult, GhostDetails, ImageAlert,
    OnscreenEvent, RequestKind, Style, Viewer,
};

pub(crate) fn subject_of(record: &RequestRecord) -> String {
    record
        .inputs
        .get("subject")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn alert_for(
    viewer: &Viewer,
    record: &RequestRecord,
    image: &StoredImage,
) -> OnscreenEvent {
    let description = subject_of(record);
    let image_url = image.url.clone();
    OnscreenEvent::Image(match record.style() {
        Style::Ghost => ImageAlert::Ghost {
            viewer: viewer.clone(),
            details: GhostDetails {
                image_url,
                description,
            },
        },
        Style::Friend => ImageAlert::Friend {
            viewer: viewer.clone(),
            details: FriendDetails {
                image_url,
                description,
                name: record.name.clone().unwrap_or_default(),
                background_color: image.color.clone().unwrap_or_default(),
            },
        },
    })
}

pub(crate) fn result_for(
    request: &GenerationRequest,
    record: &RequestRecord,
    image_url: Option<String>,
) -> GenerationResult {
    let state = record.state().end_state().unwrap_or(EndState::Failed);
    GenerationResult {
        kind: RequestKind::Image,
        request_id: record.id,
        viewer: request.viewer.clone(),
        style: record.style(),
        description: subject_of(record),
        state,
        reason: record.error_message.clone(),
        image_url: image_url.filter(|_| state == EndState::Succeeded),
        name: record.name.clone().filter(|_| state == EndState::Succeeded),
        finished_at: record.finished_at.unwrap_or_else(chrono::Utc::now),
    }
}
