//! `/styles`: the streamer's styles (SPEC §8), managed by admins. A change is
//! written to `dynamo.styles`, whose trigger tells every consumer at once.

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{Json, Path, from_value};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dynamo_store::{DeleteError, GrantAccount, StoredStyle, Written};
use dynamo_wire::{StyleDefinition, StyleId};
use serde::Serialize;
use serde_json::Value;

/// The body of `POST /styles` (parsed by [`definition`], each problem named).
pub struct StyleBody;
crate::schemas::schema_from!(StyleBody, crate::schemas::style_definition);

/// The body of `PUT /styles/{style}`.
pub struct StyleBodyWithoutId;
crate::schemas::schema_from!(
    StyleBodyWithoutId,
    crate::schemas::style_definition_without_id
);

/// A style as stored: its definition (SPEC §8) and what dynamo keeps beside it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StyleView {
    /// The definition, as `POST /styles` and `styles.toml` take it.
    #[schema(schema_with = crate::schemas::style_definition)]
    pub definition: Value,
    /// The Twitch reward made for it, if any.
    pub reward_id: Option<String>,
    /// Where its Twitch reward stands: `none`, `requested` (asked for with
    /// `POST /styles/{style}/reward`, not yet made), `published`, `paused`
    /// (the style is disabled) or `failed` (see `reward_error`).
    #[schema(
        pattern = "^(none|requested|published|paused|failed)$",
        example = "published"
    )]
    pub reward_status: String,
    /// Why Twitch refused the reward, readable; null unless `failed`.
    pub reward_error: Option<String>,
    /// A seeded style (ghost, friend) still following PROMPT_* and POINTS_COST.
    pub follows_settings: bool,
    /// Bumped on every change.
    pub version: i64,
}

impl From<StoredStyle> for StyleView {
    fn from(stored: StoredStyle) -> Self {
        Self {
            // A plain struct of strings, numbers and enums always
            // serializes; the default (null) is never reached.
            definition: serde_json::to_value(&stored.definition).unwrap_or_default(),
            reward_id: stored.reward_id,
            reward_status: stored.reward_status.as_str().to_owned(),
            reward_error: stored.reward_error,
            follows_settings: stored.follows_settings,
            version: stored.version,
        }
    }
}

fn style_id(raw: &str) -> Result<StyleId, ApiError> {
    StyleId::parse(raw).map_err(|e| ApiError::bad_field("style", e.to_string()))
}

/// A definition from a body (read by [`Json`], so `5.0` counts as `5`), each
/// problem named by its field.
fn definition(body: Value) -> Result<StyleDefinition, ApiError> {
    let style: StyleDefinition = from_value(body)?;
    style
        .validate()
        .map_err(|e| ApiError::bad_field(e.field, e.problem))?;
    Ok(style)
}

/// The body of `PUT /styles/{style}` with the path's id, which the body
/// may leave out (or repeat: an export's definition is taken as it is).
fn with_id(mut body: Value, id: &StyleId) -> Result<Value, ApiError> {
    // Not an object: the definition's own parse names the problem.
    if let Value::Object(fields) = &mut body {
        match fields.get("id") {
            None => {
                fields.insert("id".to_owned(), Value::String(id.to_string()));
            }
            Some(Value::String(given)) if given == id.as_str() => {}
            Some(given) => {
                return Err(ApiError::bad_field(
                    "id",
                    format!("is {given}, but the path names {id}"),
                ));
            }
        }
    }
    Ok(body)
}

async fn stored(state: &AppState, id: &StyleId) -> Result<StyleView, ApiError> {
    match state.store.style(id).await? {
        Some(style) => Ok(style.into()),
        None => Err(ApiError::NotFound(format!("no style {id}"))),
    }
}

/// Every style, by id (admins only).
#[utoipa::path(get, path = "/styles", tag = "styles",
    responses((status = 200, body = Vec<StyleView>), (status = 401), (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn list_styles(
    State(state): State<AppState>,
    Admin(_caller): Admin,
) -> Result<Json<Vec<StyleView>>, ApiError> {
    let styles = state.store.styles().await?;
    Ok(Json(styles.into_iter().map(StyleView::from).collect()))
}

/// Creates a style (admins only); 409 if the id is taken.
#[utoipa::path(post, path = "/styles", tag = "styles",
    request_body(content = StyleBody, description = "a style definition (README, Styles)", content_type = "application/json"),
    responses((status = 201, body = StyleView,
                  links(("GetStyle" = (operation_id = "get_style", parameters(("style" = "$response.body#/definition/id")))),
                        ("DisableStyle" = (operation_id = "disable_style", parameters(("style" = "$response.body#/definition/id")))),
                        ("DeleteStyle" = (operation_id = "delete_style", parameters(("style" = "$response.body#/definition/id")))))),
              (status = 400, description = "a field that is not valid, named in `field` (an unknown placeholder, an id that is not a slug, a reward title over 45 characters, ...)"),
              (status = 401), (status = 403, description = "not an admin"), (status = 409, description = "a style with this id exists")),
    security(("bearer" = [])))]
pub async fn create_style(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let style = definition(body)?;
    if state.store.style(&style.id).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "style {} exists; PUT /styles/{} replaces it",
            style.id, style.id
        )));
    }
    state.store.put_style(&style).await?;
    tracing::info!(style = %style.id, "style created");
    Ok((StatusCode::CREATED, Json(stored(&state, &style.id).await?)).into_response())
}

/// One style (admins only).
#[utoipa::path(get, path = "/styles/{style}", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug)", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    responses((status = 200, body = StyleView), (status = 400, description = "an id that is not a slug"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_style(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<StyleView>, ApiError> {
    Ok(Json(stored(&state, &style_id(&id)?).await?))
}

/// Creates or replaces a style (admins only). Requests in progress keep the
/// settings they were made with; new ones use these within seconds.
#[utoipa::path(put, path = "/styles/{style}", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug)", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    request_body(content = StyleBodyWithoutId, description = "a style definition; its id is the path's", content_type = "application/json"),
    responses((status = 200, body = StyleView, description = "replaced (or unchanged)"), (status = 201, body = StyleView, description = "created"),
              (status = 400, description = "a field that is not valid, named in `field` (an `id` in the body must be the path's)"),
              (status = 401), (status = 403, description = "not an admin"),
              (status = 409, description = "another request deleted the style while this one wrote it; PUT it again")),
    security(("bearer" = [])))]
pub async fn put_style(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let id = style_id(&id)?;
    let style = definition(with_id(body, &id)?)?;
    let written = state.store.put_style(&style).await?;
    tracing::info!(style = %id, ?written, "style written");
    let status = match written {
        Written::Created => StatusCode::CREATED,
        Written::Updated | Written::Unchanged => StatusCode::OK,
    };
    // The answer is the style as stored; a DELETE that came in between
    // leaves nothing to show (seen once under schemathesis's two workers).
    match state.store.style(&id).await? {
        Some(style) => Ok((status, Json(StyleView::from(style))).into_response()),
        None => Err(ApiError::Conflict(format!(
            "style {id} was deleted by another request while this one wrote it; PUT it again"
        ))),
    }
}

/// Deletes a style (admins only); refused while requests of it are in progress.
#[utoipa::path(delete, path = "/styles/{style}", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug)", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    responses((status = 204), (status = 400, description = "an id that is not a slug"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404),
              (status = 409, description = "requests of this style are in progress; disable it instead")),
    security(("bearer" = [])))]
pub async fn delete_style(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = style_id(&id)?;
    match state.store.delete_style(&id).await {
        Ok(()) => {
            tracing::info!(style = %id, "style deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(DeleteError::NotFound(_)) => Err(ApiError::NotFound(format!("no style {id}"))),
        Err(error @ DeleteError::InUse { .. }) => Err(ApiError::Conflict(format!(
            "{error}; disable it (POST /styles/{id}/disable) and delete it once they end"
        ))),
        Err(DeleteError::Store(error)) => Err(error.into()),
    }
}

/// Enables a style (admins only).
#[utoipa::path(post, path = "/styles/{style}/enable", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug)", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    responses((status = 200, body = StyleView), (status = 400, description = "an id that is not a slug"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404)),
    security(("bearer" = [])))]
pub async fn enable_style(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<StyleView>, ApiError> {
    switch(&state, &id, true).await
}

/// Disables a style (admins only): new requests of it are refused.
#[utoipa::path(post, path = "/styles/{style}/disable", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug)", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    responses((status = 200, body = StyleView), (status = 400, description = "an id that is not a slug"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404)),
    security(("bearer" = [])))]
pub async fn disable_style(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<StyleView>, ApiError> {
    switch(&state, &id, false).await
}

async fn switch(state: &AppState, id: &str, enabled: bool) -> Result<Json<StyleView>, ApiError> {
    let id = style_id(id)?;
    if !state.store.set_style_enabled(&id, enabled).await? {
        return Err(ApiError::NotFound(format!("no style {id}")));
    }
    tracing::info!(style = %id, enabled, "style switched");
    Ok(Json(stored(state, &id).await?))
}

/// Asks for the style's Twitch reward to be published (admins only): the
/// consumer running the Twitch intake hears of it within seconds and
/// creates the reward from the style's `reward` settings (or updates the one
/// dynamo made before; paused while the style is disabled), then sets
/// `reward_status` to `published`, `paused` or `failed` (with
/// `reward_error`). Poll `GET /styles/{style}` for the outcome.
#[utoipa::path(post, path = "/styles/{style}/reward", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug)", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    responses((status = 202, body = StyleView, description = "asked for: `reward_status` is `requested` until the consumer has made it"),
              (status = 400, description = "an id that is not a slug"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404),
              (status = 409, description = "dynamo is not signed in to Twitch (`dynamoctl twitch login`)")),
    security(("bearer" = [])))]
pub async fn publish_style_reward(
    State(state): State<AppState>,
    Admin(_caller): Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = style_id(&id)?;
    if state.store.style(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no style {id}")));
    }
    let signed_in = state
        .store
        .twitch_grant(GrantAccount::Broadcaster)
        .await?
        .is_some_and(|grant| grant.revoked_at.is_none());
    if !signed_in {
        return Err(ApiError::Conflict(
            "dynamo is not signed in to Twitch: run `dynamoctl twitch login` first, and run a consumer with TWITCH_INTAKE=true".to_owned(),
        ));
    }
    if !state.store.request_style_reward(&id).await? {
        return Err(ApiError::NotFound(format!("no style {id}")));
    }
    tracing::info!(style = %id, "style's Twitch reward asked for");
    Ok((StatusCode::ACCEPTED, Json(stored(&state, &id).await?)).into_response())
}
