//! `/v1/nodes`: signed heartbeats from service nodes, and the directory as livesteer sees it.

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::openapi::Error;
use crate::auth::signed::{self, AuthError};
use crate::codes::Code;
use crate::directory::{Applied, Heartbeat, HeartbeatError};
use crate::metrics as m;
use crate::policy::services::{ServiceKind, check_endpoint};
use crate::state::AppState;
use crate::vocab::ids::is_valid_id;

/// Largest heartbeat body (a chat node may list many rooms).
pub const MAX_HEARTBEAT_BYTES: usize = 256 * 1024;
/// Most rooms one chat heartbeat may list.
pub const MAX_ROOMS: usize = 10_000;

/// `POST /v1/nodes/heartbeat`, signed with the kind's secret (see `auth::signed`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// 1 to 64 of `[A-Za-z0-9_.:-]`, unique among nodes.
    pub id: String,
    /// `chat`, `im`, `api`, `upload`, `static` or `pay`.
    pub kind: String,
    /// A region id of the policy.
    pub region: String,
    /// URLs clients connect to (1 to 8).
    pub endpoints: Vec<String>,
    /// Addresses for HTTPDNS answers (up to 16).
    #[serde(default)]
    pub ips: Vec<String>,
    /// How many clients it can hold (1 or more).
    pub capacity: u64,
    /// How many it holds now.
    #[serde(default)]
    pub load: u64,
    #[serde(default)]
    pub version: String,
    /// `up` (default) or `draining`: no new clients.
    #[serde(default)]
    pub status: Option<String>,
    /// Chat nodes: anchor ids whose rooms it holds connections for.
    #[serde(default)]
    pub rooms: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HeartbeatAnswer {
    id: String,
    /// Chat nodes listing `rooms`: how many rooms took the node's presence.
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<usize>,
    /// False when the heartbeat was no newer than the last one applied.
    applied: bool,
    healthy_until_ms: i64,
    /// When to send the next one.
    next_heartbeat_seconds: u64,
}

fn refused(endpoint: &'static str, e: &AuthError) -> ApiError {
    metrics::counter!(m::SIGNED_REFUSED.name, "endpoint" => endpoint, "reason" => e.code().as_str())
        .increment(1);
    ApiError::new(e.code(), e.to_string())
}

/// Reads a body up to `limit` bytes, answering 413 JSON past it.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(ApiError::new(
            Code::InvalidBody,
            format!("cannot read body: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            Code::PayloadTooLarge,
            format!("body is more than the {limit} bytes allowed"),
        )),
    }
}

/// The two signature headers.
pub fn signature_headers(req: &HttpRequest) -> (Option<&str>, Option<&str>) {
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    (h(signed::TIMESTAMP_HEADER), h(signed::SIGNATURE_HEADER))
}

/// Checks a signed request's content type and body JSON shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ApiError> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "body must be JSON (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("invalid JSON body: {e}")))
}

/// Applies a node's heartbeat. Order: shape (400), signature and timestamp (401, nothing
/// changed), values (400), then memory.
#[utoipa::path(
    post,
    path = "/v1/nodes/heartbeat",
    tag = "services",
    params(("X-Livesteer-Timestamp" = String, Header, description = "Unix seconds of the signature"),
        ("X-Livesteer-Signature" = String, Header, description = "Hex HMAC-SHA256 of the timestamp, a line feed and the body, with the sender's secret")),
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "Applied (or older than the last one)", body = HeartbeatAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 401, description = "`invalid_timestamp`, `stale_timestamp`, `invalid_signature` or `unknown_signer`", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
        (status = 409, description = "`static_node` or `node_kind_mismatch`", body = Error),
    )
)]
pub async fn heartbeat(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, MAX_HEARTBEAT_BYTES).await?;
    let hb: HeartbeatBody = parse_json(&req, &body)?;
    let kind: ServiceKind = hb
        .kind
        .parse()
        .map_err(|m| ApiError::new(Code::UnknownService, m))?;
    let catalog = state.catalog.load();
    let services = &catalog.policy.services;
    let key = catalog.keys.heartbeats.get(&kind).ok_or_else(|| {
        refused(
            "heartbeat",
            &AuthError::UnknownSigner(format!(
                "no heartbeat secret is configured for {kind} nodes (services.heartbeat_secrets.{kind})"
            )),
        )
    })?;
    let (ts, sig) = signature_headers(&req);
    let now_ms = state.clock.now_ms();
    let signed_secs = signed::verify(
        &key.bytes,
        ts,
        sig,
        &body,
        now_ms.div_euclid(1000),
        services.replay_window_seconds,
    )
    .map_err(|e| {
        metrics::counter!(m::NODE_HEARTBEATS.name, "kind" => kind.as_str(), "outcome" => "refused")
            .increment(1);
        refused("heartbeat", &e)
    })?;

    let beat = validate(&hb, kind, &catalog.policy)?;
    let timeout_ms = services.heartbeat_timeout_ms;
    let applied = state
        .directory
        .heartbeat(services, beat, signed_secs.saturating_mul(1000), now_ms)
        .map_err(|e| match e {
            HeartbeatError::StaticNode(_) => ApiError::new(Code::StaticNode, e.to_string()),
            HeartbeatError::KindChanged { .. } => {
                ApiError::new(Code::NodeKindMismatch, e.to_string())
            }
        })?;
    let (node, was_applied) = match applied {
        Applied::Applied(n) => (n, true),
        Applied::Stale(n) => (n, false),
    };
    let outcome = if was_applied { "applied" } else { "stale" };
    metrics::counter!(m::NODE_HEARTBEATS.name, "kind" => kind.as_str(), "outcome" => outcome)
        .increment(1);
    // A chat node's rooms give those rooms chat presence (the room state machine); a
    // heartbeat without `rooms` leaves them as they are.
    let rooms = match (&hb.rooms, was_applied) {
        (Some(list), true) => Some(state.rooms.chat_presence_from_node(
            &state.catalog.load().policy.rooms,
            &node.id,
            list,
            state.clock.now_ms(),
        )),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(HeartbeatAnswer {
        id: node.id.clone(),
        rooms,
        applied: was_applied,
        healthy_until_ms: node.last_seen_ms.saturating_add(timeout_ms),
        next_heartbeat_seconds: (timeout_ms / 3000).max(1) as u64,
    }))
}

fn validate(
    hb: &HeartbeatBody,
    kind: ServiceKind,
    policy: &crate::policy::Policy,
) -> Result<Heartbeat, ApiError> {
    let bad = |code: Code, m: String| ApiError::new(code, m);
    if !is_valid_id(&hb.id) {
        return Err(bad(
            Code::InvalidNode,
            "id must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'".into(),
        ));
    }
    if policy.region(&hb.region).is_none() {
        return Err(bad(
            Code::UnknownRegion,
            format!(
                "unknown region {:?}",
                hb.region.chars().take(64).collect::<String>()
            ),
        ));
    }
    if hb.endpoints.is_empty() || hb.endpoints.len() > 8 {
        return Err(bad(
            Code::InvalidNode,
            format!(
                "endpoints must list 1 to 8 URLs, not {}",
                hb.endpoints.len()
            ),
        ));
    }
    for e in &hb.endpoints {
        check_endpoint(e).map_err(|m| bad(Code::InvalidNode, format!("endpoints: {m}")))?;
    }
    if hb.ips.len() > 16 {
        return Err(bad(
            Code::InvalidNode,
            "ips may list at most 16 addresses".into(),
        ));
    }
    let mut ips: Vec<IpAddr> = Vec::with_capacity(hb.ips.len());
    for ip in &hb.ips {
        ips.push(ip.trim().parse().map_err(|_| {
            bad(
                Code::InvalidNode,
                format!(
                    "ips: {:?} is not an IP address",
                    ip.chars().take(64).collect::<String>()
                ),
            )
        })?);
    }
    if hb.capacity == 0 || hb.capacity > 1_000_000_000 {
        return Err(bad(
            Code::InvalidNode,
            format!("capacity {} must be from 1 to 10^9", hb.capacity),
        ));
    }
    if hb.load > 1_000_000_000 {
        return Err(bad(
            Code::InvalidNode,
            format!("load {} must be at most 10^9", hb.load),
        ));
    }
    if hb.version.len() > 64 || hb.version.chars().any(char::is_control) {
        return Err(bad(
            Code::InvalidNode,
            "version must be at most 64 characters without control characters".into(),
        ));
    }
    let draining = match hb.status.as_deref().unwrap_or("up") {
        "up" => false,
        "draining" => true,
        other => {
            return Err(bad(
                Code::InvalidNode,
                format!(
                    "status {:?} must be up or draining",
                    other.chars().take(32).collect::<String>()
                ),
            ));
        }
    };
    if let Some(rooms) = &hb.rooms {
        if kind != ServiceKind::Chat {
            return Err(bad(
                Code::InvalidNode,
                format!("rooms apply to chat nodes, not {kind} nodes"),
            ));
        }
        if rooms.len() > MAX_ROOMS {
            return Err(bad(
                Code::InvalidNode,
                format!("rooms lists {} anchors, more than {MAX_ROOMS}", rooms.len()),
            ));
        }
        if let Some(r) = rooms
            .iter()
            .find(|r| !crate::vocab::ids::is_valid_anchor_id(r))
        {
            return Err(bad(
                Code::InvalidAnchorId,
                format!(
                    "rooms: {:?} is not an anchor id",
                    r.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    Ok(Heartbeat {
        id: hb.id.clone(),
        kind,
        region: hb.region.clone(),
        endpoints: hb.endpoints.iter().map(|e| e.trim().to_string()).collect(),
        ips,
        capacity: hb.capacity,
        load: hb.load,
        version: hb.version.clone(),
        draining,
    })
}

/// `GET /v1/nodes?kind=&region=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct NodeView {
    id: String,
    #[schema(value_type = String)]
    kind: ServiceKind,
    region: String,
    /// `static` (policy) or `registered` (heartbeats).
    source: &'static str,
    healthy: bool,
    endpoints: Vec<String>,
    #[schema(value_type = Vec<String>)]
    ips: Vec<IpAddr>,
    capacity: u64,
    load: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    check: Option<crate::directory::Check>,
}

/// `GET /v1/nodes`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct NodesAnswer {
    nodes: Vec<NodeView>,
}

/// Every node, static and registered, with its health.
#[utoipa::path(
    get,
    path = "/v1/nodes",
    tag = "services",
    params(ListQuery),
    responses(
        (status = 200, description = "Every node", body = NodesAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let kind: Option<ServiceKind> = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(
            k.parse()
                .map_err(|m| ApiError::new(Code::UnknownService, m))?,
        ),
        None => None,
    };
    let catalog = state.catalog.load();
    let services = &catalog.policy.services;
    let region = q.region.as_deref().filter(|r| !r.is_empty());
    if let Some(r) = region
        && catalog.policy.region(r).is_none()
    {
        return Err(ApiError::new(
            Code::UnknownRegion,
            format!(
                "unknown region {:?}",
                r.chars().take(64).collect::<String>()
            ),
        ));
    }
    let now = state.clock.now_ms();
    let mut out = Vec::new();
    for n in &services.nodes {
        out.push(NodeView {
            id: n.id.clone(),
            kind: n.kind,
            region: n.region.clone(),
            source: "static",
            healthy: state.directory.static_healthy(n),
            endpoints: n.endpoints.clone(),
            ips: n.ips.clone(),
            capacity: n.capacity,
            load: 0,
            version: None,
            last_seen_ms: None,
            check: state.directory.check(&n.id),
        });
    }
    for n in state.directory.registered() {
        out.push(NodeView {
            id: n.id.clone(),
            kind: n.kind,
            region: n.region.clone(),
            source: "registered",
            healthy: n.is_healthy(now, services.heartbeat_timeout_ms),
            endpoints: n.endpoints.clone(),
            ips: n.ips.clone(),
            capacity: n.capacity,
            load: n.load,
            version: Some(n.version.clone()),
            last_seen_ms: Some(n.last_seen_ms),
            check: None,
        });
    }
    out.retain(|n| kind.is_none_or(|k| n.kind == k) && region.is_none_or(|r| n.region == r));
    Ok(HttpResponse::Ok().json(serde_json::json!({ "nodes": out })))
}
