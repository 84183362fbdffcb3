//! `/me`: who the token belongs to, so a client (the live page) knows which
//! controls to offer before it tries them; `/sign-in`: what a visitor with no
//! token yet needs to know to get one.

use crate::AppState;
use crate::auth::{Caller, DEVELOPMENT_TOKEN};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// viewer, broadcaster or service
    pub role: &'static str,
    /// May enqueue and retry requests, and sees everyone's.
    pub admin: bool,
    /// The viewer's or broadcaster's Twitch user id.
    pub twitch_user_id: Option<String>,
    /// The service's name.
    pub service: Option<String>,
}

impl From<&Caller> for Me {
    fn from(caller: &Caller) -> Self {
        let (role, twitch_user_id, service) = match caller {
            Caller::Viewer { twitch_user_id } => ("viewer", Some(twitch_user_id.clone()), None),
            Caller::Broadcaster { twitch_user_id } => {
                ("broadcaster", Some(twitch_user_id.clone()), None)
            }
            Caller::Service { name } => ("service", None, Some(name.clone())),
        };
        Self {
            role,
            admin: caller.is_admin(),
            twitch_user_id,
            service,
        }
    }
}

/// The caller, as the server sees them.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, description = "no or bad token")),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me::from(&caller))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignIn {
    /// Where tokens come from: `goldenvcr` (Golden VCR's auth service) or
    /// `standalone` (admin tokens configured on this server).
    pub auth_mode: &'static str,
    /// Set only when this server accepts the local stack's well-known admin
    /// token (`scripts/dev.sh`): that token, so the page can say so. No
    /// configured token is ever revealed; this one is public by design.
    pub development_token: Option<&'static str>,
}

/// How to sign in here; needs no token.
#[utoipa::path(get, path = "/sign-in", tag = "auth",
    responses((status = 200, body = SignIn)))]
pub async fn sign_in(State(state): State<AppState>) -> Json<SignIn> {
    let auth = state.auth.as_ref();
    Json(SignIn {
        auth_mode: match auth {
            crate::Authenticator::GoldenVcr(_) => "goldenvcr",
            crate::Authenticator::Standalone { .. } => "standalone",
        },
        development_token: auth
            .accepts_development_token()
            .then_some(DEVELOPMENT_TOKEN),
    })
}
