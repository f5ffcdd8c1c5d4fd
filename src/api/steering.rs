//! HLS and DASH Content Steering: `GET /v1/steering/hls/{id}`, `GET /v1/steering/dash/{id}`, and
//! the multivariant playlist `GET /v1/streams/{id}/master.m3u8` that points players at them.
//!
//! The manifests follow the HLS Content Steering specification and DASH-IF's Content Steering
//! for DASH: `VERSION` 1, a `TTL`, a relative `RELOAD-URI` carrying the session state (so any
//! replica can answer the reload), and a priority of unique pathway ids (`PATHWAY-PRIORITY` for
//! HLS, `SERVICE-LOCATION-PRIORITY` for DASH), read from the player's `_HLS_pathway` and
//! `_HLS_throughput` (`_DASH_…`). These endpoints never answer 429: a player that gets one may
//! stop steering for the rest of the session.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::place;
use super::streams::live;
use crate::providers::Protocol;
use crate::state::AppState;
use crate::steering::{self, SteeringSession};

/// The query a steering reload carries.
#[derive(Debug, Deserialize)]
pub struct SteeringQuery {
    #[serde(rename = "_HLS_pathway", alias = "_DASH_pathway", default)]
    pub pathway: Option<String>,
    #[serde(rename = "_HLS_throughput", alias = "_DASH_throughput", default)]
    pub throughput: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// The two manifest flavours.
#[derive(Debug, Clone, Copy)]
enum Flavour {
    Hls,
    Dash,
}

pub async fn hls(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<SteeringQuery>,
) -> Result<HttpResponse, ApiError> {
    manifest(&req, &state, &id, &q, Flavour::Hls)
}

pub async fn dash(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<SteeringQuery>,
) -> Result<HttpResponse, ApiError> {
    manifest(&req, &state, &id, &q, Flavour::Dash)
}

fn manifest(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    q: &SteeringQuery,
    flavour: Flavour,
) -> Result<HttpResponse, ApiError> {
    let stream = live(state, id)?;
    let throughput = match q
        .throughput
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => Some(
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_throughput",
                        format!("throughput {t:?} is not a number of bits per second"),
                    )
                })? as u64,
        ),
    };
    let pathway = q
        .pathway
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let catalog = state.catalog.load();
    let session = q
        .session
        .as_deref()
        .and_then(SteeringSession::decode)
        .unwrap_or_default();
    let region = match catalog.policy.region(&session.region) {
        Some(r) if q.region.is_none() => r,
        _ => place(req, &catalog, q.region.as_deref(), q.client_ip.as_deref())?.0,
    };
    let answer = steering::steer(
        &catalog,
        &state.scores.load(),
        region,
        &stream,
        pathway,
        throughput,
        session,
        state.clock.now_secs(),
        &mut rand::rng(),
    );
    if answer.priority.is_empty() {
        return Err(ApiError::not_found(
            "no_pathway",
            format!(
                "no provider carrying stream {:?} offers HLS in region {}",
                stream.id, region.id
            ),
        ));
    }
    let (path, key) = match flavour {
        Flavour::Hls => ("hls", "PATHWAY-PRIORITY"),
        Flavour::Dash => ("dash", "SERVICE-LOCATION-PRIORITY"),
    };
    let reload = format!(
        "/v1/steering/{path}/{}?session={}",
        stream.id,
        answer.session.encode()
    );
    let body = json!({
        "VERSION": 1,
        "TTL": catalog.policy.steering.ttl_seconds,
        "RELOAD-URI": reload,
        key: answer.priority,
    });
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// The multivariant playlist query.
#[derive(Debug, Deserialize)]
pub struct MasterQuery {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// `GET /v1/streams/{id}/master.m3u8`.
pub async fn master(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<MasterQuery>,
) -> Result<HttpResponse, ApiError> {
    let stream = live(&state, &id)?;
    let catalog = state.catalog.load();
    let (region, _) = place(&req, &catalog, q.region.as_deref(), q.client_ip.as_deref())?;
    let decision = steering::play_candidates(
        &catalog,
        &state.signer,
        &state.scores.load(),
        region,
        &stream,
        Protocol::Hls,
        &[],
        state.clock.now_secs(),
        &mut rand::rng(),
    )
    .map_err(|e| ApiError::bad_request("unknown_protocol", e.to_string()))?;
    if decision.candidates.is_empty() {
        return Err(ApiError::unavailable(
            "no_provider",
            format!(
                "no provider carrying stream {:?} offers HLS in region {}",
                stream.id, region.id
            ),
        ));
    }
    let session = SteeringSession {
        region: region.id.clone(),
        penalized: Vec::new(),
    };
    let uri = format!(
        "/v1/steering/hls/{}?session={}",
        stream.id,
        session.encode()
    );
    let body = steering::master_playlist(
        &decision.candidates,
        &uri,
        catalog.policy.steering.bandwidth_bps,
    );
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.apple.mpegurl")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
