//! The streamer's sign-in, kept in PostgreSQL encrypted, refreshed a while
//! before it expires (or at once when Twitch answers 401). Refreshing
//! rotates the refresh token: the new pair is stored in one statement over
//! the version it started from, so a crash or a second process refreshing at
//! the same moment can never leave a spent refresh token behind.

use crate::TwitchError;
use crate::cipher::TokenCipher;
use crate::oauth::{OAuth, Tokens, Validated};
use chrono::{DateTime, Utc};
use dynamo_store::{GrantAccount, Store, StoredGrant};

/// Refresh this long before the access token expires.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(5);
const ACCESS: &str = "access_token";
const REFRESH: &str = "refresh_token";

#[derive(Debug)]
pub struct TokenSource {
    store: Store,
    /// The streamer's sign-in, or the chat bot's.
    account: GrantAccount,
    oauth: OAuth,
    cipher: TokenCipher,
    /// One refresh at a time in this process (the version check covers others).
    refreshing: tokio::sync::Mutex<()>,
}

/// A usable access token and whose it is.
#[derive(Clone)]
pub struct Access {
    pub token: String,
    pub user_id: String,
    pub user_login: String,
}

impl TokenSource {
    pub fn new(store: Store, oauth: OAuth, cipher: TokenCipher) -> Self {
        Self::of(GrantAccount::Broadcaster, store, oauth, cipher)
    }

    /// The tokens of `account` (the streamer's, or the chat bot's).
    pub fn of(account: GrantAccount, store: Store, oauth: OAuth, cipher: TokenCipher) -> Self {
        Self {
            store,
            account,
            oauth,
            cipher,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn oauth(&self) -> &OAuth {
        &self.oauth
    }

    /// The current access token, refreshed first when it is about to expire.
    pub async fn access(&self) -> Result<Access, TwitchError> {
        let grant = self.grant().await?;
        if grant.expires_at - REFRESH_AHEAD > Utc::now() {
            return self.open(&grant);
        }
        self.refresh_from(grant.version).await
    }

    /// Twitch answered 401 to `stale`: refresh, unless another call already
    /// replaced it.
    pub async fn after_unauthorized(&self, stale: &Access) -> Result<Access, TwitchError> {
        let grant = self.grant().await?;
        let current = self.open(&grant)?;
        if current.token != stale.token {
            return Ok(current);
        }
        self.refresh_from(grant.version).await
    }

    /// Stores a fresh sign-in (from the device code flow), after asking
    /// Twitch whose it is.
    pub async fn sign_in(&self, tokens: &Tokens) -> Result<Validated, TwitchError> {
        let who = self.oauth.validate(&tokens.access_token).await?;
        let grant = StoredGrant {
            user_id: who.user_id.clone(),
            user_login: who.login.clone(),
            scopes: tokens.scope.clone(),
            access_token: self.cipher.seal(ACCESS, &tokens.access_token),
            refresh_token: self.cipher.seal(REFRESH, &tokens.refresh_token),
            expires_at: expiry(tokens),
            version: 0,
            revoked_at: None,
            revoked_reason: None,
        };
        self.store.save_twitch_grant(self.account, &grant).await?;
        if self.account == GrantAccount::Broadcaster {
            // Whatever was held for want of a sign-in may go on.
            self.store.release_hold(crate::SERVICE.as_str()).await?;
        }
        Ok(who)
    }

    /// Twitch refused the grant outright (a revocation): record it so
    /// every process holds requests until the next sign-in.
    pub async fn revoked(&self, reason: &str) -> Result<(), TwitchError> {
        self.store.revoke_twitch_grant(self.account, reason).await?;
        Ok(())
    }

    async fn grant(&self) -> Result<StoredGrant, TwitchError> {
        let grant = self
            .store
            .twitch_grant(self.account)
            .await?
            .ok_or_else(|| TwitchError::SignedOut("nobody has signed in yet".to_owned()))?;
        if let Some(reason) = &grant.revoked_reason {
            return Err(TwitchError::SignedOut(reason.clone()));
        }
        Ok(grant)
    }

    fn open(&self, grant: &StoredGrant) -> Result<Access, TwitchError> {
        Ok(Access {
            token: self
                .cipher
                .open(ACCESS, &grant.access_token)
                .map_err(TwitchError::Cipher)?,
            user_id: grant.user_id.clone(),
            user_login: grant.user_login.clone(),
        })
    }

    async fn refresh_from(&self, version: i64) -> Result<Access, TwitchError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let grant = self.grant().await?;
        if grant.version != version {
            // Refreshed meanwhile (here or by another process).
            return self.open(&grant);
        }
        let refresh_token = self
            .cipher
            .open(REFRESH, &grant.refresh_token)
            .map_err(TwitchError::Cipher)?;
        let tokens = match self.oauth.refresh(&refresh_token).await {
            Ok(tokens) => tokens,
            Err(TwitchError::SignedOut(reason)) => {
                // Another process may have rotated it a moment ago.
                let now = self.grant().await?;
                if now.version != grant.version {
                    return self.open(&now);
                }
                tracing::error!(%reason, "the Twitch grant is gone: requests are held until `dynamoctl twitch login`");
                self.store
                    .revoke_twitch_grant(self.account, &reason)
                    .await?;
                return Err(TwitchError::SignedOut(reason));
            }
            Err(other) => return Err(other),
        };
        let stored = self
            .store
            .rotate_twitch_tokens(
                self.account,
                grant.version,
                &self.cipher.seal(ACCESS, &tokens.access_token),
                &self.cipher.seal(REFRESH, &tokens.refresh_token),
                expiry(&tokens),
            )
            .await?;
        if !stored {
            // Lost a race we could not see coming: the winner's pair is current.
            return self.open(&self.grant().await?);
        }
        tracing::info!(
            expires_in = tokens.expires_in,
            "refreshed the Twitch access token"
        );
        Ok(Access {
            token: tokens.access_token,
            user_id: grant.user_id,
            user_login: grant.user_login,
        })
    }
}

fn expiry(tokens: &Tokens) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(tokens.expires_in)
}
