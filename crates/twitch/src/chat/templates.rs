//! What dynamo says in chat: one template per event, with placeholders
//! (`{viewer}`, `{position}`, `{reason}`, `{subject}`, and on air
//! `{gallery_url}` when `PUBLIC_GALLERY` is on), rendered to at most
//! Twitch's 500 characters. What a viewer typed (`{subject}`) is offered
//! only once it passed the content rules and moderation: a refusal, or the
//! "queued" message sent before they were applied, never repeats it.

use dynamo_runtime::{Env, SettingError};
use dynamo_store::UntoldEnd;

/// Twitch's limit on a chat message.
pub const MAX_CHARS: usize = 500;

/// An event the viewer is told of (the outbox's `event` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Queued,
    Declined,
    Refused,
    Failed,
    OnAir,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Declined => "declined",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::OnAir => "on_air",
        }
    }

    /// The placeholders its template may use.
    fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::Queued => &["viewer", "position"],
            Self::Refused => &["viewer", "reason"],
            Self::Declined | Self::Failed => &["viewer", "reason", "subject"],
            Self::OnAir => &["viewer", "subject", "gallery_url"],
        }
    }
}

/// What the viewer is told of an ended redemption, from how it ended.
pub fn event_of(end: &UntoldEnd) -> (Event, String) {
    let reason = end
        .reason
        .clone()
        .or_else(|| end.cancel_reason.clone())
        .unwrap_or_default();
    let event = match end.state.as_str() {
        "succeeded" => Event::OnAir,
        "failed" => Event::Failed,
        // Cancelled at intake: the input could not be a request.
        _ if !end.requested => Event::Refused,
        // The streamer declined it, or a moderator cancelled it on Twitch.
        _ if end.approval_decision.as_deref() == Some("declined")
            || end.cancel_reason.is_some() =>
        {
            Event::Declined
        }
        _ => Event::Refused,
    };
    (event, reason)
}

/// The streamer's templates (`TWITCH_CHAT_*`); an empty one says nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub queued: String,
    pub declined: String,
    pub refused: String,
    pub failed: String,
    pub on_air: String,
    /// `PUBLIC_BASE_URL` when `PUBLIC_GALLERY` is on: `{gallery_url}` is
    /// the aired image's page there.
    pub gallery_base: Option<String>,
}

const QUEUED: &str = "@{viewer} your image is in the queue: number {position}.";
const DECLINED: &str =
    "@{viewer} \"{subject}\" did not make it ({reason}); your points are refunded.";
const REFUSED: &str = "@{viewer} your request was refused ({reason}); your points are refunded.";
const FAILED: &str =
    "@{viewer} sorry, \"{subject}\" could not be made ({reason}); your points are refunded.";

impl Default for Templates {
    fn default() -> Self {
        Self {
            queued: QUEUED.to_owned(),
            declined: DECLINED.to_owned(),
            refused: REFUSED.to_owned(),
            failed: FAILED.to_owned(),
            on_air: String::new(),
            gallery_base: None,
        }
    }
}

impl Event {
    const ALL: [Event; 5] = [
        Event::Queued,
        Event::Declined,
        Event::Refused,
        Event::Failed,
        Event::OnAir,
    ];

    /// The setting of its template.
    fn setting(self) -> &'static str {
        match self {
            Self::Queued => "TWITCH_CHAT_QUEUED",
            Self::Declined => "TWITCH_CHAT_DECLINED",
            Self::Refused => "TWITCH_CHAT_REFUSED",
            Self::Failed => "TWITCH_CHAT_FAILED",
            Self::OnAir => "TWITCH_CHAT_ON_AIR",
        }
    }
}

impl Templates {
    /// Each template from its setting (default when unset); a placeholder
    /// the event does not offer is refused, naming the setting.
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let templates = Self {
            queued: env.string("TWITCH_CHAT_QUEUED", QUEUED),
            declined: env.string("TWITCH_CHAT_DECLINED", DECLINED),
            refused: env.string("TWITCH_CHAT_REFUSED", REFUSED),
            failed: env.string("TWITCH_CHAT_FAILED", FAILED),
            on_air: env.string("TWITCH_CHAT_ON_AIR", ""),
            gallery_base: dynamo_runtime::settings::public_gallery_base(env)?,
        };
        if templates.gallery_base.is_none() && templates.on_air.contains("{gallery_url}") {
            return Err(SettingError::new(
                "TWITCH_CHAT_ON_AIR",
                "uses {gallery_url}, but the public gallery is off: set PUBLIC_GALLERY=true and PUBLIC_BASE_URL",
            ));
        }
        for event in Event::ALL {
            if let Some(unknown) = unknown_placeholder(event, templates.get(event)) {
                return Err(SettingError::new(
                    event.setting(),
                    format!(
                        "{{{unknown}}} is not offered here; use {}",
                        event
                            .placeholders()
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(templates)
    }

    pub fn get(&self, event: Event) -> &str {
        match event {
            Event::Queued => &self.queued,
            Event::Declined => &self.declined,
            Event::Refused => &self.refused,
            Event::Failed => &self.failed,
            Event::OnAir => &self.on_air,
        }
    }

    /// The message for `event`; `None` when its template is empty. Only
    /// the placeholders the event offers are filled in.
    pub fn render(&self, event: Event, values: &Values<'_>) -> Option<String> {
        let template = self.get(event).trim();
        if template.is_empty() {
            return None;
        }
        let mut text = template.to_owned();
        for name in event.placeholders() {
            let value = match *name {
                "viewer" => values.viewer.to_owned(),
                "position" => values.position.map(|p| p.to_string()).unwrap_or_default(),
                "reason" => values.reason.to_owned(),
                "subject" => values.subject.to_owned(),
                "gallery_url" => match (&self.gallery_base, values.gallery_id) {
                    (Some(base), Some(id)) => format!("{base}/gallery/{id}"),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            text = text.replace(&format!("{{{name}}}"), &value);
        }
        Some(truncate(&text))
    }
}

/// What a template is filled with.
#[derive(Debug, Default)]
pub struct Values<'a> {
    pub viewer: &'a str,
    pub position: Option<i64>,
    pub reason: &'a str,
    pub subject: &'a str,
    /// The aired image's public gallery id.
    pub gallery_id: Option<&'a str>,
}

fn unknown_placeholder(event: Event, template: &str) -> Option<String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !event.placeholders().contains(&name) {
            return Some(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    None
}

/// At most [`MAX_CHARS`] characters, cut with an ellipsis.
fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(state: &str, requested: bool) -> UntoldEnd {
        UntoldEnd {
            request_id: uuid::Uuid::nil(),
            twitch_user_id: "1".to_owned(),
            viewer: "bob".to_owned(),
            subject: "a seal".to_owned(),
            state: state.to_owned(),
            reason: Some("why".to_owned()),
            approval_decision: None,
            cancel_reason: None,
            requested,
            gallery_id: None,
        }
    }

    #[test]
    fn ends_are_told_as_the_event_they_were() {
        assert_eq!(event_of(&end("succeeded", true)).0, Event::OnAir);
        assert_eq!(event_of(&end("failed", true)).0, Event::Failed);
        assert_eq!(event_of(&end("rejected", true)).0, Event::Refused);
        assert_eq!(event_of(&end("rejected", false)).0, Event::Refused);
        let declined = UntoldEnd {
            approval_decision: Some("declined".to_owned()),
            ..end("rejected", true)
        };
        assert_eq!(event_of(&declined), (Event::Declined, "why".to_owned()));
        let withdrawn = UntoldEnd {
            cancel_reason: Some("cancelled on Twitch".to_owned()),
            reason: None,
            ..end("rejected", true)
        };
        assert_eq!(
            event_of(&withdrawn),
            (Event::Declined, "cancelled on Twitch".to_owned())
        );
    }

    #[test]
    fn a_refusal_never_repeats_what_the_viewer_typed() {
        let templates = Templates {
            refused: "@{viewer} no: {reason} {subject}".to_owned(),
            ..Templates::default()
        };
        let values = Values {
            viewer: "bob",
            reason: "blocked word",
            subject: "badword",
            position: None,
            gallery_id: None,
        };
        let text = templates.render(Event::Refused, &values).unwrap();
        assert!(!text.contains("badword"), "{text}");
        assert!(text.contains("blocked word"), "{text}");
    }

    #[test]
    fn templates_are_filled_cut_to_500_and_empty_ones_say_nothing() {
        let templates = Templates::default();
        let queued = templates
            .render(
                Event::Queued,
                &Values {
                    viewer: "bob",
                    position: Some(3),
                    ..Values::default()
                },
            )
            .unwrap();
        assert_eq!(queued, "@bob your image is in the queue: number 3.");
        assert_eq!(templates.render(Event::OnAir, &Values::default()), None);
        let long = "x".repeat(600);
        let failed = templates
            .render(
                Event::Failed,
                &Values {
                    subject: &long,
                    ..Values::default()
                },
            )
            .unwrap();
        assert_eq!(failed.chars().count(), MAX_CHARS);
    }

    #[test]
    fn the_on_air_reply_links_the_aired_image_in_the_gallery_when_it_is_on() {
        let env = Env::from_pairs([
            ("TWITCH_CHAT_ON_AIR", "@{viewer} on air now: {gallery_url}"),
            ("PUBLIC_GALLERY", "true"),
            ("PUBLIC_BASE_URL", "https://dynamo.example/"),
        ]);
        let templates = Templates::from_env(&env).unwrap();
        let values = Values {
            viewer: "bob",
            gallery_id: Some("0123456789abcdef01234567"),
            ..Values::default()
        };
        assert_eq!(
            templates.render(Event::OnAir, &values).unwrap(),
            "@bob on air now: https://dynamo.example/gallery/0123456789abcdef01234567"
        );
        // The gallery off, the link cannot be made: refused at start-up.
        let off = Env::from_pairs([("TWITCH_CHAT_ON_AIR", "{gallery_url}")]);
        let error = Templates::from_env(&off).unwrap_err().to_string();
        assert!(error.contains("PUBLIC_GALLERY"), "{error}");
        // Only the on-air reply offers it.
        let failed = Env::from_pairs([
            ("TWITCH_CHAT_FAILED", "{gallery_url}"),
            ("PUBLIC_GALLERY", "true"),
            ("PUBLIC_BASE_URL", "https://dynamo.example"),
        ]);
        let error = Templates::from_env(&failed).unwrap_err().to_string();
        assert!(error.contains("TWITCH_CHAT_FAILED"), "{error}");
    }

    #[test]
    fn a_placeholder_the_event_does_not_offer_is_refused_by_name() {
        let env = Env::from_pairs([("TWITCH_CHAT_QUEUED", "@{viewer} {subject}")]);
        let error = Templates::from_env(&env).unwrap_err().to_string();
        assert!(error.contains("TWITCH_CHAT_QUEUED"), "{error}");
        assert!(error.contains("{subject}"), "{error}");
        assert_eq!(
            Templates::from_env(&Env::from_pairs::<_, &str, &str>([])).unwrap(),
            Templates::default()
        );
    }
}
