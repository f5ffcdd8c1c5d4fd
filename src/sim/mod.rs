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

pub mod report;
pub mod scenario;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::policy::{Policy, raw};
use crate::providers::spec::{EndpointSpec, ProviderFile, ProviderInfo};
use crate::providers::{Provider, ProviderError, ProviderKind, Registry};
use crate::scoring::snapshot::normal;
use crate::scoring::{Engine, Snapshot};
use crate::signals::{IngestSource, Signal};
use crate::steering::{self, Signer, SteeringSession};
use crate::streams::{Stream, StreamState};
use crate::vocab::Protocol;
use crate::vocab::{Diagnostics, diag};
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

/// The policy and the world's providers, as the server would load them; each provider's
/// price is the scenario's `prices`, else the `cost_per_gb` of `<providers_dir>/<id>.yaml`
/// when that file exists, else 0.
pub fn catalog(
    policy_file: &Path,
    scenario_file: &Path,
    providers_dir: Option<&Path>,
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
        dash: Some("http://sim/live".into()),
    };
    let mut prices = BTreeMap::new();
    for id in scenario.providers.keys() {
        let price = match scenario.prices.get(id) {
            Some(p) => Some(p.value),
            None => match providers_dir.map(|d| d.join(format!("{id}.yaml"))) {
                Some(file) if file.is_file() => {
                    let spec: ProviderFile = diag::read_yaml(&file)?;
                    spec.cost_per_gb
                }
                _ => None,
            },
        };
        prices.insert(id.clone(), price);
    }
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
                    cost_per_gb: prices.get(id).copied().flatten(),
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
        keys: Default::default(),
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
    /// Every strategy, in report order.
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

    pub fn parse(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == name)
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
    /// What delivering a thousand sessions cost: their playing time at the policy's
    /// `steering.bandwidth_bps`, at each provider's price per GB.
    pub cost_per_1000_sessions: f64,
    /// Per incident (in scenario order): seconds from its start until 95% of new sessions in
    /// its region avoid its provider and keep avoiding it (a repeating incident: its worst
    /// occurrence); `None` if that never happened.
    pub time_to_avoid_seconds: Vec<Option<f64>>,
    /// Per drift (an incident with `ramp_seconds`, by its position in `incidents`): seconds
    /// from the moment its provider's bad chance (stall plus error, before load) reaches twice
    /// the best other provider's in its region until 95% of new sessions there avoid it and
    /// keep avoiding it (0 if they did before; `None`: never, or the drift never got that
    /// bad).
    pub drift_time_to_avoid_seconds: BTreeMap<usize, Option<f64>>,
    /// Per viewer region: where the sessions went.
    pub regions: BTreeMap<String, RegionOutcome>,
    /// Sessions over simulated time, for the HTML report.
    #[serde(skip)]
    pub timeline: Timeline,
}

/// A strategy's sessions over simulated time, in buckets of `bucket_seconds` by when they
/// started (the warm-up included).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub bucket_seconds: f64,
    /// Per bucket: sessions, and bad sessions among them.
    pub sessions: Vec<(u64, u64)>,
    /// `[bucket][region][provider]`: new sessions that started on the provider (the world's
    /// regions and providers in name order).
    pub firsts: Vec<Vec<Vec<u64>>>,
}

impl Timeline {
    fn bucket(&self, at_ms: i64) -> usize {
        let b = (secs(at_ms) / self.bucket_seconds).max(0.0) as usize;
        b.min(self.sessions.len().saturating_sub(1))
    }

    fn add(&mut self, other: &Timeline) {
        if self.sessions.is_empty() {
            *self = other.clone();
            return;
        }
        for (a, b) in self.sessions.iter_mut().zip(&other.sessions) {
            a.0 += b.0;
            a.1 += b.1;
        }
        for (a, b) in self.firsts.iter_mut().zip(&other.firsts) {
            for (ar, br) in a.iter_mut().zip(b) {
                for (x, y) in ar.iter_mut().zip(br) {
                    *x += y;
                }
            }
        }
    }
}

/// Bucket width of the timeline: a minute, or a 240th of a long run.
fn timeline_bucket(duration_seconds: f64) -> f64 {
    (duration_seconds / 240.0).max(60.0).ceil()
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
    region: Ix,
    /// Per provider: extra stall chance from this anchor's upload.
    uplink: Vec<f64>,
    /// When the anchor is there: from, until (seconds).
    from_s: f64,
    until_s: f64,
}

struct Live {
    stream: Arc<Stream>,
    /// The providers it is pushed to.
    on: Vec<Ix>,
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

/// A provider or a region of the world, by its position in `World::providers` or
/// `World::regions`.
type Ix = usize;

/// No provider (a session not yet on a pathway).
const NONE: Ix = usize::MAX;

/// The world's names as indices and its truth in tables by them, so that the hot loops index
/// and compare numbers rather than hash and copy names.
struct World<'a> {
    scenario: &'a Scenario,
    providers: Vec<String>,
    regions: Vec<String>,
    /// `[p * regions + r]`: the quality before incidents.
    base: Vec<Quality>,
    /// `[p * regions + r]`: the scenario's occurrences on that provider in that region.
    occurrences: Vec<Vec<usize>>,
    /// Per provider: capacities shared by several regions (region indices, sessions).
    pools: Vec<Vec<(Vec<Ix>, f64)>>,
    /// `[p * regions + r]`: ingest incidents on `p` for the anchors of `r`.
    ingest: Vec<Vec<usize>>,
    /// Per provider: price per GB delivered.
    price: Vec<f64>,
    /// Per region: the policy's order, then every other provider.
    static_orders: Vec<Vec<Ix>>,
    /// Per region: the share of its viewers watching anchors of their own region.
    locality: Vec<Option<f64>>,
    /// Anchors per region, and in all, arrivals included.
    anchors_in: Vec<f64>,
    anchors: f64,
    /// Per region, when the policy caps shares there: each provider's maximum share.
    max_share: Vec<Option<Vec<Option<f64>>>>,
}

impl<'a> World<'a> {
    fn new(catalog: &Catalog, scenario: &'a Scenario) -> Self {
        let providers: Vec<String> = scenario.providers.keys().cloned().collect();
        let regions: Vec<String> = scenario.regions.keys().cloned().collect();
        let nr = regions.len();
        let ix = |names: &[String], n: &str| names.iter().position(|x| x == n);
        let mut base = Vec::new();
        let mut occurrences = vec![Vec::new(); providers.len() * nr];
        let mut ingest = vec![Vec::new(); providers.len() * nr];
        for p in &providers {
            for r in &regions {
                base.push(scenario.base_quality(p, r));
            }
        }
        for (k, o) in scenario.occurrences.iter().enumerate() {
            if let (Some(p), Some(r)) = (ix(&providers, &o.provider), ix(&regions, &o.region)) {
                occurrences[p * nr + r].push(k);
            }
        }
        for (k, i) in scenario.ingest_incidents.iter().enumerate() {
            let i = &i.value;
            if let (Some(p), Some(r)) = (ix(&providers, &i.provider), ix(&regions, &i.region)) {
                ingest[p * nr + r].push(k);
            }
        }
        let mut pools = vec![Vec::new(); providers.len()];
        for pool in &scenario.shared_capacity {
            let v = &pool.value;
            if let Some(p) = ix(&providers, &v.provider) {
                let rs = v.regions.iter().filter_map(|r| ix(&regions, r)).collect();
                pools[p].push((rs, v.sessions));
            }
        }
        let price = providers
            .iter()
            .map(|p| {
                catalog
                    .registry
                    .get(p)
                    .and_then(|p| p.info().cost_per_gb)
                    .unwrap_or(0.0)
            })
            .collect();
        let static_orders = regions
            .iter()
            .map(|r| {
                static_order(catalog, r)
                    .iter()
                    .filter_map(|p| ix(&providers, p))
                    .collect()
            })
            .collect();
        let locality = scenario
            .regions
            .values()
            .map(|r| r.value.locality.as_ref().map(|l| l.value))
            .collect();
        let mut anchors_in = vec![0.0; nr];
        for (r, n) in &scenario.anchors.per_region {
            if let Some(r) = ix(&regions, r) {
                anchors_in[r] += f64::from(*n);
            }
        }
        for a in &scenario.anchors.arrivals {
            if let Some(r) = ix(&regions, &a.value.region) {
                anchors_in[r] += f64::from(a.value.count);
            }
        }
        let max_share = regions
            .iter()
            .map(|r| {
                let control = catalog.policy.scoring.regions.get(r)?;
                (!control.max_share.is_empty()).then(|| {
                    providers
                        .iter()
                        .map(|p| control.max_share.get(p).copied())
                        .collect()
                })
            })
            .collect();
        World {
            scenario,
            max_share,
            anchors: anchors_in.iter().sum(),
            anchors_in,
            providers,
            regions,
            base,
            occurrences,
            pools,
            ingest,
            price,
            static_orders,
            locality,
        }
    }

    fn provider(&self, name: &str) -> Option<Ix> {
        self.providers.iter().position(|p| p == name)
    }

    /// The truth of provider `p` in region `r` at `t`, before load.
    fn quality(&self, p: Ix, r: Ix, t: f64) -> Quality {
        let k = p * self.regions.len() + r;
        let base = self.base[k];
        self.occurrences[k]
            .iter()
            .find_map(|&o| self.scenario.occurrences[o].at(base, t))
            .unwrap_or(base)
    }

    /// The first second from `from` to `until` at which `p`'s bad chance in `r` (stall plus
    /// error, before load) is at least twice the best other provider's.
    fn twice_the_best(&self, p: Ix, r: Ix, from: f64, until: f64) -> Option<f64> {
        let bad = |x: Ix, t: f64| {
            let q = self.quality(x, r, t);
            q.stall + q.error
        };
        let mut t = from;
        while t < until {
            let best = (0..self.providers.len())
                .filter(|&x| x != p)
                .map(|x| bad(x, t))
                .fold(f64::INFINITY, f64::min);
            if bad(p, t) >= 2.0 * best {
                return Some(t);
            }
            t += 1.0;
        }
        None
    }

    /// Extra stall chance of `anchor`'s stream on `p` from its upload at `t`: its poor uplink
    /// and any ingest incident under way.
    fn uplink(&self, anchor: &Anchor, p: Ix, t: f64) -> f64 {
        let mut u = anchor.uplink[p];
        for &k in &self.ingest[p * self.regions.len() + anchor.region] {
            let i = &self.scenario.ingest_incidents[k].value;
            if t >= i.start_seconds && t < i.end_seconds {
                u = 1.0 - (1.0 - u) * (1.0 - i.stall);
            }
        }
        u
    }
}

struct Runner<'a> {
    strategy: Strategy,
    catalog: &'a Catalog,
    world: &'a World<'a>,
    engine: Engine,
    snapshot: Arc<Snapshot>,
    signer: Signer,
    rng: SmallRng,
    /// Best-historical: `[p * regions + r]` → (sessions, stalls).
    history: Vec<(f64, f64)>,
    /// Baselines: `[r * providers + p]` → decayed count of first places, for the policy's
    /// maximum shares (the engine keeps its own).
    firsts: Vec<f64>,
    /// `[p * regions + r]` → sessions being served now, by this strategy's decisions.
    load: Vec<f64>,
}

impl<'a> Runner<'a> {
    fn new(strategy: Strategy, catalog: &'a Catalog, world: &'a World<'a>, seed: u64) -> Self {
        let mut engine = Engine::new();
        let snapshot = engine.refresh(T0_MS, catalog);
        let cells = world.providers.len() * world.regions.len();
        Runner {
            strategy,
            catalog,
            world,
            engine,
            snapshot,
            signer: Signer::new(10_000),
            rng: SmallRng::seed_from_u64(seed ^ 0x5eed),
            history: vec![(0.0, 0.0); cells],
            firsts: vec![0.0; cells],
            load: vec![0.0; cells],
        }
    }

    /// What a new session on `p` in `r` meets at `t`, under the current load.
    fn quality(&self, p: Ix, r: Ix, t: f64) -> Quality {
        let w = self.world;
        let nr = w.regions.len();
        let q = w.quality(p, r, t);
        let mut out = q.under_load(self.load[p * nr + r]);
        for (regions, sessions) in &w.pools[p] {
            if regions.contains(&r) {
                let load: f64 = regions.iter().map(|&x| self.load[p * nr + x]).sum();
                if load > *sessions {
                    let pooled = q.degraded(load / sessions);
                    if pooled.stall > out.stall {
                        out = pooled;
                    }
                }
            }
        }
        out
    }

    /// Moves one session's load in region `r`: off `from`, onto `to` (`NONE`: nowhere).
    fn carry(&mut self, r: Ix, from: Ix, to: Ix) {
        let nr = self.world.regions.len();
        for (p, d) in [(from, -1.0), (to, 1.0)] {
            if p != NONE {
                self.load[p * nr + r] += d;
            }
        }
    }

    /// True chance that a session of `anchor`'s stream on `p` seen from `r` stalls or fails.
    fn truth(&self, p: Ix, r: Ix, anchor: &Anchor, t: f64) -> f64 {
        let q = self.quality(p, r, t);
        let u = self.world.uplink(anchor, p, t);
        1.0 - (1.0 - q.stall) * (1.0 - u) + q.error
    }

    /// The oracle's push: the providers that serve the stream's whole audience best, each
    /// viewer region weighted by its arrivals (and its viewers' locality) and served by the
    /// best of the set. Chosen one at a time, each the one that most lowers that expectation.
    fn oracle_push(&self, anchor: &Anchor, order: &[Ix], want: usize, t: f64) -> Vec<Ix> {
        let w = self.world;
        let audience: Vec<(Ix, f64)> = (0..w.regions.len())
            .map(|r| {
                let rate = w.scenario.arrival_rate(&w.regions[r], t);
                match w.locality[r] {
                    // Of the region's viewers, the local ones watch this anchor among their
                    // own region's, the rest among all.
                    Some(l) => {
                        let own = if r == anchor.region {
                            l / w.anchors_in[r].max(1.0)
                        } else {
                            0.0
                        };
                        (r, rate * (own + (1.0 - l) / w.anchors.max(1.0)))
                    }
                    None => (r, rate),
                }
            })
            .collect();
        let expected = |set: &[Ix]| -> f64 {
            audience
                .iter()
                .map(|&(r, wt)| {
                    wt * set
                        .iter()
                        .map(|&p| self.truth(p, r, anchor, t))
                        .fold(f64::INFINITY, f64::min)
                })
                .sum()
        };
        // Ties (a provider that adds nothing over the ones chosen) go to the better alone: it
        // is the one viewers fall back to when the best is capped or stalls.
        let mut order: Vec<Ix> = order.to_vec();
        order.sort_by(|&a, &b| expected(&[a]).total_cmp(&expected(&[b])));
        let mut chosen: Vec<Ix> = Vec::with_capacity(want);
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
        chosen
    }

    /// Provider names to indices (names the world lacks are dropped).
    fn ixs(&self, names: impl IntoIterator<Item = String>) -> Vec<Ix> {
        names
            .into_iter()
            .filter_map(|n| self.world.provider(&n))
            .collect()
    }

    fn push(&mut self, anchor: &Anchor, stream: &str, now_ms: i64) -> Vec<String> {
        let want = 1 + self.catalog.policy.ingest.backups;
        let t = secs(now_ms);
        let mut order = self.world.static_orders[anchor.region].clone();
        match self.strategy {
            Strategy::Engine => {
                let region = self
                    .catalog
                    .policy
                    .region(&self.world.regions[anchor.region])
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
            .into_iter()
            .map(|p| self.world.providers[p].clone())
            .collect()
    }

    fn play(
        &mut self,
        region: Ix,
        stream: &Stream,
        carriers: &[Ix],
        anchor: &Anchor,
        now_ms: i64,
    ) -> Vec<Ix> {
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
        region: Ix,
        stream: &Stream,
        carriers: &[Ix],
        anchor: &Anchor,
        current: Ix,
        throughput_bps: u64,
        session: SteeringSession,
        now_ms: i64,
    ) -> (Vec<Ix>, SteeringSession) {
        match self.strategy {
            Strategy::Engine => {
                let r = self
                    .catalog
                    .policy
                    .region(&self.world.regions[region])
                    .expect("known region");
                let current = (current != NONE).then(|| self.world.providers[current].as_str());
                let answer = steering::steer(
                    self.catalog,
                    &self.snapshot,
                    r,
                    stream,
                    Protocol::Hls,
                    current,
                    Some(throughput_bps),
                    session,
                    now_ms / 1000,
                    &mut self.rng,
                );
                (self.ixs(answer.priority), answer.session)
            }
            Strategy::Random => {
                let mut order = carriers.to_vec();
                if let Some(pos) = order.iter().position(|&p| p == current) {
                    let p = order.remove(pos);
                    order.insert(0, p);
                }
                (order, session)
            }
            _ => {
                // A share cap keeps players from moving onto a provider over its share; it
                // does not move those already there.
                let mut order = self.order(region, stream, carriers.to_vec(), anchor, now_ms);
                if order.first().is_some_and(|&p| p != current) {
                    self.cap(region, &mut order, false);
                }
                // The oracle hears what the engine hears from the player: a player that cannot
                // sustain the bitrate where it is moves.
                let min = self.catalog.policy.steering.min_throughput_bps;
                if self.strategy == Strategy::Oracle
                    && min > 0
                    && throughput_bps < min
                    && let Some(pos) = order.iter().position(|&p| p == current)
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
    fn cap(&mut self, region: Ix, order: &mut [Ix], count: bool) {
        let Some(max_share) = &self.world.max_share[region] else {
            return;
        };
        if order.is_empty() {
            return;
        }
        let np = self.world.providers.len();
        let row = &mut self.firsts[region * np..(region + 1) * np];
        let total: f64 = row.iter().sum();
        if let Some(max) = max_share[order[0]]
            && order.len() > 1
            && total > 0.0
            && row[order[0]] / total > max
        {
            order.swap(0, 1);
        }
        if !count {
            return;
        }
        for n in row.iter_mut() {
            *n *= 0.999;
        }
        row[order[0]] += 1.0;
    }

    /// The providers carrying `stream` (`on`: their indices), in the policy's order for
    /// `region`.
    fn carriers(&self, region: Ix, on: &[Ix]) -> Vec<Ix> {
        self.world.static_orders[region]
            .iter()
            .copied()
            .filter(|p| on.contains(p))
            .collect()
    }

    /// The strategy's order of `carriers` (the providers carrying `stream`, in the policy's
    /// order) for a viewer in `region`.
    fn order(
        &mut self,
        region: Ix,
        stream: &Stream,
        carriers: Vec<Ix>,
        anchor: &Anchor,
        now_ms: i64,
    ) -> Vec<Ix> {
        let t = secs(now_ms);
        let nr = self.world.regions.len();
        match self.strategy {
            Strategy::Engine => {
                let r = self
                    .catalog
                    .policy
                    .region(&self.world.regions[region])
                    .expect("known region");
                match steering::play_candidates(
                    self.catalog,
                    &self.signer,
                    &self.snapshot,
                    r,
                    stream,
                    Protocol::Flv,
                    &[],
                    now_ms / 1000,
                    &mut self.rng,
                ) {
                    Ok(d) => self.ixs(d.candidates.into_iter().map(|c| c.provider)),
                    Err(_) => carriers,
                }
            }
            Strategy::Static => carriers,
            Strategy::Random => {
                let mut c = carriers;
                shuffle(&mut c, &mut self.rng);
                c
            }
            Strategy::BestHistorical => {
                sort_by_value(carriers, |p| match self.history[p * nr + region] {
                    (n, s) if n > 0.0 => s / n,
                    _ => 0.0,
                })
            }
            Strategy::Oracle => sort_by_value(carriers, |p| self.truth(p, region, anchor, t)),
        }
    }

    /// Whether reports reach this strategy at all (the others decide without them).
    fn listens(&self) -> bool {
        matches!(self.strategy, Strategy::Engine | Strategy::BestHistorical)
    }

    /// A signal other than a player's report (a switch call, a probe): only the engine
    /// hears those.
    fn observe(&mut self, signal: &Signal, now_ms: i64) {
        if self.strategy == Strategy::Engine {
            self.engine
                .apply(signal, now_ms, &self.catalog.policy.scoring);
        }
    }

    /// A player's report on `s`'s pathway (see `delivery`): the engine hears the signal the
    /// server would; best historical counts the session stalled or failed or not, on the
    /// same figures, without building one.
    fn hear(
        &mut self,
        s: &Session,
        played_ms: u64,
        stalled: (bool, f64),
        startup_ms: Option<f64>,
        error: bool,
        now_ms: i64,
    ) {
        match self.strategy {
            Strategy::Engine => {
                let signal = delivery(self.world, s, played_ms, stalled, startup_ms, error);
                self.observe(&signal, now_ms);
            }
            Strategy::BestHistorical => {
                let rebuffer_ms = rebuffer_ms(played_ms, stalled);
                let e = &mut self.history[s.on * self.world.regions.len() + s.region];
                e.0 += 1.0;
                let ratio = rebuffer_ms as f64 / (played_ms + rebuffer_ms).max(1) as f64;
                if error || ratio > 0.01 {
                    e.1 += 1.0;
                }
            }
            _ => {}
        }
    }
}

/// `items` by a value computed once each, lowest first; ties keep their order.
fn sort_by_value(items: Vec<Ix>, value: impl Fn(Ix) -> f64) -> Vec<Ix> {
    let mut keyed: Vec<(f64, Ix)> = items.into_iter().map(|p| (value(p), p)).collect();
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

/// Runs `strategies` (every one when empty) over the scenario once per seed (worlds `seed`,
/// `seed + 1`, ...), on every core; `progress` is told the share done. The report pools the
/// seeds' sessions. A strategy's outcome does not depend on which others run beside it: each
/// faces the same arrivals and luck.
pub fn run(
    catalog: &Catalog,
    scenario: &Scenario,
    name: &str,
    seeds: u64,
    strategies: &[Strategy],
    mut progress: impl FnMut(f64),
) -> Report {
    let seeds: Vec<u64> = (0..seeds.max(1))
        .map(|i| scenario.seed.wrapping_add(i))
        .collect();
    let strategies: Vec<Strategy> = Strategy::ALL
        .into_iter()
        .filter(|s| strategies.is_empty() || strategies.contains(s))
        .collect();
    let jobs: Vec<(u64, Strategy)> = seeds
        .iter()
        .flat_map(|&seed| strategies.iter().map(move |&s| (seed, s)))
        .collect();
    // Per job, the share done in thousandths; the caller's thread reports the sum.
    let done: Vec<AtomicU64> = jobs.iter().map(|_| AtomicU64::new(0)).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
    let world = World::new(catalog, scenario);
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
                    let outcome = run_one(strategy, catalog, &world, seed, |f| {
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
        .chunks(strategies.len())
        .zip(&seeds)
        .map(|(outcomes, &seed)| SeedRun {
            seed,
            outcomes: outcomes.to_vec(),
        })
        .collect();
    let outcomes = strategies
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
        cost_per_1000_sessions: 0.0,
        time_to_avoid_seconds: Vec::new(),
        drift_time_to_avoid_seconds: BTreeMap::new(),
        regions: BTreeMap::new(),
        timeline: Timeline::default(),
    };
    for (k, o) in outcomes.enumerate() {
        let n = o.sessions as f64;
        out.sessions += o.sessions;
        out.simulated_sessions += o.simulated_sessions;
        out.bad_session_rate += o.bad_session_rate * n;
        out.mean_rebuffer_ratio += o.mean_rebuffer_ratio * n;
        out.mean_startup_ms += o.mean_startup_ms * n;
        out.switches_per_session += o.switches_per_session * n;
        out.cost_per_1000_sessions += o.cost_per_1000_sessions * n;
        out.timeline.add(&o.timeline);
        for (r, ro) in &o.regions {
            out.regions.entry(r.clone()).or_default().add(ro);
        }
        for (&i, &t) in &o.drift_time_to_avoid_seconds {
            let worst = out.drift_time_to_avoid_seconds.entry(i).or_insert(t);
            *worst = match (*worst, t) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
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
    out.cost_per_1000_sessions /= n;
    out
}

/// Anchors of the world, with their uplinks: the regions' own, then those arriving later.
fn anchors(world: &World) -> Vec<Anchor> {
    let scenario = world.scenario;
    let np = world.providers.len();
    let duration = scenario.duration_seconds.value as f64;
    let region = |r: &str| world.regions.iter().position(|x| x == r);
    let mut out = Vec::new();
    for (r, n) in &scenario.anchors.per_region {
        let Some(ri) = region(r) else { continue };
        for i in 0..*n {
            out.push(Anchor {
                id: format!("{r}-anchor-{i}"),
                region: ri,
                uplink: vec![0.0; np],
                from_s: 0.0,
                until_s: f64::INFINITY,
            });
        }
    }
    for poor in &scenario.anchors.poor_uplinks {
        let (Some(ri), Some(p)) = (region(&poor.region), world.provider(&poor.provider)) else {
            continue;
        };
        for a in out
            .iter_mut()
            .filter(|a| a.region == ri)
            .take(poor.count as usize)
        {
            a.uplink[p] = poor.stall;
        }
    }
    for (k, arrival) in scenario.anchors.arrivals.iter().enumerate() {
        let v = &arrival.value;
        let Some(ri) = region(&v.region) else {
            continue;
        };
        for i in 0..v.count {
            out.push(Anchor {
                id: format!("{}-new{k}-anchor-{i}", v.region),
                region: ri,
                uplink: vec![0.0; np],
                from_s: v.from_seconds,
                until_s: v.until_seconds.unwrap_or(duration + 1.0),
            });
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
    world: &World,
    s: &Session,
    played_ms: u64,
    (stalled, ratio): (bool, f64),
    startup_ms: Option<f64>,
    error: bool,
) -> Signal {
    Signal::Delivery {
        provider: world.providers[s.on].clone(),
        region: world.regions[s.region].clone(),
        protocol: Protocol::Flv,
        anchor_id: Some(s.stream.anchor_id.clone()),
        played_ms,
        rebuffer_ms: rebuffer_ms(played_ms, (stalled, ratio)),
        rebuffer_count: u32::from(stalled),
        startup_ms: startup_ms.map(|ms| ms as u64),
        error,
    }
}

/// The rebuffering a report of `played_ms` tells, stalling at `ratio` or not.
fn rebuffer_ms(played_ms: u64, (stalled, ratio): (bool, f64)) -> u64 {
    let r = ratio.min(0.99);
    if stalled {
        (played_ms as f64 * r / (1.0 - r)) as u64
    } else {
        0
    }
}

/// A session event: (time, sequence, slot, session id, event).
type Timed = (i64, u64, usize, u64, Ev);

/// A viewer session in play.
struct Session {
    id: u64,
    slot: usize,
    region: Ix,
    anchor: usize,
    stream: Arc<Stream>,
    /// The providers carrying it, in the policy's order for the region.
    carriers: Vec<Ix>,
    start_ms: i64,
    end_ms: i64,
    /// The session's own draws, the same sequence for every strategy.
    rng: SmallRng,
    /// Joined after the warm-up.
    counted: bool,
    /// The pathway it plays on (`NONE` before its first).
    on: Ix,
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
    avoid: Vec<(Ix, i64)>,
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
    /// Per region: sessions, bad sessions, and first places per provider.
    regions: Vec<(u64, u64, Vec<u64>)>,
    /// What delivering the counted sessions cost (the providers' prices per GB).
    cost: f64,
    timeline: Timeline,
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
    fn new(ss: &'s SessionSpec, catalog: &Catalog, world: &World) -> Self {
        let st = &catalog.policy.steering;
        let (np, nr) = (world.providers.len(), world.regions.len());
        let duration = world.scenario.duration_seconds.value as f64;
        let bucket_seconds = timeline_bucket(duration);
        let buckets = (duration / bucket_seconds).ceil() as usize + 1;
        Viewers {
            ss,
            ttl_ms: (st.ttl_seconds.max(1) * 1000) as i64,
            bandwidth_bps: st.bandwidth_bps as f64,
            slots: Vec::new(),
            free: Vec::new(),
            events: BTreeMap::new(),
            seq: 0,
            next_id: 0,
            tally: Tally {
                sessions: 0,
                bad: 0,
                ratio_sum: 0.0,
                startup_sum: 0.0,
                switches: 0,
                regions: vec![(0, 0, vec![0; np]); nr],
                cost: 0.0,
                timeline: Timeline {
                    bucket_seconds,
                    sessions: vec![(0, 0); buckets],
                    firsts: vec![vec![vec![0; np]; nr]; buckets],
                },
            },
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
        region: Ix,
        ai: usize,
        live: &Live,
        seed: u64,
        length_s: f64,
        counted: bool,
        now: i64,
    ) -> Option<Ix> {
        let carriers = runner.carriers(region, &live.on);
        let order = runner.play(region, &live.stream, &carriers, &anchors[ai], now);
        let first = *order.first()?;
        self.next_id += 1;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut s = Box::new(Session {
            id: self.next_id,
            slot,
            region,
            anchor: ai,
            stream: Arc::clone(&live.stream),
            carriers,
            start_ms: now,
            end_ms: now + ((length_s * 1000.0) as i64).max(1),
            rng: SmallRng::seed_from_u64(seed),
            counted,
            on: NONE,
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
            steering: SteeringSession::start(
                &runner.world.regions[region],
                &runner.world.providers[first],
                now / 1000,
                0,
            ),
        });
        if counted {
            self.tally.regions[region].2[first] += 1;
        }
        let b = self.tally.timeline.bucket(now);
        self.tally.timeline.firsts[b][region][first] += 1;
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
        candidates: &[Ix],
        now: i64,
    ) {
        let kept_off = |s: &Session, p: Ix| s.avoid.iter().any(|&(a, _)| a == p);
        let mut next = candidates.iter().copied().find(|&p| !kept_off(s, p));
        while let Some(p) = next {
            if p == s.on {
                break;
            }
            if s.on == NONE {
                runner.carry(s.region, NONE, p);
            } else {
                self.report(runner, s, now);
                self.pay(runner, s, now);
                runner.carry(s.region, s.on, p);
                s.switches += 1;
            }
            s.on = p;
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
            next = candidates.iter().copied().find(|&p| !kept_off(s, p));
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
        if runner.strategy == Strategy::Engine {
            runner.observe(
                &Signal::Switch {
                    provider: runner.world.providers[s.on].clone(),
                    region: runner.world.regions[s.region].clone(),
                    anchor_id: Some(s.stream.anchor_id.clone()),
                },
                now,
            );
        }
        let until = now + (self.ss.pathway_penalty_seconds * 1000.0) as i64;
        s.avoid.push((s.on, until));
    }

    /// A new stint on `s.on`: its luck, whether it fails, and (while the session is starting)
    /// the time to its first frame.
    fn begin_stint(&mut self, runner: &Runner, s: &mut Session, joining: bool, now: i64) {
        let q = runner.quality(s.on, s.region, secs(now));
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
        let t = secs(now);
        let q = runner.quality(s.on, s.region, t);
        let u = runner.world.uplink(&anchors[s.anchor], s.on, t);
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
        runner.hear(s, played, first, s.stint.startup_ms, s.stint.error, now);
    }

    /// The truth changed for the sessions `hit` picks (an incident began, ended or is
    /// recovering on their pathway): each starts a new segment now.
    fn resegment(
        &mut self,
        runner: &Runner,
        anchors: &[Anchor],
        hit: impl Fn(&Session) -> bool,
        now: i64,
    ) {
        for slot in 0..self.slots.len() {
            let Some(s) = &self.slots[slot] else {
                continue;
            };
            if hit(s) {
                let mut s = self.slots[slot].take().expect("checked");
                s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
                self.segment(runner, anchors, &mut s, now);
                self.slots[slot] = Some(s);
            }
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
        runner.hear(
            s,
            played as u64,
            (s.seg_stalled, s.seg_ratio),
            None,
            false,
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
            // The sessions due are scattered in memory: touch them all first, in a loop of
            // independent loads the processor overlaps, rather than miss the cache on each
            // in turn below.
            let mut touched = 0u64;
            for &(_, _, slot, _, _) in &due {
                if let Some(s) = &self.slots[slot] {
                    touched = touched.wrapping_add(s.id ^ s.stint.from_ms as u64);
                    touched = touched.wrapping_add(s.carriers.first().map_or(0, |&p| p as u64));
                }
            }
            std::hint::black_box(touched);
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
            s.region,
            &s.stream,
            &s.carriers,
            &anchors[s.anchor],
            s.on,
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
        if s.on != NONE {
            self.pay(runner, &s, now);
            runner.carry(s.region, s.on, NONE);
        }
        self.free.push(s.slot);
        let length = (now - s.start_ms).max(1) as f64;
        let ratio = s.rebuffer_ms / length;
        let is_bad = s.failed || ratio > 0.01 || s.startup_ms > 3000.0;
        let t = &mut self.tally;
        let b = t.timeline.bucket(s.start_ms);
        t.timeline.sessions[b].0 += 1;
        t.timeline.sessions[b].1 += u64::from(is_bad);
        if !s.counted {
            return;
        }
        t.sessions += 1;
        t.ratio_sum += ratio;
        t.startup_sum += s.startup_ms;
        t.switches += u64::from(s.switches);
        t.bad += u64::from(is_bad);
        let r = &mut t.regions[s.region];
        r.0 += 1;
        r.1 += u64::from(is_bad);
    }

    /// What the stint on `s.on` that ends now cost to deliver, if the session counts: its
    /// playing time at the policy's bitrate, at the provider's price.
    fn pay(&mut self, runner: &Runner, s: &Session, now: i64) {
        if s.counted {
            let gb = (now - s.stint.from_ms) as f64 / 1000.0 * self.bandwidth_bps / 8e9;
            self.tally.cost += gb * runner.world.price[s.on];
        }
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
    world: &World,
    seed: u64,
    mut progress: impl FnMut(f64),
) -> Outcome {
    let scenario = world.scenario;
    let mut runner = Runner::new(strategy, catalog, world, seed);
    let anchors = anchors(world);
    let nr = world.regions.len();
    // Whether anchors come and go, or viewers prefer their own region's: either takes draws
    // of its own, so a world with neither replays as before.
    let always = anchors
        .iter()
        .all(|a| a.from_s == 0.0 && a.until_s.is_infinite());
    // Independent streams of the world's randomness, the same for every strategy.
    let mut arrivals = SmallRng::seed_from_u64(seed);
    let mut broadcasts = SmallRng::seed_from_u64(seed ^ 0xb0ad);
    let mut luck_rng = SmallRng::seed_from_u64(seed ^ 0x1ac4);
    let duration_ms = scenario.duration_seconds.value as i64 * 1000;
    let ss = &scenario.sessions;

    let mut live: Vec<Option<Live>> = Vec::with_capacity(anchors.len());
    for (i, a) in anchors.iter().enumerate() {
        if a.from_s > 0.0 {
            live.push(None);
            continue;
        }
        let stream_id = format!("s{i}x0");
        let providers = runner.push(a, &stream_id, T0_MS);
        live.push(Some(Live {
            on: runner.ixs(providers.iter().cloned()),
            stream: Arc::new(new_stream(&stream_id, a, world, providers)),
            until_s: broadcasts.random::<f64>() * scenario.anchors.broadcast_seconds * 2.0,
        }));
    }
    let mut broadcast_no = vec![0u32; anchors.len()];
    let mut viewers = Viewers::new(ss, catalog, world);
    // Per occurrence, when its truth changes.
    let mut changes: Vec<Vec<f64>> = scenario.occurrences.iter().map(|o| o.changes()).collect();
    let mut ingest_changes: Vec<Vec<f64>> = scenario
        .ingest_incidents
        .iter()
        .map(|i| vec![i.value.start_seconds, i.value.end_seconds])
        .collect();
    // occurrence → second → (sessions in its region, sessions starting on its provider)
    let mut incident_buckets: Vec<BTreeMap<i64, (u32, u32)>> =
        vec![BTreeMap::new(); scenario.occurrences.len()];
    let occ_ix: Vec<(Ix, Ix)> = scenario
        .occurrences
        .iter()
        .map(|o| {
            (
                world.provider(&o.provider).unwrap_or(NONE),
                world
                    .regions
                    .iter()
                    .position(|r| *r == o.region)
                    .unwrap_or(NONE),
            )
        })
        .collect();
    let mut next_probe = T0_MS + PROBE_EVERY_MS;
    let mut last_progress = 0.0;
    let mut arrived = 0u64;
    // Anchors live now: in all, and per region (when anchors come and go or viewers prefer
    // their own region's).
    let mut online: Vec<usize> = (0..anchors.len()).collect();
    let mut online_in: Vec<Vec<usize>> = vec![Vec::new(); nr];
    for (i, a) in anchors.iter().enumerate() {
        online_in[a.region].push(i);
    }

    let mut now = T0_MS;
    while now < T0_MS + duration_ms {
        now += STEP_MS;
        let t = secs(now);
        // Broadcasts that end are replaced by a new one: a new push decision. Its viewers
        // play the old one out. Anchors that leave stop; anchors that arrive go live.
        let mut changed = false;
        for (i, a) in anchors.iter().enumerate() {
            let here = t >= a.from_s && t < a.until_s;
            match &live[i] {
                Some(_) if !here => {
                    live[i] = None;
                    changed = true;
                }
                Some(l) if l.until_s > t => {}
                None if !here => {}
                _ => {
                    changed |= live[i].is_none();
                    broadcast_no[i] += 1;
                    let stream_id = format!("s{i}x{}", broadcast_no[i]);
                    let providers = runner.push(a, &stream_id, now);
                    let len = -scenario.anchors.broadcast_seconds
                        * broadcasts.random::<f64>().max(1e-9).ln();
                    live[i] = Some(Live {
                        on: runner.ixs(providers.iter().cloned()),
                        stream: Arc::new(new_stream(&stream_id, a, world, providers)),
                        until_s: t + len.max(60.0),
                    });
                }
            }
        }
        if changed {
            online = (0..anchors.len()).filter(|&i| live[i].is_some()).collect();
            for (r, list) in online_in.iter_mut().enumerate() {
                *list = online
                    .iter()
                    .copied()
                    .filter(|&i| anchors[i].region == r)
                    .collect();
            }
        }
        // Reloads, reports and ends that are due.
        viewers.advance(&mut runner, &anchors, now);
        // Sessions on a provider whose truth just changed meet the change at once.
        for (k, &(p, r)) in occ_ix.iter().enumerate() {
            if let Some(&at) = changes[k].first()
                && t >= at
            {
                changes[k].remove(0);
                viewers.resegment(&runner, &anchors, |s| s.on == p && s.region == r, now);
            }
        }
        for (k, inc) in scenario.ingest_incidents.iter().enumerate() {
            if let Some(&at) = ingest_changes[k].first()
                && t >= at
            {
                ingest_changes[k].remove(0);
                let (Some(p), Some(r)) = (
                    world.provider(&inc.value.provider),
                    world.regions.iter().position(|x| *x == inc.value.region),
                ) else {
                    continue;
                };
                viewers.resegment(
                    &runner,
                    &anchors,
                    |s| s.on == p && anchors[s.anchor].region == r,
                    now,
                );
            }
        }
        // Probes: does each stream flow on each provider it is pushed to? (Only the engine
        // hears them; their draws are their own.)
        if now >= next_probe && strategy == Strategy::Engine {
            next_probe += PROBE_EVERY_MS;
            for (i, a) in anchors.iter().enumerate() {
                let Some(l) = &live[i] else { continue };
                for (p, &pi) in l.stream.providers.iter().zip(&l.on) {
                    let u = world.uplink(a, pi, t);
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
        for (region, own) in online_in.iter().enumerate() {
            let n = poisson(
                &mut arrivals,
                scenario.arrival_rate(&world.regions[region], t) * STEP_MS as f64 / 1000.0,
            );
            for _ in 0..n {
                arrived += 1;
                let pick: f64 = arrivals.random();
                let length: f64 = arrivals.random();
                let session_seed: u64 = arrivals.random();
                let ai = match world.locality[region] {
                    None if always => {
                        ((pick * anchors.len() as f64) as usize).min(anchors.len() - 1)
                    }
                    loc => {
                        let local =
                            loc.is_some_and(|l| arrivals.random::<f64>() < l) && !own.is_empty();
                        let among = if local { own } else { &online };
                        if among.is_empty() {
                            continue;
                        }
                        among[((pick * among.len() as f64) as usize).min(among.len() - 1)]
                    }
                };
                let Some(l) = &live[ai] else { continue };
                let length_s = -ss.mean_seconds * length.max(1e-9).ln();
                // Sessions of the warm-up are played and reported, not counted.
                let counted = t >= scenario.warmup_seconds;
                let Some(first) = viewers.join(
                    &mut runner,
                    &anchors,
                    region,
                    ai,
                    l,
                    session_seed,
                    length_s,
                    counted,
                    now,
                ) else {
                    continue;
                };
                for (k, o) in scenario.occurrences.iter().enumerate() {
                    let (p, r) = occ_ix[k];
                    if r == region && t >= o.start_seconds && t < o.end_seconds {
                        let b = incident_buckets[k].entry(t as i64).or_default();
                        b.0 += 1;
                        b.1 += u32::from(first == p);
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
    // Per incident, the worst of its occurrences within the run.
    let duration_s = scenario.duration_seconds.value as f64;
    let mut time_to_avoid_seconds: Vec<Option<f64>> = Vec::new();
    for (k, o) in scenario.occurrences.iter().enumerate() {
        let tta = time_to_avoid(o.start_seconds, &incident_buckets[k]);
        if o.incident == time_to_avoid_seconds.len() {
            time_to_avoid_seconds.push(tta);
        } else if o.start_seconds < duration_s {
            let worst = &mut time_to_avoid_seconds[o.incident];
            *worst = match (*worst, tta) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
    }
    // Per drift, the worst of its occurrences, timed from when it got twice as bad as the
    // best other provider.
    let mut drift_time_to_avoid_seconds: BTreeMap<usize, Option<f64>> = BTreeMap::new();
    for (k, o) in scenario.occurrences.iter().enumerate() {
        if o.ramped_seconds <= o.start_seconds || o.start_seconds >= duration_s {
            continue;
        }
        let (p, r) = occ_ix[k];
        let tta = (p != NONE && r != NONE)
            .then(|| world.twice_the_best(p, r, o.start_seconds, o.end_seconds))
            .flatten()
            .and_then(|at| time_to_avoid(at, &incident_buckets[k]));
        let worst = drift_time_to_avoid_seconds.entry(o.incident).or_insert(tta);
        *worst = match (*worst, tta) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let regions = tally
        .regions
        .iter()
        .enumerate()
        .filter(|(_, (n, _, firsts))| *n > 0 || firsts.iter().any(|&k| k > 0))
        .map(|(r, (n, bad, firsts))| {
            (
                world.regions[r].clone(),
                RegionOutcome {
                    sessions: *n,
                    bad_sessions: *bad,
                    firsts: firsts
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| **k > 0)
                        .map(|(p, k)| (world.providers[p].clone(), *k))
                        .collect(),
                },
            )
        })
        .collect();
    Outcome {
        strategy,
        sessions: tally.sessions,
        simulated_sessions: arrived,
        bad_session_rate: tally.bad as f64 / n,
        mean_rebuffer_ratio: tally.ratio_sum / n,
        mean_startup_ms: tally.startup_sum / n,
        switches_per_session: tally.switches as f64 / n,
        cost_per_1000_sessions: tally.cost / n * 1000.0,
        time_to_avoid_seconds,
        drift_time_to_avoid_seconds,
        regions,
        timeline: tally.timeline,
    }
}

fn new_stream(id: &str, a: &Anchor, world: &World, providers: Vec<String>) -> Stream {
    Stream {
        id: id.to_string(),
        anchor_id: a.id.clone(),
        region: world.regions[a.region].clone(),
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
            "scenario {}, {worlds}, {} s simulated, the first {} s not counted ({} sessions played per strategy)\n\n| strategy | sessions | bad sessions | mean rebuffer ratio | mean startup ms | switches/session | cost per 1000 sessions | time to avoid each incident |\n|---|---|---|---|---|---|---|---|\n",
            self.scenario,
            self.simulated_seconds,
            self.warmup_seconds,
            self.outcomes.first().map_or(0, |o| o.simulated_sessions)
        );
        for o in &self.outcomes {
            let secs = |t: &Option<f64>| t.map_or("never".into(), |s| format!("{s:.0} s"));
            let tta: Vec<String> = o
                .time_to_avoid_seconds
                .iter()
                .enumerate()
                .map(|(k, t)| match o.drift_time_to_avoid_seconds.get(&k) {
                    Some(d) => format!("{} ({} from twice the best's)", secs(t), secs(d)),
                    None => secs(t),
                })
                .collect();
            out.push_str(&format!(
                "| {} | {} | {:.2}% | {:.4} | {:.0} | {:.3} | {:.2} | {} |\n",
                o.strategy.as_str(),
                o.sessions,
                o.bad_session_rate * 100.0,
                o.mean_rebuffer_ratio,
                o.mean_startup_ms,
                o.switches_per_session,
                o.cost_per_1000_sessions,
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
