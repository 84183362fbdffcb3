//! The API's extractors: axum's own, with every rejection (a body that is not
//! JSON, a path id that is not a UUID, an unknown query parameter) answered
//! through [`ApiError`] as JSON, like every other error, instead of axum's
//! plain-text rejections. Handlers use these, never axum's directly.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body in, or a JSON answer out.
///
/// A body is read as JSON first: a whole number written with a fraction
/// (`5.0`) counts as the integer it is, as JSON Schema (and so the OpenAPI
/// document) says, before the body becomes a `T`; a field that does not fit
/// is named by its path.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(mut value) = axum::Json::<Value>::from_request(request, state).await?;
        whole_numbers_as_integers(&mut value);
        Ok(Json(from_value(value)?))
    }
}

/// A JSON value (as [`Json`] read it) as a `T`; a field that does not fit
/// is named by its path.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let field = error.path().to_string();
        let detail = error.into_inner().to_string();
        match field.as_str() {
            "." => ApiError::bad(detail),
            _ => ApiError::bad_field(field, detail),
        }
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Whole numbers up to this size are exact as floats too.
const EXACT_FLOAT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53

/// See [`Json`]: `5.0` becomes `5`, anywhere in the body.
fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(whole) = number
                .as_f64()
                .filter(|f| number.is_f64() && f.fract() == 0.0)
                .filter(|f| f.abs() <= EXACT_FLOAT_INTEGERS)
            {
                // Exact: a whole number within ±2^53.
                *value = Value::from(whole as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        Value::String(_) | Value::Null | Value::Bool(_) => {}
    }
}

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Whether PostgreSQL can store `time` and RFC 3339 can write it back:
/// years 0000 to 9999. Times a client sends (dates, cursors, event ids) are
/// checked with this, so an absurd one is a 400 and not a database error.
pub fn storable_time(time: &DateTime<Utc>) -> bool {
    (0..=9999).contains(&time.year())
}

/// A client's time for `field`, refused (400, naming it) unless storable.
pub fn checked_time(
    field: &str,
    time: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match time {
        Some(time) if !storable_time(&time) => Err(ApiError::bad_field(
            field,
            "must be between the years 0000 and 9999",
        )),
        time => Ok(time),
    }
}

/// A client's text for `field`, refused (400, naming it) when it holds a
/// control character (PostgreSQL's text cannot hold U+0000; none belongs in
/// a one-line value).
pub fn one_line(field: &str, text: &str) -> Result<(), ApiError> {
    match text.chars().enumerate().find(|(_, c)| c.is_control()) {
        // Named as the wire types name it, so the client learns which one.
        Some((at, c)) => Err(ApiError::bad_field(
            field,
            format!(
                "must be one line of text, without control characters (U+{:04X} at character {})",
                u32::from(c),
                at + 1
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_postgres_cannot_store_are_refused_by_name() {
        let far = DateTime::parse_from_rfc3339("+10000-01-01T00:00:00Z");
        assert!(far.is_err() || !storable_time(&far.unwrap().to_utc()));
        let ancient = DateTime::from_timestamp(-400_000_000_000, 0).unwrap();
        assert!(!storable_time(&ancient));
        let error = checked_time("since", Some(ancient)).unwrap_err();
        assert!(matches!(error, ApiError::BadRequest { field: Some(f), .. } if f == "since"));
        assert!(checked_time("since", Some(Utc::now())).unwrap().is_some());
        assert!(one_line("label", "main OBS").is_ok());
        assert!(one_line("label", "a\u{0}b").is_err());
    }
}
