//! `GET /v1/streams/{id}/master.m3u8`: the multivariant playlist that puts a stock player on
//! livesteer's Content Steering.
//!
//! It is the origin's own ladder (every variant and rendition group, with their attributes)
//! once per pathway, that is per provider carrying the stream in the viewer's play order, each
//! copy with `PATHWAY-ID` and that provider's signed, absolute URIs; and an
//! `#EXT-X-CONTENT-STEERING` tag whose absolute `SERVER-URI` starts the player's steering
//! session on the first pathway. An origin that answers a media playlist (no ladder) gives one
//! variant per pathway at the policy's `steering.bandwidth_bps`. The origin's playlist comes
//! from the per-stream cache (`manifests::OriginCache`): a cold stream's first viewers wait for
//! one bounded fetch, everyone else is answered from memory; an origin that cannot be had is a
//! JSON 502 naming it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::ApiError;
use super::openapi::Error;
use super::streams::{hold, live};
use super::{place, push_public_base};
use crate::codes::Code;
use crate::manifests::hls::{self, HlsPlaylist, Pathway};
use crate::manifests::{self, Limits, OriginTarget};
use crate::state::AppState;
use crate::steering::{self, SteeringSession};
use crate::vocab::Protocol;

/// The multivariant playlist query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MasterQuery {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// What a manifest route starts from: the live stream, the catalog it was ranked under, the
/// viewer's region and the ranked, signed candidates for one protocol.
pub(super) struct Ranked {
    pub stream: std::sync::Arc<crate::streams::Stream>,
    pub catalog: std::sync::Arc<crate::catalog::Catalog>,
    pub region: String,
    pub now: i64,
    pub candidates: Vec<steering::Candidate>,
}

impl Ranked {
    /// The stream (read through once if this replica has not heard of it), the viewer placed,
    /// and its play order for `protocol`: memory only.
    pub(super) async fn for_viewer(
        req: &HttpRequest,
        state: &web::Data<AppState>,
        id: &str,
        q: &MasterQuery,
        protocol: Protocol,
    ) -> Result<Ranked, ApiError> {
        hold(state, id).await;
        let stream = live(state, id)?;
        let catalog = state.catalog.load_full();
        let (region, _) = place(req, &catalog, q.region.as_deref(), q.client_ip.as_deref())?;
        let now = state.clock.now_secs();
        let decision = state
            .scorer
            .rank_play(
                &catalog,
                &state.signer,
                region,
                &stream,
                protocol,
                &[],
                now,
                &mut rand::rng(),
            )
            .map_err(|e| ApiError::new(Code::UnknownProtocol, e.to_string()))?;
        let region = region.id.clone();
        Ok(Ranked {
            stream,
            catalog,
            region,
            now,
            candidates: decision.candidates,
        })
    }

    /// [`Code::NoProvider`]: no carrier of the stream offers `protocol` here.
    pub(super) fn no_provider(&self, protocol: &str) -> ApiError {
        ApiError::new(
            Code::NoProvider,
            format!(
                "no provider carrying stream {:?} offers {protocol} in region {}",
                self.stream.id, self.region
            ),
        )
    }
}

/// `GET /v1/streams/{id}/master.m3u8`.
#[utoipa::path(
    get,
    path = "/v1/streams/{id}/master.m3u8",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id"), MasterQuery),
    responses(
        (status = 200, description = "The multivariant playlist, one copy of the ladder per provider", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 502, description = "`origin_unavailable`: the origin's playlist cannot be had", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
pub async fn master(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<MasterQuery>,
) -> Result<HttpResponse, ApiError> {
    let ranked = Ranked::for_viewer(&req, &state, &id, &q, Protocol::Hls).await?;
    let Ranked {
        stream,
        catalog,
        region,
        now,
        candidates,
    } = &ranked;
    let no_provider = || ranked.no_provider("HLS");
    let Some(first) = candidates.first() else {
        return Err(no_provider());
    };
    // The stream's origin; failing that, the viewer's first pathway.
    let target = manifests::origin_target(catalog, &state.signer, stream, Protocol::Hls, *now)
        .unwrap_or_else(|| OriginTarget {
            provider: first.provider.clone(),
            url: first.url.clone(),
        });
    let origin = state
        .manifests
        .hls
        .get(&target, Limits::from_policy(&catalog.policy.delivery))
        .await
        .map_err(|e| ApiError::new(Code::OriginUnavailable, e.to_string()))?;
    let steering_uri = |first: &str, expires_at: i64| {
        let session = SteeringSession::start(region, first, *now, expires_at);
        let mut uri = String::with_capacity(192);
        push_public_base(&mut uri, &req, &state.config);
        uri.push_str("/v1/steering/hls/");
        uri.push_str(&stream.id);
        uri.push_str("?session=");
        session.encode_into(&mut uri);
        uri
    };
    let body = match origin.as_ref() {
        HlsPlaylist::Media => hls::single_variant(
            candidates,
            &steering_uri(&first.provider, first.expires_at),
            catalog.policy.steering.bandwidth_bps,
        ),
        HlsPlaylist::Ladder(ladder) => {
            let references = ladder.references();
            // Every reference signed on each pathway; a pathway with one that cannot be is
            // left out whole (its players would miss a rendition).
            let pathways: Vec<(&steering::Candidate, Pathway)> = candidates
                .iter()
                .filter_map(|c| {
                    let p = catalog.registry.get(&c.provider)?;
                    let uris = references
                        .iter()
                        .map(|r| {
                            let url = state.signer.variant_url(
                                p,
                                &stream.id,
                                region,
                                Protocol::Hls,
                                &c.url,
                                r,
                                c.expires_at,
                            )?;
                            Some(url)
                        })
                        .collect::<Option<Vec<_>>>()?;
                    Some((
                        c,
                        Pathway {
                            id: c.provider.clone(),
                            uris,
                        },
                    ))
                })
                .collect();
            let Some((first, _)) = pathways.first() else {
                return Err(no_provider());
            };
            let uri = steering_uri(&first.provider, first.expires_at);
            let pathways: Vec<Pathway> = pathways.into_iter().map(|(_, p)| p).collect();
            hls::replicate(ladder, &uri, &pathways)
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.apple.mpegurl")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
