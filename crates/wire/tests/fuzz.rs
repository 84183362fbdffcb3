//! A bounded fuzz of the message parser (issue 23 item 8): arbitrary bytes
//! and arbitrary JSON shaped like a request go through
//! `GenerationRequest::from_slice`. It never panics, and whatever it accepts
//! it writes back as a message it accepts again, unchanged. Bounded by the
//! case count (a few seconds); run longer with
//! `PROPTEST_CASES=100000 cargo test -p dynamo-wire --test fuzz`.

use dynamo_testkit::fuzz::{cases, json};
use dynamo_wire::GenerationRequest;
use proptest::prelude::*;
use serde_json::json;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("red".to_owned()),
        Just("ghost".to_owned()),
        Just("friend".to_owned()),
        Just("image".to_owned()),
        "[ \\t]{0,3}[a-z ]{0,130}",
    ]
}

/// The fields a request message has.
const FIELDS: &[&str] = &[
    "type",
    "viewer",
    "twitch_user_id",
    "twitch_display_name",
    "state",
    "broadcast_id",
    "screening_id",
    "tape_id",
    "payload",
    "style",
    "inputs",
    "subject",
    "color",
];

/// Whatever is accepted is written back as a message accepted again, the same.
fn round_trips(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(request) = GenerationRequest::from_slice(body) {
        let again = GenerationRequest::from_slice(&request.to_json_bytes());
        prop_assert_eq!(again.as_ref().ok(), Some(&request));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..300)) {
        round_trips(&body)?;
    }

    #[test]
    fn arbitrary_json(value in json(FIELDS, text())) {
        round_trips(value.to_string().as_bytes())?;
    }

    #[test]
    fn requests_with_one_part_changed(
        subject in text(), name in text(), color in text(), style in text(), tape in any::<i64>()
    ) {
        let body = json!({
            "type": "image",
            "viewer": {"twitch_user_id": "90790024", "twitch_display_name": name},
            "state": {"broadcast_id": 13, "screening_id": "96d1ca5c-7658-48c9-8193-9d1739854467", "tape_id": tape},
            "payload": {"style": style, "inputs": {"subject": subject, "color": color}},
        });
        round_trips(body.to_string().as_bytes())?;
    }
}
