//! HLS and DASH Content Steering: `GET /v1/steering/hls/{id}`, `GET /v1/steering/dash/{id}`
//! (the multivariant playlist that points players at them is `master`).
//!
//! The manifests follow the HLS Content Steering specification and DASH-IF's Content Steering
//! for DASH: `VERSION` 1, a `TTL`, an absolute `RELOAD-URI` carrying the session state (so any
//! replica can answer the reload), and a priority of unique pathway ids (`PATHWAY-PRIORITY` for
//! HLS, `SERVICE-LOCATION-PRIORITY` for DASH), read from the player's `_HLS_pathway` and
//! `_HLS_throughput` (`_DASH_…`). Before a player's URLs expire, the HLS answer adds
//! `PATHWAY-CLONES` that carry every pathway to freshly signed query parameters. What a reload
//! says about its pathway, once attributed (`steering::steer`), goes to the scoring engine as
//! delivery evidence. These endpoints never answer 429: a player that gets one may stop
//! steering for the rest of the session.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::streams::live;
use super::{place, public_base};
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
    let now = state.clock.now_secs();
    let answer = steering::steer(
        &catalog,
        &state.scores.load(),
        region,
        &stream,
        pathway,
        throughput,
        session,
        now,
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
    for signal in answer.evidence {
        state.signals.emit(signal);
    }
    let generation = answer.session.generation;
    let (path, key) = match flavour {
        Flavour::Hls => ("hls", "PATHWAY-PRIORITY"),
        Flavour::Dash => ("dash", "SERVICE-LOCATION-PRIORITY"),
    };
    let reload = format!(
        "{}/v1/steering/{path}/{}?session={}",
        public_base(req, &state.config),
        stream.id,
        answer.session.encode()
    );
    let mut body = json!({
        "VERSION": 1,
        "TTL": catalog.policy.steering.ttl_seconds,
        "RELOAD-URI": reload,
    });
    match flavour {
        Flavour::Hls if generation > 0 => {
            let clones = steering::pathway_clones(
                &catalog,
                &state.signer,
                region,
                &stream,
                &answer.priority,
                generation,
                answer.session.expires_at,
            );
            let priority =
                steering::clone_priority(&answer.priority, &clones, pathway, answer.refreshed);
            body[key] = json!(priority);
            body["PATHWAY-CLONES"] = json!(clones);
        }
        _ => body[key] = json!(answer.priority),
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
