//! Finding requests for operators: filters, newest first, and a cursor that
//! stays stable while new requests arrive (keyset pagination on
//! `(created_at, id)`: rows inserted later sort before the cursor, never after).

use crate::requests::{RequestRecord, select_requests};
use crate::{RequestState, Store, StoreError};
use chrono::{DateTime, Utc};
use dynamo_wire::StyleId;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// Which requests to list. Every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub twitch_user_id: Option<String>,
    pub broadcast_id: Option<i64>,
    pub screening_id: Option<Uuid>,
    pub state: Option<RequestState>,
    pub style: Option<StyleId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Where the previous page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// An opaque token: `<microseconds>_<uuid>`.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    pub fn decode(token: &str) -> Option<Self> {
        let (micros, id) = token.split_once('_')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

impl Store {
    /// Up to `limit` requests matching `filter`, newest first, after `cursor`;
    /// and the cursor of the next page when there may be one.
    pub async fn list(
        &self,
        filter: &RequestFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<RequestRecord>, Option<Cursor>), StoreError> {
        // Runtime-checked: the filters present make the WHERE clause. It picks
        // the page's ids only; the rows are then read by the checked SELECT.
        let mut query =
            QueryBuilder::<Postgres>::new("SELECT r.id FROM dynamo.image_request r WHERE true");
        if let Some(user) = &filter.twitch_user_id {
            query
                .push(" AND r.twitch_user_id = ")
                .push_bind(user.clone());
        }
        if let Some(broadcast) = filter.broadcast_id {
            query.push(" AND r.broadcast_id = ").push_bind(broadcast);
        }
        if let Some(screening) = filter.screening_id {
            query.push(" AND r.screening_id = ").push_bind(screening);
        }
        if let Some(state) = filter.state {
            query.push(" AND r.state = ").push_bind(state.as_str());
        }
        if let Some(style) = &filter.style {
            query.push(" AND r.style = ").push_bind(style.as_str());
        }
        if let Some(since) = filter.since {
            query.push(" AND r.created_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND r.created_at < ").push_bind(until);
        }
        if let Some(cursor) = cursor {
            query
                .push(" AND (r.created_at, r.id) < (")
                .push_bind(cursor.created_at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        query
            .push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ")
            .push_bind(limit);
        let ids: Vec<Uuid> = query.build_query_scalar().fetch_all(self.pool()).await?;
        let records: Vec<RequestRecord> = select_requests!(
            "WHERE r.id = ANY($1) ORDER BY r.created_at DESC, r.id DESC",
            &ids
        )
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(RequestRecord::from)
        .collect();
        let next = (records.len() as i64 == limit)
            .then(|| records.last())
            .flatten()
            .map(|last| Cursor {
                created_at: last.created_at,
                id: last.id,
            });
        Ok((records, next))
    }

    /// Requests whose row changed after `since`, oldest change first: what an
    /// event stream missed while its client was disconnected.
    pub async fn changed_since(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let rows = select_requests!(
            "WHERE r.updated_at > $1 ORDER BY r.updated_at LIMIT $2",
            since,
            limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(RequestRecord::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("nonsense"), None);
        assert_eq!(Cursor::decode("12_not-a-uuid"), None);
    }
}
