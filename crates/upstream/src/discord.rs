//! Optional Discord webhooks: a finished image is posted to the channel of its
//! style (Golden VCR's two each have theirs; every other style shares one). Best effort by design: a failure here is logged, never fails a request.

use dynamo_wire::{Style, StyleId};
use serde_json::json;

#[derive(Debug, Clone, Default)]
pub struct DiscordWebhooks {
    http: reqwest::Client,
    /// `DISCORD_GHOSTS_WEBHOOK_URL`.
    pub ghosts: Option<String>,
    /// `DISCORD_FRIENDS_WEBHOOK_URL`.
    pub friends: Option<String>,
    /// `DISCORD_STYLES_WEBHOOK_URL`: every other (the streamer's own) style.
    pub styles: Option<String>,
}

impl DiscordWebhooks {
    pub fn new(
        http: reqwest::Client,
        ghosts: Option<String>,
        friends: Option<String>,
        styles: Option<String>,
    ) -> Self {
        Self {
            http,
            ghosts,
            friends,
            styles,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.ghosts.is_some() || self.friends.is_some() || self.styles.is_some()
    }

    /// Posts the image; logs and swallows any failure.
    pub async fn announce(
        &self,
        style: &StyleId,
        viewer: &str,
        description: &str,
        image_url: &str,
    ) {
        let webhook = match style.builtin() {
            Some(Style::Ghost) => self.ghosts.as_deref(),
            Some(Style::Friend) => self.friends.as_deref(),
            // Golden VCR's two channels are for its two styles; the
            // streamer's own share a channel of their own.
            None => self.styles.as_deref(),
        };
        let Some(webhook) = webhook else { return };
        let body = json!({
            "content": format!("**{viewer}** asked for {description}"),
            "embeds": [{"title": description, "image": {"url": image_url}}],
            "allowed_mentions": {"parse": []},
        });
        // The webhook URL is its own secret: only its redacted form is logged.
        let shown = crate::redact::redact_url(webhook);
        match self.http.post(webhook).json(&body).send().await {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(%style, webhook = %shown, "posted the image to Discord")
            }
            Ok(response) => {
                tracing::warn!(%style, webhook = %shown, status = %response.status(), "Discord webhook refused the image")
            }
            Err(error) => {
                let error = crate::redact::redact_reqwest(error);
                tracing::warn!(%style, webhook = %shown, %error, "could not reach the Discord webhook; check DISCORD_*_WEBHOOK_URL")
            }
        }
    }
}
