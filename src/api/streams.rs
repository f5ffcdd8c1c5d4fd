//! `/v1/streams`: create (push URLs), end, show, play.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::openapi::Error;
use super::{ApiError, place};
use crate::codes::Code;
use crate::geo::RegionSource;
use crate::metrics as m;
use crate::scoring::Pick;
use crate::signals::Signal;
use crate::state::AppState;
use crate::steering::{Candidate, DecisionError, PushTarget};
use crate::streams::{Stream, StreamState};
use crate::vocab::Protocol;
use crate::vocab::ids::{is_valid_anchor_id, is_valid_stream_key};

/// `POST /v1/streams`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    /// The broadcaster: 1 to 64 of `[A-Za-z0-9_.:-]`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub anchor_id: String,
    /// Region id, when the app knows it.
    #[serde(default)]
    pub region: Option<String>,
    /// The anchor's address, when the app server calls on its behalf.
    #[serde(default)]
    pub client_ip: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub stream_id: String,
    pub anchor_id: String,
    pub region: String,
    pub region_source: RegionSource,
    pub push: Vec<PushTarget>,
    pub reason: String,
    /// Where viewers ask for play URLs.
    pub play: String,
    /// Ask again (`POST /v1/streams/{id}/push`) this many seconds from now whether the stream
    /// should move, and again after each answer; 0: never.
    pub ask_again_seconds: u64,
}

/// `POST /v1/streams/{id}/push`: where the stream should be pushed now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushAnswer {
    pub stream_id: String,
    pub region: String,
    /// The targets, signed again: the new ones when `moved`, else those the stream has.
    pub push: Vec<PushTarget>,
    /// Whether the targets changed. The app starts pushing to the new targets and, once they
    /// take the stream, stops pushing to the ones no longer listed; viewers follow through
    /// their play answers and steering.
    pub moved: bool,
    pub reason: String,
    /// When to ask again; 0: never.
    pub ask_again_seconds: u64,
}

/// `GET /v1/streams/{id}/play`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlayQuery {
    /// The policy's default when absent.
    #[serde(default)]
    #[param(value_type = Option<Protocol>)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlayAnswer {
    pub stream_id: String,
    pub region: String,
    pub region_source: RegionSource,
    pub protocol: Protocol,
    pub candidates: Vec<Candidate>,
    /// Why the first candidate is first: `ranked`, `challenger`, `anchor`, `max_share`,
    /// `commit`, `overflow`, `explore` or `static`.
    pub pick: Pick,
    /// How long the player may reuse this answer.
    pub ttl_seconds: u64,
    /// The HLS Content Steering manifest for this stream.
    pub steering: String,
}

fn new_stream_id() -> String {
    format!(
        "s{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// Creates a stream and returns its signed push URL(s) once the stream is committed.
#[utoipa::path(
    post,
    path = "/v1/streams",
    tag = "streams",
    request_body = CreateStream,
    responses(
        (status = 201, description = "The stream, committed, with its push URLs", body = Created),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
        (status = 503, description = "`database_unavailable` or `no_provider`", body = Error),
    )
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CreateStream>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !is_valid_anchor_id(&body.anchor_id) {
        return Err(ApiError::new(
            Code::InvalidAnchorId,
            "anchor_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
        ));
    }
    let catalog = state.catalog.load();
    let (region, source) = place(
        &req,
        &catalog,
        body.region.as_deref(),
        body.client_ip.as_deref(),
    )?;
    let now_ms = state.clock.now_ms();
    let id = new_stream_id();
    let plan = state
        .scorer
        .plan_push(
            &catalog,
            &state.signer,
            region,
            &body.anchor_id,
            &id,
            now_ms,
            &mut rand::rng(),
        )
        .map_err(|e| ApiError::new(Code::NoProvider, e.to_string()))?;
    let stream = Stream {
        id: id.clone(),
        anchor_id: body.anchor_id.clone(),
        region: region.id.clone(),
        providers: plan.targets.iter().map(|t| t.provider.clone()).collect(),
        state: StreamState::Live,
        reason: plan.reason.clone(),
        started_ms: now_ms,
        ended_ms: None,
        updated_ms: now_ms,
    };
    // Committed before memory and the answer: an acknowledged stream survives a crash, and a
    // stream that could not be stored was never seen by anyone.
    state
        .writer
        .commit(stream.to_row())
        .await
        .map_err(not_stored)?;
    state.streams.put(stream);
    tracing::info!(stream = %id, anchor = %body.anchor_id, region = %region.id,
        primary = %plan.targets[0].provider, "stream created");
    Ok(HttpResponse::Created().json(Created {
        play: format!("/v1/streams/{id}/play"),
        stream_id: id,
        anchor_id: body.anchor_id,
        region: region.id.clone(),
        region_source: source,
        push: plan.targets,
        reason: plan.reason,
        ask_again_seconds: catalog.policy.ingest.ask_again_seconds,
    }))
}

/// Asks again, during a broadcast, where a live stream should be pushed: it moves when a push
/// set chosen now would serve the anchor's audience better than its own by the ingest margin
/// (a first push made before anything was known, or an upload that has since failed); the
/// move is committed before the answer.
#[utoipa::path(
    post,
    path = "/v1/streams/{id}/push",
    tag = "streams",
    params(("id" = String, Path, description = "The stream id")),
    responses(
        (status = 200, description = "The push targets now", body = PushAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 503, description = "`database_unavailable` (the stream stays where it was) or `no_provider`", body = Error),
    )
)]
pub async fn push(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    hold(&state, &id).await;
    let cur = live(&state, &id)?;
    let catalog = state.catalog.load();
    let region = catalog
        .policy
        .region(&cur.region)
        .unwrap_or_else(|| catalog.policy.default_region());
    let now_ms = state.clock.now_ms();
    let ask_again_seconds = catalog.policy.ingest.ask_again_seconds;
    let plan = state
        .scorer
        .recheck_push(&catalog, &state.signer, region, &cur, now_ms)
        .map_err(|e| ApiError::new(Code::NoProvider, e.to_string()))?;
    let Some(plan) = plan else {
        return Ok(HttpResponse::Ok().json(PushAnswer {
            stream_id: cur.id.clone(),
            region: region.id.clone(),
            push: crate::steering::push_targets(&catalog, &state.signer, region, &cur, now_ms),
            moved: false,
            reason: format!("stays on {}", cur.providers.join(", ")),
            ask_again_seconds,
        }));
    };
    let moved = Stream {
        providers: plan.targets.iter().map(|t| t.provider.clone()).collect(),
        reason: plan.reason.clone(),
        updated_ms: now_ms.max(cur.updated_ms + 1),
        ..cur.as_ref().clone()
    };
    // Committed before memory and the answer, as a new stream is; an ended stream is never
    // made live again, in the database or in memory.
    state
        .writer
        .commit(moved.to_row())
        .await
        .map_err(not_stored)?;
    let Some(stream) = state.streams.replace_live(moved) else {
        return Err(ApiError::new(
            Code::StreamEnded,
            format!("stream {:?} has ended", cur.id),
        ));
    };
    tracing::info!(stream = %stream.id, from = ?cur.providers, to = ?stream.providers,
        "stream moved");
    Ok(HttpResponse::Ok().json(PushAnswer {
        stream_id: stream.id.clone(),
        region: region.id.clone(),
        push: plan.targets,
        moved: true,
        reason: plan.reason,
        ask_again_seconds,
    }))
}

/// Before [`known`] or [`live`] in a request: a stream this replica does not hold is read
/// from the database once (another replica created it, and its notification has not been
/// merged yet), so every replica answers for every stream. Memory only, when it holds the id.
pub(crate) async fn hold(state: &web::Data<AppState>, id: &str) {
    if state.streams.get(id).is_none() && is_valid_stream_key(id) {
        state.stream_reads.hold(&state.db, &state.streams, id).await;
    }
}

pub(crate) fn known(state: &AppState, id: &str) -> Result<std::sync::Arc<Stream>, ApiError> {
    if !is_valid_stream_key(id) {
        return Err(ApiError::new(
            Code::UnknownStream,
            format!("no stream {:?}", trunc(id)),
        ));
    }
    state
        .streams
        .get(id)
        .ok_or_else(|| ApiError::new(Code::UnknownStream, format!("no stream {id:?}")))
}

/// A stream that is still live: 404 for an unknown one, 410 for an ended one (for steering
/// manifests, the specification's way of telling a player to stop).
pub(crate) fn live(state: &AppState, id: &str) -> Result<std::sync::Arc<Stream>, ApiError> {
    let stream = known(state, id)?;
    if stream.state == StreamState::Ended {
        return Err(ApiError::new(
            Code::StreamEnded,
            format!("stream {:?} has ended", stream.id),
        ));
    }
    Ok(stream)
}

fn trunc(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Ends a stream, answering once the end is committed. Ending an ended stream answers the
/// same again.
#[utoipa::path(
    delete,
    path = "/v1/streams/{id}",
    tag = "streams",
    params(("id" = String, Path, description = "The stream id")),
    responses(
        (status = 200, description = "The stream, ended", body = Stream),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 503, description = "`database_unavailable`: the stream stays live", body = Error),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    const REASON: &str = "ended by the app";
    hold(&state, &id).await;
    let cur = known(&state, &id)?;
    if cur.state == StreamState::Ended {
        return Ok(HttpResponse::Ok().json(cur.as_ref()));
    }
    let now_ms = state.clock.now_ms();
    // The end is committed before memory changes and before the answer, so an ended stream
    // never comes back live after a crash; a failed commit leaves the stream live everywhere.
    state
        .writer
        .commit(cur.ended(now_ms, REASON).to_row())
        .await
        .map_err(not_stored)?;
    let (stream, changed) = state.streams.end(&id, now_ms, REASON).ok_or_else(|| {
        ApiError::new(Code::UnknownStream, format!("no stream {:?}", id.as_str()))
    })?;
    if changed {
        tracing::info!(stream = %stream.id, "stream ended");
    }
    Ok(HttpResponse::Ok().json(stream.as_ref()))
}

/// A change that could not be committed: 503, nothing changed.
fn not_stored(e: String) -> ApiError {
    ApiError::new(Code::DatabaseUnavailable, format!("not stored: {e}"))
}

/// The stream as livesteer holds it.
#[utoipa::path(
    get,
    path = "/v1/streams/{id}",
    tag = "streams",
    params(("id" = String, Path, description = "The stream id")),
    responses(
        (status = 200, description = "The stream", body = Stream),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
    )
)]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    hold(&state, &id).await;
    let stream = known(&state, &id)?;
    Ok(HttpResponse::Ok().json(stream.as_ref()))
}

/// Ranked, signed play candidates for the viewer's region.
#[utoipa::path(
    get,
    path = "/v1/streams/{id}/play",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id"), PlayQuery),
    responses(
        (status = 200, description = "Ranked, signed play candidates", body = PlayAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
pub async fn play(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<PlayQuery>,
) -> Result<HttpResponse, ApiError> {
    hold(&state, &id).await;
    let answer = answer(
        &req,
        &state,
        &id,
        q.protocol.as_deref(),
        q.region.as_deref(),
        q.client_ip.as_deref(),
        &[],
    )?;
    Ok(super::json_no_store(&answer))
}

/// `POST /v1/streams/{id}/switch`: a player stalling on a provider.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// The provider the player is leaving.
    pub from_provider: String,
    /// Why (`stall`, `error`, `slow_start`, …): logged and counted.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{0,64}$")]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Protocol>)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// Counts a strong negative against the provider and answers a new order with it last.
#[utoipa::path(
    post,
    path = "/v1/streams/{id}/switch",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id")),
    request_body = SwitchRequest,
    responses(
        (status = 200, description = "The play answer with that provider last", body = PlayAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream` or `unknown_provider`", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
pub async fn switch(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SwitchRequest>,
) -> Result<HttpResponse, ApiError> {
    hold(&state, &id).await;
    let body = body.into_inner();
    let reason = body.reason.as_deref().unwrap_or("unspecified");
    if reason.len() > 64
        || !reason
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::new(
            Code::InvalidReason,
            "reason must be up to 64 characters of A-Z, a-z, 0-9, '_' or '-'",
        ));
    }
    let from = body.from_provider.as_str();
    if state.catalog.load().registry.get(from).is_none() {
        return Err(ApiError::new(
            Code::UnknownProvider,
            format!("from_provider {:?} is not an enabled provider", trunc(from)),
        ));
    }
    let answer = answer(
        &req,
        &state,
        &id,
        body.protocol.as_deref(),
        body.region.as_deref(),
        body.client_ip.as_deref(),
        &[from],
    )?;
    if !answer.candidates.iter().any(|c| c.provider == from) {
        return Err(ApiError::new(
            Code::NotACarrier,
            format!(
                "provider {from:?} does not carry stream {:?}",
                answer.stream_id
            ),
        ));
    }
    let stream = known(&state, &id)?;
    state.signals.emit(Signal::Switch {
        provider: from.to_string(),
        region: answer.region.clone(),
        anchor_id: Some(stream.anchor_id.clone()),
    });
    metrics::counter!(m::SWITCHES.name, "provider" => from.to_string(), "region" => answer.region.clone(),
        "reason" => bounded_reason(reason))
    .increment(1);
    tracing::info!(stream = %answer.stream_id, provider = from, region = %answer.region, reason, "player switched away");
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// Switch reasons kept as metric labels; anything else counts as `other`.
fn bounded_reason(reason: &str) -> &'static str {
    match reason {
        "stall" => "stall",
        "error" => "error",
        "slow_start" => "slow_start",
        "low_throughput" => "low_throughput",
        "unspecified" => "unspecified",
        _ => "other",
    }
}

/// The play answer for a viewer, with `avoid` moved to the end.
fn answer(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    protocol: Option<&str>,
    region: Option<&str>,
    client_ip: Option<&str>,
    avoid: &[&str],
) -> Result<PlayAnswer, ApiError> {
    let catalog = state.catalog.load();
    let protocol = parse_protocol(protocol, catalog.policy.delivery.default_protocol)?;
    let stream = live(state, id)?;
    let (region, source) = place(req, &catalog, region, client_ip)?;
    let now = state.clock.now_secs();
    let decision = state
        .scorer
        .rank_play(
            &catalog,
            &state.signer,
            region,
            &stream,
            protocol,
            avoid,
            now,
            &mut rand::rng(),
        )
        .map_err(|e| match e {
            DecisionError::ProtocolNotOffered(..) => {
                ApiError::new(Code::UnknownProtocol, e.to_string())
            }
            DecisionError::NoIngest(_) => ApiError::new(Code::NoProvider, e.to_string()),
        })?;
    if decision.candidates.is_empty() {
        return Err(ApiError::new(
            Code::NoProvider,
            format!(
                "no enabled provider carrying stream {:?} offers {protocol} in region {}",
                stream.id, region.id
            ),
        ));
    }
    Ok(PlayAnswer {
        stream_id: stream.id.clone(),
        region: region.id.clone(),
        region_source: source,
        protocol,
        candidates: decision.candidates,
        pick: decision.pick,
        ttl_seconds: catalog.policy.delivery.answer_ttl_seconds,
        steering: {
            let mut url = String::with_capacity(96);
            super::push_public_base(&mut url, req, &state.config);
            url.push_str(if protocol == Protocol::Dash {
                "/v1/steering/dash/"
            } else {
                "/v1/steering/hls/"
            });
            url.push_str(&stream.id);
            url
        },
    })
}

/// A protocol from the request, or the policy's default.
pub fn parse_protocol(p: Option<&str>, default: Protocol) -> Result<Protocol, ApiError> {
    match p.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => p
            .parse::<Protocol>()
            .map_err(|m| ApiError::new(Code::UnknownProtocol, m)),
        None => Ok(default),
    }
}
