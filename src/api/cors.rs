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

use std::future::{Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

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

/// The middleware: wrap a viewer resource with `.wrap(cors::Viewer)`. A service written out
/// rather than `from_fn`, whose `Next` and future are boxed per request: a request without an
/// `Origin` (a stock player's, a native app's) costs a header lookup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Viewer;

impl<S, B> Transform<S, ServiceRequest> for Viewer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = ViewerService<S>;
    type InitError = ();
    type Future = Ready<Result<ViewerService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ViewerService { service }))
    }
}

/// [`Viewer`] around one resource.
#[derive(Debug)]
pub struct ViewerService<S> {
    service: S,
}

/// Whether `origin` may call: `Some(true)` for any origin (`*`), `Some(false)` for one on the
/// configured list (echoed, with `Vary: Origin`), `None` for one that may not.
fn allowed(req: &HttpRequest, origin: &HeaderValue) -> Option<bool> {
    let state = req.app_data::<web::Data<AppState>>()?;
    origin
        .to_str()
        .ok()
        .filter(|o| state.config.cors.allows(o))
        .map(|_| matches!(state.config.cors, CorsOrigins::Any))
}

impl<S, B> Service<ServiceRequest> for ViewerService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = ViewerFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !preflight {
            return ViewerFuture::Inner {
                fut: self.service.call(req),
            };
        }
        let (req, _) = req.into_parts();
        let origin = req.headers().get(header::ORIGIN);
        let res = match (origin, origin.and_then(|o| allowed(&req, o))) {
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
        ViewerFuture::Preflight {
            res: Some(ServiceResponse::new(req, res).map_into_right_body()),
        }
    }
}

pin_project_lite::pin_project! {
    /// [`ViewerService`]'s future: a preflight's answer, or the route's with the CORS headers
    /// added when the request's `Origin` may call.
    #[project = ViewerFutureProj]
    pub enum ViewerFuture<F, B> {
        Preflight { res: Option<ServiceResponse<EitherBody<B>>> },
        Inner { #[pin] fut: F },
    }
}

impl<F, B> std::future::Future for ViewerFuture<F, B>
where
    F: std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ViewerFutureProj::Preflight { res } => {
                Poll::Ready(Ok(res.take().expect("polled after completion")))
            }
            ViewerFutureProj::Inner { fut } => {
                let mut res = std::task::ready!(fut.poll(cx))?;
                let origin = res.request().headers().get(header::ORIGIN).cloned();
                if let Some(o) = origin
                    && let Some(any) = allowed(res.request(), &o)
                {
                    allow(res.headers_mut(), &o, any);
                }
                Poll::Ready(Ok(res.map_into_left_body()))
            }
        }
    }
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
