//! `styles.toml`: every style as a `[[style]]` table (README "Styles"),
//! read with the API's own rules (`StyleDefinition` and its `validate`) and
//! each problem named by its style, its field and its line.

use dynamo_wire::{ColorInput, OnAirSettings, StyleDefinition, StyleId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// The whole file: nothing but `[[style]]` tables.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StylesFile {
    #[serde(default)]
    style: Vec<StyleDefinition>,
}

const HEADER: &str = "\
# dynamo's styles (README \"Styles\"). `dynamoctl styles apply FILE` creates or
# updates each one; fields left out take their defaults.
";

/// The file `export` prints: the styles in the order given (by id), each
/// field that differs from its default, then the tables `reward` and
/// `on_air`. Reading it back gives exactly these definitions.
pub fn render(styles: &[StyleDefinition]) -> anyhow::Result<String> {
    let file = StylesFile {
        style: styles.to_vec(),
    };
    let mut table = toml::Table::try_from(&file)?;
    if let Some(toml::Value::Array(tables)) = table.get_mut("style") {
        for (entry, style) in tables.iter_mut().zip(styles) {
            if let toml::Value::Table(entry) = entry {
                drop_defaults(entry, style);
            }
        }
    }
    Ok(format!("{HEADER}\n{}", toml::to_string(&table)?))
}

/// Leaves out what reads the same when missing (the definition's serde
/// defaults), so that a file shows what makes each style its own.
fn drop_defaults(entry: &mut toml::Table, style: &StyleDefinition) {
    if style.color == ColorInput::None {
        entry.remove("color");
    }
    if !style.generate_name {
        entry.remove("generate_name");
    }
    if style.enabled {
        entry.remove("enabled");
    }
    if style.on_air == OnAirSettings::default() {
        entry.remove("on_air");
    }
}

/// One problem in a file: where, which style, which field, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: Option<usize>,
    /// `sticker`, or `#2` when the style has no usable id.
    pub style: Option<String>,
    pub field: Option<String>,
    pub problem: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(style) = &self.style {
            write!(f, "style {style}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.problem)
    }
}

/// The definitions of a file, or every problem found: a file that does not
/// parse stops at its first; one that does is checked style by style.
pub fn parse(text: &str) -> Result<Vec<StyleDefinition>, Vec<FileError>> {
    let styles = match deserialize(text) {
        Ok(file) => file.style,
        Err(error) => return Err(vec![error]),
    };
    let mut errors = Vec::new();
    let mut first_line: HashMap<&StyleId, usize> = HashMap::new();
    for (index, style) in styles.iter().enumerate() {
        if let Some(first) = first_line.insert(&style.id, index) {
            errors.push(FileError {
                line: style_line(text, index),
                style: Some(style.id.to_string()),
                field: Some("id".to_owned()),
                problem: format!(
                    "is defined twice (first at line {})",
                    style_line(text, first).unwrap_or(0)
                ),
            });
        }
        if let Err(error) = style.validate() {
            errors.push(FileError {
                line: field_line(text, index, &error.field).or_else(|| style_line(text, index)),
                style: Some(style.id.to_string()),
                field: Some(error.field),
                problem: error.problem,
            });
        }
    }
    if errors.is_empty() {
        Ok(styles)
    } else {
        Err(errors)
    }
}

/// The typed read, its error placed by the path serde was at.
fn deserialize(text: &str) -> Result<StylesFile, FileError> {
    let located = |error: &toml::de::Error| error.span().map(|span| line_of(text, span.start));
    let deserializer = toml::Deserializer::parse(text).map_err(|error| FileError {
        line: located(&error),
        style: None,
        field: None,
        problem: format!("not TOML: {}", error.message()),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let (index, field) = split_path(error.path());
        let inner = error.inner();
        FileError {
            line: located(inner),
            style: index.map(|index| style_name(text, index)),
            field,
            problem: inner.message().to_owned(),
        }
    })
}

/// `style[2].reward.title` → (2, `reward.title`).
fn split_path(path: &serde_path_to_error::Path) -> (Option<usize>, Option<String>) {
    use serde_path_to_error::Segment;
    let mut segments = path.iter();
    let mut index = None;
    let mut field = Vec::new();
    match (segments.next(), segments.next()) {
        (Some(Segment::Map { key }), Some(Segment::Seq { index: at })) if key == "style" => {
            index = Some(*at);
        }
        (first, second) => field.extend(first.into_iter().chain(second).map(|s| s.to_string())),
    }
    field.extend(segments.map(|segment| segment.to_string()));
    let field = field
        .into_iter()
        .filter(|segment| segment != "?")
        .collect::<Vec<_>>()
        .join(".");
    (index, (!field.is_empty()).then_some(field))
}

/// How a style is named in an error: its id when it has a good one.
fn style_name(text: &str, index: usize) -> String {
    let id = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|table| match table.get("style") {
            Some(toml::Value::Array(styles)) => styles
                .get(index)
                .and_then(|style| style.get("id"))
                .and_then(|id| id.as_str())
                .and_then(|id| StyleId::parse(id).ok()),
            _ => None,
        });
    match id {
        Some(id) => id.to_string(),
        None => format!("#{}", index + 1),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// A table header (`[[style]]`, `[style.reward]`) of a line, without brackets.
fn header(line: &str) -> Option<&str> {
    let line = line.split('#').next().unwrap_or("").trim();
    line.strip_prefix('[')?
        .strip_suffix(']')
        .map(|inner| inner.trim_start_matches('[').trim_end_matches(']').trim())
}

/// The line of the `index`th `[[style]]` header.
fn style_line(text: &str, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with("[[") && header(line) == Some("style"))
        .nth(index)
        .map(|(number, _)| number + 1)
}

/// The line where the `index`th style sets `field` (dotted: `reward.title`
/// in its `[style.reward]` table, or as a dotted key): files written by hand
/// in the usual layout. None if it cannot be told.
fn field_line(text: &str, index: usize, field: &str) -> Option<usize> {
    let mut styles_seen = 0;
    let mut table = String::new();
    for (number, line) in text.lines().enumerate() {
        if let Some(name) = header(line) {
            if line.trim_start().starts_with("[[") && name == "style" {
                styles_seen += 1;
                table.clear();
            } else if let Some(sub) = name.strip_prefix("style.") {
                table = format!("{sub}.");
            } else {
                table = "?".to_owned();
            }
            continue;
        }
        if styles_seen != index + 1 {
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key: String = key.split('.').map(str::trim).collect::<Vec<_>>().join(".");
        if format!("{table}{key}") == field {
            return Some(number + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STICKER: &str = r#"
[[style]]
id = "sticker"
display_name = "Sticker"
color = "optional"
prompt_template = "{article} {color} {subject} as a die-cut sticker, with a solid {complement} background suitable for chroma keying"
output = "cutout"
points_cost = 100

[style.reward]
title = "dynamo: a sticker"
prompt = "What should the sticker be? Up to 120 characters; start with a colour if you like: \"red: a fox\""
cost = 500
cooldown_seconds = 30

[style.on_air]
duration_ms = 6000
"#;

    #[test]
    fn the_readme_example_reads_and_renders_back_to_the_same() {
        let styles = parse(STICKER).unwrap();
        assert_eq!(styles.len(), 1);
        assert_eq!(styles[0].on_air.duration_ms, 6000);
        let rendered = render(&styles).unwrap();
        assert_eq!(parse(&rendered).unwrap(), styles, "{rendered}");
        assert!(
            rendered.contains("[[style]]\nid = \"sticker\""),
            "{rendered}"
        );
        assert!(
            !rendered.contains("enabled"),
            "defaults left out: {rendered}"
        );
    }

    #[test]
    fn a_style_with_every_field_set_round_trips() {
        let mut styles = parse(STICKER).unwrap();
        let mut other = styles[0].clone();
        other.id = StyleId::parse("a-plain-one").unwrap();
        other.color = ColorInput::None;
        other.prompt_template = "a \"quoted\" {subject}\\ back".to_owned();
        other.generate_name = true;
        other.enabled = false;
        other.image_size = Some("1536x1024".to_owned());
        other.image_quality = Some("low".to_owned());
        other.on_air = OnAirSettings::default();
        other.on_air.sound = Some("chime".to_owned());
        other.reward.max_per_stream = Some(3);
        styles.insert(0, other);
        let rendered = render(&styles).unwrap();
        assert_eq!(parse(&rendered).unwrap(), styles, "{rendered}");
    }

    fn only_error(text: &str) -> FileError {
        let errors = parse(text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn a_problem_names_its_style_field_and_line() {
        let long = STICKER.replace("dynamo: a sticker", &"x".repeat(46));
        let error = only_error(&long);
        assert_eq!(error.style.as_deref(), Some("sticker"));
        assert_eq!(error.field.as_deref(), Some("reward.title"));
        assert_eq!(error.line, Some(11), "{error}");

        let unknown = STICKER.replace("{complement}", "{colour}");
        let error = only_error(&unknown);
        assert_eq!(error.field.as_deref(), Some("prompt_template"));
        assert!(error.problem.contains("{colour}"), "{error}");
        assert_eq!(error.line, Some(6), "{error}");

        let key = STICKER.replace("cooldown_seconds", "cooldown");
        let error = only_error(&key);
        assert_eq!(error.style.as_deref(), Some("sticker"), "{error}");
        assert!(error.problem.contains("cooldown"), "{error}");
        assert_eq!(error.line, Some(14), "{error}");

        let id = STICKER.replace("\"sticker\"", "\"Sticker!\"");
        let error = only_error(&id);
        assert_eq!(error.style.as_deref(), Some("#1"), "{error}");
        assert_eq!(error.field.as_deref(), Some("id"), "{error}");
        assert_eq!(error.line, Some(3), "{error}");
    }

    #[test]
    fn every_bad_style_is_reported_and_twins_are_refused() {
        let twice = format!("{STICKER}{}", STICKER.replace("cost = 500", "cost = 0"));
        let errors = parse(&twice).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].field.as_deref(), Some("id"));
        assert!(
            errors[0].problem.contains("first at line 2"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[1].field.as_deref(), Some("reward.cost"));
    }

    #[test]
    fn syntax_and_unknown_tables_are_placed() {
        let error = only_error("[[style]]\nid = \n");
        assert_eq!(error.line, Some(2), "{error}");
        let error = only_error("[[styles]]\nid = \"x\"\n");
        assert!(error.problem.contains("styles"), "{error}");
        assert_eq!(error.line, Some(1), "{error}");
    }
}
