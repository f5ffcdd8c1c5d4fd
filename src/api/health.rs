//! `/healthz`, `/readyz`, `/metrics`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::ApiError;
use super::openapi::Error;
use crate::codes::Code;
use crate::metrics as m;
use crate::state::AppState;
use crate::streams::StreamState;

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses(
        (status = 200, description = "Up", body = super::openapi::Healthy),
    )
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and a policy is loaded.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready", body = super::openapi::Ready),
        (status = 503, description = "`database_unavailable`", body = Error),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ping = state.db.call(|db| db.ping()).await;
    let catalog = state.catalog.load();
    match ping {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({
            "status": "ready",
            "database": state.db.backend().to_string(),
            "policy_version": catalog.policy.version,
            "providers": catalog.registry.len(),
            "write_queue": state.writer.depth(),
        }))),
        Err(e) => Err(ApiError::new(
            Code::DatabaseUnavailable,
            format!("database ping failed: {e}"),
        )),
    }
}

/// Prometheus text exposition: what the recorder holds, with the gauges read at scrape time
/// (streams, write-behind queues, the database pool) set first, then the process metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
    )
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let counts = state.streams.counts();
    for st in [StreamState::Live, StreamState::Ended] {
        metrics::gauge!(m::STREAMS.name, "state" => st.as_str())
            .set(counts.get(&st).copied().unwrap_or(0) as f64);
    }
    for (table, depth) in [
        ("streams", state.writer.depth()),
        ("rooms", state.rooms.write_queue_depth()),
        ("service_nodes", state.directory.writer().depth()),
    ] {
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => table).set(depth as f64);
    }
    let (open, idle, max) = state.db.pool_state();
    metrics::gauge!(m::DB_POOL_CONNECTIONS.name, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(m::DB_POOL_CONNECTIONS.name, "state" => "in_use")
        .set(f64::from(open.saturating_sub(idle)));
    metrics::gauge!(m::DB_POOL_MAX.name).set(f64::from(max));
    let mut body = state.metrics.render();
    body.push_str(&m::render_process());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
