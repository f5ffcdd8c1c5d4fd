//! Background jobs on cron schedules from the policy (`jobs:`), each a named async function
//! that is idempotent, so running it twice, or once more after a crash, does no harm.
//!
//! A job is either per replica (it tends this process's memory) or per cluster: then it runs
//! under a lease row in the database, so that among replicas sharing one database exactly one
//! runs it; the holder renews the lease on every run, and another replica takes over once a
//! holder stops renewing. Work a replica does over its share of the cluster's keys (probes)
//! stays per replica and asks `cluster` what is its own. The schedule is read from the policy
//! in force before every run, so a
//! policy reload reschedules (or disables) a job. A failed run is logged and counted, and the
//! schedule goes on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::catalog::{Reload, SharedCatalog};
use crate::clock::Clock;
use crate::directory::Directory;
use crate::metrics as m;
use crate::probes::Probing;
use crate::rooms::Rooms;
use crate::scorer::Scorer;
use crate::store::Db;
use crate::streams::StreamTable;

mod bodies;

pub use bodies::scores_horizon_ms;

/// What the jobs read and change: narrow handles, handed over by the composition root.
#[derive(Clone)]
pub struct Context {
    pub db: Db,
    /// This process among replicas: the holder name of job leases.
    pub instance: String,
    pub clock: Arc<dyn Clock>,
    pub catalog: SharedCatalog,
    pub reload: Arc<dyn Reload>,
    pub streams: Arc<StreamTable>,
    pub rooms: Arc<Rooms>,
    pub directory: Arc<Directory>,
    pub scorer: Arc<Scorer>,
    pub probing: Probing,
}

/// What a run returns: a short summary for the log.
pub type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send>>;

/// Who runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every replica, for its own memory.
    Replica,
    /// One replica for all, under a database lease.
    Cluster,
}

/// A named job.
#[derive(Clone, Copy)]
pub struct Job {
    pub name: &'static str,
    pub scope: Scope,
    pub run: fn(Arc<Context>) -> JobFuture,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Every job; the policy's `jobs:` section schedules them by name.
pub const JOBS: &[Job] = &[
    Job {
        name: "sweep_streams",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::sweep_streams(s)),
    },
    Job {
        name: "persist_scores",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::persist_scores(s)),
    },
    Job {
        name: "reload_policy",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::reload_policy(s)),
    },
    Job {
        name: "check_nodes",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::check_nodes(s)),
    },
    Job {
        name: "sync_nodes",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::sync_nodes(s)),
    },
    Job {
        name: "probe_streams",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::probe_streams(s)),
    },
    Job {
        name: "sweep_rooms",
        scope: Scope::Replica,
        run: |s| Box::pin(bodies::sweep_rooms(s)),
    },
];

/// Longest a run may take before it is abandoned.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cluster job's lease lasts without renewal.
const LEASE_TTL_MS: i64 = 30_000;
/// The lease under which one replica forgets expired score windows and dead replicas'
/// registry rows (in `persist_scores`).
pub const TIDY_LEASE: &str = "tidy";
/// How often a disabled job looks whether the policy enabled it.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Starts one task per job.
pub fn spawn_all(state: Arc<Context>) {
    for job in JOBS {
        tokio::spawn(schedule_loop(state.clone(), *job));
    }
}

/// Runs a job now, outside its schedule (the lease is still respected for cluster jobs).
pub async fn run_once(state: Arc<Context>, name: &str) -> anyhow::Result<String> {
    let job = JOBS
        .iter()
        .find(|j| j.name == name)
        .ok_or_else(|| anyhow::anyhow!("no job {name:?}"))?;
    run_job(state, *job)
        .await
        .map(|s| s.unwrap_or_else(|| "skipped: another replica holds the lease".into()))
}

async fn schedule_loop(state: Arc<Context>, job: Job) {
    loop {
        let next = state
            .catalog
            .load()
            .policy
            .jobs
            .get(job.name)
            .and_then(|s| s.upcoming(Utc).next());
        let Some(next) = next else {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait.min(IDLE_POLL)).await;
        if Utc::now() < next {
            // Woke early to look at the policy again.
            continue;
        }
        match run_job(state.clone(), job).await {
            Ok(Some(summary)) => tracing::debug!(job = job.name, %summary, "job ran"),
            Ok(None) => {}
            Err(e) => tracing::warn!(job = job.name, error = %e, "job failed"),
        }
    }
}

/// One run: `Ok(None)` when another replica holds the lease.
pub async fn run_job(state: Arc<Context>, job: Job) -> anyhow::Result<Option<String>> {
    if job.scope == Scope::Cluster && !acquire_lease(&state, job.name).await? {
        metrics::counter!(m::JOB_RUNS.name, "job" => job.name, "outcome" => "skipped").increment(1);
        return Ok(None);
    }
    let start = Instant::now();
    let result = tokio::time::timeout(RUN_TIMEOUT, (job.run)(state))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {RUN_TIMEOUT:?}")));
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::JOB_RUNS.name, "job" => job.name, "outcome" => outcome).increment(1);
    metrics::histogram!(m::JOB_DURATION.name, "job" => job.name)
        .record(start.elapsed().as_secs_f64());
    result.map(Some)
}

async fn acquire_lease(state: &Context, name: &'static str) -> anyhow::Result<bool> {
    let holder = state.instance.clone();
    let now = state.clock.now_ms();
    Ok(state
        .db
        .call(move |db| db.try_acquire_lease(name, &holder, now, LEASE_TTL_MS))
        .await?)
}
