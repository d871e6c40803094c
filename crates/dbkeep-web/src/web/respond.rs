//! The answers every part of the web admin shares: JSON errors for the API, error pages
//! inside the layout for people, and the parsing of a backup id from a path.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::view::{self, Frame};
use super::{State, WebState};

/// A JSON error response.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        error: String,
    }
    (
        status,
        Json(Body {
            error: message.into(),
        }),
    )
        .into_response()
}

/// A 500 for a failure inside the service: logged, never shown (see [`super::internal_error`]).
pub fn internal(e: &dbkeep_model::error::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, super::internal_error(e))
}

/// Parses a backup id from the path; anything else is simply not found.
pub fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0)
}

/// A page saying what went wrong, inside the layout (with its navigation).
pub fn error_page(state: &WebState, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::FORBIDDEN => "Forbidden",
        _ => "Something went wrong",
    };
    (
        status,
        view::ErrorPage {
            frame: Frame {
                base: state.base.clone(),
                home: state.home(),
                user: String::new(),
                csrf_token: String::new(),
                nav: "",
                admin: false,
                operator: false,
            },
            title: title.to_string(),
            message: message.to_string(),
        },
    )
        .into_response()
}

/// The page for a failure inside the service: a 500 that says to look in the log, where the
/// error is written in full (see [`super::internal_error`]).
pub fn internal_page(state: &WebState, e: &dbkeep_model::error::Error) -> Response {
    error_page(
        state,
        StatusCode::INTERNAL_SERVER_ERROR,
        super::internal_error(e),
    )
}

/// Any other address: a JSON error under `/api/`, else the not-found page.
pub async fn not_found(state: State, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return error(
            StatusCode::NOT_FOUND,
            "no such API route; see /api/v1/openapi.json",
        );
    }
    error_page(
        &state,
        StatusCode::NOT_FOUND,
        "There is no page at this address.",
    )
}
