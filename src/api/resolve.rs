//! `/v1/resolve`: where a client should connect for each service, nearest healthy first.
//! Memory only: the policy, the geo tables and the directory.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::openapi::Error;
use super::{ApiError, place};
use crate::codes::Code;
use crate::directory::{Candidate, Outcome};
use crate::geo::RegionSource;
use crate::metrics as m;
use crate::policy::services::{ChannelProfile, ServiceKind};
use crate::state::AppState;

/// Most clients in one `POST /v1/resolve`.
pub const MAX_BATCH: usize = 100;

/// `GET /v1/resolve?services=chat,im&region=&client_ip=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// Comma-separated services; all six when absent.
    #[serde(default)]
    pub services: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// One client in `POST /v1/resolve`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Services; all six when absent.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// `POST /v1/resolve`: `{"requests": [...]}`, answered in order.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBatch {
    pub requests: Vec<ResolveRequest>,
}

/// One service's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceAnswer {
    /// `local`, `fallback` or `none`.
    pub outcome: Outcome,
    /// Nearest healthy first.
    pub nodes: Vec<Candidate>,
    /// Chat and IM: how to use the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<ChannelProfile>,
    /// Static and upload: the client's area.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// Static: the area's CDN domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// A client's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResolveAnswer {
    pub region: String,
    pub region_source: RegionSource,
    /// How long the client may keep this answer.
    pub ttl_seconds: u64,
    /// Keyed by service: `chat`, `im`, `api`, `upload`, `static`, `pay`.
    #[schema(value_type = BTreeMap<String, ServiceAnswer>)]
    pub services: BTreeMap<ServiceKind, ServiceAnswer>,
}

/// Parses a service list; empty means all.
pub fn parse_services<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<ServiceKind>, ApiError> {
    let mut out = Vec::new();
    for n in names.map(str::trim).filter(|n| !n.is_empty()) {
        let k: ServiceKind = n
            .to_ascii_lowercase()
            .parse()
            .map_err(|m| ApiError::new(Code::UnknownService, m))?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        out = ServiceKind::ALL.to_vec();
    }
    Ok(out)
}

/// Resolves one service for a region and counts the answer.
pub fn answer_service(
    state: &AppState,
    policy: &crate::policy::Policy,
    kind: ServiceKind,
    region: &str,
    now_ms: i64,
) -> ServiceAnswer {
    let services = &policy.services;
    let mut uniform = || rand::random::<f64>();
    let r = state
        .directory
        .resolve(services, kind, region, now_ms, &mut uniform);
    let area = services.area_of(region);
    let mut outcome = r.outcome;
    let (area_id, domain) = match kind {
        ServiceKind::Static => {
            let domain = area.map(|a| a.static_domain.clone());
            if outcome == Outcome::None && domain.is_some() {
                outcome = Outcome::Local;
            }
            (area.map(|a| a.id.clone()), domain)
        }
        ServiceKind::Upload => (area.map(|a| a.id.clone()), None),
        _ => (None, None),
    };
    metrics::counter!(m::RESOLVE_ANSWERS.name, "service" => kind.as_str(),
        "region" => region.to_string(), "outcome" => outcome.as_str())
    .increment(1);
    ServiceAnswer {
        outcome,
        nodes: r.nodes,
        profile: services.channel(kind).copied(),
        area: area_id,
        domain,
    }
}

fn answer(
    req: &HttpRequest,
    state: &AppState,
    catalog: &crate::catalog::Catalog,
    kinds: &[ServiceKind],
    region: Option<&str>,
    ip: Option<&str>,
) -> Result<ResolveAnswer, ApiError> {
    let (region, source) = place(req, catalog, region, ip)?;
    let now = state.clock.now_ms();
    let services = kinds
        .iter()
        .map(|&k| {
            (
                k,
                answer_service(state, &catalog.policy, k, &region.id, now),
            )
        })
        .collect();
    Ok(ResolveAnswer {
        region: region.id.clone(),
        region_source: source,
        ttl_seconds: catalog.policy.services.resolve_ttl_seconds,
        services,
    })
}

/// `GET /v1/resolve`.
#[utoipa::path(
    get,
    path = "/v1/resolve",
    tag = "services",
    params(ResolveQuery),
    responses(
        (status = 200, description = "Where to connect for each service", body = ResolveAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
    )
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ResolveQuery>,
) -> Result<HttpResponse, ApiError> {
    let kinds = parse_services(q.services.as_deref().unwrap_or("").split(','))?;
    let catalog = state.catalog.load();
    let a = answer(
        &req,
        &state,
        &catalog,
        &kinds,
        q.region.as_deref(),
        q.client_ip.as_deref(),
    )?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(a))
}

/// `POST /v1/resolve`: several clients at once (an app server resolving for its users).
#[utoipa::path(
    post,
    path = "/v1/resolve",
    tag = "services",
    request_body = ResolveBatch,
    responses(
        (status = 200, description = "One answer per request, in order", body = super::openapi::ResolveAnswers),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
    )
)]
pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ResolveBatch>,
) -> Result<HttpResponse, ApiError> {
    let batch = body.into_inner();
    if batch.requests.is_empty() {
        return Err(ApiError::new(
            Code::EmptyBatch,
            "requests must not be empty",
        ));
    }
    if batch.requests.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::BatchTooLarge,
            format!(
                "{} requests in one batch, more than the {MAX_BATCH} allowed",
                batch.requests.len()
            ),
        ));
    }
    let catalog = state.catalog.load();
    let mut answers = Vec::with_capacity(batch.requests.len());
    for (i, r) in batch.requests.iter().enumerate() {
        let at = |e: ApiError| ApiError::new(e.code, format!("requests[{i}]: {}", e.message));
        let kinds = parse_services(r.services.iter().flatten().map(String::as_str)).map_err(at)?;
        answers.push(
            answer(
                &req,
                &state,
                &catalog,
                &kinds,
                r.region.as_deref(),
                r.client_ip.as_deref(),
            )
            .map_err(at)?,
        );
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "answers": answers })))
}
