//! Binding the HTTP server and the housekeeping tasks that run beside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::state::AppState;

/// A bound, not yet awaited, server.
pub struct Bound {
    pub server: actix_web::dev::Server,
    addrs: Vec<SocketAddr>,
}

impl Bound {
    /// The addresses it listens on (useful with port 0).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

/// Binds the HTTP server to `addr` (port 0 picks a free port).
pub fn bind(state: Arc<AppState>, addr: SocketAddr) -> anyhow::Result<Bound> {
    let s = state.clone();
    let http = actix_web::HttpServer::new(move || crate::api::app(s.clone()))
        .shutdown_timeout(10)
        .bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addrs = http.addrs();
    Ok(Bound {
        server: http.run(),
        addrs,
    })
}

/// Periodic in-process chores: Prometheus upkeep (the histograms' rolling state), and the
/// scheduled jobs.
pub fn spawn_housekeeping(state: Arc<AppState>) {
    crate::jobs::spawn_all(state.jobs());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            state.metrics.run_upkeep();
        }
    });
}
