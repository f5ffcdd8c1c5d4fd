//! `GET /v1/streams/{id}/manifest.mpd`: the live MPD that puts a stock DASH player (dash.js,
//! Shaka) on livesteer's Content Steering.
//!
//! It is the origin's own MPD (every period, adaptation set and representation) with one
//! `<BaseURL serviceLocation="<provider>">` per provider carrying the stream in the viewer's
//! play order, each that provider's signed, absolute URL; a `<ContentSteering>` whose absolute
//! URL starts the player's steering session on the first (`queryBeforeStart`, so the first
//! choice is livesteer's); and a `<Location>` that brings the player's MPD refreshes back here,
//! where they get freshly signed base URLs. The origin's MPD comes from the per-stream cache
//! (`manifests::OriginCache`), held for the MPD's own `minimumUpdatePeriod`: a cold stream's
//! first viewers wait for one bounded fetch, everyone else is answered from memory. It is read
//! from the stream's origin, else (when the origin fails, or none offers DASH) through the
//! service locations in the viewer's order, each asked at most once per retry time; when none
//! can give it, a JSON 502 names the first that failed.

use actix_web::{HttpRequest, HttpResponse, web};

use super::ApiError;
use super::master::{MasterQuery, Ranked};
use super::openapi::Error;
use super::public_base;
use crate::codes::Code;
use crate::manifests::dash::ServiceLocation;
use crate::manifests::{self, Limits, OriginTarget};
use crate::state::AppState;
use crate::steering::{self, SteeringSession};
use crate::vocab::Protocol;

/// `GET /v1/streams/{id}/manifest.mpd`.
#[utoipa::path(
    get,
    path = "/v1/streams/{id}/manifest.mpd",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id"), super::master::MasterQuery),
    responses(
        (status = 200, description = "The origin's live MPD with a signed BaseURL per provider", content_type = "application/dash+xml", body = String),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 502, description = "`origin_unavailable`: the origin's MPD cannot be had", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
pub async fn mpd(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<MasterQuery>,
) -> Result<HttpResponse, ApiError> {
    let ranked = Ranked::for_viewer(&req, &state, &id, &q, Protocol::Dash).await?;
    let Ranked {
        stream,
        catalog,
        region,
        now,
        candidates,
    } = &ranked;
    if candidates.is_empty() {
        return Err(ranked.no_provider("DASH"));
    }
    // The stream's origin, then each service location in the viewer's order: a live MPD read
    // through a CDN (no origin of the stream offers DASH itself) must not die with one edge.
    let limits = Limits::from_policy(&catalog.policy.delivery);
    let mut targets: Vec<OriginTarget> =
        manifests::origin_target(catalog, &state.signer, stream, Protocol::Dash, *now)
            .into_iter()
            .collect();
    for c in candidates {
        if !targets.iter().any(|t| t.provider == c.provider) {
            targets.push(OriginTarget {
                provider: c.provider.clone(),
                url: c.url.clone(),
            });
        }
    }
    let mut first_error = None;
    let mut origin = None;
    for t in &targets {
        match state.manifests.dash.get(t, limits).await {
            Ok(m) => {
                origin = Some(m);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(origin) = origin else {
        let e = first_error.map_or_else(|| "no origin to ask".to_string(), |e| e.to_string());
        return Err(ApiError::new(Code::OriginUnavailable, e));
    };
    let reference = origin.base_reference();
    // Each provider's base URL, signed; one that cannot be is left out.
    let locations: Vec<(&steering::Candidate, ServiceLocation)> = candidates
        .iter()
        .filter_map(|c| {
            let p = catalog.registry.get(&c.provider)?;
            let url = state.signer.variant_url(
                p,
                &stream.id,
                region,
                Protocol::Dash,
                &c.url,
                reference,
                c.expires_at,
            )?;
            Some((
                c,
                ServiceLocation {
                    id: c.provider.clone(),
                    base_url: url.to_string(),
                },
            ))
        })
        .collect();
    let Some((first, _)) = locations.first() else {
        return Err(ranked.no_provider("DASH"));
    };
    let base = public_base(&req, &state.config);
    let session = SteeringSession::start(region, &first.provider, *now, first.expires_at);
    let steering_uri = format!(
        "{base}/v1/steering/dash/{}?session={}",
        stream.id,
        session.encode()
    );
    // Refreshes come back here, for the same region if the viewer named one.
    let mut location = format!("{base}/v1/streams/{}/manifest.mpd", stream.id);
    if q.region.is_some() {
        // A region id the policy knows: lower-case letters, digits and `-`.
        location.push_str("?region=");
        location.push_str(region);
    }
    let locations: Vec<ServiceLocation> = locations.into_iter().map(|(_, l)| l).collect();
    let body = origin.write(&locations, &steering_uri, &location);
    Ok(HttpResponse::Ok()
        .content_type("application/dash+xml")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
