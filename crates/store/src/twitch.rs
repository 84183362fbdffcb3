//! The Twitch sign-in and the channel-point redemptions taken in (migration
//! 0017). Tokens arrive here already encrypted: the store never sees them
//! in the clear.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The stored sign-in, tokens still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    pub user_id: String,
    pub user_login: String,
    pub scopes: Vec<String>,
    pub access_token: Vec<u8>,
    pub refresh_token: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub version: i64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

/// A redemption to record at intake.
#[derive(Debug, Clone)]
pub struct NewRedemption<'a> {
    pub redemption_id: &'a str,
    pub request_id: Uuid,
    pub broadcaster_id: &'a str,
    pub reward_id: &'a str,
    pub twitch_user_id: &'a str,
    pub user_login: &'a str,
    pub user_input: &'a str,
}

/// A recorded redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRedemption {
    pub redemption_id: String,
    pub request_id: Uuid,
    pub broadcaster_id: String,
    pub reward_id: String,
    pub published_at: Option<DateTime<Utc>>,
    pub settled_status: Option<String>,
    pub cancel_reason: Option<String>,
}

/// The checked SELECT of a [`StoredRedemption`], followed by the caller's
/// condition (a string literal) and its argument.
macro_rules! select_redemption {
    ($condition:tt, $arg:expr) => {
        sqlx::query_as!(
            StoredRedemption,
            "SELECT redemption_id, request_id, broadcaster_id, reward_id, published_at,
                 settled_status, cancel_reason FROM dynamo.twitch_redemption WHERE "
                + $condition,
            $arg
        )
    };
}

/// Whose sign-in: the streamer's, or the bot account chat is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAccount {
    Broadcaster,
    Bot,
}

impl GrantAccount {
    fn id(self) -> i16 {
        match self {
            Self::Broadcaster => 1,
            Self::Bot => 2,
        }
    }
}

impl Store {
    /// Stores a fresh sign-in of `account`, replacing any earlier one (and
    /// its revocation).
    pub async fn save_twitch_grant(
        &self,
        account: GrantAccount,
        grant: &StoredGrant,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO dynamo.twitch_grant (id, user_id, user_login, scopes, access_token,
                 refresh_token, expires_at)
             VALUES ($7, $1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id,
                 user_login = EXCLUDED.user_login, scopes = EXCLUDED.scopes,
                 access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,
                 expires_at = EXCLUDED.expires_at, version = dynamo.twitch_grant.version + 1,
                 revoked_at = NULL, revoked_reason = NULL, updated_at = now()",
            &grant.user_id,
            &grant.user_login,
            &grant.scopes,
            &grant.access_token,
            &grant.refresh_token,
            grant.expires_at,
            account.id()
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn twitch_grant(
        &self,
        account: GrantAccount,
    ) -> Result<Option<StoredGrant>, StoreError> {
        let grant = sqlx::query_as!(
            StoredGrant,
            "SELECT user_id, user_login, scopes, access_token, refresh_token, expires_at,
                    version, revoked_at, revoked_reason
             FROM dynamo.twitch_grant WHERE id = $1",
            account.id()
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(grant)
    }

    /// Stores a refreshed token pair over `from_version` only, in one
    /// statement: the rotated refresh token is never half-stored, and of two
    /// processes refreshing at once only one wins (`false` for the other,
    /// which reads the winner's tokens).
    pub async fn rotate_twitch_tokens(
        &self,
        account: GrantAccount,
        from_version: i64,
        access_token: &[u8],
        refresh_token: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query!(
            "UPDATE dynamo.twitch_grant SET access_token = $2, refresh_token = $3,
                 expires_at = $4, version = version + 1, updated_at = now()
             WHERE id = $5 AND version = $1 AND revoked_at IS NULL",
            from_version,
            access_token,
            refresh_token,
            expires_at,
            account.id()
        )
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Twitch refused the grant: keep it, say why, until the next sign-in.
    pub async fn revoke_twitch_grant(
        &self,
        account: GrantAccount,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.twitch_grant SET revoked_at = coalesce(revoked_at, now()),
                 revoked_reason = $1, updated_at = now()
             WHERE id = $2",
            reason,
            account.id()
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a redemption the first time it is seen; returns the record
    /// either way.
    pub async fn record_redemption(
        &self,
        new: &NewRedemption<'_>,
    ) -> Result<StoredRedemption, StoreError> {
        sqlx::query!(
            "INSERT INTO dynamo.twitch_redemption (redemption_id, request_id, broadcaster_id,
                 reward_id, twitch_user_id, user_input, user_login)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (redemption_id) DO NOTHING",
            new.redemption_id,
            new.request_id,
            new.broadcaster_id,
            new.reward_id,
            new.twitch_user_id,
            new.user_input,
            new.user_login
        )
        .execute(self.pool())
        .await?;
        let record = select_redemption!("redemption_id = $1", new.redemption_id)
            .fetch_one(self.pool())
            .await?;
        Ok(record)
    }

    /// Its request was confirmed on generation-requests.
    pub async fn mark_redemption_published(&self, redemption_id: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.twitch_redemption SET published_at = coalesce(published_at, now())
             WHERE redemption_id = $1",
            redemption_id
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn redemption_for_request(
        &self,
        request_id: Uuid,
    ) -> Result<Option<StoredRedemption>, StoreError> {
        let record = select_redemption!("request_id = $1", request_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(record)
    }

    /// Records how the redemption was settled (the first answer wins).
    pub async fn mark_redemption_settled(
        &self,
        redemption_id: &str,
        status: &str,
        cancel_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE dynamo.twitch_redemption SET settled_status = $2, settled_at = now(),
                 cancel_reason = coalesce(cancel_reason, $3)
             WHERE redemption_id = $1 AND settled_status IS NULL",
            redemption_id,
            status,
            cancel_reason
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Someone else cancelled the redemption on Twitch: it counts as
    /// settled, with `reason`. The recorded redemption when this call
    /// settled it; `None` when it was settled before (by dynamo, whose
    /// PATCH this is the echo of, or an earlier notice) or is unknown.
    pub async fn redemption_cancelled_elsewhere(
        &self,
        redemption_id: &str,
        reason: &str,
    ) -> Result<Option<StoredRedemption>, StoreError> {
        let record = sqlx::query_as!(
            StoredRedemption,
            "UPDATE dynamo.twitch_redemption SET settled_status = 'CANCELED', settled_at = now(),
                 cancel_reason = coalesce(cancel_reason, $2)
             WHERE redemption_id = $1 AND settled_status IS NULL
             RETURNING redemption_id, request_id, broadcaster_id, reward_id, published_at,
                 settled_status, cancel_reason",
            redemption_id,
            reason
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(record)
    }

    /// The redemption recorded under its Twitch id.
    pub async fn redemption(
        &self,
        redemption_id: &str,
    ) -> Result<Option<StoredRedemption>, StoreError> {
        let record = select_redemption!("redemption_id = $1", redemption_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(record)
    }

    /// Whether the request has reached its end state (and so settles its
    /// redemption itself, if it has not yet).
    pub async fn request_finished(&self, request_id: Uuid) -> Result<bool, StoreError> {
        let finished = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM dynamo.image_request
                              WHERE id = $1 AND finished_at IS NOT NULL) AS "finished!""#,
            request_id
        )
        .fetch_one(self.pool())
        .await?;
        Ok(finished)
    }
}
