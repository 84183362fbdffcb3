//! How a call to Twitch failed.

use dynamo_upstream::{LedgerError, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum TwitchError {
    /// No usable sign-in: never signed in, or Twitch refused the grant
    /// (revoked, password changed). Requests are held until
    /// `dynamoctl twitch login` is run again.
    #[error("not signed in to Twitch: {0}")]
    SignedOut(String),
    /// Twitch answered with an error that trying again will not change.
    #[error("Twitch refused {what}: {status} {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    /// Twitch could not be reached or answered 5xx/429.
    #[error("Twitch is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what Twitch documents.
    #[error("unexpected answer from Twitch: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] dynamo_store::StoreError),
    /// The stored tokens cannot be decrypted with TWITCH_TOKEN_KEY.
    #[error("{0}")]
    Cipher(String),
}

impl From<reqwest::Error> for TwitchError {
    fn from(error: reqwest::Error) -> Self {
        TwitchError::Unavailable(error.without_url().to_string())
    }
}

/// For the pipeline: no sign-in holds every request (an outage of the
/// service, not the viewer's failure); unreachable is transient; and when
/// the redemptions dynamo keeps cannot be loaded, it is dynamo's own
/// database failing, not Twitch.
impl From<TwitchError> for LedgerError {
    fn from(error: TwitchError) -> Self {
        let upstream = match error {
            TwitchError::Store(error) => return LedgerError::Store(error),
            TwitchError::SignedOut(reason) => UpstreamError::Outage {
                service: crate::SERVICE,
                reason: format!("{reason}; sign in again with `dynamoctl twitch login`"),
            },
            TwitchError::Cipher(reason) => UpstreamError::Outage {
                service: crate::SERVICE,
                reason,
            },
            TwitchError::Unavailable(detail) => UpstreamError::Transient {
                service: crate::SERVICE,
                detail,
                retry_after: None,
            },
            other => UpstreamError::Permanent {
                service: crate::SERVICE,
                detail: other.to_string(),
            },
        };
        LedgerError::Upstream(upstream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redemptions_failing_to_load_is_dynamos_database_not_twitch() {
        let error = TwitchError::Store(dynamo_store::StoreError::NotFound(uuid::Uuid::nil()));
        assert!(matches!(
            LedgerError::from(error),
            LedgerError::Store(dynamo_store::StoreError::NotFound(_))
        ));
        let signed_out = LedgerError::from(TwitchError::SignedOut("revoked".into()));
        assert!(matches!(
            signed_out,
            LedgerError::Upstream(UpstreamError::Outage { service, .. }) if service == crate::SERVICE
        ));
    }
}
