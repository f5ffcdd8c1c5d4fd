//! HLS and DASH Content Steering: `GET /v1/steering/hls/{id}`, `GET /v1/steering/dash/{id}`
//! (the multivariant playlist that points players at them is `master`).
//!
//! The manifests follow the HLS Content Steering specification and DASH-IF's Content Steering
//! for DASH: `VERSION` 1, a `TTL`, an absolute `RELOAD-URI` carrying the session state (so any
//! replica can answer the reload), and a priority of unique pathway ids (`PATHWAY-PRIORITY`;
//! a DASH answer carries the same list as CTS-001's `SERVICE-LOCATION-PRIORITY` too, since
//! dash.js and Shaka read `PATHWAY-PRIORITY`), read from the player's `_HLS_pathway` and
//! `_HLS_throughput` (DASH's quoted lists, see `dash_report`). A DASH priority names the
//! providers carrying the stream that offer DASH in the viewer's region: the
//! `serviceLocation`s of its `manifest.mpd`. Before a player's URLs expire, the HLS answer adds
//! `PATHWAY-CLONES` that carry every pathway to freshly signed query parameters. What a reload
//! says about its pathway, once attributed (`steering::steer`), goes to the scoring engine as
//! delivery evidence. These endpoints never answer 429: a player that gets one may stop
//! steering for the rest of the session.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::openapi::Error;
use super::streams::{hold, live};
use super::{place, push_public_base};
use crate::catalog::Catalog;
use crate::codes::Code;
use crate::state::AppState;
use crate::steering::{self, PathwayClone, SteeringSession};
use crate::vocab::Protocol;

/// The query a steering reload carries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

/// The HLS Content Steering manifest.
#[utoipa::path(
    get,
    path = "/v1/steering/hls/{id}",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id"), SteeringQuery),
    responses(
        (status = 200, description = "The steering manifest", body = SteeringManifest),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
pub async fn hls(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<SteeringQuery>,
) -> Result<HttpResponse, ApiError> {
    hold(&state, &id).await;
    manifest(&req, &state, &id, &q, Flavour::Hls)
}

/// The DASH Content Steering manifest.
#[utoipa::path(
    get,
    path = "/v1/steering/dash/{id}",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id"), SteeringQuery),
    responses(
        (status = 200, description = "The steering manifest", body = SteeringManifest),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
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
    let catalog = state.catalog.load();
    let (pathway, throughput) = match flavour {
        Flavour::Hls => (
            q.pathway
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty()),
            match q.throughput.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(t) => Some(bits_per_second(t)?),
            },
        ),
        Flavour::Dash => dash_report(&catalog, q)?,
    };
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
    let answer = state.scorer.steer(
        &catalog,
        region,
        &stream,
        match flavour {
            Flavour::Hls => Protocol::Hls,
            Flavour::Dash => Protocol::Dash,
        },
        pathway,
        throughput,
        session,
        now,
        &mut rand::rng(),
    );
    if answer.priority.is_empty() {
        return Err(ApiError::new(
            Code::NoProvider,
            format!(
                "no provider carrying stream {:?} offers {} in region {}",
                stream.id,
                match flavour {
                    Flavour::Hls => "HLS",
                    Flavour::Dash => "DASH",
                },
                region.id
            ),
        ));
    }
    let generation = answer.session.generation;
    let mut reload = String::with_capacity(192);
    push_public_base(&mut reload, req, &state.config);
    reload.push_str(match flavour {
        Flavour::Hls => "/v1/steering/hls/",
        Flavour::Dash => "/v1/steering/dash/",
    });
    reload.push_str(&stream.id);
    reload.push_str("?session=");
    answer.session.encode_into(&mut reload);
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
        pathway_priority: &priority,
        service_location_priority: matches!(flavour, Flavour::Dash).then_some(&priority),
        pathway_clones: &clones,
    };
    Ok(super::json_no_store(&body))
}

/// A steering manifest: HLS Content Steering's JSON, or DASH-IF's with its own priority key.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SteeringManifest<'a> {
    #[serde(rename = "VERSION")]
    version: u8,
    #[serde(rename = "TTL")]
    ttl: u64,
    #[serde(rename = "RELOAD-URI")]
    #[schema(value_type = String)]
    reload_uri: &'a str,
    /// HLS's key, and the one dash.js 5.2 and Shaka 5.2 read for DASH too.
    #[serde(rename = "PATHWAY-PRIORITY")]
    #[schema(value_type = Vec<String>)]
    pathway_priority: &'a [String],
    /// DASH-IF CTS-001's key for DASH: the same list.
    #[serde(
        rename = "SERVICE-LOCATION-PRIORITY",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    service_location_priority: Option<&'a Vec<String>>,
    #[serde(rename = "PATHWAY-CLONES", skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pathway_clones: &'a [PathwayClone],
}

/// A throughput value: a non-negative number of bits per second.
fn bits_per_second(t: &str) -> Result<u64, ApiError> {
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64)
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidThroughput,
                format!("throughput {t:?} is not a number of bits per second"),
            )
        })
}

/// The pathway a DASH player is on and its throughput there, from DASH-IF CTS-001's query.
///
/// `_DASH_pathway` may be quoted and a comma list, and `_DASH_throughput` a comma list aligned
/// with it, where an empty entry is a location without a measurement. dash.js sends every
/// service location it fetched from since its last steering request, in the order it first
/// did, each with its own mean throughput (`"edge-a,edge-b"`, `812000,45000000`): the last one
/// it took up is where it is now. Shaka sends one location, unquoted, with its overall
/// estimate. A single throughput beside a list is the player's overall estimate.
fn dash_report<'q>(
    catalog: &Catalog,
    q: &'q SteeringQuery,
) -> Result<(Option<&'q str>, Option<u64>), ApiError> {
    fn list(v: Option<&str>) -> Vec<&str> {
        let v = v.map(str::trim).unwrap_or("");
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        if v.trim().is_empty() {
            Vec::new()
        } else {
            v.split(',').map(str::trim).collect()
        }
    }
    let pathways = list(q.pathway.as_deref());
    let throughputs = list(q.throughput.as_deref());
    if throughputs.len() > 1 && throughputs.len() != pathways.len() {
        return Err(ApiError::new(
            Code::InvalidThroughput,
            format!(
                "{} throughputs for {} pathways: _DASH_throughput is aligned with _DASH_pathway",
                throughputs.len(),
                pathways.len()
            ),
        ));
    }
    let throughputs = throughputs
        .iter()
        .map(|t| match *t {
            "" => Ok(None),
            t => bits_per_second(t).map(Some),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The last location the player took up that is a provider (a clone's suffix aside).
    let known = |p: &&str| {
        !p.is_empty()
            && catalog
                .registry
                .get(crate::steering::pathway_provider(p))
                .is_some()
    };
    let Some(i) = pathways
        .iter()
        .rposition(known)
        .or_else(|| pathways.iter().rposition(|p| !p.is_empty()))
    else {
        return Ok((None, throughputs.first().copied().flatten()));
    };
    let throughput = match throughputs.len() {
        0 => None,
        1 => throughputs[0],
        _ => throughputs[i],
    };
    Ok((Some(pathways[i]), throughput))
}
