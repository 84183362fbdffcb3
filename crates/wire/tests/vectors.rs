//! The shared sample messages (copied from `shared/vectors`) are the contract
//! with the other services: we must read them and write their exact shape.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of tests: a failed setup should fail the test

use dynamo_wire::{
    Color, FriendDetails, GenerationRequest, GhostDetails, ImageAlert, ImagePayload, OnscreenEvent,
    RequestError, Style, Viewer,
};
use serde_json::{Value, json};
use std::path::PathBuf;

fn vector(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn as_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn every_request_vector_round_trips_field_for_field() {
    for name in [
        "ghost.json",
        "friend-article.json",
        "friend-no-broadcast.json",
    ] {
        let raw = vector(&format!("generation-requests/{name}"));
        let parsed = GenerationRequest::from_slice(&raw).unwrap();
        let again: Value = serde_json::to_value(&parsed).unwrap();
        assert_eq!(again, as_value(&raw), "{name} did not round-trip");
    }
}

#[test]
fn zero_broadcast_state_means_none() {
    let parsed =
        GenerationRequest::from_slice(&vector("generation-requests/friend-no-broadcast.json"))
            .unwrap();
    assert_eq!(parsed.state.broadcast_id(), None);
    assert_eq!(parsed.state.screening_id(), None);
    assert_eq!(parsed.state.tape_id(), None);
    assert_eq!(parsed.style(), Style::Friend);

    let ghost = GenerationRequest::from_slice(&vector("generation-requests/ghost.json")).unwrap();
    assert_eq!(ghost.state.broadcast_id(), Some(13));
    assert_eq!(
        ghost.state.screening_id().unwrap().to_string(),
        "96d1ca5c-7658-48c9-8193-9d1739854467"
    );
    assert_eq!(ghost.state.tape_id(), Some(124));
}

fn viewer() -> Viewer {
    serde_json::from_value(
        json!({"twitch_user_id":"90790024","twitch_display_name":"wasabimilkshake"}),
    )
    .unwrap()
}

#[test]
fn alerts_have_exactly_the_vector_shape() {
    let ghost = OnscreenEvent::Image(ImageAlert::Ghost {
        viewer: viewer(),
        details: GhostDetails {
            image_url: "https://my-cool-images.biz/seal.jpg".into(),
            description: "a seal".into(),
        },
    });
    assert_eq!(
        serde_json::to_value(&ghost).unwrap(),
        as_value(&vector("onscreen-events/ghost.json"))
    );

    let friend = OnscreenEvent::Image(ImageAlert::Friend {
        viewer: viewer(),
        details: FriendDetails {
            image_url: "https://my-cool-images.biz/seal.jpg".into(),
            description: "a seal".into(),
            name: "Sealy".into(),
            background_color: "#ffcc00".into(),
        },
    });
    assert_eq!(
        serde_json::to_value(&friend).unwrap(),
        as_value(&vector("onscreen-events/friend.json"))
    );
}

fn ghost_with(mutate: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = as_value(&vector("generation-requests/ghost.json"));
    mutate(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn field_error(body: &[u8]) -> (String, String) {
    match GenerationRequest::from_slice(body) {
        Err(RequestError::Field { field, problem }) => (field, problem),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn blank_subject_names_the_field() {
    let (field, problem) = field_error(&ghost_with(|v| {
        v["payload"]["inputs"]["subject"] = json!("   ")
    }));
    assert_eq!(field, "payload.inputs.subject");
    assert!(problem.contains("empty"), "{problem}");
}

#[test]
fn empty_subject_names_the_field() {
    let (field, _) = field_error(&ghost_with(|v| {
        v["payload"]["inputs"]["subject"] = json!("")
    }));
    assert_eq!(field, "payload.inputs.subject");
}

#[test]
fn overlong_subject_says_the_limit() {
    let (field, problem) = field_error(&ghost_with(|v| {
        v["payload"]["inputs"]["subject"] = json!("x".repeat(121))
    }));
    assert_eq!(field, "payload.inputs.subject");
    assert!(
        problem.contains("121") && problem.contains("120"),
        "{problem}"
    );
}

#[test]
fn unknown_type_is_refused() {
    let (field, problem) = field_error(&ghost_with(|v| v["type"] = json!("video")));
    assert_eq!(field, "type");
    assert!(problem.contains("video"), "{problem}");
}

#[test]
fn a_style_that_is_not_a_slug_is_refused() {
    let (field, problem) = field_error(&ghost_with(|v| v["payload"]["style"] = json!("Zombie!")));
    assert_eq!(field, "payload.style");
    assert!(problem.contains("Zombie!"), "{problem}");
}

/// SPEC §8: any slug may name a streamer's style; whether one exists and is
/// enabled is for the consumer's registry (it dead-letters the rest). Its
/// inputs are still validated: a subject, and a colour of the 13.
#[test]
fn any_slug_names_a_style_with_validated_inputs() {
    let request = GenerationRequest::from_slice(&ghost_with(|v| {
        v["payload"] = json!({"style": "sticker", "inputs": {"subject": "a seal", "color": "red"}})
    }))
    .unwrap();
    assert_eq!(request.style().as_str(), "sticker");
    assert_eq!(request.payload.color(), Some(dynamo_wire::Color::Red));
    let round = GenerationRequest::from_slice(&request.to_json_bytes()).unwrap();
    assert_eq!(round, request);
    let (field, _) =
        field_error(&ghost_with(
            |v| {
                v["payload"] =
                    json!({"style": "sticker", "inputs": {"subject": "a seal", "color": "beige"}})
            },
        ));
    assert_eq!(field, "payload.inputs.color");
    let (field, _) = field_error(&ghost_with(|v| {
        v["payload"] = json!({"style": "sticker", "inputs": {"subject": " "}})
    }));
    assert_eq!(field, "payload.inputs.subject");
}

#[test]
fn unknown_colour_is_refused() {
    let body = ghost_with(|v| {
        v["payload"] = json!({"style":"friend","inputs":{"color":"mauve","subject":"a cat"}})
    });
    let (field, problem) = field_error(&body);
    assert_eq!(field, "payload.inputs.color");
    assert!(problem.contains("mauve"), "{problem}");
}

#[test]
fn friend_without_colour_is_refused() {
    let body =
        ghost_with(|v| v["payload"] = json!({"style":"friend","inputs":{"subject":"a cat"}}));
    let (field, problem) = field_error(&body);
    assert_eq!(field, "payload.inputs.color");
    assert_eq!(problem, "is required");
}

#[test]
fn missing_viewer_fields_are_named() {
    let (field, problem) = field_error(&ghost_with(|v| {
        v["viewer"]
            .as_object_mut()
            .unwrap()
            .remove("twitch_user_id");
    }));
    assert_eq!(field, "viewer.twitch_user_id");
    assert_eq!(problem, "is required");

    let (field, _) = field_error(&ghost_with(|v| {
        v["viewer"]["twitch_display_name"] = json!("")
    }));
    assert_eq!(field, "viewer.twitch_display_name");

    let (field, _) = field_error(&ghost_with(|v| {
        v.as_object_mut().unwrap().remove("viewer");
    }));
    assert_eq!(field, "viewer");
}

#[test]
fn wrong_types_are_named() {
    let (field, problem) = field_error(&ghost_with(|v| v["state"]["broadcast_id"] = json!("13")));
    assert_eq!(field, "state.broadcast_id");
    assert!(problem.contains("invalid type"), "{problem}");
}

#[test]
fn not_json_empty_and_oversized_are_distinguished() {
    assert!(matches!(
        GenerationRequest::from_slice(b"{not json"),
        Err(RequestError::NotJson(_))
    ));
    assert_eq!(
        GenerationRequest::from_slice(b"  "),
        Err(RequestError::Empty)
    );
    let huge = vec![b' '; 1]
        .into_iter()
        .chain(ghost_with(|v| {
            v["pad"] = json!("x".repeat(2 * 1024 * 1024))
        }))
        .collect::<Vec<_>>();
    assert!(matches!(
        GenerationRequest::from_slice(&huge),
        Err(RequestError::TooLarge { .. })
    ));
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let parsed =
        GenerationRequest::from_slice(&ghost_with(|v| v["extra"] = json!({"x": 1}))).unwrap();
    assert_eq!(parsed.subject().as_str(), "a seal");
}

#[test]
fn friend_inputs_are_typed() {
    let parsed =
        GenerationRequest::from_slice(&vector("generation-requests/friend-article.json")).unwrap();
    match parsed.payload {
        ImagePayload::Friend(inputs) => {
            assert_eq!(inputs.color, Color::Orange);
            assert_eq!(inputs.subject.as_str(), "a robot who loves soup");
        }
        other => panic!("expected a friend, got {other:?}"),
    }
}

/// A request built from its parts (a stored row, an HTTP body, a Twitch
/// redemption) is the message itself, and is refused by the same rules.
#[test]
fn a_request_built_from_parts_is_the_message() {
    for name in [
        "ghost.json",
        "friend-article.json",
        "friend-no-broadcast.json",
    ] {
        let message = as_value(&vector(&format!("generation-requests/{name}")));
        let parsed = GenerationRequest::from_value(message.clone()).unwrap();
        let from_parts = GenerationRequest::from_parts(
            message["viewer"].clone(),
            message.get("state").cloned(),
            message["payload"]["style"].as_str().unwrap(),
            message["payload"]["inputs"].clone(),
        )
        .unwrap();
        assert_eq!(from_parts, parsed, "{name}");
        let viewer = Viewer::parse(
            parsed.viewer.twitch_user_id.as_str(),
            parsed.viewer.twitch_display_name.as_str(),
        )
        .unwrap();
        let payload =
            ImagePayload::from_inputs(&parsed.style(), parsed.payload.inputs_json()).unwrap();
        let built = GenerationRequest::new(viewer, parsed.state, payload);
        assert_eq!(serde_json::to_value(&built).unwrap(), message, "{name}");
    }
}

#[test]
fn parts_name_their_bad_field_as_a_message_would() {
    let viewer = json!({"twitch_user_id":"90790024","twitch_display_name":"wasabimilkshake"});
    let seal = json!({"subject": "a seal"});
    let error = |result: Result<GenerationRequest, RequestError>| match result {
        Err(RequestError::Field { field, problem }) => (field, problem),
        other => panic!("expected a field error, got {other:?}"),
    };
    // Any slug names a style (SPEC §8): whether it exists is the style
    // registry's to say. What is not a slug is refused here.
    let (field, problem) = error(GenerationRequest::from_parts(
        viewer.clone(),
        None,
        "Zombie!",
        seal.clone(),
    ));
    assert_eq!(field, "payload.style");
    assert!(problem.contains("Zombie!"), "{problem}");
    let (field, problem) = error(GenerationRequest::from_parts(
        json!({"twitch_display_name": "x"}),
        None,
        "ghost",
        seal.clone(),
    ));
    assert_eq!(
        (field.as_str(), problem.as_str()),
        ("viewer.twitch_user_id", "is required")
    );
    let (field, _) = error(GenerationRequest::from_parts(
        viewer.clone(),
        Some(json!({"broadcast_id": "13"})),
        "ghost",
        seal,
    ));
    assert_eq!(field, "state.broadcast_id");
    let (field, _) = error(GenerationRequest::from_parts(
        viewer,
        None,
        "friend",
        json!({"color": "mauve", "subject": "a cat"}),
    ));
    assert_eq!(field, "payload.inputs.color");
    let Err(RequestError::Field { field, .. }) = Viewer::parse("90790024", " ") else {
        panic!("a blank display name is refused");
    };
    assert_eq!(field, "viewer.twitch_display_name");
}
