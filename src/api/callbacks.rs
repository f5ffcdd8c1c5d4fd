//! `POST /v1/callbacks/{provider}`: origin and CDN callbacks in each origin's own format (see
//! `callbacks`). The answer speaks the origin's language: SRS gets `{"code":0}` to allow, and
//! nginx-rtmp a 2xx; a refusal is a 4xx JSON `{"error", "message"}` (with `"code"` too for SRS,
//! which refuses on any non-zero code).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::ApiError;
use super::openapi::Error;
use crate::callbacks::{self, Format, Refusal, generic, nginx, srs};
use crate::codes::Code;
use crate::state::AppState;

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn refusal_response(format: Format, r: &Refusal) -> HttpResponse {
    let status = super::error::status_of(r.code);
    let body = match format {
        Format::Srs => json!({"code": r.status(), "error": r.code, "message": r.message}),
        _ => json!({"error": r.code, "message": r.message}),
    };
    HttpResponse::build(status).json(body)
}

/// An allowed callback's answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CallbackAnswer {
    Srs(super::openapi::SrsAllowed),
    Other(crate::callbacks::Accepted),
}

/// Receives one callback, in the provider's own format: SRS's JSON, nginx-rtmp's form, or the
/// generic JSON signed with the provider's callback secret.
#[utoipa::path(
    post,
    path = "/v1/callbacks/{provider}",
    tag = "origins",
    params(
        ("provider" = String, Path, description = "The provider id"),
        ("X-Livesteer-Timestamp" = Option<String>, Header, description = "Generic callbacks: unix seconds of the signature"),
        ("X-Livesteer-Signature" = Option<String>, Header, description = "Generic callbacks: hex HMAC-SHA256 of `timestamp.body`"),
    ),
    request_body(
        content(
            (Object = "application/json"),
            (Object = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 200, description = "Allowed: SRS gets `{\"code\": 0}`, the others what was done", body = CallbackAnswer),
        (status = 400, description = "`invalid_callback` or an unreadable body", body = Error),
        (status = 401, description = "A generic callback's bad timestamp or signature", body = Error),
        (status = 403, description = "A refused token or provider (see the code)", body = Error),
        (status = 404, description = "`unknown_provider`", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
        (status = 503, description = "`database_unavailable`", body = Error),
    )
)]
pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    provider_id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // One catalog for the whole callback: the provider, its secret and the checks agree.
    let catalog = state.catalog.load_full();
    let Some(provider) = catalog.registry.get(&provider_id).cloned() else {
        let why = if catalog.registry.known_ids().contains(provider_id.as_str()) {
            format!("provider {:?} is disabled", provider_id.as_str())
        } else {
            format!(
                "no provider {:?}",
                provider_id.chars().take(64).collect::<String>()
            )
        };
        return Err(ApiError::new(Code::UnknownProvider, why));
    };
    let format = Format::of(provider.info().kind);
    let id = provider.id().to_string();
    let body = body.map_err(|e| {
        callbacks::count(&id, format, "invalid");
        super::error::body_error(&e, callbacks::MAX_BODY_BYTES)
    })?;
    let parsed = match format {
        Format::Srs => srs::parse(&body),
        Format::NginxRtmp => nginx::parse(&body),
        Format::Generic => {
            let rooms = &catalog.policy.rooms;
            callbacks::secret_for(&catalog.keys, &id).and_then(|secret| {
                generic::parse(
                    secret,
                    header(&req, generic::TIMESTAMP_HEADER),
                    header(&req, generic::SIGNATURE_HEADER),
                    &body,
                    state.clock.now_secs(),
                    rooms.callback_max_skew_seconds,
                )
            })
        }
    };
    let records = callbacks::Records {
        catalog: &catalog,
        streams: &state.streams,
        db: &state.db,
        rooms: &state.rooms,
        signals: &state.signals,
        clock: state.clock.as_ref(),
    };
    let result = match parsed {
        Ok(cb) => callbacks::handle(&records, provider.as_ref(), cb).await,
        Err(r) => Err(r),
    };
    match result {
        Ok(accepted) => {
            callbacks::count(
                &id,
                format,
                if accepted.applied {
                    "accepted"
                } else {
                    "ignored"
                },
            );
            tracing::debug!(provider = %id, action = %accepted.action, applied = accepted.applied,
                "callback accepted");
            Ok(match format {
                Format::Srs => HttpResponse::Ok().json(json!({"code": 0})),
                _ => HttpResponse::Ok().json(&accepted),
            })
        }
        Err(r) => {
            let outcome = if r.status() == 400 {
                "invalid"
            } else {
                "refused"
            };
            callbacks::count(&id, format, outcome);
            tracing::info!(provider = %id, code = %r.code, message = %r.message, "callback refused");
            Ok(refusal_response(format, &r))
        }
    }
}
