//! `/me`: who the token belongs to, so a client (the live page) knows which
//! controls to offer before it tries them.

use crate::auth::Caller;
use axum::Json;
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
