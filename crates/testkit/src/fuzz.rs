//! Strategies for the bounded fuzz tests (proptest): JSON values shaped like
//! what dynamo parses, so generated inputs reach past the first check.

use proptest::prelude::*;
use serde_json::{Value, json};

/// Arbitrary JSON whose strings come from `text` and whose object keys are
/// mostly `names` (the fields a parser looks for), nested a few levels.
pub fn json(
    names: &'static [&'static str],
    text: impl Strategy<Value = String> + 'static,
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        let name = prop_oneof![
            3 => prop::sample::select(names).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(name, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// The case count: `PROPTEST_CASES` when set (to fuzz longer), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}
