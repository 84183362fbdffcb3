//! Writes what viewers are to be told into the outbox, from what the
//! database says happened: a redemption taken into the queue (with its
//! place), and its end (declined, refused, failed, or on air). It reads
//! state rather than being called by the pipeline, so chat can never hold
//! up or change a request's end; one message per request and event (the
//! outbox's unique key), whichever process writes it first.

use super::templates::{Event, Templates, Values, event_of};
use crate::TwitchError;
use dynamo_store::Store;

/// How many of each are written per look.
const BATCH: i64 = 100;

pub struct Teller {
    pub store: Store,
    pub templates: Templates,
}

impl Teller {
    /// One look: what was not told yet is written to the outbox. The
    /// "queued" messages first, so a viewer hears of the queue before the end.
    pub async fn tell(&self) -> Result<usize, TwitchError> {
        let mut written = 0;
        for queued in self.store.untold_queued(BATCH).await? {
            let values = Values {
                viewer: &queued.viewer,
                position: Some(queued.position),
                ..Values::default()
            };
            written += usize::from(
                self.write(
                    queued.request_id,
                    Event::Queued,
                    &queued.twitch_user_id,
                    &values,
                )
                .await?,
            );
        }
        let on_air = !self.templates.get(Event::OnAir).trim().is_empty();
        for end in self.store.untold_ends(on_air, BATCH).await? {
            let (event, reason) = event_of(&end);
            let values = Values {
                viewer: &end.viewer,
                position: None,
                reason: &reason,
                subject: &end.subject,
                gallery_id: end.gallery_id.as_deref(),
            };
            written += usize::from(
                self.write(end.request_id, event, &end.twitch_user_id, &values)
                    .await?,
            );
        }
        Ok(written)
    }

    async fn write(
        &self,
        request_id: uuid::Uuid,
        event: Event,
        twitch_user_id: &str,
        values: &Values<'_>,
    ) -> Result<bool, TwitchError> {
        match self.templates.render(event, values) {
            Some(text) => Ok(self
                .store
                .queue_chat(request_id, event.as_str(), twitch_user_id, &text)
                .await?),
            None => {
                self.store
                    .silent_chat(request_id, event.as_str(), twitch_user_id)
                    .await?;
                Ok(false)
            }
        }
    }
}
