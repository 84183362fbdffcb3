//! How many times a message of the request queue was delivered, for
//! classic queues, which do not count (quorum queues do, in
//! `x-delivery-count`). The consumer writes only redeliveries, so a message
//! that is settled the first time costs nothing here.

use crate::{Store, StoreError};

impl Store {
    /// Counts one more delivery of a message that came back and returns
    /// how many deliveries it has had, the first one included.
    pub async fn count_redelivery(&self, message_key: &[u8]) -> Result<u32, StoreError> {
        let deliveries = sqlx::query_scalar!(
            "INSERT INTO dynamo.message_delivery (message_key, deliveries) VALUES ($1, 2)
             ON CONFLICT (message_key) DO UPDATE SET
                 deliveries = dynamo.message_delivery.deliveries + 1,
                 last_delivered_at = now()
             RETURNING deliveries",
            message_key
        )
        .fetch_one(self.pool())
        .await?;
        Ok(u32::try_from(deliveries).unwrap_or(u32::MAX))
    }

    /// Forgets the count of a message that is settled (acknowledged or parked).
    pub async fn forget_deliveries(&self, message_key: &[u8]) -> Result<(), StoreError> {
        sqlx::query!(
            "DELETE FROM dynamo.message_delivery WHERE message_key = $1",
            message_key
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
