//! The composition root: builds every component, wires each one to the narrow handles it
//! needs, and holds them for the handlers. No domain logic lives here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::catalog::{Catalog, Reload, SharedCatalog, fingerprint};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::directory::Directory;
use crate::metrics as m;
use crate::payments::Ledger;
use crate::probes::{Prober, Probing};
use crate::replicas::{Following, StreamReads};
use crate::rooms::Rooms;
use crate::scorer::Scorer;
use crate::signals::SignalBus;
use crate::steering::Signer;
use crate::store::Db;
use crate::streams::{Stream, StreamTable, StreamWriter};
use crate::vocab::{Diagnostics, SecretMode, Secrets};

/// Every component, as the handlers reach them. Background work gets only the handles it
/// needs ([`AppState::jobs`], [`AppState::probing`], the replica follower).
pub struct AppState {
    pub config: Config,
    pub catalog: SharedCatalog,
    pub streams: Arc<StreamTable>,
    /// Streams read from the database on demand (other replicas' creates not yet merged).
    pub stream_reads: StreamReads,
    pub writer: StreamWriter,
    pub db: Db,
    pub signer: Signer,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    /// Observations for the scoring engine (the scorer's bus).
    pub signals: Arc<SignalBus>,
    /// The scoring pipeline and the decisions made from it.
    pub scorer: Arc<Scorer>,
    /// Where provider secrets come from (kept for reloads).
    pub secrets: Arc<dyn Secrets>,
    /// This process among replicas: the holder name of job leases.
    pub instance: String,
    /// The live replicas sharing the database, and which keys (streams to probe) are this
    /// replica's.
    pub cluster: Arc<Cluster>,
    /// Service nodes (chat, IM, API, upload, static, pay) and their health.
    pub directory: Arc<Directory>,
    /// The payment sync ledger.
    pub payments: Arc<Ledger>,
    /// Room online state per anchor (callbacks, probes, chat presence).
    pub rooms: Arc<Rooms>,
    /// The active probes' HTTP client, circuit breakers and HLS memory.
    pub prober: Arc<Prober>,
    /// The origins' own manifests (the ladder `master.m3u8` replicates), per stream.
    pub manifests: crate::manifests::Manifests,
    /// CMCD sessions (`/v1/cmcd`) and the host index their reports are attributed with.
    pub cmcd: crate::cmcd::Collector,
    reloader: Arc<Reloader>,
    /// Kept alive while the state lives: the replica follower stops when it is dropped.
    _following: Arc<Following>,
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
        let directory =
            Directory::start(db.clone(), Duration::from_millis(config.flush_interval_ms))
                .await
                .context("cannot start the service directory")?;
        let payments = Ledger::new(db.clone());
        let (rooms, _rooms_writer) = crate::rooms::Rooms::start(
            db.clone(),
            Duration::from_millis(config.flush_interval_ms),
            &catalog.policy.rooms,
            clock.now_ms(),
        )
        .await
        .context("cannot load room states")?;
        let prober = Arc::new(Prober::new(catalog.policy.probes.connect_timeout_ms));
        let instance = instance_name();
        let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(catalog));
        let scorer = Arc::new(Scorer::new(catalog.clone(), clock.clone()));
        let streams = Arc::new(streams);
        let directory = Arc::new(directory);
        let payments = Arc::new(payments);
        let rooms = Arc::new(rooms);
        let cluster = Arc::new(Cluster::new(&instance));
        let signer = Signer::default();
        let reloader = Arc::new(Reloader {
            providers_dir: config.providers_dir.clone(),
            policy_file: config.policy_file.clone(),
            secrets: secrets.clone(),
            loaded_files: Mutex::new(fingerprint(&config.providers_dir, &config.policy_file)),
            catalog: catalog.clone(),
            signer: signer.clone(),
            scorer: scorer.clone(),
            db: db.clone(),
            clock: clock.clone(),
        });
        let following = Arc::new(Following {
            db: db.clone(),
            streams: streams.clone(),
            rooms: rooms.clone(),
            scorer: scorer.clone(),
            catalog: catalog.clone(),
            reload: reloader.clone(),
            cluster: cluster.clone(),
            clock: clock.clone(),
        });
        scorer.apply_remote_windows(windows);
        scorer.apply_drains(&drains);
        scorer.spawn_consumer();
        crate::replicas::follow(&following);
        let state = AppState {
            config,
            catalog,
            streams,
            stream_reads: StreamReads::default(),
            writer,
            db,
            signer,
            clock,
            metrics,
            signals: scorer.signals().clone(),
            scorer,
            secrets,
            cluster,
            instance,
            directory,
            payments,
            rooms,
            prober,
            manifests: crate::manifests::Manifests::new(),
            cmcd: crate::cmcd::Collector::default(),
            reloader,
            _following: following,
        };
        Ok((Arc::new(state), task))
    }

    /// Reloads provider and policy files (see [`Reload`]).
    pub fn reload(&self, force: bool) -> Result<Option<String>, Diagnostics> {
        self.reloader.reload(force)
    }

    /// The handles the scheduled jobs work with.
    pub fn jobs(&self) -> Arc<crate::jobs::Context> {
        Arc::new(crate::jobs::Context {
            db: self.db.clone(),
            instance: self.instance.clone(),
            clock: self.clock.clone(),
            catalog: self.catalog.clone(),
            reload: self.reloader.clone(),
            streams: self.streams.clone(),
            rooms: self.rooms.clone(),
            directory: self.directory.clone(),
            scorer: self.scorer.clone(),
            probing: self.probing(),
        })
    }

    /// The handles a probe run works with.
    pub fn probing(&self) -> Probing {
        Probing {
            catalog: self.catalog.clone(),
            streams: self.streams.clone(),
            cluster: self.cluster.clone(),
            prober: self.prober.clone(),
            rooms: self.rooms.clone(),
            signals: self.signals.clone(),
            clock: self.clock.clone(),
        }
    }

    /// A graceful stop: writes every pending change (streams, scoring windows, rooms, service
    /// nodes), each within `deadline`, and leaves the replica registry so that the others take
    /// this replica's share at once.
    pub async fn shutdown(&self, deadline: Duration) {
        if let Err(e) = tokio::time::timeout(deadline, self.writer.flush()).await {
            tracing::error!(error = %e, "pending changes not written before the deadline");
        }
        match tokio::time::timeout(
            deadline,
            crate::jobs::run_once(self.jobs(), "persist_scores"),
        )
        .await
        {
            Ok(Ok(summary)) => tracing::info!(%summary, "scoring windows saved"),
            Ok(Err(e)) => tracing::error!(error = %e, "scoring windows not saved"),
            Err(e) => tracing::error!(error = %e, "scoring windows not saved before the deadline"),
        }
        match tokio::time::timeout(deadline, self.rooms.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "room states not written"),
            Err(e) => tracing::error!(error = %e, "room states not written before the deadline"),
        }
        match tokio::time::timeout(deadline, self.directory.writer().flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "service nodes not written"),
            Err(e) => tracing::error!(error = %e, "service nodes not written before the deadline"),
        }
        self.cluster.leave();
        let me = self.instance.clone();
        if let Err(e) = self.db.call(move |db| db.forget_replica(&me)).await {
            tracing::warn!(error = %e, "replica not removed from the registry");
        }
    }
}

/// Reloads the catalog (with the secrets it resolves) and what depends on it: the signing
/// cache, the rankings.
struct Reloader {
    providers_dir: std::path::PathBuf,
    policy_file: std::path::PathBuf,
    secrets: Arc<dyn Secrets>,
    /// Fingerprint of the files the catalog in force was loaded from.
    loaded_files: Mutex<String>,
    catalog: SharedCatalog,
    signer: Signer,
    scorer: Arc<Scorer>,
    db: Db,
    clock: Arc<dyn Clock>,
}

impl Reload for Reloader {
    fn reload(&self, force: bool) -> Result<Option<String>, Diagnostics> {
        let files = fingerprint(&self.providers_dir, &self.policy_file);
        let mut loaded = self.loaded_files.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *loaded == files {
            return Ok(None);
        }
        let result = Catalog::load(
            &self.providers_dir,
            &self.policy_file,
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
        self.scorer.refresh();
        let db = self.db.clone();
        let (version, now) = (new.clone(), self.clock.now_ms());
        tokio::spawn(async move {
            if let Err(e) = db
                .call(move |db| db.record_policy_version(&version, &[file], now))
                .await
            {
                tracing::warn!(error = %e, "policy version not recorded");
            }
        });
        tracing::info!(version = %new, "policy reloaded");
        Ok(Some(new))
    }
}

/// Starts each enabled provider's signing-error counter at 0 (adding 0 to a running one), so
/// that a graph of failures shows "none" rather than "no data".
fn init_provider_series(catalog: &Catalog) {
    for p in catalog.registry.iter() {
        metrics::counter!(m::SIGNING_ERRORS.name, "provider" => p.id().to_string()).increment(0);
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
