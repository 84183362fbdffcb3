//! Styles as data (SPEC §8): a style's id, what it takes as input, what it
//! makes, and its prompt template. Golden VCR's `ghost` and `friend` are two
//! such styles whose wire shapes are fixed by §2; any other id names a style
//! a streamer defined. Pure values: where styles are kept is the store's job.

use crate::Color;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Golden VCR's two styles: the ones whose messages §2 fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    Ghost,
    Friend,
}

impl Style {
    pub const ALL: [Style; 2] = [Style::Ghost, Style::Friend];

    pub fn as_str(self) -> &'static str {
        match self {
            Style::Ghost => "ghost",
            Style::Friend => "friend",
        }
    }

    pub fn parse(raw: &str) -> Option<Style> {
        Style::ALL.into_iter().find(|style| style.as_str() == raw)
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A style's id: a lowercase slug (`a-z`, `0-9` and inner `-`, starting with
/// a letter, at most [`StyleId::MAX_CHARS`]). It is what `payload.style`, the
/// alert's `payload.type` and the result's `style` carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StyleId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a style id: use 1 to 32 lowercase letters, digits and inner hyphens, \
     starting with a letter (like \"sticker\" or \"pixel-portrait\")"
)]
pub struct StyleIdError(pub String);

impl StyleId {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, StyleIdError> {
        let bytes = raw.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= Self::MAX_CHARS
            && bytes[0].is_ascii_lowercase()
            && bytes[bytes.len() - 1] != b'-'
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            // Quoted in the error, so cut to keep a runaway value out of logs.
            Err(StyleIdError(raw.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Golden VCR's style of this id, if it is one.
    pub fn builtin(&self) -> Option<Style> {
        Style::parse(&self.0)
    }
}

impl From<Style> for StyleId {
    fn from(style: Style) -> Self {
        Self(style.as_str().to_owned())
    }
}

impl TryFrom<String> for StyleId {
    type Error = StyleIdError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<StyleId> for String {
    fn from(id: StyleId) -> Self {
        id.0
    }
}

impl fmt::Display for StyleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<Style> for StyleId {
    fn eq(&self, other: &Style) -> bool {
        self.0 == other.as_str()
    }
}

/// What a style makes of the model's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Stored as JPEG (as ghosts are).
    Photo,
    /// Stored as transparent WEBP: the model's own transparency where it has
    /// it, else the solid `{complement}` background keyed out (as friends are).
    Cutout,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Photo => "photo",
            Output::Cutout => "cutout",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Output::Photo, Output::Cutout]
            .into_iter()
            .find(|o| o.as_str() == raw)
    }
}

/// Whether a style takes a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorInput {
    None,
    Optional,
    Required,
}

impl ColorInput {
    pub fn as_str(self) -> &'static str {
        match self {
            ColorInput::None => "none",
            ColorInput::Optional => "optional",
            ColorInput::Required => "required",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [ColorInput::None, ColorInput::Optional, ColorInput::Required]
            .into_iter()
            .find(|c| c.as_str() == raw)
    }

    /// Whether inputs with (or without) a colour fit: the reason if not,
    /// naming the field as a message's is named.
    pub fn check(self, style: &StyleId, color: Option<Color>) -> Result<(), String> {
        self.fits(color)
            .map_err(|problem| format!("payload.inputs.color: {problem} by style {style}"))
    }

    /// Whether a colour given (or not) fits: what is wrong if not ("is
    /// required", "is not taken"), for the caller to name its field and style.
    pub fn fits(self, color: Option<Color>) -> Result<(), &'static str> {
        match (self, color) {
            (ColorInput::Required, None) => Err("is required"),
            (ColorInput::None, Some(_)) => Err("is not taken"),
            _ => Ok(()),
        }
    }
}

/// The placeholders a prompt template may use.
pub const PLACEHOLDERS: [&str; 4] = ["{subject}", "{color}", "{complement}", "{article}"];

/// `{background}` is the name `PROMPT_FRIEND` has always used for
/// `{complement}`: kept so that existing settings render as before.
pub const LEGACY_COMPLEMENT: &str = "{background}";

/// Why a template cannot be used: the placeholder it does not know, or the
/// subject it leaves out.
pub fn check_template(template: &str, color: ColorInput) -> Result<(), String> {
    if !template.contains("{subject}") {
        return Err("must contain {subject}".to_owned());
    }
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err("has a { without its closing }".to_owned());
        };
        let placeholder = &rest[start..=start + len];
        if !PLACEHOLDERS.contains(&placeholder) && placeholder != LEGACY_COMPLEMENT {
            return Err(format!(
                "unknown placeholder {placeholder}: use {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        if placeholder != "{subject}" && color == ColorInput::None {
            return Err(format!("uses {placeholder}, but the style takes no colour"));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

/// The prompt for a subject and colour (SPEC §3): with a colour, a leading
/// "a "/"an " or "the " of the subject goes (`{article}` before the colour
/// takes its place), exactly as friends have always read. Without one,
/// `{color}`, `{complement}` and `{article}` render empty.
pub fn render(template: &str, subject: &str, color: Option<Color>) -> String {
    let (article, name, complement, subject) = match color {
        Some(color) => (
            color.article(),
            color.name(),
            color.complement().name(),
            drop_article(subject),
        ),
        None => ("", "", "", subject.to_owned()),
    };
    template
        .replace("{article}", article)
        .replace("{color}", name)
        .replace("{complement}", complement)
        .replace(LEGACY_COMPLEMENT, complement)
        .replace("{subject}", &subject)
}

fn drop_article(subject: &str) -> String {
    for lead in ["a ", "an ", "the "] {
        // `get`: the subject's first bytes may be inside a character.
        if subject.len() > lead.len()
            && let (Some(head), Some(rest)) = (subject.get(..lead.len()), subject.get(lead.len()..))
            && head.eq_ignore_ascii_case(lead)
        {
            return rest.trim_start().to_owned();
        }
    }
    subject.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["ghost", "sticker", "pixel-portrait", "a1"] {
            assert!(StyleId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Ghost",
            "1st",
            "a_b",
            "trail-",
            "sp ace",
            &"a".repeat(33),
        ] {
            assert!(StyleId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_name_their_problem() {
        assert!(check_template("a {subject}", ColorInput::None).is_ok());
        assert!(
            check_template(
                "{article} {color} {subject} on {complement}",
                ColorInput::Optional
            )
            .is_ok()
        );
        let unknown = check_template("a {subjet}", ColorInput::None).unwrap_err();
        assert!(unknown.contains("must contain {subject}"), "{unknown}");
        let unknown = check_template("a {subject} {colour}", ColorInput::Required).unwrap_err();
        assert!(
            unknown.contains("unknown placeholder {colour}"),
            "{unknown}"
        );
        let colourless = check_template("{color} {subject}", ColorInput::None).unwrap_err();
        assert!(colourless.contains("takes no colour"), "{colourless}");
    }

    #[test]
    fn render_fills_colour_and_article() {
        let orange = Some(Color::Orange);
        assert_eq!(
            render(
                "{article} {color} {subject} on {complement}",
                "a seal",
                orange
            ),
            "an orange seal on sky-blue"
        );
        assert_eq!(
            render("a sticker of {subject}", "a seal", None),
            "a sticker of a seal"
        );
    }
}
