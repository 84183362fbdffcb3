//! What the image service answered, kept until the processed image is stored
//! (SPEC §6.9): a request resumed after a crash, or after storage was down,
//! continues from it instead of buying the image again.

use crate::{Lease, Store, StoreError};
use uuid::Uuid;

impl Store {
    /// Keeps the image service's answer for the request, under its lease.
    pub async fn keep_generated(&self, lease: &Lease, bytes: &[u8]) -> Result<(), StoreError> {
        let kept = sqlx::query!(
            "INSERT INTO dynamo.generated_image (image_request_id, bytes)
             SELECT id, $3 FROM dynamo.image_request WHERE id = $1 AND lease_token = $2
             ON CONFLICT (image_request_id) DO UPDATE SET bytes = EXCLUDED.bytes",
            lease.request_id,
            lease.token,
            bytes
        )
        .execute(self.pool())
        .await?;
        if kept.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(lease.request_id))
        }
    }

    /// The answer kept for a request, if it was bought and not yet stored.
    pub async fn generated(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes = sqlx::query_scalar!(
            "SELECT bytes FROM dynamo.generated_image WHERE image_request_id = $1",
            id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(bytes)
    }
}

/// Drops the kept answer once it is no longer needed (stored, or the request ended).
pub(crate) async fn forget_generated(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM dynamo.generated_image WHERE image_request_id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}
