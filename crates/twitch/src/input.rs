//! A viewer's redemption text → a generation request, or the reason it
//! cannot be one (the redemption is then cancelled, which refunds it).
//!
//! The style's colour rule says how the text is read. A style that takes a
//! colour (friends, and any style with `color` optional or required) may be
//! redeemed with one first: "red: a robot who loves soup". Without one, a
//! style that requires a colour takes it from the viewer's id, so a viewer's
//! friends keep theirs; an optional one has none. A style without colours
//! takes the text as it is. The request is validated exactly as a published
//! one would be.

use crate::book::RewardStyle;
use dynamo_wire::{
    BroadcastState, Color, ColorInput, CustomInputs, FriendInputs, GenerationRequest, GhostInputs,
    ImagePayload, Style, Subject, Viewer,
};

/// Who redeemed, and what they typed.
#[derive(Debug, Clone)]
pub struct Redeemed<'a> {
    pub user_id: &'a str,
    pub user_login: &'a str,
    pub user_name: &'a str,
    pub user_input: &'a str,
}

/// A colour prefix is one word: longer or spaced text before a colon
/// ("note to self: ...") is part of the subject.
const MAX_COLOR_WORD: usize = 16;

pub fn request_from(
    style: &RewardStyle,
    redeemed: &Redeemed<'_>,
) -> Result<GenerationRequest, String> {
    let input = redeemed.user_input.trim();
    if input.is_empty() {
        return Err("the redemption has no text: say what to draw".to_owned());
    }
    let name = if redeemed.user_name.trim().is_empty() {
        redeemed.user_login
    } else {
        redeemed.user_name
    };
    let viewer = Viewer::parse(redeemed.user_id, name).map_err(|error| error.to_string())?;
    let subject = |text: &str| {
        Subject::parse(text).map_err(|error| format!("payload.inputs.subject: {error}"))
    };
    let (color, text) = match style.color {
        ColorInput::None => (None, input),
        ColorInput::Optional => split_color(input)?,
        ColorInput::Required => match split_color(input)? {
            (None, text) => (Some(color_for_viewer(redeemed.user_id)), text),
            given => given,
        },
    };
    let payload = match (style.id.builtin(), color) {
        (Some(Style::Ghost), _) => ImagePayload::Ghost(GhostInputs {
            subject: subject(text)?,
        }),
        (Some(Style::Friend), color) => ImagePayload::Friend(FriendInputs {
            color: color.unwrap_or_else(|| color_for_viewer(redeemed.user_id)),
            subject: subject(text)?,
        }),
        (None, color) => ImagePayload::Custom(
            style.id.clone(),
            CustomInputs {
                color,
                subject: subject(text)?,
            },
        ),
    };
    Ok(GenerationRequest::new(
        viewer,
        BroadcastState::default(),
        payload,
    ))
}

/// A leading "colour:" word, if there is one, and the rest.
fn split_color(input: &str) -> Result<(Option<Color>, &str), String> {
    if let Some((head, rest)) = input.split_once(':') {
        let word = head.trim().to_lowercase().replace(' ', "-");
        if let Some(color) = parse_color(&word) {
            return Ok((Some(color), rest.trim()));
        }
        let one_word = !head.trim().contains(char::is_whitespace);
        if one_word && !word.is_empty() && word.len() <= MAX_COLOR_WORD {
            let names: Vec<&str> = Color::ALL.iter().map(|c| c.name()).collect();
            return Err(format!(
                "unknown colour {:?}: use one of {}",
                head.trim(),
                names.join(", ")
            ));
        }
    }
    Ok((None, input))
}

fn parse_color(word: &str) -> Option<Color> {
    Color::ALL.into_iter().find(|color| color.name() == word)
}

/// FNV-1a of the viewer's id: stable across builds and platforms (the
/// standard library's hasher is not).
pub fn color_for_viewer(user_id: &str) -> Color {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Color::ALL[(hash % Color::ALL.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn style(id: &str, color: ColorInput) -> RewardStyle {
        RewardStyle {
            id: dynamo_wire::StyleId::parse(id).unwrap(),
            color,
            enabled: true,
        }
    }

    fn ghost() -> RewardStyle {
        style("ghost", ColorInput::None)
    }

    fn friend() -> RewardStyle {
        style("friend", ColorInput::Required)
    }

    fn viewer(input: &str) -> Redeemed<'_> {
        Redeemed {
            user_id: "90790024",
            user_login: "wasabimilkshake",
            user_name: "WasabiMilkshake",
            user_input: input,
        }
    }

    #[test]
    fn a_colour_prefix_picks_the_friends_colour() {
        let request = request_from(&friend(), &viewer("Sky Blue: a robot who loves soup")).unwrap();
        assert_eq!(request.payload.color(), Some(Color::SkyBlue));
        assert_eq!(request.subject().as_str(), "a robot who loves soup");
        assert_eq!(
            request.viewer.twitch_display_name.as_str(),
            "WasabiMilkshake"
        );
    }

    #[test]
    fn without_a_colour_the_viewer_id_chooses_one_stably() {
        let first = request_from(&friend(), &viewer("a robot")).unwrap();
        let again = request_from(&friend(), &viewer("a ghost: spooky and round")).unwrap();
        assert_eq!(first.payload.color(), Some(color_for_viewer("90790024")));
        assert_eq!(again.payload.color(), first.payload.color());
        assert_eq!(again.subject().as_str(), "a ghost: spooky and round");
        let spread: std::collections::HashSet<_> =
            (0..200).map(|i| color_for_viewer(&i.to_string())).collect();
        assert!(spread.len() > 10, "ids spread over the colours: {spread:?}");
    }

    #[test]
    fn inadmissible_input_says_why() {
        assert!(
            request_from(&ghost(), &viewer("   "))
                .unwrap_err()
                .contains("no text")
        );
        let long = "a".repeat(121);
        assert!(
            request_from(&ghost(), &viewer(&long))
                .unwrap_err()
                .contains("120")
        );
        let unknown = request_from(&friend(), &viewer("beige: a robot")).unwrap_err();
        assert!(unknown.contains("unknown colour \"beige\""), "{unknown}");
        assert!(request_from(&friend(), &viewer("red:")).is_err());
    }

    #[test]
    fn a_custom_style_reads_the_text_by_its_colour_rule() {
        let optional = style("sticker", ColorInput::Optional);
        let plain = request_from(&optional, &viewer("a seal")).unwrap();
        assert_eq!(plain.payload.style().as_str(), "sticker");
        assert_eq!(plain.payload.color(), None);
        let red = request_from(&optional, &viewer("red: a seal")).unwrap();
        assert_eq!(red.payload.color(), Some(Color::Red));
        assert_eq!(red.subject().as_str(), "a seal");
        let required = style("badge", ColorInput::Required);
        let chosen = request_from(&required, &viewer("a seal")).unwrap();
        assert_eq!(chosen.payload.color(), Some(color_for_viewer("90790024")));
        let none = style("pixel", ColorInput::None);
        let kept = request_from(&none, &viewer("red: a seal")).unwrap();
        assert_eq!(kept.payload.color(), None);
        assert_eq!(kept.subject().as_str(), "red: a seal");
        assert!(request_from(&optional, &viewer("beige: a seal")).is_err());
    }

    #[test]
    fn ghosts_take_the_text_as_it_is() {
        let request = request_from(&ghost(), &viewer("  red: a seal ")).unwrap();
        assert_eq!(request.subject().as_str(), "red: a seal");
        assert_eq!(request.payload.color(), None);
    }
}
