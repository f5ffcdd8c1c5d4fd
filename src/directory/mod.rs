//! The service directory: where a client should connect for chat, IM, the API, uploads,
//! static resources and payments, kept healthy.
//!
//! Nodes come from two places. **Static** nodes are written in the policy
//! (`services.nodes`) and health-checked on the `check_nodes` schedule (an HTTP GET or a TCP
//! connect; a node without a check counts as healthy; a checked node is healthy until a check
//! fails). **Registered** nodes announce themselves with signed heartbeats
//! (`POST /v1/nodes/heartbeat`) and are healthy while their last heartbeat is younger than
//! `services.heartbeat_timeout_seconds` and they are not draining.
//!
//! [`Directory::resolve`] answers from memory: the healthy nodes of a service in the client's
//! region, then in the policy's fallback regions in order; within a region the least loaded
//! (load / capacity, in 5% steps) first, and a capacity-weighted random order among equals.
//! Upload nodes are confined to the client's area (`services.areas`) when it has one.
//! Heartbeats change memory at once and are written behind ([`writer`]); other replicas sharing
//! the database pick them up with the `sync_nodes` job.
//!
//! **Architecture invariant:** resolving and applying a heartbeat never touch the database or
//! the network; only the jobs (`check_nodes`, `sync_nodes`) and the writer do.

pub mod checks;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::policy::Policy;
use crate::policy::services::{ServiceKind, ServicesPolicy, StaticNode};
use crate::store::{Db, NodeRow};
pub use writer::NodeWriter;

/// A node that registered through heartbeats, as last heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: String,
    pub kind: ServiceKind,
    pub region: String,
    pub endpoints: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub capacity: u64,
    pub load: u64,
    pub version: String,
    /// The node asked for no new clients.
    pub draining: bool,
    /// Signed time of the last heartbeat applied (capped at livesteer's clock), unix ms.
    pub last_seen_ms: i64,
    /// Signed time of the last heartbeat applied, as signed, unix ms: a heartbeat is applied
    /// only when signed strictly later, so a replay (even of one signed ahead of livesteer's
    /// clock) never extends the node's health.
    pub signed_ms: i64,
}

impl Node {
    fn to_row(&self, now_ms: i64) -> NodeRow {
        NodeRow {
            id: self.id.clone(),
            kind: self.kind.as_str().to_string(),
            region: self.region.clone(),
            endpoints: serde_json::to_string(&self.endpoints).unwrap_or_else(|_| "[]".into()),
            ips: serde_json::to_string(&self.ips).unwrap_or_else(|_| "[]".into()),
            capacity: i64::try_from(self.capacity).unwrap_or(i64::MAX),
            current_load: i64::try_from(self.load).unwrap_or(i64::MAX),
            version: self.version.clone(),
            draining: i32::from(self.draining),
            last_seen_ms: self.last_seen_ms,
            updated_ms: now_ms,
            signed_ms: self.signed_ms,
        }
    }

    /// A stored row; `None` when it names a kind this version does not know.
    pub fn from_row(row: &NodeRow) -> Option<Node> {
        Some(Node {
            id: row.id.clone(),
            kind: row.kind.parse().ok()?,
            region: row.region.clone(),
            endpoints: serde_json::from_str(&row.endpoints).unwrap_or_default(),
            ips: serde_json::from_str(&row.ips).unwrap_or_default(),
            capacity: u64::try_from(row.capacity).unwrap_or(1).max(1),
            load: u64::try_from(row.current_load).unwrap_or(0),
            version: row.version.clone(),
            draining: row.draining != 0,
            last_seen_ms: row.last_seen_ms,
            // Rows from before `signed_ms` was stored: their last-seen time is the best known.
            signed_ms: row.signed_ms.max(row.last_seen_ms),
        })
    }

    /// Healthy at `now_ms` under `timeout_ms`.
    pub fn is_healthy(&self, now_ms: i64, timeout_ms: i64) -> bool {
        !self.draining && now_ms.saturating_sub(self.last_seen_ms) <= timeout_ms
    }
}

/// The last active health check of a static node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub healthy: bool,
    pub checked_ms: i64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a heartbeat asks to record (already validated by the API layer).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub id: String,
    pub kind: ServiceKind,
    pub region: String,
    pub endpoints: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub capacity: u64,
    pub load: u64,
    pub version: String,
    pub draining: bool,
}

/// What became of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Recorded; the node as it now stands.
    Applied(Node),
    /// Older than (or as old as) the last one applied: nothing changed.
    Stale(Node),
}

/// Why a heartbeat was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("node {0:?} is a static node of the policy: it is health-checked, not registered")]
    StaticNode(String),
    #[error("node {id:?} is registered as a {was} node; a heartbeat cannot make it a {now} node")]
    KindChanged {
        id: String,
        was: ServiceKind,
        now: ServiceKind,
    },
}

/// Where a service's first node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResolveOutcome)]
pub enum Outcome {
    /// The client's own region.
    Local,
    /// One of the policy's fallback regions.
    Fallback,
    /// No healthy node anywhere the policy allows.
    None,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Local => "local",
            Outcome::Fallback => "fallback",
            Outcome::None => "none",
        }
    }
}

/// A node in an answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = NodeCandidate)]
pub struct Candidate {
    pub id: String,
    pub region: String,
    pub endpoints: Vec<String>,
    pub load: u64,
    pub capacity: u64,
    #[serde(skip)]
    pub ips: Vec<IpAddr>,
}

/// A service's answer for one region.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub outcome: Outcome,
    pub nodes: Vec<Candidate>,
}

/// The registry: registered nodes, static nodes' checks, heartbeat secrets, the writer.
#[derive(Debug)]
pub struct Directory {
    nodes: RwLock<HashMap<String, Arc<Node>>>,
    checks: RwLock<HashMap<String, Check>>,
    writer: NodeWriter,
    /// Highest `updated_ms` loaded from the database (for `sync_nodes`).
    synced_ms: AtomicI64,
}

impl Directory {
    /// Loads the registered nodes from the database and starts the writer.
    pub async fn start(db: Db, flush_interval: Duration) -> anyhow::Result<Directory> {
        let rows = db.call(|db| db.all_nodes()).await?;
        let dir = Directory::new(NodeWriter::spawn(db, flush_interval).0);
        let n = dir.merge_rows(&rows);
        tracing::info!(nodes = n, "service directory loaded");
        Ok(dir)
    }

    /// A directory with this writer, and no node yet.
    pub fn new(writer: NodeWriter) -> Directory {
        Directory {
            nodes: RwLock::default(),
            checks: RwLock::default(),
            writer,
            synced_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// The writer (tests flush it).
    pub fn writer(&self) -> &NodeWriter {
        &self.writer
    }

    /// Records a heartbeat signed at `signed_ms`, if it was signed strictly later than the last
    /// one applied for the node (otherwise it is [`Applied::Stale`] and changes nothing). The
    /// node's last-seen time is the signed time capped at `now_ms`, so a delayed heartbeat never
    /// extends a node's life past what its sender signed, one from a clock running ahead gains
    /// nothing, and a replay of it (signed no later) is never applied again.
    pub fn heartbeat(
        &self,
        services: &ServicesPolicy,
        hb: Heartbeat,
        signed_ms: i64,
        now_ms: i64,
    ) -> Result<Applied, HeartbeatError> {
        if services.static_node(&hb.id).is_some() {
            return Err(HeartbeatError::StaticNode(hb.id));
        }
        let mut seen = signed_ms.min(now_ms);
        let mut map = write(&self.nodes);
        if let Some(cur) = map.get(&hb.id) {
            if cur.kind != hb.kind {
                return Err(HeartbeatError::KindChanged {
                    id: hb.id,
                    was: cur.kind,
                    now: hb.kind,
                });
            }
            if signed_ms <= cur.signed_ms {
                return Ok(Applied::Stale((**cur).clone()));
            }
            // Never backwards (livesteer's clock stepped back, or a replica's ran ahead).
            seen = seen.max(cur.last_seen_ms);
        }
        let node = Node {
            id: hb.id,
            kind: hb.kind,
            region: hb.region,
            endpoints: hb.endpoints,
            ips: hb.ips,
            capacity: hb.capacity.max(1),
            load: hb.load,
            version: hb.version,
            draining: hb.draining,
            last_seen_ms: seen,
            signed_ms,
        };
        map.insert(node.id.clone(), Arc::new(node.clone()));
        drop(map);
        self.writer.save(node.to_row(now_ms));
        Ok(Applied::Applied(node))
    }

    /// A registered node by id.
    pub fn node(&self, id: &str) -> Option<Arc<Node>> {
        read(&self.nodes).get(id).cloned()
    }

    /// Every registered node.
    pub fn registered(&self) -> Vec<Arc<Node>> {
        let mut v: Vec<_> = read(&self.nodes).values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The last check of a static node.
    pub fn check(&self, id: &str) -> Option<Check> {
        read(&self.checks).get(id).cloned()
    }

    /// Records a static node's check.
    pub fn set_check(&self, id: &str, check: Check) {
        write(&self.checks).insert(id.to_string(), check);
    }

    /// Whether a static node is healthy: no check configured, not checked yet, or the last
    /// check passed.
    pub fn static_healthy(&self, node: &StaticNode) -> bool {
        node.health.is_none() || self.check(&node.id).is_none_or(|c| c.healthy)
    }

    /// Merges stored rows into memory: a row replaces what memory holds only when its last
    /// heartbeat was signed later. Returns how many rows were taken.
    pub fn merge_rows(&self, rows: &[NodeRow]) -> usize {
        let mut taken = 0;
        let mut map = write(&self.nodes);
        for row in rows {
            self.synced_ms.fetch_max(row.updated_ms, Ordering::Relaxed);
            let Some(node) = Node::from_row(row) else {
                tracing::warn!(node = %row.id, kind = %row.kind, "skipping stored node of unknown kind");
                continue;
            };
            if map
                .get(&node.id)
                .is_none_or(|cur| cur.signed_ms < node.signed_ms)
            {
                map.insert(node.id.clone(), Arc::new(node));
                taken += 1;
            }
        }
        taken
    }

    /// Where `sync_nodes` starts reading: a little before the newest row already loaded, to
    /// cover replicas whose clocks differ by a few seconds.
    pub fn sync_from_ms(&self) -> i64 {
        self.synced_ms
            .load(Ordering::Relaxed)
            .saturating_sub(SYNC_OVERLAP_MS)
    }

    /// Forgets registered nodes not heard from since `cutoff_ms`; returns how many.
    pub fn forget_unseen(&self, cutoff_ms: i64) -> usize {
        let mut map = write(&self.nodes);
        let before = map.len();
        map.retain(|_, n| n.last_seen_ms >= cutoff_ms);
        before - map.len()
    }

    /// The healthy nodes of `kind` a client in `region` may use, nearest first (see the
    /// module docs). `uniform` yields numbers in `[0, 1)` for the weighted order among equals.
    pub fn resolve(
        &self,
        services: &ServicesPolicy,
        kind: ServiceKind,
        region: &str,
        now_ms: i64,
        uniform: &mut dyn FnMut() -> f64,
    ) -> Resolution {
        let area = (kind == ServiceKind::Upload)
            .then(|| services.area_of(region))
            .flatten();
        // Upload nodes are confined to the client's area when it has one: nodes in its
        // regions and the static nodes it names.
        let allowed = |c: &Candidate, is_static: bool| match area {
            None => true,
            Some(a) => {
                a.regions.contains(&c.region) || (is_static && a.upload_nodes.contains(&c.id))
            }
        };
        let mut healthy: Vec<Candidate> = Vec::new();
        for n in &services.nodes {
            if n.kind == kind && self.static_healthy(n) {
                let c = Candidate {
                    id: n.id.clone(),
                    region: n.region.clone(),
                    endpoints: n.endpoints.clone(),
                    load: 0,
                    capacity: n.capacity,
                    ips: n.ips.clone(),
                };
                if allowed(&c, true) {
                    healthy.push(c);
                }
            }
        }
        for n in read(&self.nodes).values() {
            if n.kind == kind && n.is_healthy(now_ms, services.heartbeat_timeout_ms) {
                let c = Candidate {
                    id: n.id.clone(),
                    region: n.region.clone(),
                    endpoints: n.endpoints.clone(),
                    load: n.load,
                    capacity: n.capacity,
                    ips: n.ips.clone(),
                };
                if allowed(&c, false) {
                    healthy.push(c);
                }
            }
        }
        let mut out: Vec<Candidate> = Vec::new();
        let mut outcome = Outcome::None;
        for (i, r) in services.search_order(region).enumerate() {
            if out.len() >= services.max_nodes {
                break;
            }
            let mut here: Vec<(u64, f64, Candidate)> = healthy
                .iter()
                .filter(|c| c.region == r)
                .map(|c| {
                    // Efraimidis–Spirakis: sorting by -ln(u)/w ascending is a weighted random
                    // order, heavier weights first more often.
                    let u = uniform().clamp(f64::MIN_POSITIVE, 1.0);
                    let key = -u.ln() / c.capacity.max(1) as f64;
                    (load_step(c.load, c.capacity), key, c.clone())
                })
                .collect();
            if here.is_empty() {
                continue;
            }
            if outcome == Outcome::None {
                outcome = if i == 0 {
                    Outcome::Local
                } else {
                    Outcome::Fallback
                };
            }
            here.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let room = services.max_nodes - out.len();
            out.extend(here.into_iter().take(room).map(|(_, _, c)| c));
        }
        Resolution {
            outcome,
            nodes: out,
        }
    }

    /// Healthy nodes by (kind, region), over the policy's regions (zero where none).
    pub fn healthy_counts(
        &self,
        policy: &Policy,
        now_ms: i64,
    ) -> BTreeMap<(ServiceKind, String), usize> {
        let services = &policy.services;
        let mut out = BTreeMap::new();
        for k in ServiceKind::ALL {
            for r in &policy.regions {
                out.insert((k, r.id.clone()), 0);
            }
        }
        for n in &services.nodes {
            if self.static_healthy(n) {
                *out.entry((n.kind, n.region.clone())).or_default() += 1;
            }
        }
        for n in read(&self.nodes).values() {
            if n.is_healthy(now_ms, services.heartbeat_timeout_ms) {
                *out.entry((n.kind, n.region.clone())).or_default() += 1;
            }
        }
        out
    }
}

/// How far before the newest loaded row `sync_nodes` reads again.
const SYNC_OVERLAP_MS: i64 = 5_000;

/// Load as a share of capacity in 5% steps: nodes in the same step count as equally loaded.
fn load_step(load: u64, capacity: u64) -> u64 {
    load.saturating_mul(20) / capacity.max(1)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
