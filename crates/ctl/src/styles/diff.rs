//! What applying a styles file changes, style by style and field by field:
//! the lines `dynamoctl styles apply` prints (and `--dry-run` only prints).

use dynamo_store::{StoredStyle, stored_form};
use dynamo_wire::{StyleDefinition, StyleId};
use serde_json::Value;
use std::collections::BTreeMap;

/// The change one file style makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create,
    Update {
        /// `(field, before, after)`, fields dotted as in the file.
        fields: Vec<(String, String, String)>,
        /// A seeded style that follows the settings until written.
        stops_following: bool,
    },
    Unchanged,
}

/// The plan: each file style's change, and the stored styles it leaves out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<(StyleId, Change)>,
    /// Stored styles the file does not name, and whether they are enabled.
    pub absent: Vec<(StyleId, bool)>,
}

impl Plan {
    pub fn new(file: &[StyleDefinition], stored: &[StoredStyle]) -> Self {
        let by_id: BTreeMap<&StyleId, &StoredStyle> =
            stored.iter().map(|s| (&s.definition.id, s)).collect();
        let changes = file
            .iter()
            .map(|style| {
                let change = match by_id.get(&style.id) {
                    None => Change::Create,
                    Some(now) => change(&now.definition, &stored_form(style), now.follows_settings),
                };
                (style.id.clone(), change)
            })
            .collect();
        let absent = stored
            .iter()
            .filter(|s| !file.iter().any(|f| f.id == s.definition.id))
            .map(|s| (s.definition.id.clone(), s.definition.enabled))
            .collect();
        Self { changes, absent }
    }

    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|(_, c)| *c == Change::Unchanged)
    }

    /// The lines to print: a style created, each field changed (`before →
    /// after`), unchanged ones, then the ones the file leaves out (and what
    /// `prune` does with them).
    pub fn lines(&self, prune: bool) -> Vec<String> {
        let mut lines = Vec::new();
        for (id, change) in &self.changes {
            match change {
                Change::Create => lines.push(format!("{id}: created")),
                Change::Unchanged => lines.push(format!("{id}: unchanged")),
                Change::Update {
                    fields,
                    stops_following,
                } => {
                    for (field, before, after) in fields {
                        lines.push(format!("{id}.{field}: {before} → {after}"));
                    }
                    if *stops_following {
                        lines.push(format!(
                            "{id}: no longer follows PROMPT_{} and POINTS_COST (the file's definition counts from now on)",
                            id.as_str().to_uppercase()
                        ));
                    }
                }
            }
        }
        for (id, enabled) in &self.absent {
            lines.push(match (prune, enabled) {
                (true, true) => format!("{id}: not in the file, disabled (--prune)"),
                _ => format!("{id}: not in the file, left alone"),
            });
        }
        lines
    }
}

fn change(before: &StyleDefinition, after: &StyleDefinition, following: bool) -> Change {
    if before == after {
        return Change::Unchanged;
    }
    let (before, after) = (flatten(before), flatten(after));
    let fields = before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|field| before.get(*field) != after.get(*field))
        .map(|field| {
            let shown = |value: Option<&Value>| value.map_or("(none)".to_owned(), Value::to_string);
            (
                field.clone(),
                shown(before.get(field)),
                shown(after.get(field)),
            )
        })
        .collect();
    Change::Update {
        fields,
        stops_following: following,
    }
}

/// A definition as dotted fields (`reward.title`) and their JSON values; a
/// field left out (an optional one unset) is absent.
fn flatten(style: &StyleDefinition) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, value: Value, into: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(fields) => {
                for (key, value) in fields {
                    walk(&format!("{prefix}{key}."), value, into);
                }
            }
            value => {
                into.insert(prefix.trim_end_matches('.').to_owned(), value);
            }
        }
    }
    let mut fields = BTreeMap::new();
    // A struct of strings, numbers and enums always serializes.
    walk(
        "",
        serde_json::to_value(style).unwrap_or_default(),
        &mut fields,
    );
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn style(template: &str) -> StyleDefinition {
        serde_json::from_value(json!({
            "id": "sticker", "display_name": "Sticker", "prompt_template": template,
            "output": "cutout", "points_cost": 100,
            "reward": {"title": "dynamo: a sticker", "prompt": "What?", "cost": 500},
        }))
        .unwrap()
    }

    #[test]
    fn each_changed_field_is_one_line() {
        let mut after = style("a sticker of {subject}");
        after.reward.cooldown_seconds = Some(30);
        let Change::Update { fields, .. } = change(&style("{subject}"), &after, false) else {
            panic!("an update");
        };
        assert_eq!(
            fields,
            vec![
                (
                    "prompt_template".to_owned(),
                    "\"{subject}\"".to_owned(),
                    "\"a sticker of {subject}\"".to_owned()
                ),
                (
                    "reward.cooldown_seconds".to_owned(),
                    "(none)".to_owned(),
                    "30".to_owned()
                ),
            ]
        );
        assert_eq!(change(&after, &after, true), Change::Unchanged);
    }
}
