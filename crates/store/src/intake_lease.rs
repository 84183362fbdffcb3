//! Who runs the Twitch intake (issue 29, migration 0022): with
//! `TWITCH_INTAKE=true` on every consumer, exactly one holds the EventSub
//! session at a time. The lease lapses unless renewed; taking it bumps its
//! fence, and a renewal names the fence it holds, so a holder that froze
//! and was taken over learns so at its next renewal and drops its socket.

use crate::{Store, StoreError};
use std::time::Duration;

/// The right to run the intake, until it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLease {
    pub fence: i64,
}

fn millis(ttl: Duration) -> f64 {
    ttl.as_millis() as f64
}

impl Store {
    /// Takes the intake's lease for `holder` when nobody holds it (or it
    /// lapsed); `None`: another consumer runs the intake.
    pub async fn take_intake_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<IntakeLease>, StoreError> {
        let fence = sqlx::query_scalar!(
            "INSERT INTO dynamo.intake_lease (holder, expires_at)
             VALUES ($1, now() + $2 * interval '1 millisecond')
             ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder,
                 fence = dynamo.intake_lease.fence + 1,
                 expires_at = EXCLUDED.expires_at, taken_at = now()
             WHERE dynamo.intake_lease.expires_at < now()
             RETURNING fence",
            holder,
            millis(ttl),
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(fence.map(|fence| IntakeLease { fence }))
    }

    /// Extends the lease still held; `false` when it was taken over.
    pub async fn renew_intake_lease(
        &self,
        lease: IntakeLease,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query!(
            "UPDATE dynamo.intake_lease SET expires_at = now() + $2 * interval '1 millisecond'
             WHERE fence = $1",
            lease.fence,
            millis(ttl),
        )
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(renewed > 0)
    }

    /// Gives the lease up (a clean shutdown): another consumer takes the
    /// intake over at its next look rather than after the lease lapses.
    pub async fn release_intake_lease(&self, lease: IntakeLease) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.intake_lease SET expires_at = now() - interval '1 millisecond'
             WHERE fence = $1",
            lease.fence,
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The consumer holding the intake now, if its lease is live.
    pub async fn intake_holder(&self) -> Result<Option<(String, i64)>, StoreError> {
        let row =
            sqlx::query!("SELECT holder, fence FROM dynamo.intake_lease WHERE expires_at > now()")
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|row| (row.holder, row.fence)))
    }
}
