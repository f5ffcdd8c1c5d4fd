//! The API's error policy: every failure is JSON `{"error": code, "message": …}` with a stable
//! code and the HTTP status that code always has. Bad input is a 4xx naming what was wrong;
//! a 5xx means livesteer itself failed, except a 502: a stream's origin did.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// An upstream livesteer depends on (a stream's origin) failed.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(Body {
            error: self.code,
            message: &self.message,
        })
    }
}

/// JSON body errors: too large, wrong content type, not JSON, wrong shape.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match &err {
        E::OverflowKnownLength { length, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body is {length} bytes, more than the {limit} allowed"),
        ),
        E::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body is more than the {limit} bytes allowed"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "body must be JSON (Content-Type: application/json)",
        ),
        E::Deserialize(e) => {
            ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}"))
        }
        other => ApiError::bad_request("invalid_body", format!("cannot read body: {other}")),
    }
}

/// Query string errors.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::bad_request("invalid_query", format!("invalid query string: {err}"))
}

/// Path segment errors.
pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::bad_request("invalid_path", format!("invalid path: {err}"))
}
