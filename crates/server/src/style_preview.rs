//! `POST /style-preview`: the prompt a style template makes of a sample
//! subject (and colour), for the page's *Styles* panel to show while the
//! template is typed. Rendered by the wire crate's `render`, the one the
//! consumer records each request's prompt with, so the page shows exactly
//! what a viewer's request would send.
//!
//! Not under `/styles/…`: any slug may name a style, `preview` too.

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::Json;
use dynamo_wire::{Color, ColorInput, Subject, check_prompt_template, render};
use serde::{Deserialize, Serialize};

/// A template being written, and the sample to render it for. Named as a
/// definition names them, so an error shows next to the same field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// As a definition's `prompt_template`.
    pub prompt_template: String,
    /// As a definition's `color`: none (default), optional or required.
    #[serde(default = "no_color")]
    pub color: ColorInput,
    pub sample: Sample,
}

fn no_color() -> ColorInput {
    ColorInput::None
}

/// What a viewer might ask for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// 1 to 120 characters, as a request's subject.
    pub subject: String,
    /// One of the 13 colours, when the style takes one.
    #[serde(default)]
    pub color: Option<Color>,
}

crate::schemas::schema_from!(PreviewBody, crate::schemas::style_preview_body);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The prompt the image model would be sent.
    pub prompt: String,
}

/// The prompt a template makes of a sample subject and colour (admins only).
#[utoipa::path(post, path = "/style-preview", tag = "styles",
    request_body(content = PreviewBody, description = "a template, its style's colour input, and a sample subject (and colour)", content_type = "application/json"),
    responses((status = 200, body = Preview),
              (status = 400, description = "a field that is not valid, named in `field`: `prompt_template` (an unknown placeholder, no {subject}, ...), `color`, `sample.subject`, `sample.color` (required by the style, or not taken)"),
              (status = 401), (status = 403, description = "not an admin"), (status = 413), (status = 415)),
    security(("bearer" = [])))]
pub async fn preview(
    Admin(_caller): Admin,
    Json(body): Json<PreviewBody>,
) -> Result<Json<Preview>, ApiError> {
    Ok(Json(Preview {
        prompt: rendered(&body)?,
    }))
}

fn rendered(body: &PreviewBody) -> Result<String, ApiError> {
    check_prompt_template(&body.prompt_template, body.color)
        .map_err(|e| ApiError::bad_field(e.field, e.problem))?;
    let subject = Subject::parse(&body.sample.subject)
        .map_err(|e| ApiError::bad_field("sample.subject", e.to_string()))?;
    body.color.fits(body.sample.color).map_err(|problem| {
        ApiError::bad_field(
            "sample.color",
            format!(
                "{problem} by a style whose color is {}",
                body.color.as_str()
            ),
        )
    })?;
    Ok(render(
        &body.prompt_template,
        subject.as_str(),
        body.sample.color,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(template: &str, color: ColorInput, sample: Option<Color>) -> PreviewBody {
        PreviewBody {
            prompt_template: template.to_owned(),
            color,
            sample: Sample {
                subject: "an owl".to_owned(),
                color: sample,
            },
        }
    }

    fn field(error: ApiError) -> Option<String> {
        match error {
            ApiError::BadRequest { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn renders_as_requests_are_rendered() {
        let template = "{article} {color} {subject} on {complement}";
        let prompt = rendered(&body(template, ColorInput::Optional, Some(Color::Orange))).unwrap();
        assert_eq!(prompt, "an orange owl on sky-blue");
        let prompt = rendered(&body("a sticker of {subject}", ColorInput::None, None)).unwrap();
        assert_eq!(prompt, "a sticker of an owl");
    }

    #[test]
    fn each_problem_names_its_field() {
        let unknown = rendered(&body("{subject} in {colour}", ColorInput::Optional, None));
        assert_eq!(
            field(unknown.unwrap_err()).as_deref(),
            Some("prompt_template")
        );
        let missing = rendered(&body("{subject}", ColorInput::Required, None));
        assert_eq!(field(missing.unwrap_err()).as_deref(), Some("sample.color"));
        let mut blank = body("{subject}", ColorInput::None, None);
        blank.sample.subject = "  ".to_owned();
        assert_eq!(
            field(rendered(&blank).unwrap_err()).as_deref(),
            Some("sample.subject")
        );
    }
}
