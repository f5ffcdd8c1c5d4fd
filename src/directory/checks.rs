//! The directory's jobs: active health checks of static nodes (`check_nodes`) and loading the
//! heartbeats other replicas wrote (`sync_nodes`).

use std::time::Duration;

use tokio::task::JoinSet;

use super::{Check, Directory};
use crate::clock::Clock;
use crate::metrics as m;
use crate::policy::Policy;
use crate::policy::services::HealthCheck;
use crate::store::Db;

/// Registered nodes unheard of for this long are forgotten (memory and database).
pub const FORGET_AFTER_MS: i64 = 7 * 86_400_000;

/// Checks every static node that has a health check, concurrently, records the results,
/// forgets long-silent registered nodes and refreshes the healthy-node gauges.
pub async fn check_nodes(
    directory: &Directory,
    db: &Db,
    policy: &Policy,
    clock: &dyn Clock,
) -> anyhow::Result<String> {
    let services = &policy.services;
    let timeout = Duration::from_millis(services.health_check_timeout_ms);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut set = JoinSet::new();
    for node in &services.nodes {
        let Some(check) = node.health.clone() else {
            continue;
        };
        let id = node.id.clone();
        let client = client.clone();
        set.spawn(async move { (id, probe(&client, &check, timeout).await) });
    }
    let (mut up, mut down) = (0, 0);
    while let Some(joined) = set.join_next().await {
        let (id, result) = joined?;
        let now = clock.now_ms();
        let check = match result {
            Ok(()) => {
                up += 1;
                Check {
                    healthy: true,
                    checked_ms: now,
                    error: None,
                }
            }
            Err(e) => {
                down += 1;
                if directory.check(&id).is_none_or(|c| c.healthy) {
                    tracing::warn!(node = %id, error = %e, "static node failed its health check");
                }
                Check {
                    healthy: false,
                    checked_ms: now,
                    error: Some(e),
                }
            }
        };
        directory.set_check(&id, check);
    }
    let now = clock.now_ms();
    let forgotten = directory.forget_unseen(now - FORGET_AFTER_MS);
    if forgotten > 0 {
        db.call(move |db| db.delete_nodes_unseen_since(now - FORGET_AFTER_MS))
            .await?;
    }
    publish_gauges(directory, policy, now);
    Ok(format!(
        "{up} static node(s) healthy, {down} failing; {forgotten} silent node(s) forgotten"
    ))
}

/// Sets `livesteer_service_nodes_healthy` for every kind and region of the policy.
pub fn publish_gauges(directory: &Directory, policy: &Policy, now_ms: i64) {
    for ((kind, region), n) in directory.healthy_counts(policy, now_ms) {
        metrics::gauge!(m::SERVICE_NODES_HEALTHY.name, "kind" => kind.as_str(), "region" => region)
            .set(n as f64);
    }
}

/// One health check: `Ok` when healthy, else why not.
pub async fn probe(
    client: &reqwest::Client,
    check: &HealthCheck,
    timeout: Duration,
) -> Result<(), String> {
    match check {
        HealthCheck::Http(url) => match client.get(url).send().await {
            Ok(res) if res.status().is_success() || res.status().is_redirection() => Ok(()),
            Ok(res) => Err(format!("GET {url}: HTTP {}", res.status().as_u16())),
            Err(e) => Err(format!("GET {url}: {}", one_line(&e))),
        },
        HealthCheck::Tcp(addr) => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.as_str())).await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
                Err(_) => Err(format!("connect {addr}: no answer within {timeout:?}")),
            }
        }
    }
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Loads node rows other replicas wrote since the last sync.
pub async fn sync_nodes(directory: &Directory, db: &Db) -> anyhow::Result<String> {
    let since = directory.sync_from_ms();
    let rows = db.call(move |db| db.nodes_updated_since(since)).await?;
    let taken = directory.merge_rows(&rows);
    Ok(format!(
        "{} row(s) read, {taken} newer than memory",
        rows.len()
    ))
}
