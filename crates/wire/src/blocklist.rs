//! The content rules' blocklist (issue 29): words and phrases the streamer
//! refuses, matched on word boundaries, ignoring case and accents, with
//! light leetspeak undone — so "H3ll0" and "héllo" are "hello", while
//! "Scunthorpe" and "class" contain no blocked word "cunt" or "ass".
//!
//! A text is cut into words (runs of letters and digits; `@` and `$` count
//! as letters, being leetspeak for `a` and `s`), each folded: lower case,
//! accents dropped, `0 3 4 5 7 @ $` read as `o e a s t a s`. A phrase
//! matches a run of whole consecutive words. `1` stands for both `i` and
//! `l`, so it is kept in the text and matched against either.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest phrase the streamer may block, in characters.
pub const MAX_PHRASE_CHARS: usize = 100;

/// A word, folded.
type Word = Vec<char>;

/// A phrase to block, as typed (trimmed) and as matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedPhrase {
    typed: String,
    words: Vec<Word>,
}

/// Why a phrase cannot be blocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhraseError {
    #[error("must contain a letter or a digit")]
    NoWords,
    #[error("must be at most {MAX_PHRASE_CHARS} characters")]
    TooLong,
    #[error("must be one line")]
    NotOneLine,
}

impl BlockedPhrase {
    pub fn parse(raw: &str) -> Result<Self, PhraseError> {
        let typed = raw.trim();
        if typed.chars().count() > MAX_PHRASE_CHARS {
            return Err(PhraseError::TooLong);
        }
        if typed.chars().any(char::is_control) {
            return Err(PhraseError::NotOneLine);
        }
        // The streamer types the word itself: a `1` there is an `i`.
        let words: Vec<Word> = words(typed)
            .into_iter()
            .map(|w| {
                w.into_iter()
                    .map(|c| if c == '1' { 'i' } else { c })
                    .collect()
            })
            .collect();
        if words.is_empty() {
            return Err(PhraseError::NoWords);
        }
        Ok(Self {
            typed: typed.to_owned(),
            words,
        })
    }

    /// The phrase as the streamer typed it.
    pub fn as_str(&self) -> &str {
        &self.typed
    }

    /// The phrase as matched: two phrases with the same key block the same
    /// texts ("Héllo" and "hello"), so the blocklist keeps one of them.
    pub fn key(&self) -> String {
        let words: Vec<String> = self.words.iter().map(|w| w.iter().collect()).collect();
        words.join(" ")
    }

    /// Whether the phrase occurs in `text` (already cut into folded words).
    fn occurs_in(&self, text: &[Word]) -> bool {
        let n = self.words.len();
        n <= text.len()
            && text.windows(n).any(|run| {
                run.iter()
                    .zip(&self.words)
                    .all(|(seen, blocked)| same_word(seen, blocked))
            })
    }
}

/// The streamer's blocklist.
#[derive(Debug, Clone, Default)]
pub struct Blocklist {
    phrases: Vec<BlockedPhrase>,
}

impl Blocklist {
    pub fn new(phrases: Vec<BlockedPhrase>) -> Self {
        Self { phrases }
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// Whether `text` contains a blocked word or phrase. Which one is
    /// deliberately not said: the viewer is never shown the word itself.
    pub fn blocks(&self, text: &str) -> bool {
        if self.phrases.is_empty() {
            return false;
        }
        let text = words(text);
        self.phrases.iter().any(|phrase| phrase.occurs_in(&text))
    }
}

/// `1` in the text is `i` or `l`; everything else was folded already.
fn same_word(seen: &[char], blocked: &[char]) -> bool {
    seen.len() == blocked.len()
        && seen
            .iter()
            .zip(blocked)
            .all(|(&s, &b)| s == b || (s == '1' && matches!(b, 'i' | 'l')))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$'
}

/// Leetspeak read as the letters it stands for (`1` is kept: see above).
fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '3' => 'e',
        '4' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '@' => 'a',
        other => other,
    }
}

/// The folded words of a text: lower-cased first (so `İ` loses its dot
/// with the other accents), decomposed, accents dropped, leetspeak undone.
fn words(text: &str) -> Vec<Word> {
    let lower: String = text.chars().flat_map(char::to_lowercase).collect();
    let bare: String = lower.nfkd().filter(|c| !is_combining_mark(*c)).collect();
    bare.split(|c: char| !is_word_char(c))
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().map(unleet).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(phrases: &[&str]) -> Blocklist {
        Blocklist::new(
            phrases
                .iter()
                .map(|p| BlockedPhrase::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn whole_words_only() {
        let blocklist = list(&["ass", "cunt"]);
        for innocent in [
            "a class act",
            "Scunthorpe United",
            "a bass guitar",
            "passing clouds",
            "an assassin's creed",
        ] {
            assert!(!blocklist.blocks(innocent), "{innocent}");
        }
        for blocked in ["an ass", "ASS!", "kick-ass robot", "(ass)"] {
            assert!(blocklist.blocks(blocked), "{blocked}");
        }
    }

    #[test]
    fn case_accents_and_leetspeak_are_seen_through() {
        let blocklist = list(&["hello", "kill", "lame", "ass"]);
        for blocked in [
            "HeLLo there",
            "héllo",
            "H3LL0",
            "h3ll0!",
            "k1ll it",
            "so 1ame",
            "@$$",
            "a$s",
            "ÀSS",
        ] {
            assert!(blocklist.blocks(blocked), "{blocked}");
        }
        assert!(!blocklist.blocks("hellos"));
        assert!(!blocklist.blocks("skill"));
    }

    #[test]
    fn phrases_match_consecutive_words_across_punctuation() {
        let blocklist = list(&["bad word"]);
        assert!(blocklist.blocks("a bad word here"));
        assert!(blocklist.blocks("a BAD, w0rd"));
        assert!(blocklist.blocks("bad-word"));
        assert!(!blocklist.blocks("badword"));
        assert!(!blocklist.blocks("a bad other word"));
        assert!(!blocklist.blocks("bad"));
    }

    #[test]
    fn a_streamers_own_leetspeak_is_folded_too() {
        let phrase = BlockedPhrase::parse("  K1LL  ").unwrap();
        assert_eq!(phrase.as_str(), "K1LL");
        assert_eq!(phrase.key(), "kill");
        assert_eq!(
            BlockedPhrase::parse("Héllo   Wörld").unwrap().key(),
            "hello world"
        );
        assert!(list(&["k1ll"]).blocks("kill"));
    }

    #[test]
    fn phrases_without_words_or_too_long_are_refused() {
        assert_eq!(BlockedPhrase::parse(" !!! "), Err(PhraseError::NoWords));
        assert_eq!(BlockedPhrase::parse(""), Err(PhraseError::NoWords));
        assert_eq!(
            BlockedPhrase::parse(&"a".repeat(MAX_PHRASE_CHARS + 1)),
            Err(PhraseError::TooLong)
        );
        assert_eq!(
            BlockedPhrase::parse("two\nlines"),
            Err(PhraseError::NotOneLine)
        );
    }

    #[test]
    fn an_empty_blocklist_blocks_nothing() {
        assert!(!Blocklist::default().blocks("anything at all"));
    }
}
