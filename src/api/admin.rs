//! `/admin/*`: scores, drains and policy reloads, behind `LIVESTEER_ADMIN_TOKEN`
//! (`Authorization: Bearer <token>`). Without a configured token the admin routes answer 403.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::openapi::Error;
use crate::codes::Code;
use crate::state::AppState;

fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(token) = state.config.admin_token.as_deref() else {
        return Err(ApiError::new(
            Code::AdminDisabled,
            "admin routes are off: set LIVESTEER_ADMIN_TOKEN to enable them",
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if crate::auth::bearer::matches(given, token) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::Unauthorized,
            "missing or wrong bearer token",
        ))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScoresQuery {
    #[serde(default)]
    pub region: Option<String>,
}

/// `GET /admin/scores[?region=]`: each region's ranking with every provider's cost, spread,
/// samples, rates and share, the incumbent and a waiting challenger, and the drains in force.
#[utoipa::path(
    get,
    path = "/admin/scores",
    tag = "admin",
    params(ScoresQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Rankings and drains", body = super::openapi::Scores),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 401, description = "`unauthorized`: missing or wrong bearer token", body = Error),
        (status = 403, description = "`admin_disabled`: no admin token configured", body = Error),
    )
)]
pub async fn scores(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ScoresQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let snap = state.scorer.snapshot();
    let catalog = state.catalog.load();
    let regions: Vec<_> = match q.region.as_deref() {
        Some(r) => {
            let rank = snap.region(r).ok_or_else(|| {
                ApiError::new(
                    Code::UnknownRegion,
                    format!(
                        "unknown region {:?}",
                        r.chars().take(64).collect::<String>()
                    ),
                )
            })?;
            vec![rank]
        }
        None => {
            let mut all: Vec<_> = snap.regions.values().collect();
            all.sort_by(|a, b| a.region.cmp(&b.region));
            all
        }
    };
    let drained: Vec<String> = state
        .scorer
        .drained()
        .into_iter()
        .chain(catalog.policy.scoring.drained.iter().cloned())
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "generated_ms": snap.generated_ms,
        "policy_version": catalog.policy.version,
        "exploration_rate": snap.exploration_rate,
        "drained": drained,
        "regions": regions,
    })))
}

/// `POST /admin/providers/{id}/drain`: no new decisions send anyone there; steering moves
/// players off it at their next reload. Answered once the drain is stored, so it survives a
/// restart and every replica sharing the database applies it (within a second, see
/// `replicas`); 503 when it cannot be stored, and nothing changes.
#[utoipa::path(
    post,
    path = "/admin/providers/{id}/drain",
    tag = "admin",
    params(("id" = String, Path, description = "The provider id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Drained, stored", body = super::openapi::Drain),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 401, description = "`unauthorized`: missing or wrong bearer token", body = Error),
        (status = 403, description = "`admin_disabled`: no admin token configured", body = Error),
        (status = 404, description = "`unknown_provider`", body = Error),
        (status = 503, description = "`database_unavailable`: nothing changed", body = Error),
    )
)]
pub async fn drain(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_drained(&req, &state, &id, true).await
}

/// `DELETE /admin/providers/{id}/drain`: back into rotation.
#[utoipa::path(
    delete,
    path = "/admin/providers/{id}/drain",
    tag = "admin",
    params(("id" = String, Path, description = "The provider id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Back in rotation, stored", body = super::openapi::Drain),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 401, description = "`unauthorized`: missing or wrong bearer token", body = Error),
        (status = 403, description = "`admin_disabled`: no admin token configured", body = Error),
        (status = 404, description = "`unknown_provider`", body = Error),
        (status = 503, description = "`database_unavailable`: nothing changed", body = Error),
    )
)]
pub async fn undrain(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_drained(&req, &state, &id, false).await
}

async fn set_drained(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    drained: bool,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state)?;
    if state.catalog.load().registry.get(id).is_none() {
        return Err(ApiError::new(
            Code::UnknownProvider,
            format!(
                "no enabled provider {:?}",
                id.chars().take(64).collect::<String>()
            ),
        ));
    }
    let (provider, now) = (id.to_string(), state.clock.now_ms());
    state
        .db
        .call(move |db| db.save_drain(&provider, drained, now))
        .await
        .map_err(|e| ApiError::new(Code::DatabaseUnavailable, e.to_string()))?;
    state.scorer.apply_drains(&[(id.to_string(), drained)]);
    tracing::warn!(provider = id, drained, "provider drain changed by admin");
    Ok(HttpResponse::Ok().json(json!({ "provider": id, "drained": drained })))
}

/// `POST /admin/policies/reload`: reloads provider and policy files now. A bad set answers 422
/// with every problem as `file:line: message`, and the policy in force stays.
#[utoipa::path(
    post,
    path = "/admin/policies/reload",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Reloaded", body = super::openapi::Reloaded),
        (status = 401, description = "`unauthorized`: missing or wrong bearer token", body = Error),
        (status = 403, description = "`admin_disabled`: no admin token configured", body = Error),
        (status = 422, description = "`invalid_policy`: every problem; the policy in force stays", body = super::openapi::PolicyProblems),
    )
)]
pub async fn reload(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    match state.reload(true) {
        Ok(version) => Ok(HttpResponse::Ok().json(json!({
            "reloaded": true,
            "policy_version": version.unwrap_or_else(|| state.catalog.load().policy.version.clone()),
        }))),
        Err(d) => {
            let problems: Vec<String> = d.0.iter().map(ToString::to_string).collect();
            Ok(HttpResponse::build(super::error::status_of(Code::InvalidPolicy)).json(json!({
                "error": Code::InvalidPolicy,
                "message": format!("{} problem(s); the policy in force stays", problems.len()),
                "problems": problems,
                "policy_version": state.catalog.load().policy.version,
            })))
        }
    }
}
