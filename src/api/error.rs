//! The API's error policy: every failure is JSON `{"error": code, "message": …}` with a code
//! from the table (`crate::codes`) and the HTTP status that code always has. Bad input is a 4xx
//! naming what was wrong; a 5xx means livesteer itself failed, except a 502: a stream's origin
//! did. actix's own answers (no route, wrong method, an extractor or payload error) are made
//! the same shape by [`json_errors`].

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::codes::Code;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

/// The body of every error answer (the OpenAPI document's `Error`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Body<'a> {
    /// The stable code; its HTTP status is always the same (see the README's table).
    pub error: Code,
    /// What was wrong, for a person.
    pub message: &'a str,
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

/// Body read errors of the `Bytes` extractor (a route's `PayloadConfig` limit is `limit`).
pub fn body_error(err: &actix_web::Error, limit: usize) -> ApiError {
    use actix_web::error::PayloadError as E;
    match err.as_error::<E>() {
        Some(E::Overflow) => ApiError::new(
            Code::PayloadTooLarge,
            format!("body is more than the {limit} bytes allowed"),
        ),
        _ => ApiError::new(Code::InvalidBody, format!("cannot read body: {err}")),
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

/// The safety net under every route (an `ErrorHandlers` default handler): an error answer that
/// is not JSON yet (actix's 405 for a resource without the method, a payload or extractor
/// error without a handler of ours) becomes `{"error", "message"}` with the table's code for its
/// status. Answers livesteer made are JSON already and pass untouched.
pub fn json_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, res) = res.into_parts();
    let code = Code::for_status(res.status().as_u16());
    let message = match (code, res.error()) {
        (Code::MethodNotAllowed, _) => {
            let allowed = res
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty());
            match allowed {
                Some(a) => format!("{} {} is not allowed; use {a}", req.method(), req.path()),
                None => format!("{} {} is not allowed", req.method(), req.path()),
            }
        }
        (Code::NotFound, _) => format!("no route for {} {}", req.method(), req.path()),
        (_, Some(e)) => e.to_string(),
        (_, None) => res
            .status()
            .canonical_reason()
            .unwrap_or("error")
            .to_string(),
    };
    let mut out = ApiError::new(code, message).error_response();
    if let Some(allow) = res.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    for (name, value) in res.headers() {
        if name.as_str().starts_with("access-control-") || name == header::VARY {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    let out: HttpResponse<EitherBody<B, BoxBody>> = out.map_into_right_body();
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(
        req, out,
    )))
}
