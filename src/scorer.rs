//! The scoring service: the one owner of the scoring pipeline.
//!
//! It holds the engine, the rankings snapshot that play and steering read without locks, the
//! signal bus and its consumer, and the pool of attributed steering reloads. Handlers and jobs
//! ask it for decisions (push planning, play ranking, steering), drains and the windows shared
//! with other replicas; none of them locks the engine.
//!
//! **Architecture invariant:** the engine's lock is taken only here: by the signal consumer, a
//! push decision (rare; it updates the anchor's state), drains, and the window exchange.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};

use crate::catalog::{Catalog, SharedCatalog};
use crate::clock::Clock;
use crate::metrics as m;
use crate::policy::Region;
use crate::scoring::window::Window;
use crate::scoring::{Engine, ReloadTally, Snapshot, WindowKind};
use crate::signals::{Signal, SignalBus};
use crate::steering::{
    self, DecisionError, PlayDecision, PushPlan, Signer, SteeringAnswer, SteeringSession,
};
use crate::store::ScoreWindowRow;
use crate::streams::Stream;
use crate::vocab::Protocol;

/// The scoring pipeline and the decisions made from it.
pub struct Scorer {
    engine: Mutex<Engine>,
    scores: ArcSwap<Snapshot>,
    signals: Arc<SignalBus>,
    reloads: ReloadTally,
    catalog: SharedCatalog,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").finish_non_exhaustive()
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

impl Scorer {
    /// An engine that has heard nothing, over the catalog in force.
    pub fn new(catalog: SharedCatalog, clock: Arc<dyn Clock>) -> Scorer {
        Scorer {
            engine: Mutex::new(Engine::new()),
            scores: ArcSwap::from_pointee(Snapshot::empty()),
            signals: Arc::new(SignalBus::default()),
            reloads: ReloadTally::default(),
            catalog,
            clock,
        }
    }

    /// Where producers (player reports, probes, callbacks) send observations.
    pub fn signals(&self) -> &Arc<SignalBus> {
        &self.signals
    }

    /// The latest rankings.
    pub fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.scores.load()
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The push targets for `anchor` going live in `region` (see [`steering::push_plan`]).
    #[allow(clippy::too_many_arguments)]
    pub fn plan_push(
        &self,
        catalog: &Catalog,
        signer: &Signer,
        region: &Region,
        anchor: &str,
        stream: &str,
        now_ms: i64,
        rng: &mut (impl rand::Rng + ?Sized),
    ) -> Result<PushPlan, DecisionError> {
        let mut engine = self.engine();
        steering::push_plan(
            catalog,
            signer,
            &mut engine,
            region,
            anchor,
            stream,
            now_ms,
            rng,
        )
    }

    /// Whether a live stream should move, its app asking again (see
    /// [`steering::push_recheck`]).
    pub fn recheck_push(
        &self,
        catalog: &Catalog,
        signer: &Signer,
        region: &Region,
        stream: &Stream,
        now_ms: i64,
    ) -> Result<Option<PushPlan>, DecisionError> {
        let mut engine = self.engine();
        steering::push_recheck(catalog, signer, &mut engine, region, stream, now_ms)
    }

    /// Ranked, signed play candidates (see [`steering::play_candidates`]), from the snapshot.
    #[allow(clippy::too_many_arguments)]
    pub fn rank_play(
        &self,
        catalog: &Catalog,
        signer: &Signer,
        region: &Region,
        stream: &Stream,
        protocol: Protocol,
        avoid: &[&str],
        now_secs: i64,
        rng: &mut (impl rand::Rng + ?Sized),
    ) -> Result<PlayDecision, DecisionError> {
        steering::play_candidates(
            catalog,
            signer,
            &self.snapshot(),
            region,
            stream,
            protocol,
            avoid,
            now_secs,
            rng,
        )
    }

    /// A steering reload's answer (see [`steering::steer`]). What the reload tells about its
    /// pathway is taken in here: an attributed throughput is pooled for the engine, a failover
    /// goes on the bus.
    #[allow(clippy::too_many_arguments)]
    pub fn steer(
        &self,
        catalog: &Catalog,
        region: &Region,
        stream: &Stream,
        protocol: Protocol,
        current: Option<&str>,
        throughput_bps: Option<u64>,
        session: SteeringSession,
        now_secs: i64,
        rng: &mut (impl rand::Rng + ?Sized),
    ) -> SteeringAnswer {
        let mut answer = steering::steer(
            catalog,
            &self.snapshot(),
            region,
            stream,
            protocol,
            current,
            throughput_bps,
            session,
            now_secs,
            rng,
        );
        for signal in std::mem::take(&mut answer.evidence) {
            match signal {
                Signal::Reload {
                    provider,
                    region,
                    covered_ms,
                    throughput_bps,
                    needed_bps,
                    ..
                } => self.reloads.add(
                    &catalog.policy.scoring,
                    &provider,
                    &region,
                    covered_ms,
                    throughput_bps,
                    needed_bps,
                ),
                other => {
                    self.signals.emit(other);
                }
            }
        }
        answer
    }

    /// What the engine holds for `provider` in `region` now (for admins and tests).
    pub fn delivery_score(&self, provider: &str, region: &str) -> crate::scoring::Score {
        let catalog = self.catalog.load();
        self.engine().delivery_score(
            provider,
            region,
            self.clock.now_ms(),
            &catalog.policy.scoring,
        )
    }

    /// How unhealthy `anchor`'s uploads to `provider` look now: the anchor's own estimate and
    /// its region's (for admins and tests).
    pub fn ingest_unhealthy(&self, provider: &str, anchor: &str, region: &str) -> (f64, f64) {
        let catalog = self.catalog.load();
        self.engine().ingest_unhealthy(
            provider,
            anchor,
            region,
            self.clock.now_ms(),
            &catalog.policy.scoring,
        )
    }

    /// The providers drained at run time (the policy's own drains are in the catalog).
    pub fn drained(&self) -> Vec<String> {
        self.engine().drained().iter().cloned().collect()
    }

    /// Of `stored` drains (provider, drained), those the engine does not hold yet.
    pub fn drains_to_apply(&self, stored: Vec<(String, bool)>) -> Vec<(String, bool)> {
        let engine = self.engine();
        stored
            .into_iter()
            .filter(|(p, d)| engine.drained().contains(p) != *d)
            .collect()
    }

    /// Applies run-time drains (stored ones at start, an admin's, other replicas'), as
    /// (provider, drained), and republishes the rankings.
    pub fn apply_drains(&self, drains: &[(String, bool)]) {
        {
            let mut engine = self.engine();
            for (provider, drained) in drains {
                engine.set_drained(provider, *drained);
            }
        }
        self.refresh();
    }

    /// This replica's own windows, as rows to save for the others.
    pub fn own_windows(&self, replica: &str, now_ms: i64) -> anyhow::Result<Vec<ScoreWindowRow>> {
        let catalog = self.catalog.load();
        let windows = self.engine().export(now_ms, &catalog.policy.scoring);
        let mut rows = Vec::with_capacity(windows.len());
        for (kind, provider, key, window) in windows {
            rows.push(ScoreWindowRow {
                replica: replica.to_string(),
                kind: kind.as_str().to_string(),
                provider,
                key,
                data: serde_json::to_string(&window)?,
                updated_ms: now_ms,
            });
        }
        Ok(rows)
    }

    /// Takes in scoring windows other replicas (or this process before a restart) saved.
    pub fn apply_remote_windows(&self, rows: Vec<ScoreWindowRow>) {
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
        self.engine()
            .set_remote(windows, self.clock.now_ms(), &catalog.policy.scoring);
    }

    /// Rebuilds the scores snapshot now (the signal consumer does it continuously).
    pub fn refresh(&self) {
        let catalog = self.catalog.load();
        let snap = self.engine().refresh(self.clock.now_ms(), &catalog);
        export_scores(&snap);
        self.scores.store(snap);
    }

    /// Starts the signal consumer; it stops when the scorer is dropped.
    pub fn spawn_consumer(self: &Arc<Self>) {
        tokio::spawn(consume_signals(Arc::downgrade(self)));
    }
}

/// Applies signals to the engine as they arrive and keeps the snapshot fresh: a signal is
/// applied at most `DRAIN_EVERY` after it was emitted, a change is published at most
/// `REFRESH_EVERY` after it was applied, and the snapshot is rebuilt at least every
/// `IDLE_REFRESH` (hold times and decay move without signals).
async fn consume_signals(scorer: Weak<Scorer>) {
    use tokio::sync::mpsc::error::TryRecvError;
    let Some(mut rx) = scorer.upgrade().and_then(|s| s.signals.take_receiver()) else {
        return;
    };
    let mut last_refresh = Instant::now();
    let mut dirty = false;
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(scorer) = scorer.upgrade() else {
            return;
        };
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
            let pooled = scorer.reloads.drain();
            let reloads: u64 = pooled.iter().map(|(_, _, pool)| pool.reloads).sum();
            if reloads > 0 {
                metrics::counter!(m::SIGNALS.name, "kind" => "reload").increment(reloads);
            }
            let now = scorer.clock.now_ms();
            let catalog = scorer.catalog.load();
            let snap = {
                let mut engine = scorer.engine();
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
                scorer.scores.store(snap);
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
