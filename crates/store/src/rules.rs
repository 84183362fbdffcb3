//! The content rules (issue 29, migration 0022): their numbers, the
//! blocklist, what a viewer asked before, and each request's verdict.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The rules' numbers, as the streamer set them (0: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleNumbers {
    pub cooldown_seconds: i32,
    pub max_per_broadcast: i32,
    /// One broadcast, for a request that names none (Twitch, admin).
    pub broadcast_window_minutes: i32,
}

/// The rules as they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRules {
    pub numbers: RuleNumbers,
    /// The blocked phrases as typed, oldest first.
    pub blocklist: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// How the rules judged a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    Passed,
    /// An admin asked for the rules not to apply.
    Bypassed,
    Blocklist,
    Cooldown,
    Cap,
}

impl RuleVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleVerdict::Passed => "passed",
            RuleVerdict::Bypassed => "bypassed",
            RuleVerdict::Blocklist => "blocklist",
            RuleVerdict::Cooldown => "cooldown",
            RuleVerdict::Cap => "cap",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            RuleVerdict::Passed,
            RuleVerdict::Bypassed,
            RuleVerdict::Blocklist,
            RuleVerdict::Cooldown,
            RuleVerdict::Cap,
        ]
        .into_iter()
        .find(|verdict| verdict.as_str() == raw)
    }

    /// Whether the request may go on.
    pub fn admits(self) -> bool {
        matches!(self, RuleVerdict::Passed | RuleVerdict::Bypassed)
    }
}

/// What the viewer asked before a request: only requests recorded before
/// it that were not refused (rejected or failed) count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerHistory {
    /// When the request itself was recorded.
    pub created_at: DateTime<Utc>,
    /// The viewer's latest earlier request.
    pub last_at: Option<DateTime<Utc>>,
    /// Their earlier requests in the same broadcast: the same broadcast_id
    /// when the request has one, else within the broadcast window.
    pub in_broadcast: i64,
}

impl Store {
    /// The rules and the blocklist, in one read.
    pub async fn content_rules(&self) -> Result<ContentRules, StoreError> {
        let row = sqlx::query!(
            r#"SELECT r.cooldown_seconds, r.max_per_broadcast, r.broadcast_window_minutes,
                      r.updated_at,
                      coalesce((SELECT array_agg(b.phrase ORDER BY b.added_at, b.key)
                                FROM dynamo.blocked_phrase b), '{}') AS "blocklist!"
               FROM dynamo.content_rules r"#
        )
        .fetch_one(self.pool())
        .await?;
        Ok(ContentRules {
            numbers: RuleNumbers {
                cooldown_seconds: row.cooldown_seconds,
                max_per_broadcast: row.max_per_broadcast,
                broadcast_window_minutes: row.broadcast_window_minutes,
            },
            blocklist: row.blocklist,
            updated_at: row.updated_at,
        })
    }

    /// Sets the rules' numbers; the next request judged sees them.
    pub async fn set_rule_numbers(&self, numbers: RuleNumbers) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.content_rules SET cooldown_seconds = $1, max_per_broadcast = $2,
                 broadcast_window_minutes = $3, updated_at = now()",
            numbers.cooldown_seconds,
            numbers.max_per_broadcast,
            numbers.broadcast_window_minutes,
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Blocks a phrase. `false`: a phrase with the same key was blocked
    /// already (it is kept as first typed).
    pub async fn block_phrase(&self, key: &str, phrase: &str) -> Result<bool, StoreError> {
        let added = sqlx::query!(
            "WITH added AS (INSERT INTO dynamo.blocked_phrase (key, phrase) VALUES ($1, $2)
                            ON CONFLICT (key) DO NOTHING RETURNING key)
             UPDATE dynamo.content_rules SET updated_at = now() WHERE EXISTS (SELECT 1 FROM added)",
            key,
            phrase,
        )
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(added > 0)
    }

    /// Unblocks the phrase with this key. `false`: none was blocked.
    pub async fn unblock_phrase(&self, key: &str) -> Result<bool, StoreError> {
        let removed = sqlx::query!(
            "WITH removed AS (DELETE FROM dynamo.blocked_phrase WHERE key = $1 RETURNING key)
             UPDATE dynamo.content_rules SET updated_at = now() WHERE EXISTS (SELECT 1 FROM removed)",
            key,
        )
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(removed > 0)
    }

    /// The verdict recorded for a request, if it was judged.
    pub async fn rules_verdict(&self, request_id: Uuid) -> Result<Option<RuleVerdict>, StoreError> {
        let verdict = sqlx::query_scalar!(
            "SELECT verdict FROM dynamo.rules_verdict WHERE request_id = $1",
            request_id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(verdict.as_deref().and_then(RuleVerdict::parse))
    }

    /// Records how the rules judged a request. A request is judged once:
    /// should two runs race, the first verdict stands and is returned.
    pub async fn record_rules_verdict(
        &self,
        request_id: Uuid,
        verdict: RuleVerdict,
    ) -> Result<RuleVerdict, StoreError> {
        let stored = sqlx::query_scalar!(
            r#"WITH new AS (INSERT INTO dynamo.rules_verdict (request_id, verdict) VALUES ($1, $2)
                            ON CONFLICT (request_id) DO NOTHING RETURNING verdict)
               SELECT verdict AS "verdict!" FROM new
               UNION ALL
               SELECT verdict FROM dynamo.rules_verdict WHERE request_id = $1"#,
            request_id,
            verdict.as_str(),
        )
        .fetch_one(self.pool())
        .await?;
        Ok(RuleVerdict::parse(&stored).unwrap_or(verdict))
    }

    /// What the viewer of a request asked before it (see [`ViewerHistory`]).
    /// Earlier is by (created_at, id), so of two requests recorded at once
    /// each sees the same one as first.
    pub async fn viewer_history(
        &self,
        request_id: Uuid,
        broadcast_window_minutes: i32,
    ) -> Result<ViewerHistory, StoreError> {
        let row = sqlx::query!(
            r#"SELECT me.created_at,
                      max(e.created_at) AS last_at,
                      count(e.id) FILTER (WHERE CASE
                          WHEN me.broadcast_id IS NOT NULL THEN e.broadcast_id = me.broadcast_id
                          ELSE e.created_at > me.created_at - $2 * interval '1 minute' END)
                          AS "in_broadcast!"
               FROM dynamo.image_request me
               LEFT JOIN dynamo.image_request e
                 ON e.twitch_user_id = me.twitch_user_id
                AND (e.created_at, e.id) < (me.created_at, me.id)
                AND e.state NOT IN ('rejected', 'failed')
               WHERE me.id = $1
               GROUP BY me.id, me.created_at"#,
            request_id,
            f64::from(broadcast_window_minutes),
        )
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound(request_id))?;
        Ok(ViewerHistory {
            created_at: row.created_at,
            last_at: row.last_at,
            in_broadcast: row.in_broadcast,
        })
    }
}
