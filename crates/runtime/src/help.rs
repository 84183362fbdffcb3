//! The settings part of each binary's `--help`, taken from `.env.example`.
//!
//! `.env.example` is where every setting's default and meaning are written
//! down (SPEC §4); `--help` quotes it rather than keeping a second copy that
//! would drift. Each binary picks the sections (and single settings from other
//! sections) it reads.

/// The repository's `.env.example`, compiled in.
const ENV_EXAMPLE: &str = include_str!("../../../.env.example");

/// One `NAME=default  # meaning` line of `.env.example`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub section: &'static str,
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every setting in `.env.example`, in its order.
pub fn settings() -> Vec<Setting> {
    let mut section = "";
    let mut found = Vec::new();
    for line in ENV_EXAMPLE.lines() {
        let line = line.trim();
        if let Some(title) = line
            .strip_prefix("# ---")
            .and_then(|rest| rest.strip_suffix("---"))
        {
            // "PostgreSQL (libpq names)" is section "PostgreSQL".
            section = title.split('(').next().unwrap_or(title).trim();
        } else if let Some((name, rest)) = line.split_once('=')
            && !line.starts_with('#')
        {
            let (default, meaning) = rest.split_once('#').unwrap_or((rest, ""));
            found.push(Setting {
                section,
                name: name.trim(),
                default: default.trim(),
                meaning: meaning.trim(),
            });
        }
    }
    found
}

/// The text `--help` prints after the options: the settings of `sections`,
/// plus the single settings named in `also`, grouped by section.
pub fn settings_help(sections: &[&str], also: &[&str]) -> String {
    let chosen: Vec<Setting> = settings()
        .into_iter()
        .filter(|s| sections.contains(&s.section) || also.contains(&s.name))
        .collect();
    // NAME=default, then the meaning in a column (long defaults push it along).
    let width = chosen
        .iter()
        .map(|s| s.name.len() + 1 + s.default.len())
        .filter(|&len| len <= 40)
        .max()
        .unwrap_or(0);
    let mut text = String::from(
        "Settings: environment variables, also read from .env in the working directory \
         (the environment wins).\nNAME=default (blank: unset); .env.example in the \
         repository lists every setting with its meaning.\n",
    );
    let mut current = "";
    for setting in &chosen {
        if setting.section != current {
            current = setting.section;
            text.push_str(&format!("\n{current}:\n"));
        }
        let assignment = format!("{}={}", setting.name, setting.default);
        text.push_str(&format!("  {assignment:width$}  {}\n", setting.meaning));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_section_and_a_meaning() {
        let all = settings();
        assert!(all.len() > 60, "{} settings", all.len());
        for setting in &all {
            assert!(!setting.section.is_empty(), "{setting:?}");
            assert!(!setting.meaning.is_empty(), "{setting:?}");
            assert!(
                setting
                    .name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{setting:?}"
            );
        }
    }

    #[test]
    fn help_shows_chosen_sections_with_defaults() {
        let text = settings_help(&["PostgreSQL", "logs"], &["LISTEN_PORT"]);
        assert!(text.contains("PGHOST"), "{text}");
        assert!(text.contains("localhost"), "{text}");
        assert!(text.contains("LOG_FORMAT"), "{text}");
        assert!(text.contains("LISTEN_PORT"), "{text}");
        assert!(text.contains(".env.example"), "{text}");
        assert!(!text.contains("RMQ_HOST"), "{text}");
        assert!(text.contains("  PGHOST=localhost "), "{text}");
    }
}
