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
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::streams::{hold, live};
use super::{place, public_base};
use crate::signals::Signal;
use crate::state::AppState;
use crate::steering::{self, PathwayClone, SteeringSession};

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
    hold(&state, &id).await;
    manifest(&req, &state, &id, &q, Flavour::Hls)
}

pub async fn dash(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<SteeringQuery>,
) -> Result<HttpResponse, ApiError> {
    hold(&state, &id).await;
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
        match signal {
            Signal::Reload {
                provider,
                region,
                covered_ms,
                throughput_bps,
                needed_bps,
                ..
            } => state.reloads.add(
                &catalog.policy.scoring,
                &provider,
                &region,
                covered_ms,
                throughput_bps,
                needed_bps,
            ),
            other => {
                state.signals.emit(other);
            }
        }
    }
    let generation = answer.session.generation;
    let reload = format!(
        "{}/v1/steering/{}/{}?session={}",
        public_base(req, &state.config),
        match flavour {
            Flavour::Hls => "hls",
            Flavour::Dash => "dash",
        },
        stream.id,
        answer.session.encode()
    );
    let (priority, clones) = match flavour {
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
            (priority, clones)
        }
        _ => (answer.priority, Vec::new()),
    };
    let body = SteeringManifest {
        version: 1,
        ttl: catalog.policy.steering.ttl_seconds,
        reload_uri: &reload,
        pathway_priority: matches!(flavour, Flavour::Hls).then_some(&priority),
        service_location_priority: matches!(flavour, Flavour::Dash).then_some(&priority),
        pathway_clones: &clones,
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// A steering manifest: HLS Content Steering's JSON, or DASH-IF's with its own priority key.
#[derive(Serialize)]
struct SteeringManifest<'a> {
    #[serde(rename = "VERSION")]
    version: u8,
    #[serde(rename = "TTL")]
    ttl: u64,
    #[serde(rename = "RELOAD-URI")]
    reload_uri: &'a str,
    #[serde(rename = "PATHWAY-PRIORITY", skip_serializing_if = "Option::is_none")]
    pathway_priority: Option<&'a Vec<String>>,
    #[serde(
        rename = "SERVICE-LOCATION-PRIORITY",
        skip_serializing_if = "Option::is_none"
    )]
    service_location_priority: Option<&'a Vec<String>>,
    #[serde(rename = "PATHWAY-CLONES", skip_serializing_if = "<[_]>::is_empty")]
    pathway_clones: &'a [PathwayClone],
}
