//! `livesteer simulate`: the real scoring and steering code driven in virtual time against a
//! synthetic world (`scenario`), beside simple strategies and an oracle that knows the truth.
//!
//! Every strategy faces the same world: arrivals, anchors, broadcasts and each session's luck
//! come from random streams seeded by the scenario, independent of the decisions (common random
//! numbers), so differences between strategies are differences of decisions.
//!
//! The engine strategy uses `steering::push_plan`, `steering::play_candidates` and
//! `scoring::Engine` exactly as the server does; players report once per session, switch on a
//! stall, and probes report whether each stream flows on each provider it is pushed to. Each
//! strategy's sessions load the providers they play on; past a provider's capacity in a region,
//! quality degrades (`Quality::under_load`).
//!
//! **Architecture invariant:** no copy of the engine's logic lives here.

pub mod scenario;

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
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
use crate::scoring::{Engine, Snapshot};
use crate::signals::{IngestSource, Signal};
use crate::steering::{self, Signer};
use crate::streams::{Stream, StreamState};
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
    pub sessions: u64,
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
    stream: Stream,
    until_s: f64,
}

/// Draws of one session, the same for every strategy.
struct Luck {
    anchor: f64,
    stall: [f64; 2],
    error: [f64; 2],
    startup: [f64; 2],
    switch: f64,
    length: f64,
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

fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Something that happens at a time: a min-heap entry on (time, sequence).
struct At<T>(i64, u64, T);
impl<T> PartialEq for At<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl<T> Eq for At<T> {}
impl<T> PartialOrd for At<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for At<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.0, other.1).cmp(&(self.0, self.1))
    }
}

/// A session's load moving: (region, from, to); `to` is `None` when the session ends.
type Move = (String, String, Option<String>);

struct Runner<'a> {
    strategy: Strategy,
    catalog: &'a Catalog,
    scenario: &'a Scenario,
    engine: Engine,
    snapshot: Arc<Snapshot>,
    signer: Signer,
    rng: SmallRng,
    /// Best-historical: (provider, region) → (sessions, stalls).
    history: HashMap<(String, String), (f64, f64)>,
    /// Baselines: (region, provider) → decayed count of first places, for the policy's
    /// maximum shares (the engine keeps its own).
    firsts: HashMap<(String, String), f64>,
    /// (provider, region) → sessions being served now, by this strategy's decisions.
    load: HashMap<(String, String), f64>,
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
        }
    }

    /// What a new session on `provider` in `region` meets at `t`, under the current load.
    fn quality(&self, provider: &str, region: &str, t: f64) -> Quality {
        let load = self
            .load
            .get(&(provider.to_string(), region.to_string()))
            .copied()
            .unwrap_or(0.0);
        self.scenario.quality(provider, region, t).under_load(load)
    }

    /// Moves one session's load: off `from`, onto `to`.
    fn carry(&mut self, region: &str, from: Option<&str>, to: Option<&str>) {
        for (p, d) in [(from, -1.0), (to, 1.0)] {
            if let Some(p) = p {
                *self
                    .load
                    .entry((p.to_string(), region.to_string()))
                    .or_default() += d;
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
        let r = self
            .catalog
            .policy
            .region(region)
            .expect("scenario regions are the policy's");
        let mut out: Vec<String> = r
            .providers
            .iter()
            .filter(|p| self.catalog.registry.get(p).is_some())
            .cloned()
            .collect();
        for p in self.catalog.registry.iter() {
            if !out.iter().any(|x| x == p.id()) {
                out.push(p.id().to_string());
            }
        }
        out
    }

    fn push(&mut self, anchor: &Anchor, stream: &str, now_ms: i64) -> Vec<String> {
        let want = 1 + self.catalog.policy.ingest.backups;
        let t = (now_ms - T0_MS) as f64 / 1000.0;
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

    fn play(&mut self, region: &str, live: &Live, anchor: &Anchor, now_ms: i64) -> Vec<String> {
        let mut order = self.order(region, live, anchor, now_ms);
        if self.strategy != Strategy::Engine {
            self.cap(region, &mut order);
        }
        order
    }

    /// The policy's maximum shares hold for every strategy alike: a provider over its share of
    /// first places in a region (over about the last thousand sessions) goes second.
    fn cap(&mut self, region: &str, order: &mut [String]) {
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

    fn order(&mut self, region: &str, live: &Live, anchor: &Anchor, now_ms: i64) -> Vec<String> {
        let t = (now_ms - T0_MS) as f64 / 1000.0;
        let carriers: Vec<String> = self
            .static_order(region)
            .into_iter()
            .filter(|p| live.stream.providers.contains(p))
            .collect();
        match self.strategy {
            Strategy::Engine => {
                let r = self.catalog.policy.region(region).expect("known region");
                steering::play_candidates(
                    self.catalog,
                    &self.signer,
                    &self.snapshot,
                    r,
                    &live.stream,
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
            Strategy::BestHistorical => {
                let mut c = carriers;
                let rate = |p: &String| match self.history.get(&(p.clone(), region.to_string())) {
                    Some((n, s)) if *n > 0.0 => s / n,
                    _ => 0.0,
                };
                c.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
                c
            }
            Strategy::Oracle => {
                let mut c = carriers;
                c.sort_by(|a, b| {
                    self.truth(a, region, anchor, t)
                        .total_cmp(&self.truth(b, region, anchor, t))
                });
                c
            }
        }
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
                        .entry((provider.clone(), region.clone()))
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
            stream: new_stream(&stream_id, a, providers),
            until_s: broadcasts.random::<f64>() * scenario.anchors.broadcast_seconds * 2.0,
        });
    }
    let mut broadcast_no = vec![0u32; anchors.len()];
    let mut due: BinaryHeap<At<Signal>> = BinaryHeap::new();
    let mut moves: BinaryHeap<At<Move>> = BinaryHeap::new();
    let mut seq = 0u64;
    let (mut sessions, mut bad, mut ratio_sum, mut startup_sum, mut switches) =
        (0u64, 0u64, 0.0, 0.0, 0u64);
    // incident → second → (sessions in its region, sessions starting on its provider)
    let mut by_region: BTreeMap<String, RegionOutcome> = BTreeMap::new();
    let mut incident_buckets: Vec<BTreeMap<i64, (u32, u32)>> =
        vec![BTreeMap::new(); scenario.incidents.len()];
    let mut next_probe = T0_MS + PROBE_EVERY_MS;
    let mut last_progress = 0.0;

    let mut now = T0_MS;
    while now < T0_MS + duration_ms {
        now += STEP_MS;
        let t = (now - T0_MS) as f64 / 1000.0;
        // Broadcasts that end are replaced by a new one: a new push decision.
        for (i, a) in anchors.iter().enumerate() {
            if live[i].until_s <= t {
                broadcast_no[i] += 1;
                let stream_id = format!("s{i}x{}", broadcast_no[i]);
                let providers = runner.push(a, &stream_id, now);
                let len =
                    -scenario.anchors.broadcast_seconds * broadcasts.random::<f64>().max(1e-9).ln();
                live[i] = Live {
                    stream: new_stream(&stream_id, a, providers),
                    until_s: t + len.max(60.0),
                };
            }
        }
        // Sessions that switch or end move their load.
        while moves.peek().is_some_and(|m| m.0 <= now) {
            if let Some(At(_, _, (region, from, to))) = moves.pop() {
                runner.carry(&region, Some(&from), to.as_deref());
            }
        }
        // Reports that are due reach the strategy.
        while due.peek().is_some_and(|d| d.0 <= now) {
            if let Some(At(at, _, signal)) = due.pop() {
                runner.observe(&signal, at);
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
                let luck = Luck {
                    anchor: arrivals.random(),
                    stall: [arrivals.random(), arrivals.random()],
                    error: [arrivals.random(), arrivals.random()],
                    startup: [normal(&mut arrivals), normal(&mut arrivals)],
                    switch: arrivals.random(),
                    length: arrivals.random(),
                };
                let ai = ((luck.anchor * anchors.len() as f64) as usize).min(anchors.len() - 1);
                let anchor = &anchors[ai];
                let order = runner.play(region, &live[ai], anchor, now);
                let Some(first) = order.first().cloned() else {
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
                let length_s = -ss.mean_seconds * luck.length.max(1e-9).ln();
                let play_one = |p: &str, k: usize| {
                    let q = runner.quality(p, region, t);
                    let u = anchor.uplink.get(p).copied().unwrap_or(0.0);
                    let stalled = luck.stall[k] < 1.0 - (1.0 - q.stall) * (1.0 - u);
                    let error = luck.error[k] < q.error;
                    let startup = q.startup_ms * (ss.noise * luck.startup[k]).exp();
                    (stalled, error, startup, q.stall_ratio)
                };
                let (stalled, error, startup, stall_ratio) = play_one(&first, 0);
                let switched =
                    (stalled || error) && luck.switch < ss.switch_on_stall && order.len() > 1;
                // A switch happens a third of the way in; the rest plays on the next candidate.
                let (ratio, tail) = if switched {
                    let (s2, e2, _, r2) = play_one(&order[1], 1);
                    let first_part = if stalled { stall_ratio } else { 0.0 } / 3.0;
                    (
                        first_part + if s2 { r2 * 2.0 / 3.0 } else { 0.0 },
                        Some((order[1].clone(), s2, e2, r2)),
                    )
                } else {
                    (if stalled { stall_ratio } else { 0.0 }, None)
                };
                let session_error = error && !switched || tail.as_ref().is_some_and(|t| t.2);
                // The session is served until it ends, on its second candidate after a switch.
                runner.carry(region, None, Some(&first));
                let end_ms = now + (length_s * 1000.0) as i64;
                let mut last = first.clone();
                if let Some((p2, ..)) = &tail {
                    seq += 1;
                    let at = now + (length_s * 1000.0 / 3.0) as i64;
                    moves.push(At(
                        at,
                        seq,
                        (region.clone(), first.clone(), Some(p2.clone())),
                    ));
                    last = p2.clone();
                }
                seq += 1;
                moves.push(At(end_ms, seq, (region.clone(), last, None)));
                // Sessions of the warm-up are played and reported, not counted.
                if t >= scenario.warmup_seconds {
                    let is_bad = session_error || ratio > 0.01 || startup > 3000.0;
                    sessions += 1;
                    ratio_sum += ratio;
                    startup_sum += startup;
                    switches += u64::from(switched);
                    bad += u64::from(is_bad);
                    let r = by_region.entry(region.clone()).or_default();
                    r.sessions += 1;
                    r.bad_sessions += u64::from(is_bad);
                    *r.firsts.entry(first.clone()).or_default() += 1;
                }
                // What the player reports, when it does.
                let report_at = now + (ss.report_after_seconds.min(length_s) * 1000.0) as i64;
                let report =
                    |provider: &str, stalled: bool, error: bool, r: f64, startup: Option<f64>| {
                        let played =
                            (length_s.min(ss.report_after_seconds).max(1.0) * 1000.0) as u64;
                        let rebuffer = if stalled {
                            (played as f64 * r / (1.0 - r)) as u64
                        } else {
                            0
                        };
                        Signal::Delivery {
                            provider: provider.to_string(),
                            region: region.clone(),
                            protocol: Protocol::Flv,
                            anchor_id: Some(anchor.id.clone()),
                            played_ms: played,
                            rebuffer_ms: rebuffer,
                            rebuffer_count: u32::from(stalled),
                            startup_ms: startup.map(|s| s as u64),
                            error,
                        }
                    };
                if switched {
                    runner.observe(
                        &Signal::Switch {
                            provider: first.clone(),
                            region: region.clone(),
                            anchor_id: Some(anchor.id.clone()),
                        },
                        now,
                    );
                }
                seq += 1;
                due.push(At(
                    report_at,
                    seq,
                    report(
                        &first,
                        stalled,
                        error && !switched,
                        stall_ratio,
                        Some(startup),
                    ),
                ));
                if let Some((p2, s2, e2, r2)) = tail {
                    seq += 1;
                    due.push(At(report_at, seq, report(&p2, s2, e2, r2, None)));
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
    progress(1.0);
    let n = sessions.max(1) as f64;
    Outcome {
        strategy,
        sessions,
        bad_session_rate: bad as f64 / n,
        mean_rebuffer_ratio: ratio_sum / n,
        mean_startup_ms: startup_sum / n,
        switches_per_session: switches as f64 / n,
        time_to_avoid_seconds: scenario
            .incidents
            .iter()
            .zip(&incident_buckets)
            .map(|(inc, buckets)| time_to_avoid(inc.value.start_seconds, buckets))
            .collect(),
        regions: by_region,
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
            "scenario {}, {worlds}, {} s simulated, the first {} s not counted\n\n| strategy | sessions | bad sessions | mean rebuffer ratio | mean startup ms | switches/session | time to avoid each incident |\n|---|---|---|---|---|---|---|\n",
            self.scenario, self.simulated_seconds, self.warmup_seconds
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
