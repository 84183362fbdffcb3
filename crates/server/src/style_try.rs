//! `POST /styles/{style}/try`: one free test image of a style, for the
//! streamer to see it before viewers do. Queued on `generation-requests`
//! like an admin's request, marked as a try-out (`x-dynamo-trial`), which a
//! consumer makes through the normal pipeline and never airs (see the
//! pipeline's `trial.rs`). A disabled style may be tried: trying a style
//! before enabling it is the point.

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{Json, Path, one_line};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dynamo_broker::headers as amqp;
use dynamo_wire::{
    BroadcastState, Color, GenerationRequest, ImagePayload, StyleDefinition, StyleId, Subject,
    Viewer,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What to draw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryBody {
    /// 1 to 120 characters, as a request's subject.
    pub subject: String,
    /// One of the 13 colours: required or refused as the style says.
    #[serde(default)]
    pub color: Option<Color>,
}

crate::schemas::schema_from!(TryBody, crate::schemas::try_body);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Trying {
    /// The try-out's request: follow it at `location` (or `GET /events`).
    pub request_id: Uuid,
    pub location: String,
}

/// The display name a try-out is recorded with: no viewer asked for it.
const TRIED_BY: &str = "style try-out";
/// The user id of a try-out an admin service asked for (no Twitch user id
/// is ever anything but digits).
const SERVICE_USER: &str = "dynamo";

/// Who a try-out is recorded for: the streamer who asked, or `dynamo`.
fn viewer(caller: &Caller) -> Result<Viewer, ApiError> {
    let id = match caller {
        Caller::Broadcaster { twitch_user_id } | Caller::Viewer { twitch_user_id } => {
            twitch_user_id.as_str()
        }
        Caller::Service { .. } => SERVICE_USER,
    };
    Viewer::parse(id, TRIED_BY)
        .map_err(|e| ApiError::internal(format!("the try-out's viewer: {e}")))
}

/// The request a try body asks for, of `style`: each problem named by its
/// field (`subject`, `color`).
fn request(
    style: &StyleDefinition,
    body: &TryBody,
    caller: &Caller,
) -> Result<GenerationRequest, ApiError> {
    one_line("subject", &body.subject)?;
    let subject =
        Subject::parse(&body.subject).map_err(|e| ApiError::bad_field("subject", e.to_string()))?;
    style.color.fits(body.color).map_err(|problem| {
        ApiError::bad_field("color", format!("{problem} by style {}", style.id))
    })?;
    let inputs = serde_json::json!({"subject": subject.as_str(), "color": body.color});
    let inputs = match inputs {
        serde_json::Value::Object(mut fields) => {
            fields.retain(|_, value| !value.is_null());
            serde_json::Value::Object(fields)
        }
        other => other,
    };
    let payload = ImagePayload::from_inputs(&style.id, inputs).map_err(|e| match e.field() {
        Some(field) => ApiError::bad_field(field.replace("payload.inputs.", ""), e.to_string()),
        None => ApiError::bad(e.to_string()),
    })?;
    Ok(GenerationRequest::new(
        viewer(caller)?,
        BroadcastState::default(),
        payload,
    ))
}

/// Queues one free test image of a style that is never aired (admins only).
#[utoipa::path(post, path = "/styles/{style}/try", tag = "styles",
    params(("style" = String, Path, description = "a style id (a lowercase slug); enabled or not", pattern = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")),
    request_body(content = TryBody, description = "the subject (and colour) to draw", content_type = "application/json"),
    responses((status = 202, body = Trying, headers(("location" = String)),
                  links(("GetTry" = (operation_id = "get_request", parameters(("id" = "$response.body#/request_id")))))),
              (status = 400, description = "a field that is not valid, named in `field`: `style` (not a slug), `subject`, `color` (required by the style, or not taken)"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404, description = "no such style"),
              (status = 413), (status = 415),
              (status = 503, description = "the broker is away, or no consumer has bound a queue yet: not queued")),
    security(("bearer" = [])))]
pub async fn try_style(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(style): Path<String>,
    Json(body): Json<TryBody>,
) -> Result<Response, ApiError> {
    let id = StyleId::parse(&style).map_err(|e| ApiError::bad_field("style", e.to_string()))?;
    let Some(stored) = state.store.style(&id).await? else {
        // Ghost and friend are seeded by the first consumer to start.
        let yet = if id.builtin().is_some() {
            " yet: dynamo-consumer seeds it when it starts"
        } else {
            ""
        };
        return Err(ApiError::NotFound(format!("no style {id}{yet}")));
    };
    let request = request(&stored.definition, &body, &caller)?;
    // The consumer makes a try-out free and exempt from the content rules
    // whatever it is sent; the headers say so for any other reader too.
    let headers = [amqp::TRIAL, amqp::FREE_OF_CHARGE, amqp::BYPASS_RULES]
        .map(|name| (name.to_owned(), "true".to_owned()))
        .to_vec();
    let request_id = crate::requests::publish(&state, &request, headers).await?;
    tracing::info!(%request_id, style = %id, enabled = stored.definition.enabled, ?caller, "style try-out queued");
    let location = format!("/requests/{request_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(Trying {
            request_id,
            location,
        }),
    )
        .into_response())
}
