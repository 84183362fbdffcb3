//! What images cost (issue 12): one row per image bought, summed for the
//! day (the fleet's daily budget) and for the current broadcast. Spoken
//! captions (issue 30) are rows of their own (item `speech`): counted in
//! the spend, not as images.

use crate::{Store, StoreError};

/// One image bought.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageCost<'a> {
    pub model: &'a str,
    pub cost_usd: f64,
    /// usage, price or free.
    pub priced_by: &'a str,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
}

/// Spend so far, in USD.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct SpendSummary {
    /// Since 00:00 UTC today, fleet-wide (images and spoken captions).
    pub today_usd: f64,
    /// Images bought today.
    pub images_today: i64,
    /// The broadcast of the newest request that names one, if any.
    pub broadcast_id: Option<i64>,
    /// Spent on that broadcast's requests.
    pub broadcast_usd: f64,
}

impl Store {
    /// USD spent since 00:00 UTC today, fleet-wide.
    pub async fn spend_today(&self) -> Result<f64, StoreError> {
        let usd = sqlx::query_scalar!(
            r#"SELECT coalesce(sum(cost_usd), 0)::float8 AS "usd!" FROM dynamo.image_spend
             WHERE spent_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"#
        )
        .fetch_one(self.pool())
        .await?;
        Ok(usd)
    }

    /// Today's spend and the current broadcast's.
    pub async fn spend_summary(&self) -> Result<SpendSummary, StoreError> {
        let today = sqlx::query!(
            r#"SELECT coalesce(sum(cost_usd), 0)::float8 AS "usd!",
                 count(*) FILTER (WHERE item = 'image') AS "images!"
             FROM dynamo.image_spend
             WHERE spent_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"#
        )
        .fetch_one(self.pool())
        .await?;
        let (today_usd, images_today) = (today.usd, today.images);
        let broadcast_id = sqlx::query_scalar!(r#"SELECT broadcast_id AS "broadcast_id!" FROM dynamo.image_request WHERE broadcast_id IS NOT NULL
             ORDER BY created_at DESC LIMIT 1"#)
        .fetch_optional(self.pool())
        .await?;
        let broadcast_usd = match broadcast_id {
            Some(broadcast) => {
                sqlx::query_scalar!(
                    r#"SELECT coalesce(sum(s.cost_usd), 0)::float8 AS "usd!"
                     FROM dynamo.image_spend s
                     JOIN dynamo.image_request r ON r.id = s.image_request_id
                     WHERE r.broadcast_id = $1"#,
                    broadcast
                )
                .fetch_one(self.pool())
                .await?
            }
            None => 0.0,
        };
        Ok(SpendSummary {
            today_usd,
            images_today,
            broadcast_id,
            broadcast_usd,
        })
    }
}
