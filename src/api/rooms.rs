//! `/v1/rooms`: room online state for the hot and follow lists, and chat presence.
//!
//! Every answer is read from memory (`rooms::Rooms`); nothing here touches the database.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::openapi::Error;
use crate::codes::Code;
use crate::rooms::{ListQuery, RoomState};
use crate::state::AppState;
use crate::vocab::ids::is_valid_anchor_id;

/// Largest body of `POST /v1/rooms` (1000 anchor ids of up to 64 characters fit).
pub const MAX_QUERY_BYTES: usize = 256 * 1024;

/// `GET /v1/rooms`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `live` (default), `starting`, `stalled`, `offline` or `all`.
    #[serde(default)]
    #[param(pattern = "^(live|starting|stalled|offline|all)$")]
    pub state: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// From 1 to the policy's `rooms.max_page_size`.
    #[serde(default)]
    #[param(minimum = 1)]
    pub limit: Option<usize>,
}

/// `POST /v1/rooms`: the follow-list query.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManyBody {
    /// Anchor ids: each 1 to 64 of `[A-Za-z0-9_.:-]`.
    pub anchor_ids: Vec<String>,
}

/// `POST /v1/rooms/{anchor_id}/chat`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    pub connected: bool,
}

fn anchor(id: &str) -> Result<(), ApiError> {
    if is_valid_anchor_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::InvalidAnchorId,
            format!(
                "anchor id {:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
                id.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// A page of rooms in a state, optionally in one region.
#[utoipa::path(
    get,
    path = "/v1/rooms",
    tag = "rooms",
    params(ListParams),
    responses(
        (status = 200, description = "A page of rooms", body = crate::rooms::Page),
        (status = 400, description = "Bad input (see the code)", body = Error),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.load();
    let s = &catalog.policy.rooms;
    let wanted = match q.state.as_deref().map(str::trim).unwrap_or("live") {
        "all" => None,
        other => Some(RoomState::parse(other).ok_or_else(|| {
            ApiError::new(
                Code::InvalidState,
                format!(
                    "state {:?} is not live, starting, stalled, offline or all",
                    other.chars().take(32).collect::<String>()
                ),
            )
        })?),
    };
    if let Some(r) = q.region.as_deref()
        && catalog.policy.region(r).is_none()
    {
        return Err(ApiError::new(
            Code::UnknownRegion,
            format!("no region {:?}", r.chars().take(32).collect::<String>()),
        ));
    }
    if let Some(c) = q.cursor.as_deref() {
        anchor(c)
            .map_err(|_| ApiError::new(Code::InvalidCursor, "cursor is not one this API gave"))?;
    }
    let limit = q.limit.unwrap_or(s.page_size);
    if limit == 0 || limit > s.max_page_size {
        return Err(ApiError::new(
            Code::InvalidLimit,
            format!("limit must be from 1 to {}", s.max_page_size),
        ));
    }
    let page = state.rooms.list(
        s,
        &ListQuery {
            state: wanted,
            region: q.region.clone(),
            cursor: q.cursor.clone(),
            limit,
        },
        state.clock.now_ms(),
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(page))
}

/// The rooms of up to `rooms.follow_max_ids` anchors, in the order asked (unknown: offline).
#[utoipa::path(
    post,
    path = "/v1/rooms",
    tag = "rooms",
    request_body = ManyBody,
    responses(
        (status = 200, description = "The rooms, in the order asked", body = super::openapi::RoomList),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
    )
)]
pub async fn many(
    state: web::Data<AppState>,
    body: web::Json<ManyBody>,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.load();
    let s = &catalog.policy.rooms;
    if body.anchor_ids.len() > s.follow_max_ids {
        return Err(ApiError::new(
            Code::BatchTooLarge,
            format!(
                "{} anchor ids, at most {} in one query",
                body.anchor_ids.len(),
                s.follow_max_ids
            ),
        ));
    }
    for (i, a) in body.anchor_ids.iter().enumerate() {
        anchor(a).map_err(|e| ApiError::new(e.code, format!("anchor_ids[{i}]: {}", e.message)))?;
    }
    let rooms = state.rooms.many(s, &body.anchor_ids, state.clock.now_ms());
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "rooms": rooms })))
}

/// One room (an anchor never seen is offline).
#[utoipa::path(
    get,
    path = "/v1/rooms/{anchor_id}",
    tag = "rooms",
    params(("anchor_id" = String, Path, description = "The anchor id: 1 to 64 of `[A-Za-z0-9_.:-]`")),
    responses(
        (status = 200, description = "The room", body = crate::rooms::RoomView),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 404, description = "`not_found` for a malformed path", body = Error),
    )
)]
pub async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    anchor(&id)?;
    let catalog = state.catalog.load();
    let room = state
        .rooms
        .get(&catalog.policy.rooms, &id, state.clock.now_ms())
        .unwrap_or_else(|| crate::rooms::RoomView::unknown(&id));
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(room))
}

/// The app's word on the anchor's chat room, answered once the room's row is stored: the app
/// does not say it again, and nothing else (callbacks, probes) would rebuild it after a crash.
#[utoipa::path(
    post,
    path = "/v1/rooms/{anchor_id}/chat",
    tag = "rooms",
    params(("anchor_id" = String, Path, description = "The anchor id: 1 to 64 of `[A-Za-z0-9_.:-]`")),
    request_body = ChatBody,
    responses(
        (status = 200, description = "The room, stored", body = crate::rooms::RoomView),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 404, description = "`not_found` for a malformed path", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
        (status = 503, description = "`database_unavailable`", body = Error),
    )
)]
pub async fn chat(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ChatBody>,
) -> Result<HttpResponse, ApiError> {
    anchor(&id)?;
    let catalog = state.catalog.load();
    let room = state.rooms.chat(
        &catalog.policy.rooms,
        &id,
        body.connected,
        state.clock.now_ms(),
    );
    state.rooms.flush().await.map_err(|e| {
        ApiError::new(
            Code::DatabaseUnavailable,
            format!("chat presence not stored: {e}"),
        )
    })?;
    Ok(HttpResponse::Ok().json(room))
}
