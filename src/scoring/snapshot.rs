//! What the hot path ranks with: an immutable snapshot the engine rebuilds, read without locks.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::{Rng, RngExt};
use serde::Serialize;

use super::score::{Incumbency, Score};
use crate::policy::scoring::RegionControl;

/// One region's ranking.
#[derive(Debug, Serialize)]
pub struct RegionRank {
    pub region: String,
    /// Eligible providers in decision order: the incumbent (or pinned) first, then by cost.
    pub order: Vec<Score>,
    pub incumbency: Incumbency,
    #[serde(skip)]
    control: RegionControl,
    /// First places given since the snapshot was built, by provider.
    #[serde(skip)]
    firsts: foldhash::HashMap<String, AtomicU64>,
}

impl RegionRank {
    pub(crate) fn new(
        region: String,
        order: Vec<Score>,
        incumbency: Incumbency,
        control: RegionControl,
    ) -> Self {
        let firsts = order
            .iter()
            .map(|s| (s.provider.clone(), AtomicU64::new(0)))
            .collect();
        Self {
            region,
            order,
            incumbency,
            control,
            firsts,
        }
    }

    pub(crate) fn firsts(&self) -> impl Iterator<Item = (&String, &AtomicU64)> {
        self.firsts.iter()
    }

    fn score(&self, provider: &str) -> Option<&Score> {
        self.order.iter().find(|s| s.provider == provider)
    }
}

/// Rankings for every region, plus per-anchor ingest penalties.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub generated_ms: i64,
    pub regions: foldhash::HashMap<String, RegionRank>,
    /// anchor → (provider, extra cost): how much worse this anchor's upload reaches a provider
    /// than its peers' do.
    #[serde(skip)]
    pub anchor_ingest: foldhash::HashMap<String, Vec<(String, f64)>>,
    pub exploration_rate: f64,
    pub margin: f64,
    pub challenger_share: f64,
}

/// A standard normal draw (Box-Muller).
pub(crate) fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Why the first candidate is first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The region's incumbent (or best).
    Ranked,
    /// The anchor's upload to the incumbent is poor; a better carrier for this stream.
    Anchor,
    /// The incumbent has taken more than its maximum share lately.
    MaxShare,
    /// A committed provider below its share target.
    Commit,
    /// An exploration draw.
    Explore,
    /// The region's challenger, on its canary share.
    Challenger,
    /// The first in order is shedding new sessions (past its capacity, or failing): the next
    /// with headroom.
    Overflow,
    /// No scores for this region: the policy's order.
    Static,
}

impl Pick {
    pub fn as_str(self) -> &'static str {
        match self {
            Pick::Ranked => "ranked",
            Pick::Anchor => "anchor",
            Pick::MaxShare => "max_share",
            Pick::Commit => "commit",
            Pick::Explore => "explore",
            Pick::Challenger => "challenger",
            Pick::Overflow => "overflow",
            Pick::Static => "static",
        }
    }
}

impl Snapshot {
    pub(crate) fn new(
        generated_ms: i64,
        regions: foldhash::HashMap<String, RegionRank>,
        anchor_ingest: foldhash::HashMap<String, Vec<(String, f64)>>,
        exploration_rate: f64,
        margin: f64,
        challenger_share: f64,
    ) -> Self {
        Self {
            generated_ms,
            regions,
            anchor_ingest,
            exploration_rate,
            margin,
            challenger_share,
        }
    }

    /// An empty snapshot: every ranking falls back to the given (policy) order.
    pub fn empty() -> Self {
        Self::new(0, Default::default(), Default::default(), 0.0, 0.0, 0.0)
    }

    /// Orders the providers carrying a stream for a viewer in `region`. `carriers` come in the
    /// policy's order; those the region does not rank (drained, excluded, not covering it)
    /// follow the ranked ones, as a last resort. Counts the first place for the share controls.
    pub fn rank<'a, R: Rng + ?Sized>(
        &self,
        region: &str,
        anchor: Option<&str>,
        carriers: &[&'a str],
        rng: &mut R,
    ) -> (Vec<&'a str>, Pick) {
        self.rank_as(region, anchor, carriers, Some(rng))
    }

    /// As [`Snapshot::rank`] for a player already playing (a steering reload): no exploration
    /// draw, and no first place counted, so that reloads neither bounce players nor skew shares.
    pub fn rank_steady<'a>(
        &self,
        region: &str,
        anchor: Option<&str>,
        carriers: &[&'a str],
    ) -> (Vec<&'a str>, Pick) {
        self.rank_as::<rand::rngs::SmallRng>(region, anchor, carriers, None)
    }

    /// The cost of a provider in a region, if ranked there.
    pub fn cost(&self, region: &str, provider: &str) -> Option<f64> {
        self.regions.get(region)?.score(provider).map(|s| s.cost)
    }

    /// The share of failed sessions (errors, not stalls) a provider has in a region, if ranked
    /// there.
    pub fn error_rate(&self, region: &str, provider: &str) -> Option<f64> {
        self.regions
            .get(region)?
            .score(provider)
            .map(|s| s.error_rate)
    }

    fn rank_as<'a, R: Rng + ?Sized>(
        &self,
        region: &str,
        anchor: Option<&str>,
        carriers: &[&'a str],
        rng: Option<&mut R>,
    ) -> (Vec<&'a str>, Pick) {
        let Some(rank) = self.regions.get(region) else {
            return (carriers.to_vec(), Pick::Static);
        };
        // (provider, cost, sigma) in the region's order.
        let mut ranked: Vec<(&'a str, f64, f64)> = Vec::with_capacity(carriers.len());
        for s in &rank.order {
            if let Some(&c) = carriers.iter().find(|&&c| c == s.provider) {
                ranked.push((c, s.cost, s.sigma));
            }
        }
        let rest: Vec<&'a str> = carriers
            .iter()
            .copied()
            .filter(|c| !ranked.iter().any(|r| r.0 == *c))
            .collect();
        let mut pick = Pick::Ranked;
        let counting = rng.is_some();
        if ranked.len() > 1 {
            pick = self.adjust(rank, anchor, &mut ranked, rng);
        }
        if counting
            && let Some(first) = ranked.first()
            && let Some(n) = rank.firsts.get(first.0)
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
        let mut out: Vec<&'a str> = ranked.iter().map(|r| r.0).collect();
        out.extend(rest);
        (out, pick)
    }

    fn adjust<R: Rng + ?Sized>(
        &self,
        rank: &RegionRank,
        anchor: Option<&str>,
        ranked: &mut Vec<(&str, f64, f64)>,
        rng: Option<&mut R>,
    ) -> Pick {
        let mut pick = Pick::Ranked;
        // This anchor's upload reaches some providers worse than its peers' do.
        let poor_upload = anchor.and_then(|a| self.anchor_ingest.get(a));
        if let Some(extra) = poor_upload {
            for r in ranked.iter_mut() {
                if let Some((_, e)) = extra.iter().find(|(p, _)| p == r.0) {
                    r.1 += e;
                }
            }
            let best = (0..ranked.len())
                .min_by(|&a, &b| ranked[a].1.total_cmp(&ranked[b].1))
                .unwrap_or(0);
            if best != 0 && ranked[best].1 < ranked[0].1 * (1.0 - self.margin) {
                let b = ranked.remove(best);
                ranked.insert(0, b);
                pick = Pick::Anchor;
            }
        }
        let share = |p: &str| rank.score(p).map_or(0.0, |s| s.share);
        let first = ranked[0].0;
        if super::share::cap(ranked, rank.control.max_share.get(first).copied(), || {
            share(first)
        }) {
            pick = Pick::MaxShare;
        }
        for (p, &target) in &rank.control.commit_share {
            if let Some(pos) = ranked.iter().position(|r| r.0 == p)
                && pos > 0
                && share(p) < target
                && ranked[pos].1 <= ranked[0].1 * (1.0 + rank.control.commit_tolerance)
            {
                let r = ranked.remove(pos);
                ranked.insert(0, r);
                pick = Pick::Commit;
                break;
            }
        }
        let Some(rng) = rng else { return pick };
        // Overflow: each in order takes the session with its admission share, the first that
        // does goes first (the last resort when none does: the one of them admitting most). A
        // draw is made only while the first in order sheds sessions.
        let admit = |p: &str| rank.score(p).map_or(1.0, |s| s.admit);
        if admit(ranked[0].0) < 1.0 {
            // Never to a provider this anchor's upload reaches poorly: overflow is for room, not
            // for a carrier the stream may not be flowing on.
            let upload_poor =
                |p: &str| poor_upload.is_some_and(|extra| extra.iter().any(|(q, _)| q == p));
            let near = |i: usize| i == 0 || !upload_poor(ranked[i].0);
            let mut taken = None;
            for (i, r) in ranked.iter().enumerate() {
                if !near(i) {
                    continue;
                }
                let a = admit(r.0);
                if a >= 1.0 || rng.random::<f64>() < a {
                    taken = Some(i);
                    break;
                }
            }
            let i = taken.unwrap_or_else(|| {
                (0..ranked.len())
                    .filter(|&i| near(i))
                    .max_by(|&a, &b| admit(ranked[a].0).total_cmp(&admit(ranked[b].0)))
                    .unwrap_or(0)
            });
            if i != 0 {
                let r = ranked.remove(i);
                ranked.insert(0, r);
                return Pick::Overflow;
            }
        }
        if let Some((challenger, _)) = &rank.incumbency.challenger
            && self.challenger_share > 0.0
            && let Some(pos) = ranked.iter().position(|r| r.0 == challenger)
            && pos > 0
            && rng.random::<f64>() < self.challenger_share
        {
            let r = ranked.remove(pos);
            ranked.insert(0, r);
            return Pick::Challenger;
        }
        if self.exploration_rate > 0.0 && rng.random::<f64>() < self.exploration_rate {
            // Thompson sampling: each one's cost is drawn from its posterior and the lowest
            // draw goes first. The incumbent takes part in the draw, so a provider known to be
            // far worse is left alone, while one whose estimate has grown uncertain (its
            // reports decayed) is tried again.
            let drawn = (0..ranked.len())
                .map(|i| (i, ranked[i].1 + ranked[i].2 * normal(rng)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(i, _)| i);
            if drawn != 0 {
                let r = ranked.remove(drawn);
                ranked.insert(0, r);
                pick = Pick::Explore;
            }
        }
        pick
    }

    /// The ranking of a region, for the admin view and steering.
    pub fn region(&self, region: &str) -> Option<&RegionRank> {
        self.regions.get(region)
    }
}
