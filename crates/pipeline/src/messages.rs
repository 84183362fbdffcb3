//! What the pipeline publishes, built from typed values: the request as it
//! was received (viewer, style, subject), the friend's name and the stored
//! image as the run knows them, and the record's end.

use dynamo_store::{RequestRecord, StoredImage};
use dynamo_wire::{
    CustomDetails, EndState, FriendDetails, GenerationRequest, GenerationResult, GhostDetails,
    ImageAlert, OnscreenEvent, RequestKind, Style,
};

pub(crate) fn alert_for(
    request: &GenerationRequest,
    name: Option<&str>,
    image: &StoredImage,
) -> OnscreenEvent {
    let viewer = request.viewer.clone();
    let description = request.subject().as_str().to_owned();
    let image_url = image.url.clone();
    let style = request.style();
    OnscreenEvent::Image(match style.builtin() {
        Some(Style::Ghost) => ImageAlert::Ghost {
            viewer,
            details: GhostDetails {
                image_url,
                description,
            },
        },
        Some(Style::Friend) => ImageAlert::Friend {
            viewer,
            details: FriendDetails {
                image_url,
                description,
                name: name.unwrap_or_default().to_owned(),
                background_color: image.color.clone().unwrap_or_default(),
            },
        },
        // SPEC §8: a name when the style made one, the key colour when
        // the image was keyed.
        None => ImageAlert::Custom {
            style,
            viewer,
            details: CustomDetails {
                image_url,
                description,
                name: name.map(str::to_owned),
                background_color: image.color.clone(),
            },
        },
    })
}

pub(crate) fn result_for(
    request: &GenerationRequest,
    record: &RequestRecord,
    image: Option<&StoredImage>,
) -> GenerationResult {
    let state = record.state().end_state().unwrap_or(EndState::Failed);
    let succeeded = state == EndState::Succeeded;
    GenerationResult {
        kind: RequestKind::Image,
        request_id: record.id,
        viewer: request.viewer.clone(),
        style: request.style(),
        description: request.subject().as_str().to_owned(),
        state,
        reason: record.error_message.clone(),
        image_url: image.filter(|_| succeeded).map(|image| image.url.clone()),
        name: record.name.clone().filter(|_| succeeded),
        finished_at: record.finished_at.unwrap_or_else(chrono::Utc::now),
    }
}
