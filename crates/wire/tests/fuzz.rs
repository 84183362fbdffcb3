//! A bounded fuzz of the message parser (issue 23 item 8): arbitrary bytes
//! and arbitrary JSON shaped like a request go through
//! `GenerationRequest::from_slice`. It never panics, and whatever it accepts
//! it writes back as a message it accepts again, unchanged. Bounded by the
//! case count (a few seconds); run longer with
//! `PROPTEST_CASES=100000 cargo test -p dynamo-wire --test fuzz`.

use dynamo_wire::GenerationRequest;
use proptest::prelude::*;
use serde_json::{Value, json};

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

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let name = prop_oneof![
            Just("type".to_owned()),
            Just("viewer".to_owned()),
            Just("twitch_user_id".to_owned()),
            Just("twitch_display_name".to_owned()),
            Just("state".to_owned()),
            Just("broadcast_id".to_owned()),
            Just("screening_id".to_owned()),
            Just("tape_id".to_owned()),
            Just("payload".to_owned()),
            Just("style".to_owned()),
            Just("inputs".to_owned()),
            Just("subject".to_owned()),
            Just("color".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(name, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Whatever is accepted is written back as a message accepted again, the same.
fn round_trips(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(request) = GenerationRequest::from_slice(body) {
        let again = GenerationRequest::from_slice(&request.to_json_bytes());
        prop_assert_eq!(again.as_ref().ok(), Some(&request));
    }
    Ok(())
}

/// The case count: `PROPTEST_CASES` when set (to fuzz longer), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..300)) {
        round_trips(&body)?;
    }

    #[test]
    fn arbitrary_json(value in json()) {
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
