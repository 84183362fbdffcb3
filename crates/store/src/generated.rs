//! What the image service answered, kept until the processed image is stored
//! (SPEC §6.9): a request resumed after a crash, or after storage was down,
//! continues from it instead of buying the image again.

use crate::{ImageCost, Lease, Store, StoreError};
use uuid::Uuid;

impl Store {
    /// Keeps the image service's answer for the request, under its lease,
    /// and records what it cost — in one statement, the image step's one
    /// write before post-processing. The cost is recorded whatever the
    /// lease: the image was bought either way.
    pub async fn keep_bought(
        &self,
        lease: &Lease,
        bytes: &[u8],
        cost: &ImageCost<'_>,
    ) -> Result<(), StoreError> {
        let tokens = |n: Option<u32>| n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        // A data-modifying CTE runs whether or not the statement reads it.
        let kept = sqlx::query!(
            "WITH spent AS (
                 INSERT INTO dynamo.image_spend
                     (image_request_id, model, cost_usd, priced_by, input_tokens, output_tokens)
                 VALUES ($1, $4, $5, $6, $7, $8))
             INSERT INTO dynamo.generated_image (image_request_id, bytes)
             SELECT id, $3 FROM dynamo.image_request WHERE id = $1 AND lease_token = $2
             ON CONFLICT (image_request_id) DO UPDATE SET bytes = EXCLUDED.bytes",
            lease.request_id,
            lease.token,
            bytes,
            cost.model,
            cost.cost_usd,
            cost.priced_by,
            tokens(cost.input_tokens),
            tokens(cost.output_tokens)
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
