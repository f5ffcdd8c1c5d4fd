//! CORS on the viewer routes (play, switch, `master.m3u8`, steering, QoS, resolve and the
//! HTTPDNS shapes): the routes a web player or a web app calls from a page on its own origin.
//! Never on `/admin/*`.
//!
//! Allowed origins come from the configuration (`LIVESTEER_CORS_ORIGINS`, any origin by
//! default: these routes carry no cookies or credentials, so `Access-Control-Allow-Origin: *`
//! exposes nothing a page could not fetch without CORS). A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered here with 204, before routing; one from an
//! origin that is not allowed gets a JSON 403. A plain request from such an origin is served
//! without CORS headers, so the browser keeps the answer from the page.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

use super::ApiError;
use crate::codes::Code;
use crate::config::CorsOrigins;
use crate::state::AppState;

/// How long a browser may keep a preflight answer.
const MAX_AGE_SECONDS: &str = "600";
/// Methods the viewer routes take.
const METHODS: &str = "GET, POST, OPTIONS";
/// Longest `Access-Control-Request-Headers` echoed back.
const MAX_REQUEST_HEADERS: usize = 1024;

/// The middleware: wrap a viewer resource with `.wrap(from_fn(cors::viewer))`.
pub async fn viewer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = match (&origin, req.app_data::<web::Data<AppState>>()) {
        (Some(o), Some(state)) => o
            .to_str()
            .ok()
            .filter(|o| state.config.cors.allows(o))
            .map(|_| matches!(state.config.cors, CorsOrigins::Any)),
        _ => None,
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let res = match (&origin, allowed) {
            (Some(o), Some(any)) => {
                let mut b = HttpResponse::NoContent();
                b.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, METHODS))
                    .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS));
                if let Some(h) = req
                    .headers()
                    .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                    .filter(|h| h.len() <= MAX_REQUEST_HEADERS && is_header_list(h))
                {
                    b.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone()));
                }
                let mut res = b.finish();
                allow(res.headers_mut(), o, any);
                res
            }
            (Some(o), None) => ApiError::new(
                Code::OriginNotAllowed,
                format!(
                    "origin {:?} may not call this route (LIVESTEER_CORS_ORIGINS)",
                    o.to_str().unwrap_or("?")
                ),
            )
            .error_response(),
            (None, _) => ApiError::new(
                Code::InvalidPreflight,
                "a CORS preflight needs an Origin header",
            )
            .error_response(),
        };
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    if let (Some(o), Some(any)) = (&origin, allowed) {
        allow(res.headers_mut(), o, any);
    }
    Ok(res.map_into_left_body())
}

fn allow(headers: &mut actix_web::http::header::HeaderMap, origin: &HeaderValue, any: bool) {
    if any {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// A comma-separated list of header names (tokens), as a preflight asks for.
fn is_header_list(v: &HeaderValue) -> bool {
    v.as_bytes().iter().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b',' | b' ' | b'.' | b'!' | b'#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists() {
        assert!(is_header_list(&HeaderValue::from_static(
            "content-type, cmcd-request"
        )));
        assert!(!is_header_list(&HeaderValue::from_static("a\"b")));
    }
}
