//! The one `AppState` shared by handlers and background tasks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics as m;
use crate::providers::registry::{SecretMode, Secrets};
use crate::signals::SignalBus;
use crate::steering::Signer;
use crate::store::Db;
use crate::streams::{Stream, StreamTable, WriteBehind};

/// Everything a request or a job reads.
pub struct AppState {
    pub config: Config,
    pub catalog: ArcSwap<Catalog>,
    pub streams: StreamTable,
    pub writer: WriteBehind,
    pub db: Db,
    pub signer: Signer,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    /// Observations for the scoring engine.
    pub signals: SignalBus,
    /// This process among replicas: the holder name of job leases.
    pub instance: String,
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
        secrets: &dyn Secrets,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<(Arc<AppState>, tokio::task::JoinHandle<()>)> {
        let catalog = Catalog::load(
            &config.providers_dir,
            &config.policy_file,
            secrets,
            SecretMode::Require,
        )
        .map_err(|d| anyhow::anyhow!("{d}"))
        .context("invalid provider or policy files")?;

        let url = config.database_url.clone();
        let pool = config.db_pool_size;
        let now = clock.now_ms();
        let version = catalog.policy.version.clone();
        let files = vec![catalog.policy.source.display().to_string()];
        let (db, live) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
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
            Ok((db, live))
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
        let (writer, task) =
            WriteBehind::spawn(db.clone(), Duration::from_millis(config.flush_interval_ms));
        let state = AppState {
            config,
            catalog: ArcSwap::from_pointee(catalog),
            streams,
            writer,
            db,
            signer: Signer::default(),
            clock,
            metrics,
            signals: SignalBus::default(),
            instance: instance_name(),
        };
        Ok((Arc::new(state), task))
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
