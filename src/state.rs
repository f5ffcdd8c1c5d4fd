//! The one `AppState` shared by handlers and background tasks.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::catalog::{Catalog, fingerprint};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics as m;
use crate::scoring::window::Window;
use crate::scoring::{Engine, ReloadTally, Snapshot, WindowKind};
use crate::signals::SignalBus;
use crate::steering::Signer;
use crate::store::Db;
use crate::streams::{Stream, StreamTable, StreamWriter};
use crate::vocab::Diagnostics;
use crate::vocab::{SecretMode, Secrets};

/// Everything a request or a job reads.
pub struct AppState {
    pub config: Config,
    pub catalog: ArcSwap<Catalog>,
    pub streams: StreamTable,
    /// Streams read from the database on demand (other replicas' creates not yet merged).
    pub stream_reads: crate::replicas::StreamReads,
    pub writer: StreamWriter,
    pub db: Db,
    pub signer: Signer,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    /// Observations for the scoring engine.
    pub signals: SignalBus,
    /// Attributed steering reloads, pooled per (provider, region) on their way to the engine
    /// (the most frequent observation skips the bus; the signal consumer drains them).
    pub reloads: ReloadTally,
    /// The scoring engine; only the signal consumer and push decisions lock it.
    pub engine: Mutex<Engine>,
    /// The engine's latest rankings, read by play and steering without locks.
    pub scores: ArcSwap<Snapshot>,
    /// Where provider secrets come from (kept for reloads).
    pub secrets: Arc<dyn Secrets>,
    /// Fingerprint of the files the catalog in force was loaded from.
    pub loaded_files: Mutex<String>,
    /// This process among replicas: the holder name of job leases.
    pub instance: String,
    /// The live replicas sharing the database, and which keys (streams to probe) are this
    /// replica's.
    pub cluster: crate::cluster::Cluster,
    /// Service nodes (chat, IM, API, upload, static, pay) and their health.
    pub directory: crate::directory::Directory,
    /// The payment sync ledger.
    pub payments: crate::payments::Ledger,
    /// Room online state per anchor (callbacks, probes, chat presence).
    pub rooms: crate::rooms::Rooms,
    /// The active probes' HTTP client, circuit breakers and HLS memory.
    pub prober: crate::probes::Prober,
    /// The origins' own manifests (the ladder `master.m3u8` replicates), per stream.
    pub manifests: crate::manifests::Manifests,
    /// CMCD sessions (`/v1/cmcd`) and the host index their reports are attributed with.
    pub cmcd: crate::cmcd::Collector,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// Longest number of live streams reloaded into memory at start.
const RELOAD_LIMIT: i64 = 1_000_000;

impl AppState {
    /// Connects and migrates the database, loads the catalog (failing on any bad file or missing
    /// secret), reloads live streams and starts the write-behind task.
    pub async fn start(
        config: Config,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<(Arc<AppState>, tokio::task::JoinHandle<()>)> {
        let catalog = Catalog::load(
            &config.providers_dir,
            &config.policy_file,
            secrets.as_ref(),
            SecretMode::Require,
        )
        .map_err(|d| anyhow::anyhow!("{d}"))
        .context("invalid provider or policy files")?;

        let url = config.database_url.clone();
        let pool = config.db_pool_size;
        let now = clock.now_ms();
        let version = catalog.policy.version.clone();
        let files = vec![catalog.policy.source.display().to_string()];
        let horizon = crate::jobs::scores_horizon_ms(&catalog.policy.scoring);
        let (db, live, windows, drains) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let db = Db::connect(&url, pool).context("cannot open the database")?;
                let applied = db.run_migrations().context("cannot migrate the database")?;
                if !applied.is_empty() {
                    tracing::info!(migrations = ?applied, "applied migrations");
                }
                db.record_policy_version(&version, &files, now)
                    .context("cannot record the policy version")?;
                let live = db
                    .streams_in_state("live", RELOAD_LIMIT)
                    .context("cannot load live streams")?;
                // Every replica's saved windows, this process's earlier life included: this new
                // instance has saved nothing yet, so they all count as others'.
                let windows = db
                    .load_score_windows("", now - horizon)
                    .context("cannot load scoring windows")?;
                let drains = db.drains().context("cannot load drains")?;
                Ok((db, live, windows, drains))
            })
            .await
            .context("database start-up task failed")??;

        let streams = StreamTable::default();
        for row in &live {
            match Stream::from_row(row) {
                Some(s) => {
                    streams.put(s);
                }
                None => {
                    tracing::warn!(stream = %row.id, state = %row.state, "skipping stored stream")
                }
            }
        }
        tracing::info!(streams = streams.len(), backend = %db.backend(), "state loaded");

        let metrics = m::install();
        metrics::gauge!(m::POLICY_INFO.name, "version" => catalog.policy.version.clone()).set(1.0);
        metrics::gauge!(m::POLICY_ERRORS.name).set(0.0);
        init_provider_series(&catalog);
        let (writer, task) =
            StreamWriter::spawn(db.clone(), Duration::from_millis(config.flush_interval_ms));
        let directory = crate::directory::Directory::start(
            &catalog.policy,
            secrets.as_ref(),
            db.clone(),
            Duration::from_millis(config.flush_interval_ms),
        )
        .await
        .context("cannot start the service directory")?;
        let payments =
            crate::payments::Ledger::new(&catalog.policy.services, secrets.as_ref(), db.clone())
                .context("cannot start the payment ledger")?;
        let (rooms, _rooms_writer) = crate::rooms::Rooms::start(
            db.clone(),
            Duration::from_millis(config.flush_interval_ms),
            &catalog.policy.rooms,
            clock.now_ms(),
        )
        .await
        .context("cannot load room states")?;
        let prober = crate::probes::Prober::new(catalog.policy.probes.connect_timeout_ms);
        let instance = instance_name();
        let state = AppState {
            config,
            catalog: ArcSwap::from_pointee(catalog),
            streams,
            stream_reads: crate::replicas::StreamReads::default(),
            writer,
            db,
            signer: Signer::default(),
            clock,
            metrics,
            signals: SignalBus::default(),
            reloads: ReloadTally::default(),
            engine: Mutex::new(Engine::new()),
            scores: ArcSwap::from_pointee(Snapshot::empty()),
            loaded_files: Mutex::new(String::new()),
            secrets,
            cluster: crate::cluster::Cluster::new(&instance),
            instance,
            directory,
            payments,
            rooms,
            prober,
            manifests: crate::manifests::Manifests::new(),
            cmcd: crate::cmcd::Collector::default(),
        };
        *state.loaded_files.lock().unwrap_or_else(|e| e.into_inner()) =
            fingerprint(&state.config.providers_dir, &state.config.policy_file);
        let state = Arc::new(state);
        state.apply_remote_windows(windows);
        state.apply_drains(&drains);
        tokio::spawn(consume_signals(Arc::downgrade(&state)));
        crate::replicas::follow(&state);
        Ok((state, task))
    }

    /// Reloads provider and policy files. A bad set is reported and the catalog in force stays;
    /// a good one replaces it whole. `Ok(None)` when nothing changed since the last load.
    pub fn reload(&self, force: bool) -> Result<Option<String>, Diagnostics> {
        let files = fingerprint(&self.config.providers_dir, &self.config.policy_file);
        let mut loaded = self.loaded_files.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *loaded == files {
            return Ok(None);
        }
        let result = Catalog::load(
            &self.config.providers_dir,
            &self.config.policy_file,
            self.secrets.as_ref(),
            SecretMode::Require,
        );
        // Remember what was tried, so that a bad file is reported once, not every poll.
        *loaded = files;
        let catalog = match result {
            Ok(c) => c,
            Err(d) => {
                metrics::counter!(m::POLICY_RELOADS.name, "outcome" => "error").increment(1);
                metrics::gauge!(m::POLICY_ERRORS.name).set(d.0.len() as f64);
                for problem in &d.0 {
                    tracing::error!(%problem, "policy reload refused; the policy in force stays");
                }
                return Err(d);
            }
        };
        // The directory's and payment centres' secrets, resolved before anything is swapped.
        let services = &catalog.policy.services;
        let service_keys =
            crate::directory::resolve_heartbeat_keys(services, self.secrets.as_ref()).and_then(
                |h| {
                    Ok((
                        h,
                        crate::payments::resolve_centre_keys(services, self.secrets.as_ref())?,
                    ))
                },
            );
        let (heartbeat_keys, centre_keys) = match service_keys {
            Ok(k) => k,
            Err(e) => {
                metrics::counter!(m::POLICY_RELOADS.name, "outcome" => "error").increment(1);
                metrics::gauge!(m::POLICY_ERRORS.name).set(1.0);
                tracing::error!(problem = %e, "policy reload refused; the policy in force stays");
                return Err(crate::vocab::Diagnostic::file(
                    &self.config.policy_file,
                    e.to_string(),
                )
                .into());
            }
        };
        self.directory.set_keys(heartbeat_keys);
        self.payments.set_keys(centre_keys);
        let old = self.catalog.load().policy.version.clone();
        let new = catalog.policy.version.clone();
        let file = catalog.policy.source.display().to_string();
        self.catalog.store(Arc::new(catalog));
        // Keys or endpoints may have changed: sign afresh.
        self.signer.clear();
        if old != new {
            metrics::gauge!(m::POLICY_INFO.name, "version" => old).set(0.0);
        }
        metrics::gauge!(m::POLICY_INFO.name, "version" => new.clone()).set(1.0);
        metrics::counter!(m::POLICY_RELOADS.name, "outcome" => "ok").increment(1);
        metrics::gauge!(m::POLICY_ERRORS.name).set(0.0);
        init_provider_series(&self.catalog.load());
        self.refresh_scores();
        let db = self.db.clone();
        let (version, now) = (new.clone(), self.clock.now_ms());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = db.record_policy_version(&version, &[file], now) {
                tracing::warn!(error = %e, "policy version not recorded");
            }
        });
        tracing::info!(version = %new, "policy reloaded");
        Ok(Some(new))
    }

    /// Applies run-time drains (stored ones at start, an admin's, other replicas'), as
    /// (provider, drained), and republishes the rankings.
    pub fn apply_drains(&self, drains: &[(String, bool)]) {
        {
            let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            for (provider, drained) in drains {
                engine.set_drained(provider, *drained);
            }
        }
        self.refresh_scores();
    }

    /// Takes in scoring windows other replicas (or this process before a restart) saved.
    pub fn apply_remote_windows(&self, rows: Vec<crate::store::ScoreWindowRow>) {
        let mut windows = Vec::with_capacity(rows.len());
        for row in rows {
            let kind = WindowKind::parse(&row.kind);
            match (kind, serde_json::from_str::<Window>(&row.data)) {
                (Some(kind), Ok(w)) => windows.push((kind, row.provider, row.key, w)),
                _ => {
                    tracing::warn!(replica = %row.replica, kind = %row.kind, "unreadable score window skipped")
                }
            }
        }
        let catalog = self.catalog.load();
        self.engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_remote(windows, self.clock.now_ms(), &catalog.policy.scoring);
    }

    /// Rebuilds the scores snapshot now (the signal consumer does it continuously).
    pub fn refresh_scores(&self) {
        let catalog = self.catalog.load();
        let snap = self
            .engine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refresh(self.clock.now_ms(), &catalog);
        export_scores(&snap);
        self.scores.store(snap);
    }
}

/// Least time between two snapshot rebuilds while signals flow.
const REFRESH_EVERY: Duration = Duration::from_millis(100);
/// Most time between two rebuilds when nothing arrives (hold times and decay still move).
const IDLE_REFRESH: Duration = Duration::from_secs(1);
/// How often the consumer drains the bus. It polls rather than waits on the channel: a consumer
/// woken by every signal (a steering reload, a QoS report) costs the request threads a
/// cross-thread wake-up each, more than the signal itself.
const DRAIN_EVERY: Duration = Duration::from_millis(10);
/// Most signals applied under one lock.
const BATCH: usize = 4096;

/// Applies signals to the engine as they arrive and keeps the snapshot fresh: a signal is
/// applied at most `DRAIN_EVERY` after it was emitted, a change is published at most
/// `REFRESH_EVERY` after it was applied, and the snapshot is rebuilt at least every
/// `IDLE_REFRESH` (hold times and decay move without signals).
async fn consume_signals(state: Weak<AppState>) {
    use tokio::sync::mpsc::error::TryRecvError;
    let Some(mut rx) = state.upgrade().and_then(|s| s.signals.take_receiver()) else {
        return;
    };
    let mut last_refresh = Instant::now();
    let mut dirty = false;
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let mut closed = false;
        loop {
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(s) => batch.push(s),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let full = batch.len() == BATCH;
            let pooled = state.reloads.drain();
            let reloads: u64 = pooled.iter().map(|(_, _, pool)| pool.reloads).sum();
            if reloads > 0 {
                metrics::counter!(m::SIGNALS.name, "kind" => "reload").increment(reloads);
            }
            let now = state.clock.now_ms();
            let catalog = state.catalog.load();
            let snap = {
                let mut engine = state.engine.lock().unwrap_or_else(|e| e.into_inner());
                dirty |= !batch.is_empty() || !pooled.is_empty();
                for s in batch.drain(..) {
                    engine.apply(&s, now, &catalog.policy.scoring);
                }
                for (provider, region, pool) in &pooled {
                    engine.apply_pooled_reloads(
                        provider,
                        region,
                        pool,
                        now,
                        &catalog.policy.scoring,
                    );
                }
                let due =
                    last_refresh.elapsed() >= if dirty { REFRESH_EVERY } else { IDLE_REFRESH };
                (!full && due).then(|| engine.refresh(now, &catalog))
            };
            if let Some(snap) = snap {
                export_scores(&snap);
                state.scores.store(snap);
                last_refresh = Instant::now();
                dirty = false;
            }
            if !full {
                break;
            }
        }
        if closed {
            return;
        }
    }
}

/// Starts each enabled provider's signing-error counter at 0 (adding 0 to a running one), so
/// that a graph of failures shows "none" rather than "no data".
fn init_provider_series(catalog: &Catalog) {
    for p in catalog.registry.iter() {
        metrics::counter!(m::SIGNING_ERRORS.name, "provider" => p.id().to_string()).increment(0);
    }
}

/// Publishes each provider's cost and share per region.
fn export_scores(snap: &Snapshot) {
    for (region, rank) in &snap.regions {
        for s in &rank.order {
            metrics::gauge!(m::SCORE.name, "provider" => s.provider.clone(), "region" => region.clone())
                .set(s.cost);
            metrics::gauge!(m::SHARE.name, "provider" => s.provider.clone(), "region" => region.clone())
                .set(s.share);
        }
    }
}

/// `host-pid-random`: unique among replicas and across restarts.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "livesteer".into());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}
