//! The API's error policy: every failure is JSON `{"error": code, "message": …}` with a code
//! from the table (`crate::codes`) and the HTTP status that code always has. Bad input is a 4xx
//! naming what was wrong; a 5xx means livesteer itself failed, except a 502: a stream's origin
//! did.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::codes::Code;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Code,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The status the code always has.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// A code's status as actix's type.
pub fn status_of(code: Code) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status()).json(Body {
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
            Code::PayloadTooLarge,
            format!("body is {length} bytes, more than the {limit} allowed"),
        ),
        E::Overflow { limit } => ApiError::new(
            Code::PayloadTooLarge,
            format!("body is more than the {limit} bytes allowed"),
        ),
        E::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "body must be JSON (Content-Type: application/json)",
        ),
        E::Deserialize(e) => ApiError::new(Code::InvalidJson, format!("invalid JSON body: {e}")),
        other => ApiError::new(Code::InvalidBody, format!("cannot read body: {other}")),
    }
}

/// Query string errors.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::new(Code::InvalidQuery, format!("invalid query string: {err}"))
}

/// Path segment errors.
pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::new(Code::InvalidPath, format!("invalid path: {err}"))
}
