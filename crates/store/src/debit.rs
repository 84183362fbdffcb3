//! The debit's intent (SPEC §6.3): recorded before the ledger is asked, so a
//! debit whose answer never arrived can be found and adopted, not repeated.

use crate::{Lease, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use uuid::Uuid;

/// When dynamo first asked for a request's debit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebitIntent {
    pub since: DateTime<Utc>,
    /// Recorded by an earlier try: a debit may exist that we never heard of.
    pub earlier: bool,
}

impl Store {
    /// Records that the debit is about to be asked for (once; later calls
    /// return the first time).
    pub async fn note_debit_intent(&self, lease: &Lease) -> Result<DebitIntent, StoreError> {
        let noted = sqlx::query_as!(
            DebitIntent,
            r#"UPDATE dynamo.image_request r
             SET debit_requested_at = coalesce(r.debit_requested_at, now())
             FROM (SELECT debit_requested_at AS before FROM dynamo.image_request WHERE id = $1) b
             WHERE r.id = $1 AND r.lease_token = $2
             RETURNING r.debit_requested_at AS "since!", b.before IS NOT NULL AS "earlier!""#,
            lease.request_id,
            lease.token,
        )
        .fetch_optional(self.pool())
        .await?;
        noted.ok_or(StoreError::LeaseLost(lease.request_id))
    }

    /// How long the oldest pending debit has waited, in seconds: a request
    /// whose ledger flow was created but neither accepted nor rejected yet.
    /// Zero when there is none. A debit pending for long means points are
    /// held from a viewer while nothing settles them.
    pub async fn oldest_pending_debit_age(&self) -> Result<f64, StoreError> {
        let age = sqlx::query_scalar!(
            r#"SELECT coalesce(extract(epoch FROM now() - min(debited_at))::float8, 0) AS "age!"
             FROM dynamo.image_request
             WHERE settled_at IS NULL AND ledger_flow_id IS NOT NULL AND debited_at IS NOT NULL"#
        )
        .fetch_one(self.pool())
        .await?;
        Ok(age.max(0.0))
    }

    /// Which of these ledger flows a request already holds.
    pub async fn owned_flows(&self, flows: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let owned = sqlx::query_scalar!(r#"SELECT ledger_flow_id AS "flow!" FROM dynamo.image_request WHERE ledger_flow_id = ANY($1)"#, flows)
        .fetch_all(self.pool())
        .await?;
        Ok(owned.into_iter().collect())
    }
}

impl Store {
    /// When the request's debit was first asked for, if ever.
    pub async fn debit_intent(&self, id: Uuid) -> Result<Option<DateTime<Utc>>, StoreError> {
        let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar!(
            "SELECT debit_requested_at FROM dynamo.image_request WHERE id = $1",
            id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(since.flatten())
    }

    /// Of `pending` (the viewer's pending debits in the ledger), those no
    /// request holds; `None` while another request of the same viewer may be
    /// waiting for a debit's answer, since the debit could be its own.
    pub async fn orphaned_flows(
        &self,
        id: Uuid,
        pending: &[Uuid],
    ) -> Result<Option<Vec<Uuid>>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT EXISTS (
                        SELECT 1 FROM dynamo.image_request o
                        JOIN dynamo.image_request r ON r.twitch_user_id = o.twitch_user_id
                        WHERE r.id = $1 AND o.id <> r.id
                          AND o.debit_requested_at IS NOT NULL
                          AND o.ledger_flow_id IS NULL
                          AND o.finished_at IS NULL) AS "in_flight!",
                    ARRAY(SELECT ledger_flow_id FROM dynamo.image_request
                          WHERE ledger_flow_id = ANY($2)) AS "owned!: Vec<Uuid>""#,
            id,
            pending,
        )
        .fetch_one(self.pool())
        .await?;
        let (in_flight, owned) = (row.in_flight, row.owned);
        Ok((!in_flight).then(|| {
            pending
                .iter()
                .copied()
                .filter(|flow| !owned.contains(flow))
                .collect()
        }))
    }
}
