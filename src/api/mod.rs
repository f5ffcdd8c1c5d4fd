//! HTTP: actix-web handlers, one file per resource. Handlers parse and validate input, call the
//! domain modules and shape JSON; business rules live elsewhere.

pub mod admin;
pub mod callbacks;
pub mod cmcd;
pub mod cors;
pub mod error;
pub mod health;
pub mod httpdns;
pub mod master;
pub mod mpd;
pub mod nodes;
pub mod openapi;
pub mod payments;
pub mod qos;
pub mod resolve;
pub mod rooms;
pub mod steering;
pub mod streams;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::ErrorHandlers;
use actix_web::{HttpRequest, web};

pub use error::ApiError;

use crate::codes::Code;
use crate::metrics as m;
use crate::state::AppState;

/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// Registers every route, the shared state and the extractor error handlers. Each path is one
/// `web::resource` holding all its methods, so a method it lacks is a 405, not a 404.
pub fn configure(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(state))
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_JSON_BYTES)
                    .error_handler(|e, _| error::json_error(e).into()),
            )
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| error::query_error(e).into()),
            )
            .app_data(web::PathConfig::default().error_handler(|e, _| error::path_error(e).into()))
            .service(
                web::scope("/v1")
                    // The hot paths first: routes are tried in order. Viewer routes answer CORS
                    // (`cors`): players and web apps call them from pages on other origins.
                    .service(
                        web::resource("/streams/{id}/play")
                            .wrap(cors::Viewer)
                            .route(web::get().to(streams::play)),
                    )
                    .service(
                        web::resource("/steering/hls/{id}")
                            .wrap(cors::Viewer)
                            .route(web::get().to(steering::hls)),
                    )
                    .service(
                        web::resource("/steering/dash/{id}")
                            .wrap(cors::Viewer)
                            .route(web::get().to(steering::dash)),
                    )
                    .service(
                        web::resource("/streams/{id}/master.m3u8")
                            .wrap(cors::Viewer)
                            .route(web::get().to(master::master)),
                    )
                    .service(
                        web::resource("/streams/{id}/manifest.mpd")
                            .wrap(cors::Viewer)
                            .route(web::get().to(mpd::mpd)),
                    )
                    .service(web::resource("/streams").route(web::post().to(streams::create)))
                    .service(web::resource("/nodes").route(web::get().to(nodes::list)))
                    .service(
                        web::resource("/nodes/heartbeat").route(web::post().to(nodes::heartbeat)),
                    )
                    .service(
                        web::resource("/resolve")
                            .wrap(cors::Viewer)
                            .route(web::get().to(resolve::get))
                            .route(web::post().to(resolve::post)),
                    )
                    .service(web::resource("/payments/sync").route(web::post().to(payments::sync)))
                    .service(
                        web::resource("/payments/reconcile")
                            .route(web::get().to(payments::reconcile)),
                    )
                    .service(
                        web::resource("/streams/{id}")
                            .route(web::delete().to(streams::delete))
                            .route(web::get().to(streams::show)),
                    )
                    .service(
                        web::resource("/streams/{id}/push").route(web::post().to(streams::push)),
                    )
                    .service(
                        web::resource("/streams/{id}/switch")
                            .wrap(cors::Viewer)
                            .route(web::post().to(streams::switch)),
                    )
                    .service(
                        web::resource("/rooms")
                            .app_data(
                                web::JsonConfig::default()
                                    .limit(rooms::MAX_QUERY_BYTES)
                                    .error_handler(|e, _| error::json_error(e).into()),
                            )
                            .route(web::get().to(rooms::list))
                            .route(web::post().to(rooms::many)),
                    )
                    .service(web::resource("/rooms/{anchor_id}").route(web::get().to(rooms::show)))
                    .service(
                        web::resource("/rooms/{anchor_id}/chat").route(web::post().to(rooms::chat)),
                    )
                    .service(
                        web::resource("/callbacks/{provider}")
                            .app_data(web::PayloadConfig::new(crate::callbacks::MAX_BODY_BYTES))
                            .route(web::post().to(callbacks::receive)),
                    )
                    .service(
                        web::resource("/qos")
                            .app_data(web::PayloadConfig::new(qos::MAX_BODY_BYTES))
                            .wrap(cors::Viewer)
                            .route(web::post().to(qos::ingest)),
                    )
                    .service(
                        web::resource("/cmcd")
                            .wrap(cors::Viewer)
                            .route(web::get().to(cmcd::ingest))
                            .route(web::post().to(cmcd::ingest)),
                    ),
            )
            .service(
                web::scope("/admin")
                    .service(web::resource("/scores").route(web::get().to(admin::scores)))
                    .service(
                        web::resource("/providers/{id}/drain")
                            .route(web::post().to(admin::drain))
                            .route(web::delete().to(admin::undrain)),
                    )
                    .service(
                        web::resource("/policies/reload").route(web::post().to(admin::reload)),
                    ),
            )
            .service(web::resource("/healthz").route(web::get().to(health::healthz)))
            .service(web::resource("/readyz").route(web::get().to(health::readyz)))
            .service(web::resource("/metrics").route(web::get().to(health::metrics)))
            .service(web::resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
            // HTTPDNS-compatible answers (DNSPod D+ and Alibaba EMAS shapes).
            .service(
                web::resource("/d")
                    .wrap(cors::Viewer)
                    .route(web::get().to(httpdns::dnspod)),
            )
            .service(
                web::resource("/{account}/d")
                    .wrap(cors::Viewer)
                    .route(web::get().to(httpdns::alibaba)),
            );
    }
}

/// The answer for a path no route matches.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        Code::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Builds the actix `App` with the metrics middleware.
pub fn app(
    state: Arc<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .configure(configure(state))
        .default_service(web::to(not_found))
        .wrap(ErrorHandlers::new().default_handler(error::json_errors))
        .wrap_fn(|req, srv| {
            let start = Instant::now();
            let method = req.method().as_str().to_owned();
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                record(&res, &method, start);
                Ok(res)
            }
        })
}

fn record<B>(res: &ServiceResponse<B>, method: &str, start: Instant) {
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16().to_string();
    metrics::counter!(m::HTTP_REQUESTS.name, "route" => route.clone(), "method" => method.to_owned(),
        "status" => status.clone())
    .increment(1);
    metrics::histogram!(m::HTTP_DURATION.name, "route" => route, "status" => status)
        .record(start.elapsed().as_secs_f64());
}

/// The client's address: `client_ip` when given, else `X-Forwarded-For` when the policy trusts
/// it, else the peer.
pub fn client_ip(
    req: &HttpRequest,
    explicit: Option<&str>,
    trust_forwarded_for: bool,
) -> Result<Option<IpAddr>, ApiError> {
    if let Some(s) = explicit.map(str::trim).filter(|s| !s.is_empty()) {
        return s.parse().map(Some).map_err(|_| {
            ApiError::new(
                Code::InvalidClientIp,
                format!("client_ip {s:?} is not an IP address"),
            )
        });
    }
    if trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get(&X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Ok(Some(ip));
    }
    Ok(req.peer_addr().map(|a| a.ip()))
}

/// Places the client in a region: explicit `region`, the policy's trusted country header,
/// `client_ip` (or the peer, or `X-Forwarded-For` when trusted), then the default region.
pub fn place<'c>(
    req: &HttpRequest,
    catalog: &'c crate::catalog::Catalog,
    region: Option<&str>,
    ip: Option<&str>,
) -> Result<(&'c crate::policy::Region, crate::geo::RegionSource), ApiError> {
    let policy = &catalog.policy;
    let header_country = policy
        .geo
        .trusted_header
        .as_deref()
        .and_then(|h| header_named(req, h))
        .and_then(|v| v.to_str().ok());
    let ip = client_ip(req, ip, policy.geo.trust_forwarded_for)?;
    crate::geo::resolve(
        policy,
        catalog.mmdb.as_ref(),
        crate::geo::ClientHints {
            region,
            header_country,
            ip,
        },
    )
    .map_err(|e| ApiError::new(Code::UnknownRegion, e.to_string()))
}

/// The absolute base (`scheme://host[:port]`, no trailing `/`) of the URIs livesteer writes into
/// manifests: the configured public URL; else the request's scheme and `Host`, with
/// `X-Forwarded-Proto` and `X-Forwarded-Host` only when the configuration trusts them.
/// Players resolve nothing relative then (Shaka cannot resolve a relative steering URI).
pub fn public_base(req: &HttpRequest, config: &crate::config::Config) -> String {
    let mut out = String::new();
    push_public_base(&mut out, req, config);
    out
}

/// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`, parsed once.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Appends [`public_base`] to `out`.
pub fn push_public_base(out: &mut String, req: &HttpRequest, config: &crate::config::Config) {
    if let Some(base) = &config.public_url {
        out.push_str(base);
        return;
    }
    let header = |name: &HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name| header(name).filter(|_| config.trust_forwarded);
    let scheme = match forwarded(&X_FORWARDED_PROTO) {
        Some("https") => "https",
        Some("http") => "http",
        _ if req.app_config().secure() => "https",
        _ => "http",
    };
    out.push_str(scheme);
    out.push_str("://");
    match forwarded(&X_FORWARDED_HOST)
        .filter(|h| is_host(h))
        .or_else(|| header(&header::HOST).filter(|h| is_host(h)))
        .or_else(|| {
            req.uri()
                .authority()
                .map(|a| a.as_str())
                .filter(|h| is_host(h))
        }) {
        Some(host) => out.push_str(host),
        None => out.push_str(req.app_config().host()),
    }
}

/// A `200 OK` JSON answer that must not be cached (`Cache-Control: no-store`), serialized into
/// one buffer sized for the viewer routes' answers.
pub fn json_no_store<T: serde::Serialize>(body: &T) -> actix_web::HttpResponse {
    let mut buf = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut buf, body) {
        Ok(()) => no_store(buf.into(), HeaderValue::from_static("application/json")),
        Err(e) => {
            actix_web::HttpResponse::from_error(actix_web::error::JsonPayloadError::Serialize(e))
        }
    }
}

/// A `200 OK` answer of `body` as `content_type`, with `Cache-Control: no-store`, its header
/// values set on the response head, without the builder.
pub fn no_store(body: web::Bytes, content_type: HeaderValue) -> actix_web::HttpResponse {
    let mut res = actix_web::HttpResponse::with_body(actix_web::http::StatusCode::OK, body);
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_TYPE, content_type);
    res.map_into_boxed_body()
}

/// The value of the request's header `name` (as the policy spells it, any case). The name is
/// parsed once per thread while it stays the same, not per request.
fn header_named<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r HeaderValue> {
    thread_local! {
        static PARSED: std::cell::RefCell<Option<HeaderName>> = const { std::cell::RefCell::new(None) };
    }
    PARSED.with_borrow_mut(|parsed| {
        if !parsed
            .as_ref()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case(name))
        {
            *parsed = HeaderName::from_bytes(name.as_bytes()).ok();
        }
        parsed.as_ref().and_then(|p| req.headers().get(p))
    })
}

/// A `Host` value safe to write into a manifest: a name or address and an optional port.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}
