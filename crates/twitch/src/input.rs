//! A viewer's redemption text → a generation request, or the reason it
//! cannot be one (the redemption is then cancelled, which refunds it).
//!
//! Friends may start with a colour: "red: a robot who loves soup". Without
//! one, the colour comes from the viewer's id, so a viewer's friends keep
//! theirs. The request is validated exactly as a published one would be.

use dynamo_wire::{
    BroadcastState, Color, FriendInputs, GenerationRequest, GhostInputs, ImagePayload, Style,
    Subject, Viewer,
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

pub fn request_from(style: Style, redeemed: &Redeemed<'_>) -> Result<GenerationRequest, String> {
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
    let payload = match style {
        Style::Ghost => ImagePayload::Ghost(GhostInputs {
            subject: subject(input)?,
        }),
        Style::Friend => {
            let (color, text) = split_color(input, redeemed.user_id)?;
            ImagePayload::Friend(FriendInputs {
                color,
                subject: subject(text)?,
            })
        }
    };
    Ok(GenerationRequest::new(
        viewer,
        BroadcastState::default(),
        payload,
    ))
}

fn split_color<'a>(input: &'a str, user_id: &str) -> Result<(Color, &'a str), String> {
    if let Some((head, rest)) = input.split_once(':') {
        let word = head.trim().to_lowercase().replace(' ', "-");
        if let Some(color) = parse_color(&word) {
            return Ok((color, rest.trim()));
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
    Ok((color_for_viewer(user_id), input))
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
        let request =
            request_from(Style::Friend, &viewer("Sky Blue: a robot who loves soup")).unwrap();
        assert_eq!(request.payload.color(), Some(Color::SkyBlue));
        assert_eq!(request.subject().as_str(), "a robot who loves soup");
        assert_eq!(
            request.viewer.twitch_display_name.as_str(),
            "WasabiMilkshake"
        );
    }

    #[test]
    fn without_a_colour_the_viewer_id_chooses_one_stably() {
        let first = request_from(Style::Friend, &viewer("a robot")).unwrap();
        let again = request_from(Style::Friend, &viewer("a ghost: spooky and round")).unwrap();
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
            request_from(Style::Ghost, &viewer("   "))
                .unwrap_err()
                .contains("no text")
        );
        let long = "a".repeat(121);
        assert!(
            request_from(Style::Ghost, &viewer(&long))
                .unwrap_err()
                .contains("120")
        );
        let unknown = request_from(Style::Friend, &viewer("beige: a robot")).unwrap_err();
        assert!(unknown.contains("unknown colour \"beige\""), "{unknown}");
        assert!(request_from(Style::Friend, &viewer("red:")).is_err());
    }

    #[test]
    fn ghosts_take_the_text_as_it_is() {
        let request = request_from(Style::Ghost, &viewer("  red: a seal ")).unwrap();
        assert_eq!(request.subject().as_str(), "red: a seal");
        assert_eq!(request.payload.color(), None);
    }
}
