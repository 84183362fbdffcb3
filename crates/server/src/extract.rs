//! The API's extractors: axum's own, with every rejection (a body that is not
//! JSON, a path id that is not a UUID, an unknown query parameter) answered
//! through [`ApiError`] as JSON, like every other error, instead of axum's
//! plain-text rejections. Handlers use these, never axum's directly.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

/// A JSON body in, or a JSON answer out.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
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
    if text.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            field,
            "must be one line of text, without control characters",
        ));
    }
    Ok(())
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
