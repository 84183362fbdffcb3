//! The content rules on the API (issue 29): read them, set their numbers,
//! block and unblock phrases. Admin only. Every consumer reads the rules for
//! each new request, so a change here applies to the next request judged.

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use dynamo_store::{ContentRules, RuleNumbers};
use dynamo_wire::{BlockedPhrase, MAX_PHRASE_CHARS};
use serde::{Deserialize, Serialize};

const MAX_COOLDOWN_SECONDS: i32 = 86_400;
const MAX_PER_BROADCAST: i32 = 10_000;
const MAX_WINDOW_MINUTES: i32 = 10_080;

/// The content rules as they stand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RulesView {
    /// A viewer's request this soon after their previous one is refused (0: off).
    cooldown_seconds: i32,
    /// A viewer's requests per broadcast beyond this many are refused (0: off).
    max_per_broadcast: i32,
    /// One broadcast, for requests that name none (Twitch, admin): the last this many minutes.
    broadcast_window_minutes: i32,
    /// Blocked words and phrases, as typed, oldest first.
    blocklist: Vec<String>,
    updated_at: DateTime<Utc>,
}

impl From<ContentRules> for RulesView {
    fn from(rules: ContentRules) -> Self {
        Self {
            cooldown_seconds: rules.numbers.cooldown_seconds,
            max_per_broadcast: rules.numbers.max_per_broadcast,
            broadcast_window_minutes: rules.numbers.broadcast_window_minutes,
            blocklist: rules.blocklist,
            updated_at: rules.updated_at,
        }
    }
}

/// The rules' numbers, all of them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    #[schema(minimum = 0, maximum = 86400)]
    cooldown_seconds: i32,
    #[schema(minimum = 0, maximum = 10000)]
    max_per_broadcast: i32,
    #[schema(minimum = 1, maximum = 10080)]
    broadcast_window_minutes: i32,
}

impl RulesBody {
    fn numbers(&self) -> Result<RuleNumbers, ApiError> {
        for (field, value, min, max) in [
            (
                "cooldown_seconds",
                self.cooldown_seconds,
                0,
                MAX_COOLDOWN_SECONDS,
            ),
            (
                "max_per_broadcast",
                self.max_per_broadcast,
                0,
                MAX_PER_BROADCAST,
            ),
            (
                "broadcast_window_minutes",
                self.broadcast_window_minutes,
                1,
                MAX_WINDOW_MINUTES,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(ApiError::bad_field(
                    field,
                    format!("must be between {min} and {max}"),
                ));
            }
        }
        Ok(RuleNumbers {
            cooldown_seconds: self.cooldown_seconds,
            max_per_broadcast: self.max_per_broadcast,
            broadcast_window_minutes: self.broadcast_window_minutes,
        })
    }
}

/// A word or phrase to block.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhraseBody {
    /// Matched on word boundaries, ignoring case, accents and light
    /// leetspeak (0→o, 1→i/l, 3→e, 4→a, 5→s, 7→t, @→a, $→s). One line, with
    /// a letter or digit.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    phrase: String,
}

fn parse_phrase(field: &str, raw: &str) -> Result<BlockedPhrase, ApiError> {
    BlockedPhrase::parse(raw).map_err(|error| ApiError::bad_field(field, error.to_string()))
}

/// The content rules and the blocklist (admins only).
#[utoipa::path(get, path = "/rules", tag = "rules",
    responses((status = 200, body = RulesView), (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn get_rules(
    State(state): State<AppState>,
    Admin(_caller): Admin,
) -> Result<Json<RulesView>, ApiError> {
    Ok(Json(state.store.content_rules().await?.into()))
}

/// Sets the rules' numbers (admins only); the next request judged goes by them.
#[utoipa::path(put, path = "/rules", tag = "rules",
    request_body(content = RulesBody, content_type = "application/json"),
    responses((status = 200, body = RulesView),
              (status = 400, description = "a number out of range; `field` names it"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn put_rules(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<RulesBody>,
) -> Result<Json<RulesView>, ApiError> {
    let numbers = body.numbers()?;
    state.store.set_rule_numbers(numbers).await?;
    tracing::info!(?numbers, by = ?caller, "content rules changed");
    Ok(Json(state.store.content_rules().await?.into()))
}

/// Blocks a word or phrase (admins only): 201 when added, 200 when the same
/// phrase (in any spelling the matcher treats as one) was blocked already.
#[utoipa::path(post, path = "/rules/blocklist", tag = "rules",
    request_body(content = PhraseBody, content_type = "application/json"),
    responses((status = 201, body = RulesView, description = "added"),
              (status = 200, body = RulesView, description = "blocked already"),
              (status = 400, description = "not a phrase; `field` says why"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn block_phrase(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<PhraseBody>,
) -> Result<(StatusCode, Json<RulesView>), ApiError> {
    let phrase = parse_phrase("phrase", &body.phrase)?;
    let added = state
        .store
        .block_phrase(&phrase.key(), phrase.as_str())
        .await?;
    // The phrase itself is the streamer's to see, not the logs'.
    tracing::info!(added, by = ?caller, "blocklist entry added");
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(state.store.content_rules().await?.into())))
}

/// Unblocks a word or phrase (admins only), named in any spelling the
/// matcher treats as the same.
#[utoipa::path(delete, path = "/rules/blocklist/{phrase}", tag = "rules",
    params(("phrase" = String, Path, description = "the phrase, URL-encoded", max_length = 100)),
    responses((status = 200, body = RulesView, description = "removed"),
              (status = 403, description = "not an admin"),
              (status = 404, description = "not on the blocklist (also text that could never be on it)")),
    security(("bearer" = [])))]
pub async fn unblock_phrase(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(phrase): Path<String>,
) -> Result<Json<RulesView>, ApiError> {
    // Text that could never have been added (too long, no letter or
    // digit) is simply not on the blocklist: a 404, like any other absent
    // entry, rather than a 400 for a well-formed path.
    let absent = || ApiError::NotFound("that phrase is not on the blocklist".into());
    if phrase.chars().count() > MAX_PHRASE_CHARS {
        return Err(absent());
    }
    let phrase = parse_phrase("phrase", &phrase).map_err(|_| absent())?;
    if !state.store.unblock_phrase(&phrase.key()).await? {
        return Err(absent());
    }
    tracing::info!(by = ?caller, "blocklist entry removed");
    Ok(Json(state.store.content_rules().await?.into()))
}
