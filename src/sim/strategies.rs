//! The strategies compared and how each decides: the engine through the server's own calls
//! (`steering::push_plan`, `steering::play_candidates`, `steering::steer`, `scoring::Engine`),
//! and the baselines (static, random, best historical, oracle) under the same maximum shares
//! (`scoring::share`) and bad-session thresholds.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::scoring::{Engine, Snapshot, share};
use crate::signals::Signal;
use crate::steering::{self, Signer, SteeringSession};
use crate::streams::Stream;
use crate::vocab::Protocol;

use super::scenario::Quality;
use super::viewers::{Session, delivery, rebuffer_ms};
use super::world::{Anchor, Ix, NONE, World};
use super::{T0_MS, secs};

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

pub(super) struct Runner<'a> {
    pub(super) strategy: Strategy,
    pub(super) catalog: &'a Catalog,
    pub(super) world: &'a World<'a>,
    pub(super) engine: Engine,
    pub(super) snapshot: Arc<Snapshot>,
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
    /// The policy's region the world's region `r` is.
    fn region(&self, r: Ix) -> &'a crate::policy::Region {
        self.catalog
            .policy
            .region(&self.world.regions[r])
            .expect("known region")
    }

    pub(super) fn new(
        strategy: Strategy,
        catalog: &'a Catalog,
        world: &'a World<'a>,
        seed: u64,
    ) -> Self {
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
    pub(super) fn quality(&self, p: Ix, r: Ix, t: f64) -> Quality {
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
    pub(super) fn carry(&mut self, r: Ix, from: Ix, to: Ix) {
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

    pub(super) fn push(&mut self, anchor: &Anchor, stream: &str, now_ms: i64) -> Vec<String> {
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

    /// The engine's app asking again, during a broadcast, where `stream` should be pushed
    /// (`steering::push_recheck`, as the server answers it): the new targets when it should
    /// move. The baselines never move a stream.
    pub(super) fn repush(
        &mut self,
        anchor: &Anchor,
        stream: &Stream,
        now_ms: i64,
    ) -> Option<Vec<String>> {
        if self.strategy != Strategy::Engine {
            return None;
        }
        let region = self.region(anchor.region);
        steering::push_recheck(
            self.catalog,
            &self.signer,
            &mut self.engine,
            region,
            stream,
            now_ms,
        )
        .ok()
        .flatten()
        .map(|p| p.targets.into_iter().map(|t| t.provider).collect())
    }

    pub(super) fn play(
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
    pub(super) fn steer(
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
                let r = self.region(region);
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
                // The reload's evidence reaches the engine as the server's pool folds it in (a
                // failover's switch is the player's own call, which the viewers make).
                for signal in &answer.evidence {
                    if matches!(signal, Signal::Reload { .. }) {
                        self.engine
                            .apply(signal, now_ms, &self.catalog.policy.scoring);
                    }
                }
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
        let first = order[0];
        share::cap(order, max_share[first], || {
            share::of_firsts(row[first], row.iter().sum())
        });
        if !count {
            return;
        }
        for n in row.iter_mut() {
            *n *= 0.999;
        }
        row[order[0]] += 1.0;
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
                let r = self.region(region);
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
    pub(super) fn listens(&self) -> bool {
        matches!(self.strategy, Strategy::Engine | Strategy::BestHistorical)
    }

    /// A signal other than a player's report (a switch call, a probe): only the engine
    /// hears those.
    pub(super) fn observe(&mut self, signal: &Signal, now_ms: i64) {
        if self.strategy == Strategy::Engine {
            self.engine
                .apply(signal, now_ms, &self.catalog.policy.scoring);
        }
    }

    /// A player's report on `s`'s pathway (see `delivery`): the engine hears the signal the
    /// server would; best historical counts the session stalled or failed or not, on the
    /// same figures, without building one.
    pub(super) fn hear(
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
                if self
                    .catalog
                    .policy
                    .scoring
                    .bad_session
                    .is_bad(ratio, None, error)
                {
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

fn shuffle<T>(v: &mut [T], rng: &mut SmallRng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}
