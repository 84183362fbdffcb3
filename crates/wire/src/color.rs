//! The 13 colours a viewer can pick for a friend, and the background each implies.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A friend's colour. The background of the generated image is its
/// [complement](Color::complement), so the figure stands out for chroma keying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Color {
    Red,
    RedOrange,
    Orange,
    YellowOrange,
    Yellow,
    Chartreuse,
    Green,
    Cyan,
    SkyBlue,
    Blue,
    Indigo,
    Purple,
    Magenta,
}

impl Color {
    pub const ALL: [Color; 13] = [
        Color::Red,
        Color::RedOrange,
        Color::Orange,
        Color::YellowOrange,
        Color::Yellow,
        Color::Chartreuse,
        Color::Green,
        Color::Cyan,
        Color::SkyBlue,
        Color::Blue,
        Color::Indigo,
        Color::Purple,
        Color::Magenta,
    ];

    /// The name as it appears on the wire and in prompts.
    pub fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::RedOrange => "red-orange",
            Color::Orange => "orange",
            Color::YellowOrange => "yellow-orange",
            Color::Yellow => "yellow",
            Color::Chartreuse => "chartreuse",
            Color::Green => "green",
            Color::Cyan => "cyan",
            Color::SkyBlue => "sky-blue",
            Color::Blue => "blue",
            Color::Indigo => "indigo",
            Color::Purple => "purple",
            Color::Magenta => "magenta",
        }
    }

    /// The background colour used behind a friend of this colour (SPEC §2).
    /// Not a strict colour-wheel inverse: indigo and blue share one, as in the Go service.
    pub fn complement(self) -> Color {
        match self {
            Color::Red => Color::Green,
            Color::RedOrange => Color::Cyan,
            Color::Orange => Color::SkyBlue,
            Color::YellowOrange => Color::Blue,
            Color::Yellow => Color::Indigo,
            Color::Chartreuse => Color::Magenta,
            Color::Green => Color::Red,
            Color::Cyan => Color::RedOrange,
            Color::SkyBlue => Color::Orange,
            Color::Blue => Color::YellowOrange,
            Color::Indigo => Color::YellowOrange,
            Color::Purple => Color::Yellow,
            Color::Magenta => Color::Chartreuse,
        }
    }

    /// The indefinite article that reads right before the colour name.
    pub fn article(self) -> &'static str {
        match self.name().as_bytes()[0] {
            b'a' | b'e' | b'i' | b'o' | b'u' => "an",
            _ => "a",
        }
    }

    /// A representative sRGB value, used where dynamo itself draws a colour
    /// (the placeholder image provider).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [0xe5, 0x1c, 0x23],
            Color::RedOrange => [0xf4, 0x51, 0x1e],
            Color::Orange => [0xff, 0x98, 0x00],
            Color::YellowOrange => [0xff, 0xb3, 0x00],
            Color::Yellow => [0xff, 0xeb, 0x3b],
            Color::Chartreuse => [0x7f, 0xff, 0x00],
            Color::Green => [0x2e, 0xb8, 0x3c],
            Color::Cyan => [0x00, 0xe5, 0xee],
            Color::SkyBlue => [0x4f, 0xb8, 0xf5],
            Color::Blue => [0x1e, 0x4f, 0xe0],
            Color::Indigo => [0x3f, 0x2a, 0x9c],
            Color::Purple => [0x8e, 0x24, 0xaa],
            Color::Magenta => [0xff, 0x1e, 0xc8],
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complements_match_the_spec() {
        let expected = [
            ("red", "green"),
            ("red-orange", "cyan"),
            ("orange", "sky-blue"),
            ("yellow-orange", "blue"),
            ("yellow", "indigo"),
            ("chartreuse", "magenta"),
            ("green", "red"),
            ("cyan", "red-orange"),
            ("sky-blue", "orange"),
            ("blue", "yellow-orange"),
            ("indigo", "yellow-orange"),
            ("purple", "yellow"),
            ("magenta", "chartreuse"),
        ];
        for (color, (name, complement)) in Color::ALL.iter().zip(expected) {
            assert_eq!(color.name(), name);
            assert_eq!(color.complement().name(), complement);
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for color in Color::ALL {
            let json = serde_json::to_string(&color).unwrap();
            assert_eq!(json, format!("\"{}\"", color.name()));
            assert_eq!(serde_json::from_str::<Color>(&json).unwrap(), color);
        }
    }

    #[test]
    fn article_fits_the_colour() {
        assert_eq!(Color::Orange.article(), "an");
        assert_eq!(Color::Indigo.article(), "an");
        assert_eq!(Color::Red.article(), "a");
        assert_eq!(Color::YellowOrange.article(), "a");
    }
}
