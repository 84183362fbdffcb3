//! Validated strings: a value of these types is already known to be acceptable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty or only whitespace")]
    Empty,
    #[error("is {actual} characters long, the limit is {limit}")]
    TooLong { actual: usize, limit: usize },
}

/// What the viewer asked to see: 1..=120 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);

impl Subject {
    pub const MAX_CHARS: usize = 120;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(TextError::Empty);
        }
        if chars > Self::MAX_CHARS {
            return Err(TextError::TooLong {
                actual: chars,
                limit: Self::MAX_CHARS,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Twitch ids and names are short; anything longer is not from Twitch.
pub const MAX_TWITCH_FIELD_CHARS: usize = 64;

macro_rules! non_empty_text {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, TextError> {
                let chars = raw.chars().count();
                if raw.trim().is_empty() {
                    return Err(TextError::Empty);
                }
                if chars > MAX_TWITCH_FIELD_CHARS {
                    return Err(TextError::TooLong { actual: chars, limit: MAX_TWITCH_FIELD_CHARS });
                }
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

non_empty_text!(
    /// A Twitch user id (numeric on Twitch, but opaque to us).
    TwitchUserId
);
non_empty_text!(
    /// The name Twitch shows for a viewer.
    DisplayName
);

impl TryFrom<String> for Subject {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Subject> for String {
    fn from(value: Subject) -> Self {
        value.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_trimmed() {
        assert_eq!(Subject::parse("  a seal \n").unwrap().as_str(), "a seal");
    }

    #[test]
    fn blank_subject_is_refused() {
        assert_eq!(Subject::parse(" \t\n"), Err(TextError::Empty));
        assert_eq!(Subject::parse(""), Err(TextError::Empty));
    }

    #[test]
    fn subject_limit_counts_characters_not_bytes() {
        let at_limit = "é".repeat(120);
        assert!(Subject::parse(&at_limit).is_ok());
        assert_eq!(
            Subject::parse(&"é".repeat(121)),
            Err(TextError::TooLong {
                actual: 121,
                limit: 120
            })
        );
    }

    #[test]
    fn twitch_fields_must_not_be_blank() {
        assert_eq!(TwitchUserId::parse(""), Err(TextError::Empty));
        assert_eq!(DisplayName::parse("  "), Err(TextError::Empty));
        assert!(DisplayName::parse("wasabimilkshake").is_ok());
    }
}
