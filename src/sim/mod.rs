//! `livesteer simulate`: the real scoring and steering code driven in virtual time against a
//! synthetic world (`scenario`), beside simple strategies and an oracle that knows the truth.
//!
//! Every strategy faces the same world: arrivals, anchors, broadcasts and each session's luck
//! come from random streams seeded by the scenario, independent of the decisions (common random
//! numbers), so differences between strategies are differences of decisions.
//!
//! The engine strategy uses `steering::push_plan`, `steering::play_candidates`,
//! `steering::steer` and `scoring::Engine` exactly as the server does. Players start on their
//! first candidate that plays, report 10 s into each pathway and beacon at every steering
//! reload, reload steering every TTL and follow it, and leave a pathway they stall or fail on
//! (`Viewers`); probes report whether each stream flows on each provider it is pushed to. Each
//! strategy's sessions load the providers they play on; past a provider's capacity in a region,
//! quality degrades (`Quality::under_load`).
//!
//! **Architecture invariant:** no copy of the engine's logic lives here.

pub mod scenario;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::policy::{Diagnostics, Policy, diag, raw};
use crate::providers::spec::{EndpointSpec, ProviderInfo};
use crate::providers::{Protocol, Provider, ProviderError, ProviderKind, Registry};
use crate::scoring::snapshot::normal;
use crate::scoring::{Engine, Snapshot};
use crate::signals::{IngestSource, Signal};
use crate::steering::{self, Signer, SteeringSession};
use crate::streams::{Stream, StreamState};
use scenario::SessionSpec;
pub use scenario::{Quality, Scenario};

/// A provider of the simulated world: it signs nothing, its URLs only name it.
#[derive(Debug)]
struct SimProvider {
    info: ProviderInfo,
}

impl Provider for SimProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn push_url(
        &self,
        stream: &str,
        _region: &str,
        _expires_at: i64,
    ) -> Result<String, ProviderError> {
        Ok(format!("rtmp://{}.sim/live/{stream}", self.info.id))
    }

    fn play_url(
        &self,
        stream: &str,
        _region: &str,
        protocol: Protocol,
        _expires_at: i64,
    ) -> Result<String, ProviderError> {
        Ok(format!("{protocol}://{}.sim/live/{stream}", self.info.id))
    }
}

/// The policy and the world's providers, as the server would load them.
pub fn catalog(
    policy_file: &Path,
    scenario_file: &Path,
) -> Result<(Catalog, Scenario), Diagnostics> {
    // The policy may name providers the world lacks; they are simply absent.
    let raw_policy: raw::PolicyFile = diag::read_yaml(policy_file)?;
    let named: BTreeSet<String> = raw_policy
        .regions
        .iter()
        .flat_map(|r| r.providers.iter().map(|p| p.value.clone()))
        .collect();
    let policy = Policy::load(policy_file, &named)?;
    let regions: BTreeSet<String> = policy.regions.iter().map(|r| r.id.clone()).collect();
    let scenario = Scenario::load(scenario_file, &regions, &named)?;
    let endpoints = EndpointSpec {
        push: Some("rtmp://sim/live".into()),
        rtmp: Some("rtmp://sim/live".into()),
        flv: Some("http://sim/live".into()),
        hls: Some("http://sim/live".into()),
    };
    let providers: Vec<Arc<dyn Provider>> = scenario
        .providers
        .keys()
        .map(|id| {
            Arc::new(SimProvider {
                info: ProviderInfo {
                    id: id.clone(),
                    name: id.clone(),
                    kind: ProviderKind::Srs,
                    regions: Vec::new(),
                    protocols: Protocol::ALL.to_vec(),
                    origin: None,
                    endpoints: [("default".to_string(), endpoints.clone())].into(),
                    cost_per_gb: None,
                    capacity_gbps: None,
                    file: scenario_file.to_path_buf(),
                },
            }) as Arc<dyn Provider>
        })
        .collect();
    let catalog = Catalog {
        policy: Arc::new(policy),
        registry: Registry::new(providers, named),
        mmdb: None,
    };
    Ok((catalog, scenario))
}

/// The strategies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// livesteer's engine with the given policy.
    Engine,
    /// The policy's preference order per region.
    Static,
    /// Uniformly random.
    Random,
    /// The lowest stall rate seen so far, all history alike, no exploration.
    BestHistorical,
    /// Knows the truth at every instant, under its own load: pushes each stream to the
    /// providers that serve its whole audience best, plays the best of them.
    Oracle,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Engine,
        Strategy::Static,
        Strategy::Random,
        Strategy::BestHistorical,
        Strategy::Oracle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Engine => "engine",
            Strategy::Static => "static",
            Strategy::Random => "random",
            Strategy::BestHistorical => "best_historical",
            Strategy::Oracle => "oracle",
        }
    }
}

/// What a strategy achieved.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub strategy: Strategy,
    /// Sessions counted (joined after the warm-up).
    pub sessions: u64,
    /// Sessions played, the warm-up's included.
    pub simulated_sessions: u64,
    /// Rebuffer ratio over 1%, startup over 3 s, or an error.
    pub bad_session_rate: f64,
    pub mean_rebuffer_ratio: f64,
    pub mean_startup_ms: f64,
    pub switches_per_session: f64,
    /// Per incident (in scenario order): seconds from its start until 95% of new sessions in
    /// its region avoid its provider and keep avoiding it; `None` if that never happened.
    pub time_to_avoid_seconds: Vec<Option<f64>>,
    /// Per viewer region: where the sessions went.
    pub regions: BTreeMap<String, RegionOutcome>,
}

/// What a strategy did in one viewer region.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegionOutcome {
    pub sessions: u64,
    pub bad_sessions: u64,
    /// Provider → sessions that started on it.
    pub firsts: BTreeMap<String, u64>,
}

impl RegionOutcome {
    fn add(&mut self, other: &RegionOutcome) {
        self.sessions += other.sessions;
        self.bad_sessions += other.bad_sessions;
        for (p, n) in &other.firsts {
            *self.firsts.entry(p.clone()).or_default() += n;
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// The worlds simulated, one per seed.
    pub seeds: Vec<u64>,
    pub simulated_seconds: u64,
    /// Seconds at the start that were played but not counted.
    pub warmup_seconds: f64,
    /// Per strategy, over every world.
    pub outcomes: Vec<Outcome>,
    /// Per world, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_seed: Vec<SeedRun>,
}

/// The outcomes of one world.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRun {
    pub seed: u64,
    pub outcomes: Vec<Outcome>,
}

const STEP_MS: i64 = 500;
const PROBE_EVERY_MS: i64 = 10_000;
/// Sim time starts here (a fixed instant, so runs replay).
const T0_MS: i64 = 1_800_000_000_000;

struct Anchor {
    id: String,
    region: String,
    /// provider → extra stall chance from this anchor's upload.
    uplink: HashMap<String, f64>,
}

struct Live {
    stream: Arc<Stream>,
    until_s: f64,
}

fn poisson(rng: &mut SmallRng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let l = (-lambda).exp();
    let (mut k, mut p) = (0u64, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

struct Runner<'a> {
    strategy: Strategy,
    catalog: &'a Catalog,
    scenario: &'a Scenario,
    engine: Engine,
    snapshot: Arc<Snapshot>,
    signer: Signer,
    rng: SmallRng,
    /// Best-historical: provider → region → (sessions, stalls).
    history: HashMap<String, HashMap<String, (f64, f64)>>,
    /// Baselines: (region, provider) → decayed count of first places, for the policy's
    /// maximum shares (the engine keeps its own).
    firsts: HashMap<(String, String), f64>,
    /// provider → region → sessions being served now, by this strategy's decisions.
    load: HashMap<String, HashMap<String, f64>>,
    /// Region → the policy's order, then every other provider.
    static_orders: HashMap<String, Vec<String>>,
}

impl<'a> Runner<'a> {
    fn new(strategy: Strategy, catalog: &'a Catalog, scenario: &'a Scenario, seed: u64) -> Self {
        let mut engine = Engine::new();
        let snapshot = engine.refresh(T0_MS, catalog);
        Runner {
            strategy,
            catalog,
            scenario,
            engine,
            snapshot,
            signer: Signer::new(10_000),
            rng: SmallRng::seed_from_u64(seed ^ 0x5eed),
            history: HashMap::new(),
            firsts: HashMap::new(),
            load: HashMap::new(),
            static_orders: scenario
                .regions
                .keys()
                .map(|r| (r.clone(), static_order(catalog, r)))
                .collect(),
        }
    }

    /// What a new session on `provider` in `region` meets at `t`, under the current load.
    fn quality(&self, provider: &str, region: &str, t: f64) -> Quality {
        let load = self
            .load
            .get(provider)
            .and_then(|m| m.get(region))
            .copied()
            .unwrap_or(0.0);
        self.scenario.quality(provider, region, t).under_load(load)
    }

    /// Moves one session's load: off `from`, onto `to`.
    fn carry(&mut self, region: &str, from: Option<&str>, to: Option<&str>) {
        for (p, d) in [(from, -1.0), (to, 1.0)] {
            if let Some(p) = p {
                let by_region = match self.load.get_mut(p) {
                    Some(m) => m,
                    None => self.load.entry(p.to_string()).or_default(),
                };
                match by_region.get_mut(region) {
                    Some(n) => *n += d,
                    None => {
                        by_region.insert(region.to_string(), d);
                    }
                }
            }
        }
    }

    /// True chance that a session of `anchor`'s stream on `provider` seen from `region` stalls
    /// or fails.
    fn truth(&self, provider: &str, region: &str, anchor: &Anchor, t: f64) -> f64 {
        let q = self.quality(provider, region, t);
        let u = anchor.uplink.get(provider).copied().unwrap_or(0.0);
        1.0 - (1.0 - q.stall) * (1.0 - u) + q.error
    }

    /// The oracle's push: the providers that serve the stream's whole audience best, each
    /// viewer region weighted by its arrivals and served by the best of the set. Chosen one at
    /// a time, each the one that most lowers that expectation.
    fn oracle_push(&self, anchor: &Anchor, order: &[String], want: usize, t: f64) -> Vec<String> {
        let audience: Vec<(&String, f64)> = self
            .scenario
            .regions
            .keys()
            .map(|r| (r, self.scenario.arrival_rate(r, t)))
            .collect();
        let expected = |set: &[&String]| -> f64 {
            audience
                .iter()
                .map(|(r, w)| {
                    w * set
                        .iter()
                        .map(|p| self.truth(p, r, anchor, t))
                        .fold(f64::INFINITY, f64::min)
                })
                .sum()
        };
        // Ties (a provider that adds nothing over the ones chosen) go to the better alone: it
        // is the one viewers fall back to when the best is capped or stalls.
        let mut order: Vec<&String> = order.iter().collect();
        order.sort_by(|a, b| expected(&[a]).total_cmp(&expected(&[b])));
        let mut chosen: Vec<&String> = Vec::with_capacity(want);
        while chosen.len() < want.min(order.len()) {
            let best = order
                .iter()
                .copied()
                .filter(|p| !chosen.contains(p))
                .map(|p| {
                    let mut set = chosen.clone();
                    set.push(p);
                    (p, expected(&set))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(p, _)| p);
            match best {
                Some(p) => chosen.push(p),
                None => break,
            }
        }
        chosen.into_iter().cloned().collect()
    }

    fn static_order(&self, region: &str) -> Vec<String> {
        self.static_orders
            .get(region)
            .cloned()
            .unwrap_or_else(|| static_order(self.catalog, region))
    }

    fn push(&mut self, anchor: &Anchor, stream: &str, now_ms: i64) -> Vec<String> {
        let want = 1 + self.catalog.policy.ingest.backups;
        let t = secs(now_ms);
        let mut order = self.static_order(&anchor.region);
        match self.strategy {
            Strategy::Engine => {
                let region = self
                    .catalog
                    .policy
                    .region(&anchor.region)
                    .expect("known region");
                return steering::push_plan(
                    self.catalog,
                    &self.signer,
                    &mut self.engine,
                    region,
                    &anchor.id,
                    stream,
                    now_ms,
                    &mut self.rng,
                )
                .map(|p| p.targets.into_iter().map(|t| t.provider).collect())
                .unwrap_or_default();
            }
            Strategy::Static | Strategy::BestHistorical => {}
            Strategy::Random => shuffle(&mut order, &mut self.rng),
            Strategy::Oracle => order = self.oracle_push(anchor, &order, want, t),
        }
        order.truncate(want);
        order
    }

    fn play(
        &mut self,
        region: &str,
        stream: &Stream,
        carriers: &[String],
        anchor: &Anchor,
        now_ms: i64,
    ) -> Vec<String> {
        let mut order = self.order(region, stream, carriers.to_vec(), anchor, now_ms);
        if self.strategy != Strategy::Engine {
            self.cap(region, &mut order, true);
        }
        order
    }

    /// A steering reload of a player of `stream` on `current`: the pathway priority, and the
    /// session for the next reload. The engine answers through `steering::steer`, as the server
    /// does; the baselines with their own order under the same share caps (random, which knows
    /// nothing, keeps the player where it is).
    #[allow(clippy::too_many_arguments)]
    fn steer(
        &mut self,
        region: &str,
        stream: &Stream,
        carriers: &[String],
        anchor: &Anchor,
        current: &str,
        throughput_bps: u64,
        session: SteeringSession,
        now_ms: i64,
    ) -> (Vec<String>, SteeringSession) {
        match self.strategy {
            Strategy::Engine => {
                let r = self.catalog.policy.region(region).expect("known region");
                let answer = steering::steer(
                    self.catalog,
                    &self.snapshot,
                    r,
                    stream,
                    Some(current),
                    Some(throughput_bps),
                    session,
                    now_ms / 1000,
                    &mut self.rng,
                );
                (answer.priority, answer.session)
            }
            Strategy::Random => {
                let mut order = carriers.to_vec();
                if let Some(pos) = order.iter().position(|p| p == current) {
                    let p = order.remove(pos);
                    order.insert(0, p);
                }
                (order, session)
            }
            _ => {
                // A share cap keeps players from moving onto a provider over its share; it
                // does not move those already there.
                let mut order = self.order(region, stream, carriers.to_vec(), anchor, now_ms);
                if order.first().is_some_and(|p| p != current) {
                    self.cap(region, &mut order, false);
                }
                // The oracle hears what the engine hears from the player: a player that cannot
                // sustain the bitrate where it is moves.
                let min = self.catalog.policy.steering.min_throughput_bps;
                if self.strategy == Strategy::Oracle
                    && min > 0
                    && throughput_bps < min
                    && let Some(pos) = order.iter().position(|p| p == current)
                {
                    let p = order.remove(pos);
                    order.push(p);
                }
                (order, session)
            }
        }
    }

    /// The policy's maximum shares hold for every strategy alike: a provider over its share of
    /// first places in a region (over about the last thousand sessions) goes second. `count`:
    /// a new session's first place (a steering reload counts nothing).
    fn cap(&mut self, region: &str, order: &mut [String], count: bool) {
        let Some(control) = self.catalog.policy.scoring.regions.get(region) else {
            return;
        };
        if control.max_share.is_empty() || order.is_empty() {
            return;
        }
        let total: f64 = self
            .firsts
            .iter()
            .filter(|((r, _), _)| r == region)
            .map(|(_, n)| n)
            .sum();
        if let Some(&max) = control.max_share.get(&order[0])
            && order.len() > 1
            && total > 0.0
            && self
                .firsts
                .get(&(region.to_string(), order[0].clone()))
                .copied()
                .unwrap_or(0.0)
                / total
                > max
        {
            order.swap(0, 1);
        }
        if !count {
            return;
        }
        for ((r, _), n) in self.firsts.iter_mut() {
            if r == region {
                *n *= 0.999;
            }
        }
        *self
            .firsts
            .entry((region.to_string(), order[0].clone()))
            .or_default() += 1.0;
    }

    /// The providers carrying `stream`, in the policy's order for `region`.
    fn carriers(&self, region: &str, stream: &Stream) -> Vec<String> {
        match self.static_orders.get(region) {
            Some(order) => order
                .iter()
                .filter(|p| stream.providers.contains(p))
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// The strategy's order of `carriers` (the providers carrying `stream`, in the policy's
    /// order) for a viewer in `region`.
    fn order(
        &mut self,
        region: &str,
        stream: &Stream,
        carriers: Vec<String>,
        anchor: &Anchor,
        now_ms: i64,
    ) -> Vec<String> {
        let t = secs(now_ms);
        match self.strategy {
            Strategy::Engine => {
                let r = self.catalog.policy.region(region).expect("known region");
                steering::play_candidates(
                    self.catalog,
                    &self.signer,
                    &self.snapshot,
                    r,
                    stream,
                    Protocol::Flv,
                    &[],
                    now_ms / 1000,
                    &mut self.rng,
                )
                .map(|d| d.candidates.into_iter().map(|c| c.provider).collect())
                .unwrap_or(carriers)
            }
            Strategy::Static => carriers,
            Strategy::Random => {
                let mut c = carriers;
                shuffle(&mut c, &mut self.rng);
                c
            }
            Strategy::BestHistorical => sort_by_value(carriers, |p| {
                match self.history.get(p).and_then(|m| m.get(region)) {
                    Some((n, s)) if *n > 0.0 => s / n,
                    _ => 0.0,
                }
            }),
            Strategy::Oracle => sort_by_value(carriers, |p| self.truth(p, region, anchor, t)),
        }
    }

    /// Whether reports reach this strategy at all (the others decide without them).
    fn listens(&self) -> bool {
        matches!(self.strategy, Strategy::Engine | Strategy::BestHistorical)
    }

    fn observe(&mut self, signal: &Signal, now_ms: i64) {
        match self.strategy {
            Strategy::Engine => self
                .engine
                .apply(signal, now_ms, &self.catalog.policy.scoring),
            Strategy::BestHistorical => {
                if let Signal::Delivery {
                    provider,
                    region,
                    rebuffer_ms,
                    played_ms,
                    error,
                    ..
                } = signal
                {
                    let e = self
                        .history
                        .entry(provider.clone())
                        .or_default()
                        .entry(region.clone())
                        .or_default();
                    e.0 += 1.0;
                    let ratio = *rebuffer_ms as f64 / (*played_ms + *rebuffer_ms).max(1) as f64;
                    if *error || ratio > 0.01 {
                        e.1 += 1.0;
                    }
                }
            }
            _ => {}
        }
    }
}

/// `items` by a value computed once each, lowest first; ties keep their order.
fn sort_by_value(items: Vec<String>, value: impl Fn(&str) -> f64) -> Vec<String> {
    let mut keyed: Vec<(f64, String)> = items.into_iter().map(|p| (value(&p), p)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// The policy's order for `region`, then every other provider of the world.
fn static_order(catalog: &Catalog, region: &str) -> Vec<String> {
    let r = catalog
        .policy
        .region(region)
        .expect("scenario regions are the policy's");
    let mut out: Vec<String> = r
        .providers
        .iter()
        .filter(|p| catalog.registry.get(p).is_some())
        .cloned()
        .collect();
    for p in catalog.registry.iter() {
        if !out.iter().any(|x| x == p.id()) {
            out.push(p.id().to_string());
        }
    }
    out
}

fn shuffle<T>(v: &mut [T], rng: &mut SmallRng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Runs every strategy over the scenario once per seed (worlds `seed`, `seed + 1`, ...), on
/// every core; `progress` is told the share done. The report pools the seeds' sessions.
pub fn run(
    catalog: &Catalog,
    scenario: &Scenario,
    name: &str,
    seeds: u64,
    mut progress: impl FnMut(f64),
) -> Report {
    let seeds: Vec<u64> = (0..seeds.max(1))
        .map(|i| scenario.seed.wrapping_add(i))
        .collect();
    let jobs: Vec<(u64, Strategy)> = seeds
        .iter()
        .flat_map(|&seed| Strategy::ALL.iter().map(move |&s| (seed, s)))
        .collect();
    // Per job, the share done in thousandths; the caller's thread reports the sum.
    let done: Vec<AtomicU64> = jobs.iter().map(|_| AtomicU64::new(0)).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(seed, strategy)) = jobs.get(i) else {
                        break;
                    };
                    let outcome = run_one(strategy, catalog, scenario, seed, |f| {
                        done[i].store((f * 1000.0) as u64, Ordering::Relaxed)
                    });
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
        loop {
            let sum: u64 = done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
            progress(sum as f64 / (1000 * jobs.len()) as f64);
            if sum >= 1000 * jobs.len() as u64 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let results: Vec<Outcome> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let per_seed: Vec<SeedRun> = results
        .chunks(Strategy::ALL.len())
        .zip(&seeds)
        .map(|(outcomes, &seed)| SeedRun {
            seed,
            outcomes: outcomes.to_vec(),
        })
        .collect();
    let outcomes = Strategy::ALL
        .iter()
        .map(|&s| {
            pool(
                s,
                per_seed
                    .iter()
                    .filter_map(|r| r.outcomes.iter().find(|o| o.strategy == s)),
            )
        })
        .collect();
    Report {
        scenario: name.to_string(),
        seeds,
        simulated_seconds: scenario.duration_seconds.value,
        warmup_seconds: scenario.warmup_seconds,
        outcomes,
        per_seed: if per_seed.len() > 1 {
            per_seed
        } else {
            Vec::new()
        },
    }
}

/// One strategy's outcomes over several worlds: sessions pooled, each incident's time to avoid
/// the worst of the worlds (`None` if any world never avoided it).
fn pool<'a>(strategy: Strategy, outcomes: impl Iterator<Item = &'a Outcome>) -> Outcome {
    let mut out = Outcome {
        strategy,
        sessions: 0,
        simulated_sessions: 0,
        bad_session_rate: 0.0,
        mean_rebuffer_ratio: 0.0,
        mean_startup_ms: 0.0,
        switches_per_session: 0.0,
        time_to_avoid_seconds: Vec::new(),
        regions: BTreeMap::new(),
    };
    for (k, o) in outcomes.enumerate() {
        let n = o.sessions as f64;
        out.sessions += o.sessions;
        out.simulated_sessions += o.simulated_sessions;
        out.bad_session_rate += o.bad_session_rate * n;
        out.mean_rebuffer_ratio += o.mean_rebuffer_ratio * n;
        out.mean_startup_ms += o.mean_startup_ms * n;
        out.switches_per_session += o.switches_per_session * n;
        for (r, ro) in &o.regions {
            out.regions.entry(r.clone()).or_default().add(ro);
        }
        if k == 0 {
            out.time_to_avoid_seconds = o.time_to_avoid_seconds.clone();
        } else {
            for (worst, t) in out
                .time_to_avoid_seconds
                .iter_mut()
                .zip(&o.time_to_avoid_seconds)
            {
                *worst = match (*worst, *t) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
    }
    let n = out.sessions.max(1) as f64;
    out.bad_session_rate /= n;
    out.mean_rebuffer_ratio /= n;
    out.mean_startup_ms /= n;
    out.switches_per_session /= n;
    out
}

/// Anchors of the world, with their uplinks.
fn anchors(scenario: &Scenario) -> Vec<Anchor> {
    let mut out = Vec::new();
    for (region, n) in &scenario.anchors.per_region {
        for i in 0..*n {
            out.push(Anchor {
                id: format!("{region}-anchor-{i}"),
                region: region.clone(),
                uplink: HashMap::new(),
            });
        }
    }
    for poor in &scenario.anchors.poor_uplinks {
        for a in out
            .iter_mut()
            .filter(|a| a.region == poor.region)
            .take(poor.count as usize)
        {
            a.uplink.insert(poor.provider.clone(), poor.stall);
        }
    }
    out
}

/// What happens to a session at a time.
#[derive(Debug, Clone, Copy)]
enum Ev {
    /// A steering reload, or the session's end.
    Boundary,
    /// The player's report on a stint (by number), if it has not reported it yet.
    Report(u32),
}

/// A player's report on its pathway: `played_ms` played, stalling (and at what rebuffer ratio)
/// or not.
fn delivery(
    s: &Session,
    played_ms: u64,
    (stalled, ratio): (bool, f64),
    startup_ms: Option<f64>,
    error: bool,
) -> Signal {
    let r = ratio.min(0.99);
    Signal::Delivery {
        provider: s.on.clone(),
        region: s.region.clone(),
        protocol: Protocol::Flv,
        anchor_id: Some(s.stream.anchor_id.clone()),
        played_ms,
        rebuffer_ms: if stalled {
            (played_ms as f64 * r / (1.0 - r)) as u64
        } else {
            0
        },
        rebuffer_count: u32::from(stalled),
        startup_ms: startup_ms.map(|ms| ms as u64),
        error,
    }
}

/// A session event: (time, sequence, slot, session id, event).
type Timed = (i64, u64, usize, u64, Ev);

/// A viewer session in play.
struct Session {
    id: u64,
    slot: usize,
    region: String,
    anchor: usize,
    stream: Arc<Stream>,
    /// The providers carrying it, in the policy's order for the region.
    carriers: Vec<String>,
    start_ms: i64,
    end_ms: i64,
    /// The session's own draws, the same sequence for every strategy.
    rng: SmallRng,
    /// Joined after the warm-up.
    counted: bool,
    /// The pathway it plays on (empty before its first).
    on: String,
    stint: Stint,
    /// The current segment (from one reload to the next): since when, whether it stalls, its
    /// rebuffer ratio and the throughput the player measures.
    seg_ms: i64,
    seg_stalled: bool,
    seg_ratio: f64,
    seg_throughput: f64,
    rebuffer_ms: f64,
    startup_ms: f64,
    failed: bool,
    switches: u32,
    /// Pathways the player keeps off, until (ms).
    avoid: Vec<(String, i64)>,
    steering: SteeringSession,
}

/// A stretch of a session on one pathway.
#[derive(Debug, Default)]
struct Stint {
    no: u32,
    from_ms: i64,
    /// Its luck: the session stalls on this pathway while `stall` is below the pathway's
    /// stall chance; it leaves on a stall or an error if `switch` is below the player's
    /// switch chance.
    stall: f64,
    switch: f64,
    error: bool,
    /// Whether its first segment stalled, and how much (what its report tells).
    first: Option<(bool, f64)>,
    startup_ms: Option<f64>,
    reported: bool,
}

/// What one strategy's counted sessions came to.
#[derive(Default)]
struct Tally {
    sessions: u64,
    bad: u64,
    ratio_sum: f64,
    startup_sum: f64,
    switches: u64,
    by_region: BTreeMap<String, RegionOutcome>,
}

/// The sessions in play and what happens to them: players start on their first candidate
/// that plays, report once per pathway, reload steering every TTL and follow its answer, and
/// leave a pathway they stall or fail on (keeping off it for a while, as hls.js does).
struct Viewers<'s> {
    ss: &'s SessionSpec,
    ttl_ms: i64,
    bandwidth_bps: f64,
    /// Boxed: a session moves in and out of its slot at every event.
    slots: Vec<Option<Box<Session>>>,
    free: Vec<usize>,
    /// Per simulation step (a calendar queue: cheaper than one heap of every event), what is
    /// due in it: (time, sequence, slot, session id, event).
    events: BTreeMap<i64, Vec<Timed>>,
    seq: u64,
    next_id: u64,
    tally: Tally,
}

impl<'s> Viewers<'s> {
    fn new(ss: &'s SessionSpec, catalog: &Catalog) -> Self {
        let st = &catalog.policy.steering;
        Viewers {
            ss,
            ttl_ms: (st.ttl_seconds.max(1) * 1000) as i64,
            bandwidth_bps: st.bandwidth_bps as f64,
            slots: Vec::new(),
            free: Vec::new(),
            events: BTreeMap::new(),
            seq: 0,
            next_id: 0,
            tally: Tally::default(),
        }
    }

    fn schedule(&mut self, at: i64, s: &Session, ev: Ev) {
        self.seq += 1;
        let step = (at + STEP_MS - 1).div_euclid(STEP_MS);
        self.events
            .entry(step)
            .or_default()
            .push((at, self.seq, s.slot, s.id, ev));
    }

    /// A new viewer of `live` in `region`: asks for candidates and starts on the first that
    /// plays. Returns the first candidate.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        runner: &mut Runner,
        anchors: &[Anchor],
        region: &str,
        ai: usize,
        live: &Live,
        seed: u64,
        length_s: f64,
        counted: bool,
        now: i64,
    ) -> Option<String> {
        let carriers = runner.carriers(region, &live.stream);
        let order = runner.play(region, &live.stream, &carriers, &anchors[ai], now);
        let first = order.first()?.clone();
        self.next_id += 1;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut s = Box::new(Session {
            id: self.next_id,
            slot,
            region: region.to_string(),
            anchor: ai,
            stream: Arc::clone(&live.stream),
            carriers,
            start_ms: now,
            end_ms: now + ((length_s * 1000.0) as i64).max(1),
            rng: SmallRng::seed_from_u64(seed),
            counted,
            on: String::new(),
            stint: Stint::default(),
            seg_ms: now,
            seg_stalled: false,
            seg_ratio: 0.0,
            seg_throughput: 0.0,
            rebuffer_ms: 0.0,
            startup_ms: 0.0,
            failed: false,
            switches: 0,
            avoid: Vec::new(),
            // As the multivariant playlist starts it: on livesteer's first pathway.
            steering: SteeringSession::start(region, &first, now / 1000, 0),
        });
        if counted {
            let r = self.tally.by_region.entry(region.to_string()).or_default();
            *r.firsts.entry(first.clone()).or_default() += 1;
        }
        self.settle(runner, anchors, &mut s, &order, now);
        self.next(runner, s, now);
        Some(first)
    }

    /// Puts the session back in play until its next reload, or ends it.
    fn next(&mut self, runner: &mut Runner, mut s: Box<Session>, now: i64) {
        if s.failed {
            // The viewer gives up.
            s.end_ms = now;
        }
        if now >= s.end_ms {
            self.finish(runner, s, now);
            return;
        }
        self.schedule((now + self.ttl_ms).min(s.end_ms), &s, Ev::Boundary);
        let slot = s.slot;
        self.slots[slot] = Some(s);
    }

    /// Moves the player along `candidates` to the first it does not keep off (staying where
    /// it is if that is where it plays). A pathway that fails is left for the next with the
    /// player's switch chance; otherwise the session has failed. Starts the next segment.
    fn settle(
        &mut self,
        runner: &mut Runner,
        anchors: &[Anchor],
        s: &mut Session,
        candidates: &[String],
        now: i64,
    ) {
        let kept_off = |s: &Session, p: &str| s.avoid.iter().any(|(a, _)| a == p);
        let mut next = candidates.iter().find(|p| !kept_off(s, p));
        while let Some(p) = next {
            if *p == s.on {
                break;
            }
            if s.on.is_empty() {
                runner.carry(&s.region, None, Some(p));
            } else {
                self.report(runner, s, now);
                runner.carry(&s.region, Some(&s.on), Some(p));
                s.switches += 1;
            }
            s.on.clone_from(p);
            let joining = s.stint.no == 0 || s.stint.startup_ms.is_some() && s.stint.error;
            self.begin_stint(runner, s, joining, now);
            if !s.stint.error {
                break;
            }
            if s.stint.switch >= self.ss.switch_on_stall {
                s.failed = true;
                return;
            }
            self.leave(runner, s, now);
            next = candidates.iter().find(|p| !kept_off(s, p));
            if next.is_none() {
                s.failed = true;
                return;
            }
        }
        self.segment(runner, anchors, s, now);
    }

    /// The player leaves its pathway on a stall or an error: says so (the switch call) and
    /// keeps off it for a while.
    fn leave(&mut self, runner: &mut Runner, s: &mut Session, now: i64) {
        if runner.listens() {
            runner.observe(
                &Signal::Switch {
                    provider: s.on.clone(),
                    region: s.region.clone(),
                    anchor_id: Some(s.stream.anchor_id.clone()),
                },
                now,
            );
        }
        let until = now + (self.ss.pathway_penalty_seconds * 1000.0) as i64;
        s.avoid.push((s.on.clone(), until));
    }

    /// A new stint on `s.on`: its luck, whether it fails, and (while the session is starting)
    /// the time to its first frame.
    fn begin_stint(&mut self, runner: &Runner, s: &mut Session, joining: bool, now: i64) {
        let q = runner.quality(&s.on, &s.region, secs(now));
        let (stall, switch, error) = (
            s.rng.random::<f64>(),
            s.rng.random::<f64>(),
            s.rng.random::<f64>(),
        );
        let z = normal(&mut s.rng);
        let startup = joining.then(|| q.startup_ms * (self.ss.noise * z).exp());
        if let Some(ms) = startup {
            s.startup_ms += ms;
        }
        s.stint = Stint {
            no: s.stint.no + 1,
            from_ms: now,
            stall,
            switch,
            error: error < q.error,
            first: None,
            startup_ms: startup,
            reported: false,
        };
        let report_at = now + (self.ss.report_after_seconds * 1000.0) as i64;
        if report_at < s.end_ms {
            let no = s.stint.no;
            self.schedule(report_at, s, Ev::Report(no));
        }
    }

    /// The segment from `now` to the next reload: whether the session stalls on its pathway,
    /// by the truth now.
    fn segment(&mut self, runner: &Runner, anchors: &[Anchor], s: &mut Session, now: i64) {
        let q = runner.quality(&s.on, &s.region, secs(now));
        let u = anchors[s.anchor].uplink.get(&s.on).copied().unwrap_or(0.0);
        let stalled = s.stint.stall < 1.0 - (1.0 - q.stall) * (1.0 - u);
        s.seg_ms = now;
        s.seg_stalled = stalled;
        s.seg_ratio = if stalled { q.stall_ratio } else { 0.0 };
        // A stalled player cannot sustain the bitrate.
        let tp = if stalled {
            q.throughput_bps
                .min(self.bandwidth_bps * (1.0 - q.stall_ratio))
        } else {
            q.throughput_bps
        };
        s.seg_throughput = tp * (self.ss.noise * normal(&mut s.rng)).exp();
        s.stint.first.get_or_insert((stalled, s.seg_ratio));
    }

    /// The player's report on its current stint, once.
    fn report(&mut self, runner: &mut Runner, s: &mut Session, now: i64) {
        if s.stint.reported || s.stint.no == 0 {
            return;
        }
        s.stint.reported = true;
        if !runner.listens() {
            return;
        }
        let played_s = ((now - s.stint.from_ms) as f64 / 1000.0)
            .min(self.ss.report_after_seconds)
            .max(1.0);
        let played = (played_s * 1000.0) as u64;
        let first = s.stint.first.unwrap_or((false, 0.0));
        let signal = delivery(s, played, first, s.stint.startup_ms, s.stint.error);
        runner.observe(&signal, now);
    }

    /// The truth of `provider` in `region` changed (an incident began, ended or is
    /// recovering): every session playing there starts a new segment now.
    fn resegment(
        &mut self,
        runner: &Runner,
        anchors: &[Anchor],
        provider: &str,
        region: &str,
        now: i64,
    ) {
        for slot in 0..self.slots.len() {
            let Some(mut s) = self.slots[slot].take() else {
                continue;
            };
            if s.on == provider && s.region == region {
                s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
                self.segment(runner, anchors, &mut s, now);
            }
            self.slots[slot] = Some(s);
        }
    }

    /// The player's beacon at a reload, once its stint has reported: how the segment since
    /// (what the stint's first report did not cover) played.
    fn beacon(&mut self, runner: &mut Runner, s: &Session, now: i64) {
        if !s.stint.reported || !runner.listens() {
            return;
        }
        let covered = s.stint.from_ms + (self.ss.report_after_seconds * 1000.0) as i64;
        let played = now - s.seg_ms.max(covered);
        if played < 1000 {
            return;
        }
        runner.observe(
            &delivery(s, played as u64, (s.seg_stalled, s.seg_ratio), None, false),
            now,
        );
    }

    /// Whatever is due by `now`.
    fn advance(&mut self, runner: &mut Runner, anchors: &[Anchor], now: i64) {
        while let Some(entry) = self.events.first_entry()
            && *entry.key() <= now.div_euclid(STEP_MS)
        {
            let mut due = entry.remove();
            due.sort_unstable_by_key(|e| (e.0, e.1));
            for (at, _, slot, id, ev) in due {
                if self.slots[slot].as_ref().is_none_or(|s| s.id != id) {
                    continue;
                }
                match ev {
                    Ev::Report(no) => {
                        if let Some(mut s) = self.slots[slot].take() {
                            if s.stint.no == no {
                                self.report(runner, &mut s, at);
                            }
                            self.slots[slot] = Some(s);
                        }
                    }
                    Ev::Boundary => {
                        if let Some(s) = self.slots[slot].take() {
                            self.reload(runner, anchors, s, at);
                        }
                    }
                }
            }
        }
    }

    /// A segment ends: the session ends, or the player reloads steering and follows it.
    fn reload(&mut self, runner: &mut Runner, anchors: &[Anchor], mut s: Box<Session>, now: i64) {
        s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
        if now >= s.end_ms {
            self.finish(runner, s, now);
            return;
        }
        self.beacon(runner, &s, now);
        s.avoid.retain(|(_, until)| *until > now);
        if s.seg_stalled && s.stint.switch < self.ss.switch_on_stall {
            self.leave(runner, &mut s, now);
        }
        let (priority, session) = runner.steer(
            &s.region,
            &s.stream,
            &s.carriers,
            &anchors[s.anchor],
            &s.on,
            s.seg_throughput as u64,
            std::mem::take(&mut s.steering),
            now,
        );
        s.steering = session;
        self.settle(runner, anchors, &mut s, &priority, now);
        self.next(runner, s, now);
    }

    /// The session ends: its last report, its load off, and its count.
    fn finish(&mut self, runner: &mut Runner, mut s: Box<Session>, now: i64) {
        self.report(runner, &mut s, now);
        if !s.on.is_empty() {
            runner.carry(&s.region, Some(&s.on), None);
        }
        self.free.push(s.slot);
        if !s.counted {
            return;
        }
        let length = (now - s.start_ms).max(1) as f64;
        let ratio = s.rebuffer_ms / length;
        let is_bad = s.failed || ratio > 0.01 || s.startup_ms > 3000.0;
        let t = &mut self.tally;
        t.sessions += 1;
        t.ratio_sum += ratio;
        t.startup_sum += s.startup_ms;
        t.switches += u64::from(s.switches);
        t.bad += u64::from(is_bad);
        let r = t.by_region.entry(s.region.clone()).or_default();
        r.sessions += 1;
        r.bad_sessions += u64::from(is_bad);
    }

    /// Ends every session still playing (the end of the simulated time).
    fn finish_all(&mut self, runner: &mut Runner, now: i64) {
        for slot in 0..self.slots.len() {
            if let Some(mut s) = self.slots[slot].take() {
                s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
                self.finish(runner, s, now);
            }
        }
    }
}

fn secs(ms: i64) -> f64 {
    (ms - T0_MS) as f64 / 1000.0
}

fn run_one(
    strategy: Strategy,
    catalog: &Catalog,
    scenario: &Scenario,
    seed: u64,
    mut progress: impl FnMut(f64),
) -> Outcome {
    let mut runner = Runner::new(strategy, catalog, scenario, seed);
    let anchors = anchors(scenario);
    // Independent streams of the world's randomness, the same for every strategy.
    let mut arrivals = SmallRng::seed_from_u64(seed);
    let mut broadcasts = SmallRng::seed_from_u64(seed ^ 0xb0ad);
    let mut luck_rng = SmallRng::seed_from_u64(seed ^ 0x1ac4);
    let duration_ms = scenario.duration_seconds.value as i64 * 1000;
    let ss = &scenario.sessions;
    let regions: Vec<String> = scenario.regions.keys().cloned().collect();

    let mut live: Vec<Live> = Vec::with_capacity(anchors.len());
    for (i, a) in anchors.iter().enumerate() {
        let stream_id = format!("s{i}x0");
        let providers = runner.push(a, &stream_id, T0_MS);
        live.push(Live {
            stream: Arc::new(new_stream(&stream_id, a, providers)),
            until_s: broadcasts.random::<f64>() * scenario.anchors.broadcast_seconds * 2.0,
        });
    }
    let mut broadcast_no = vec![0u32; anchors.len()];
    let mut viewers = Viewers::new(ss, catalog);
    // Per incident, when its truth changes: its start, its end, and every ten seconds of its
    // recovery.
    let mut changes: Vec<Vec<f64>> = scenario
        .incidents
        .iter()
        .map(|i| {
            let i = &i.value;
            let mut at = vec![i.start_seconds, i.end_seconds];
            let mut r = 10.0;
            while r < i.recovery_seconds {
                at.push(i.end_seconds + r);
                r += 10.0;
            }
            at.push(i.end_seconds + i.recovery_seconds);
            at
        })
        .collect();
    // incident → second → (sessions in its region, sessions starting on its provider)
    let mut incident_buckets: Vec<BTreeMap<i64, (u32, u32)>> =
        vec![BTreeMap::new(); scenario.incidents.len()];
    let mut next_probe = T0_MS + PROBE_EVERY_MS;
    let mut last_progress = 0.0;
    let mut arrived = 0u64;

    let mut now = T0_MS;
    while now < T0_MS + duration_ms {
        now += STEP_MS;
        let t = secs(now);
        // Broadcasts that end are replaced by a new one: a new push decision. Its viewers
        // play the old one out.
        for (i, a) in anchors.iter().enumerate() {
            if live[i].until_s <= t {
                broadcast_no[i] += 1;
                let stream_id = format!("s{i}x{}", broadcast_no[i]);
                let providers = runner.push(a, &stream_id, now);
                let len =
                    -scenario.anchors.broadcast_seconds * broadcasts.random::<f64>().max(1e-9).ln();
                live[i] = Live {
                    stream: Arc::new(new_stream(&stream_id, a, providers)),
                    until_s: t + len.max(60.0),
                };
            }
        }
        // Reloads, reports and ends that are due.
        viewers.advance(&mut runner, &anchors, now);
        // Sessions on a provider whose truth just changed meet the change at once.
        for (k, inc) in scenario.incidents.iter().enumerate() {
            let inc = &inc.value;
            if let Some(&at) = changes[k].first()
                && t >= at
            {
                changes[k].remove(0);
                viewers.resegment(&runner, &anchors, &inc.provider, &inc.region, now);
            }
        }
        // Probes: does each stream flow on each provider it is pushed to?
        if now >= next_probe {
            next_probe += PROBE_EVERY_MS;
            for (i, a) in anchors.iter().enumerate() {
                for p in &live[i].stream.providers {
                    let u = a.uplink.get(p).copied().unwrap_or(0.0);
                    let healthy = luck_rng.random::<f64>() >= u;
                    runner.observe(
                        &Signal::Ingest {
                            provider: p.clone(),
                            anchor_id: a.id.clone(),
                            source: IngestSource::Probe,
                            healthy,
                            bitrate_kbps: None,
                        },
                        now,
                    );
                }
            }
        }
        for region in &regions {
            let n = poisson(
                &mut arrivals,
                scenario.arrival_rate(region, t) * STEP_MS as f64 / 1000.0,
            );
            for _ in 0..n {
                arrived += 1;
                let pick: f64 = arrivals.random();
                let length: f64 = arrivals.random();
                let session_seed: u64 = arrivals.random();
                let ai = ((pick * anchors.len() as f64) as usize).min(anchors.len() - 1);
                let length_s = -ss.mean_seconds * length.max(1e-9).ln();
                // Sessions of the warm-up are played and reported, not counted.
                let counted = t >= scenario.warmup_seconds;
                let Some(first) = viewers.join(
                    &mut runner,
                    &anchors,
                    region,
                    ai,
                    &live[ai],
                    session_seed,
                    length_s,
                    counted,
                    now,
                ) else {
                    continue;
                };
                for (k, inc) in scenario.incidents.iter().enumerate() {
                    let inc = &inc.value;
                    if &inc.region == region && t >= inc.start_seconds && t < inc.end_seconds {
                        let b = incident_buckets[k].entry(t as i64).or_default();
                        b.0 += 1;
                        b.1 += u32::from(first == inc.provider);
                    }
                }
            }
        }
        if strategy == Strategy::Engine {
            runner.snapshot = runner.engine.refresh(now, catalog);
        }
        let done = (now - T0_MS) as f64 / duration_ms as f64;
        if done - last_progress >= 0.05 {
            last_progress = done;
            progress(done);
        }
    }
    viewers.finish_all(&mut runner, now);
    progress(1.0);
    let tally = viewers.tally;
    let n = tally.sessions.max(1) as f64;
    Outcome {
        strategy,
        sessions: tally.sessions,
        simulated_sessions: arrived,
        bad_session_rate: tally.bad as f64 / n,
        mean_rebuffer_ratio: tally.ratio_sum / n,
        mean_startup_ms: tally.startup_sum / n,
        switches_per_session: tally.switches as f64 / n,
        time_to_avoid_seconds: scenario
            .incidents
            .iter()
            .zip(&incident_buckets)
            .map(|(inc, buckets)| time_to_avoid(inc.value.start_seconds, buckets))
            .collect(),
        regions: tally.by_region,
    }
}

fn new_stream(id: &str, a: &Anchor, providers: Vec<String>) -> Stream {
    Stream {
        id: id.to_string(),
        anchor_id: a.id.clone(),
        region: a.region.clone(),
        providers,
        state: StreamState::Live,
        reason: String::new(),
        started_ms: 0,
        ended_ms: None,
        updated_ms: 0,
    }
}

/// Seconds from the incident's start until 95% of new sessions in its region avoid its
/// provider: the first second from which the share starting on it is at most 5% over the next
/// ten seconds and over the rest of the incident.
fn time_to_avoid(start: f64, buckets: &BTreeMap<i64, (u32, u32)>) -> Option<f64> {
    let share = |from: i64, to: i64| {
        let (n, on) = buckets.range(from..to).fold((0u64, 0u64), |acc, (_, v)| {
            (acc.0 + u64::from(v.0), acc.1 + u64::from(v.1))
        });
        (n > 0).then(|| on as f64 / n as f64)
    };
    let end = buckets.keys().next_back().map_or(0, |k| k + 1);
    buckets
        .keys()
        .find(|&&s| {
            share(s, s + 10).is_some_and(|x| x <= 0.05) && share(s, end).is_some_and(|x| x <= 0.05)
        })
        .map(|&s| (s as f64 - start).max(0.0))
}

impl Report {
    /// A Markdown table, one row per strategy.
    pub fn table(&self) -> String {
        let worlds = match self.seeds.as_slice() {
            [one] => format!("seed {one}"),
            seeds => format!(
                "seeds {} to {} ({} worlds pooled; time to avoid is the worst world's)",
                seeds.first().copied().unwrap_or(0),
                seeds.last().copied().unwrap_or(0),
                seeds.len()
            ),
        };
        let mut out = format!(
            "scenario {}, {worlds}, {} s simulated, the first {} s not counted ({} sessions played per strategy)\n\n| strategy | sessions | bad sessions | mean rebuffer ratio | mean startup ms | switches/session | time to avoid each incident |\n|---|---|---|---|---|---|---|\n",
            self.scenario,
            self.simulated_seconds,
            self.warmup_seconds,
            self.outcomes.first().map_or(0, |o| o.simulated_sessions)
        );
        for o in &self.outcomes {
            let tta: Vec<String> = o
                .time_to_avoid_seconds
                .iter()
                .map(|t| t.map_or("never".into(), |s| format!("{s:.0} s")))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {:.2}% | {:.4} | {:.0} | {:.3} | {} |\n",
                o.strategy.as_str(),
                o.sessions,
                o.bad_session_rate * 100.0,
                o.mean_rebuffer_ratio,
                o.mean_startup_ms,
                o.switches_per_session,
                if tta.is_empty() {
                    "-".into()
                } else {
                    tta.join(", ")
                }
            ));
        }
        out
    }

    /// Per viewer region, each strategy's bad sessions and where its sessions started.
    pub fn region_table(&self) -> String {
        let mut out = String::from(
            "| region | strategy | sessions | bad sessions | sessions started on |\n|---|---|---|---|---|\n",
        );
        let regions: BTreeSet<&String> = self
            .outcomes
            .iter()
            .flat_map(|o| o.regions.keys())
            .collect();
        for region in regions {
            for o in &self.outcomes {
                let Some(r) = o.regions.get(region) else {
                    continue;
                };
                let n = r.sessions.max(1) as f64;
                let firsts: Vec<String> = r
                    .firsts
                    .iter()
                    .map(|(p, k)| format!("{p} {:.1}%", *k as f64 * 100.0 / n))
                    .collect();
                out.push_str(&format!(
                    "| {region} | {} | {} | {:.2}% | {} |\n",
                    o.strategy.as_str(),
                    r.sessions,
                    r.bad_sessions as f64 * 100.0 / n,
                    firsts.join(", ")
                ));
            }
        }
        out
    }

    /// The engine's bad-session rate against each other strategy's, over every world.
    pub fn ratios(&self) -> BTreeMap<&'static str, f64> {
        ratios(&self.outcomes)
    }

    /// Per other strategy, the lowest and highest of the engine's ratio over single worlds
    /// (empty with one world).
    pub fn ratio_ranges(&self) -> BTreeMap<&'static str, (f64, f64)> {
        let mut out: BTreeMap<&'static str, (f64, f64)> = BTreeMap::new();
        for run in &self.per_seed {
            for (k, v) in ratios(&run.outcomes) {
                let e = out.entry(k).or_insert((v, v));
                e.0 = e.0.min(v);
                e.1 = e.1.max(v);
            }
        }
        out
    }
}

fn ratios(outcomes: &[Outcome]) -> BTreeMap<&'static str, f64> {
    let rate = |s: Strategy| {
        outcomes
            .iter()
            .find(|o| o.strategy == s)
            .map(|o| o.bad_session_rate)
    };
    let mut out = BTreeMap::new();
    if let Some(e) = rate(Strategy::Engine) {
        for s in [
            Strategy::Oracle,
            Strategy::Static,
            Strategy::BestHistorical,
            Strategy::Random,
        ] {
            if let Some(r) = rate(s).filter(|r| *r > 0.0) {
                out.insert(s.as_str(), e / r);
            }
        }
    }
    out
}
