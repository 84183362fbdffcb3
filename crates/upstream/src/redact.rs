//! URLs fit for a log line (SPEC §4: secrets never appear in logs). A
//! Discord webhook URL *is* its secret — `/api/webhooks/{id}/{token}` —
//! and other services put keys in a URL's query (signed download links:
//! `sig=`, `X-Amz-Signature=`, `key=`) or its user info. What stays is
//! enough to tell which service and which call it was.

/// What replaces a secret.
const HIDDEN: &str = "***";

/// `raw` without its secrets: the password of its user info, every query
/// value (names are kept), its fragment, a Discord webhook's token and any
/// path segment that looks like a token. Text that is not a URL is hidden
/// whole: it could be anything.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return HIDDEN.to_owned();
    };
    if url.password().is_some() {
        // Only fails for URLs that cannot have a password, which this has.
        let _ = url.set_password(Some(HIDDEN));
    }
    if url.query().is_some() {
        let names: Vec<String> = url
            .query_pairs()
            .map(|(name, _)| name.into_owned())
            .collect();
        let query = names
            .iter()
            .map(|name| format!("{name}={HIDDEN}"))
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&query));
    }
    url.set_fragment(None);
    let segments: Option<Vec<String>> = url
        .path_segments()
        .map(|segments| segments.map(str::to_owned).collect());
    if let Some(segments) = segments {
        let hidden: Vec<&str> = segments
            .iter()
            .enumerate()
            .map(|(index, segment)| {
                let discord_token = index >= 2 && segments[index - 2] == "webhooks";
                if discord_token || looks_like_token(segment) {
                    HIDDEN
                } else {
                    segment.as_str()
                }
            })
            .collect();
        url.set_path(&hidden.join("/"));
    }
    url.to_string()
}

/// A long run of base64url characters mixing letters and digits: an API
/// key or token rather than a name (a UUID, with its dashes at fixed
/// places, is an id and stays).
fn looks_like_token(segment: &str) -> bool {
    segment.len() >= 32
        && uuid::Uuid::parse_str(segment).is_err()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && segment.chars().any(|c| c.is_ascii_digit())
        && segment.chars().any(|c| c.is_ascii_alphabetic())
}

/// A reqwest failure as text with its causes (a refused redirect says why
/// only there), its URL redacted.
pub fn redact_reqwest(error: reqwest::Error) -> String {
    let url = error.url().map(|url| redact_url(url.as_str()));
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest repeat their cause in their own text.
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    match url {
        Some(url) => format!("{text} (url {url})"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "q1Xw3-abcDEF_ghiJKL0123456789mnoPQRstuVWxyz0123456789ABCDEFghijklmnop";

    #[test]
    fn a_discord_webhook_keeps_its_id_and_loses_its_token() {
        let url = format!("https://discord.com/api/webhooks/1234567890/{TOKEN}");
        assert_eq!(
            redact_url(&url),
            "https://discord.com/api/webhooks/1234567890/***"
        );
        // Discord also accepts the token followed by more path.
        let url = format!("https://discord.com/api/webhooks/1234567890/{TOKEN}/slack?wait=true");
        assert_eq!(
            redact_url(&url),
            "https://discord.com/api/webhooks/1234567890/***/slack?wait=***"
        );
    }

    #[test]
    fn query_values_passwords_and_fragments_are_hidden() {
        assert_eq!(
            redact_url("https://user:hunter2@files.example/a.png?sig=abc&se=2026#frag"),
            "https://user:***@files.example/a.png?sig=***&se=***"
        );
    }

    #[test]
    fn ids_stay_and_tokens_in_paths_go() {
        let id = "96d1ca5c-7658-48c9-8193-9d1739854467";
        assert_eq!(
            redact_url(&format!("http://ledger:5003/outflow/{id}")),
            format!("http://ledger:5003/outflow/{id}")
        );
        assert_eq!(
            redact_url(&format!("https://hooks.example/{TOKEN}")),
            "https://hooks.example/***"
        );
        assert_eq!(redact_url("not a url with a secret"), "***");
    }
}
