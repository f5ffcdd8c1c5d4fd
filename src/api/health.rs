//! `/healthz`, `/readyz`, `/metrics`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use crate::metrics as m;
use crate::state::AppState;
use crate::streams::StreamState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and a policy is loaded.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db = state.db.clone();
    let ping = tokio::task::spawn_blocking(move || db.ping())
        .await
        .map_err(|e| ApiError::internal(format!("readiness task failed: {e}")))?;
    let catalog = state.catalog.load();
    match ping {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({
            "status": "ready",
            "database": state.db.backend().to_string(),
            "policy_version": catalog.policy.version,
            "providers": catalog.registry.len(),
            "write_queue": state.writer.depth(),
        }))),
        Err(e) => Err(ApiError::unavailable(
            "database_unavailable",
            format!("database ping failed: {e}"),
        )),
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let counts = state.streams.counts();
    for st in [StreamState::Live, StreamState::Ended] {
        metrics::gauge!(m::STREAMS.name, "state" => st.as_str())
            .set(counts.get(&st).copied().unwrap_or(0) as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
