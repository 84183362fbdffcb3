//! Overlay tokens: OBS cannot send headers, so the overlay carries its token
//! in the URL (`?token=`). Only SHA-256 hashes are stored. An overlay token
//! opens the overlay's own endpoints and nothing else: [`crate::Caller`]
//! reads only the `Authorization` header and never consults these tokens.

use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A caller holding a valid (unrevoked) overlay token.
#[derive(Debug, Clone)]
pub struct OverlayAccess {
    pub token_sha256: [u8; 32],
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new token: 32 random bytes, hex, with a prefix that says what it is.
pub(crate) fn new_token() -> String {
    format!("ovl_{}", hex::encode(rand::random::<[u8; 32]>()))
}

impl FromRequestParts<AppState> for OverlayAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Query(query) = Query::<TokenQuery>::from_request_parts(parts, state).await?;
        let token = query.token.filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::Unauthorized("add the overlay token to the URL: ?token=<token>".into())
        })?;
        let token_sha256 = digest(&token);
        if state.store.overlay_token_valid(&token_sha256).await? {
            Ok(Self { token_sha256 })
        } else {
            Err(ApiError::Unauthorized(
                "unknown or revoked overlay token".into(),
            ))
        }
    }
}
