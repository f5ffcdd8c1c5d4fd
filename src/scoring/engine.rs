//! The engine: windows per (provider, region) for delivery and per (provider, anchor) for
//! ingest, fed by signals, turned into rankings with hysteresis.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::{Rng, RngExt};

use super::score::{Drift, Incumbency, Score, Settle};
use super::snapshot::{RegionRank, Snapshot, normal};
use super::tally::{Pooled, reload_observation};
use super::window::{Moments, Window};
use crate::catalog::Catalog;
use crate::policy::scoring::ScoringSettings;
use crate::signals::Signal;

/// Everything the engine has learned.
#[derive(Debug, Default)]
pub struct Engine {
    /// This replica's own windows (what it heard), saved for the others.
    local: Windows,
    /// Where each anchor was last seen going live.
    anchor_region: HashMap<String, String>,
    /// Each anchor's last primary.
    anchor_primary: HashMap<String, String>,
    /// anchor → where its viewers watch from: decayed counts of delivery reports per region.
    audience: HashMap<String, Audience>,
    /// region → where the viewers of its anchors watch from, all of them together: what a new
    /// anchor of the region is expected to draw before its own viewers are known.
    region_audience: HashMap<String, Audience>,
    /// region → incumbent.
    incumbents: HashMap<String, Incumbency>,
    /// (region, provider) → decayed count of first places.
    shares: HashMap<(String, String), Moments>,
    shares_last_ms: i64,
    /// (provider, region) → its admission: the share of new sessions it takes (overflow).
    admit: HashMap<(String, String), Admission>,
    /// (provider, region) → the most players it served well lately (overflow).
    served: HashMap<(String, String), Served>,
    /// Drained at run time (on top of the policy's list).
    drained: BTreeSet<String>,
    /// Each provider's price per GB, as the catalog had it at the last refresh (for the price
    /// preference of pushes, which are decided between refreshes, and to tell a provider's
    /// quality from its ranking cost).
    prices: HashMap<String, f64>,
    /// What the other replicas sharing the database know, in the same shape.
    remote: Windows,
    /// The last snapshot, whose decision counters are harvested at the next refresh.
    last: Option<Arc<Snapshot>>,
    last_prune_ms: i64,
    /// Player session key → its current stint (see [`Window::stints`]).
    stints: HashMap<u64, Stint>,
}

/// A player session's stretch on one provider, as its reports tell it.
#[derive(Debug)]
struct Stint {
    provider: String,
    /// It has told a stall (or a failure) already.
    bad: bool,
    last_ms: i64,
}

/// Where one anchor's viewers watch from, decayed with the ingest half-life.
#[derive(Debug, Default)]
struct Audience {
    regions: HashMap<String, f64>,
    last_ms: i64,
}

impl Audience {
    /// The decayed counts as of `now_ms`, those not yet forgotten.
    fn at(&self, now_ms: i64, half_life_ms: f64) -> Vec<(String, f64)> {
        let f = 0.5f64.powf((now_ms - self.last_ms).max(0) as f64 / half_life_ms);
        self.regions
            .iter()
            .map(|(r, w)| (r.clone(), w * f))
            .filter(|(_, w)| *w >= FORGET_BELOW)
            .collect()
    }

    /// Adds a viewer in `region` to the audience `key` has in `map`.
    fn add_to(
        map: &mut HashMap<String, Audience>,
        key: &str,
        region: &str,
        now_ms: i64,
        half_life_ms: f64,
    ) {
        // The key is copied only for a new audience: reports mostly land on existing ones.
        if !map.contains_key(key) {
            map.insert(key.to_string(), Audience::default());
        }
        if let Some(audience) = map.get_mut(key) {
            audience.add(region, now_ms, half_life_ms);
        }
    }

    fn add(&mut self, region: &str, now_ms: i64, half_life_ms: f64) {
        if self.last_ms > 0 && now_ms > self.last_ms && half_life_ms > 0.0 {
            let f = 0.5f64.powf((now_ms - self.last_ms) as f64 / half_life_ms);
            self.regions.values_mut().for_each(|w| *w *= f);
        }
        self.last_ms = self.last_ms.max(now_ms);
        match self.regions.get_mut(region) {
            Some(w) => *w += 1.0,
            None => {
                self.regions.insert(region.to_string(), 1.0);
            }
        }
    }
}

/// A provider's admission in a region: the share of the new sessions it would be first for
/// that it takes, the throughput its players get with headroom, and when they were last
/// updated.
#[derive(Debug, Clone, Copy)]
struct Admission {
    share: f64,
    /// The highest mean log throughput its players measured over the longer past lately: what
    /// they get with headroom. It follows that mean down with the longer half-life, so a
    /// provider shedding for long is not soon taken for one with room again.
    base: f64,
    at_ms: i64,
}

/// The least admission share: a provider shedding sessions still takes a few, so that its
/// recovery shows.
const ADMIT_FLOOR: f64 = 0.05;

/// Reloads' worth of throughput below which the recent window says nothing about headroom.
const ADMIT_EVIDENCE: f64 = 3.0;

/// How much of its usual part of a region's players a provider must carry (its share of the
/// region's steering reloads lately against over the longer past) to shed: below it, its
/// players have left it (an incident moved them off), and what the few still there measure
/// says nothing about its capacity.
const ADMIT_LOAD: f64 = 0.25;

impl Admission {
    fn new(past: f64, now_ms: i64) -> Self {
        Admission {
            share: 1.0,
            base: past,
            at_ms: now_ms,
        }
    }

    /// Moves the share over the time since the last update: halving every `tau` seconds while
    /// the players' recent throughput (`recent`, log) stands below the base by more than the
    /// margin with two standard deviations of doubt and the provider carries its load
    /// (`loaded`), growing back by a tenth every `tau` seconds while it stands within the
    /// margin with the same doubt (whole within `tau` seconds while it does not carry its
    /// load: it has room for the players who left it), held in between. The base takes the
    /// longer past's mean (`past`) when higher, else follows it down with the half-life
    /// `hl_ms`. Whether the provider is over its capacity.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        recent: &Moments,
        past: f64,
        loaded: bool,
        full: bool,
        margin: f64,
        now_ms: i64,
        tau: f64,
        hl_ms: f64,
    ) -> bool {
        let dt_ms = (now_ms - self.at_ms).max(0) as f64;
        let dt = (dt_ms / 1000.0).min(10.0);
        self.at_ms = now_ms;
        if past > self.base {
            self.base = past;
        } else if hl_ms > 0.0 {
            self.base += (past - self.base) * (1.0 - 0.5f64.powf(dt_ms / hl_ms));
        }
        if recent.w < ADMIT_EVIDENCE {
            return false;
        }
        let mean = recent.sum / recent.w;
        let sd = (recent.variance().unwrap_or(1.0) / recent.w).sqrt();
        let drop = self.base - mean;
        let limit = (1.0 + margin / 3.0).ln();
        let over = drop - 2.0 * sd > limit || full;
        if over && loaded {
            self.share = (self.share * 0.5f64.powf(dt / tau)).max(ADMIT_FLOOR);
        } else if drop + 2.0 * sd < limit {
            let whole_in = if loaded { 10.0 * tau } else { tau };
            self.share = (self.share + dt / whole_in).min(1.0);
        }
        over
    }
}

/// How much more than the most players it served well a provider may carry while it fares
/// worse, and be taken for full: beyond it, the load is new to it (a whole region moved to
/// it, in an incident elsewhere) and says nothing of its capacity.
const FULL_SPAN: f64 = 0.25;

/// The most players a provider served in a region without faring worse than over its longer
/// past (its recent reloads' weight), lately.
#[derive(Debug, Clone, Copy, Default)]
struct Served {
    most: f64,
    at_ms: i64,
}

impl Served {
    /// Follows the provider's `load`: up at once while it does not fare `worse`, down with the
    /// half-life `hl_ms`. Whether it is full: faring worse while it carries more than it served
    /// well, by at most [`FULL_SPAN`].
    fn full(&mut self, load: f64, worse: bool, now_ms: i64, hl_ms: f64) -> bool {
        let dt_ms = (now_ms - self.at_ms).max(0) as f64;
        self.at_ms = now_ms;
        if !worse {
            if load > self.most {
                self.most = load;
            } else if hl_ms > 0.0 {
                self.most += (load - self.most) * (1.0 - 0.5f64.powf(dt_ms / hl_ms));
            }
        }
        worse && self.most > 0.0 && load > self.most && load <= self.most * (1.0 + FULL_SPAN)
    }
}

/// Which window a saved row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// (provider, region) delivery.
    Delivery,
    /// (provider, anchor) ingest.
    Ingest,
    /// (provider, region) ingest over the region's anchors.
    IngestRegion,
    /// (provider, region) delivery over the longer past push decisions look at.
    DeliveryHistory,
    /// (provider, region) ingest over the region's anchors as the ingest itself shows it
    /// (origin callbacks, probes), over the recent past (the delivery half-life): an outage
    /// of the region's uploads shows here first.
    IngestRegionRecent,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Delivery => "delivery",
            WindowKind::Ingest => "ingest",
            WindowKind::IngestRegion => "ingest_region",
            WindowKind::DeliveryHistory => "delivery_history",
            WindowKind::IngestRegionRecent => "ingest_region_recent",
        }
    }

    /// How fast this kind of window forgets.
    pub fn half_life_ms(self, s: &ScoringSettings) -> f64 {
        match self {
            WindowKind::Delivery | WindowKind::IngestRegionRecent => s.half_life_ms,
            WindowKind::Ingest | WindowKind::IngestRegion | WindowKind::DeliveryHistory => {
                s.ingest_half_life_ms
            }
        }
    }

    pub fn parse(s: &str) -> Option<WindowKind> {
        match s {
            "delivery" => Some(WindowKind::Delivery),
            "ingest" => Some(WindowKind::Ingest),
            "ingest_region" => Some(WindowKind::IngestRegion),
            "delivery_history" => Some(WindowKind::DeliveryHistory),
            "ingest_region_recent" => Some(WindowKind::IngestRegionRecent),
            _ => None,
        }
    }
}

/// The decayed windows one layer holds: this replica's own, or the other replicas'.
#[derive(Debug, Default)]
struct Windows {
    /// (provider, region) → delivery window.
    delivery: HashMap<(String, String), Window>,
    /// provider → delivery window over every region.
    delivery_provider: HashMap<String, Window>,
    /// (provider, region) → delivery over a longer past (the ingest half-life), for push
    /// decisions, which commit for a whole broadcast.
    history: HashMap<(String, String), Window>,
    /// provider → the same over every region.
    history_provider: HashMap<String, Window>,
    /// (provider, anchor) → ingest window.
    ingest: HashMap<(String, String), Window>,
    /// (provider, region) → ingest window over the region's anchors.
    ingest_region: HashMap<(String, String), Window>,
    /// (provider, region) → the same over the recent past (the delivery half-life).
    ingest_region_recent: HashMap<(String, String), Window>,
    /// provider → ingest window over every anchor.
    ingest_provider: HashMap<String, Window>,
}

/// A window as this replica sees it: its own part plus the other replicas', at `now_ms`.
fn layered(local: Option<&Window>, remote: Option<&Window>, now_ms: i64, hl: f64) -> Window {
    let mut w = local.map(|w| w.at(now_ms, hl)).unwrap_or_default();
    if let Some(r) = remote {
        w.merge(r, now_ms, hl);
    }
    w
}

/// Where an observation of an upload comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A viewer's session on the stream, weighed `ingest_viewer_weight`.
    ByViewer,
    /// The ingest itself: an origin callback or a probe.
    AtIngest,
}

/// The stretch of playback one attributed steering reload counts as a whole report for.
pub const RELOAD_REPORT_MS: f64 = 30_000.0;

/// Ingest windows with less weight than this are forgotten.
const FORGET_BELOW: f64 = 0.01;

/// A session not heard from for this long is forgotten: its next report starts a new stint.
const STINT_IDLE_MS: i64 = 600_000;

/// Most sessions followed at once; past that, a new session's reports each count as a stint.
const MAX_STINTS: usize = 1_000_000;

/// Whether a report is a bad session by the policy's thresholds.
pub(super) fn is_bad(
    settings: &ScoringSettings,
    rebuffer_ratio: f64,
    startup_ms: Option<u64>,
    error: bool,
) -> bool {
    settings
        .bad_session
        .is_bad(rebuffer_ratio, startup_ms.map(|ms| ms as f64), error)
}

fn touch<'m, K, Q>(
    map: &'m mut HashMap<K, Window>,
    key: &Q,
    now_ms: i64,
    half_life_ms: f64,
) -> &'m mut Window
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    // The key is copied only for a new window: reports mostly land on existing ones.
    if !map.contains_key(key) {
        map.insert(key.to_owned(), Window::default());
    }
    let w = map.get_mut(key).expect("inserted above when missing");
    w.decay_to(now_ms, half_life_ms);
    w
}

/// One delivery observation, added to a window with a weight.
struct Obs {
    rebuffer_ratio: Option<f64>,
    /// The log of a measured throughput (bits per second).
    throughput: Option<f64>,
    startup_s: Option<f64>,
    error: Option<bool>,
    bad: bool,
    /// What the report adds to the stint windows: bad or not, or nothing (a stint's later
    /// report that tells nothing new).
    stint: Option<bool>,
}

impl Obs {
    fn add_to(&self, w: &mut Window, weight: f64) {
        if let Some(r) = self.rebuffer_ratio {
            w.rebuffer.add(r, weight);
        }
        if let Some(s) = self.startup_s {
            w.startup.add(s, weight);
        }
        if let Some(t) = self.throughput {
            w.throughput.add(t, weight);
        }
        if let Some(e) = self.error {
            w.error.add(f64::from(u8::from(e)), weight);
        }
        w.bad.add(f64::from(u8::from(self.bad)), weight);
        if let Some(b) = self.stint {
            w.stints.add(f64::from(u8::from(b)), weight);
        }
    }
}

impl Engine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one signal observed at `now_ms`.
    pub fn apply(&mut self, signal: &Signal, now_ms: i64, s: &ScoringSettings) {
        let ihl = s.ingest_half_life_ms;
        match signal {
            Signal::Delivery {
                provider,
                region,
                anchor_id,
                played_ms,
                rebuffer_ms,
                startup_ms,
                error,
                session,
                ..
            } => {
                let total = played_ms.saturating_add(*rebuffer_ms);
                let ratio = if total == 0 {
                    0.0
                } else {
                    *rebuffer_ms as f64 / total as f64
                };
                let bad = is_bad(s, ratio, *startup_ms, *error);
                let obs = Obs {
                    rebuffer_ratio: (total > 0).then_some(ratio),
                    throughput: None,
                    startup_s: startup_ms.map(|ms| ms as f64 / 1000.0),
                    error: Some(*error),
                    bad,
                    stint: self.stint(*session, provider, bad, now_ms),
                };
                self.add_delivery(provider, region, &obs, 1.0, now_ms, s);
                if let Some(a) = anchor_id {
                    Audience::add_to(&mut self.audience, a, region, now_ms, ihl);
                    if let Some(home) = self.anchor_region.get(a) {
                        Audience::add_to(&mut self.region_audience, home, region, now_ms, ihl);
                    }
                    self.add_ingest(provider, a, !bad, Seen::ByViewer, now_ms, s);
                }
            }
            Signal::Switch {
                provider,
                region,
                anchor_id,
            } => {
                let obs = Obs {
                    rebuffer_ratio: None,
                    throughput: None,
                    startup_s: None,
                    error: None,
                    bad: true,
                    stint: None,
                };
                self.add_delivery(provider, region, &obs, s.switch_weight, now_ms, s);
                if let Some(a) = anchor_id {
                    self.add_ingest(provider, a, false, Seen::ByViewer, now_ms, s);
                }
            }
            Signal::Reload {
                provider,
                region,
                covered_ms,
                throughput_bps,
                needed_bps,
                ..
            } => {
                if let Some((ratio, bad, weight)) =
                    reload_observation(s, *covered_ms, *throughput_bps, *needed_bps)
                {
                    let obs = Obs {
                        rebuffer_ratio: Some(ratio),
                        throughput: (*throughput_bps > 0).then(|| (*throughput_bps as f64).ln()),
                        startup_s: None,
                        error: None,
                        bad,
                        stint: None,
                    };
                    self.add_delivery(provider, region, &obs, weight, now_ms, s);
                }
            }
            Signal::ProbeFailure {
                provider,
                region,
                share,
            } => {
                // What a failed session adds (an error, a bad session; no rebuffer or startup
                // measured), weighed for the region's viewers, into the same windows, the
                // longer past of push decisions included. Nothing about an anchor's upload.
                let obs = Obs {
                    rebuffer_ratio: None,
                    throughput: None,
                    startup_s: None,
                    error: Some(true),
                    bad: true,
                    stint: None,
                };
                if *share > 0.0 && s.probe_failure_weight > 0.0 {
                    let weight = s.probe_failure_weight * share.min(1.0);
                    self.add_delivery(provider, region, &obs, weight, now_ms, s);
                }
            }
            Signal::Ingest {
                provider,
                anchor_id,
                healthy,
                ..
            } => self.add_ingest(provider, anchor_id, *healthy, Seen::AtIngest, now_ms, s),
        }
    }

    /// What a session's report adds to the stint windows: its stint's first report counts, a
    /// later one only when it is the first to tell a stall. A report on another provider than
    /// the session's last starts a new stint; one without a session is a stint of its own.
    fn stint(
        &mut self,
        session: Option<u64>,
        provider: &str,
        bad: bool,
        now_ms: i64,
    ) -> Option<bool> {
        let Some(key) = session else {
            return Some(bad);
        };
        // A new stint (its provider copied only then: most reports continue one).
        let fresh = || Stint {
            provider: provider.to_string(),
            bad,
            last_ms: now_ms,
        };
        let room = self.stints.len() < MAX_STINTS;
        match self.stints.get_mut(&key) {
            Some(st) if st.provider == provider && now_ms - st.last_ms < STINT_IDLE_MS => {
                st.last_ms = now_ms;
                let first_stall = bad && !st.bad;
                st.bad |= bad;
                return first_stall.then_some(true);
            }
            Some(st) => *st = fresh(),
            None if room => {
                self.stints.insert(key, fresh());
            }
            None => {}
        }
        Some(bad)
    }

    fn add_delivery(
        &mut self,
        provider: &str,
        region: &str,
        obs: &Obs,
        weight: f64,
        now_ms: i64,
        s: &ScoringSettings,
    ) {
        self.add_to_delivery(provider, region, now_ms, s, |w| obs.add_to(w, weight));
    }

    /// Folds what a (provider, region)'s steering reloads added up to since the last drain
    /// ([`super::tally::ReloadTally`]) into its windows: the same sums as applying each reload
    /// as a [`Signal::Reload`].
    pub fn apply_pooled_reloads(
        &mut self,
        provider: &str,
        region: &str,
        pool: &Pooled,
        now_ms: i64,
        s: &ScoringSettings,
    ) {
        if pool.bad.w > 0.0 {
            self.add_to_delivery(provider, region, now_ms, s, |w| {
                w.rebuffer.merge(&pool.rebuffer);
                w.bad.merge(&pool.bad);
                w.throughput.merge(&pool.throughput);
            });
        }
    }

    /// Adds to the delivery windows of (provider, region) and of the provider everywhere, the
    /// recent ones and the longer past of push decisions.
    fn add_to_delivery(
        &mut self,
        provider: &str,
        region: &str,
        now_ms: i64,
        s: &ScoringSettings,
        add: impl Fn(&mut Window),
    ) {
        let key = (provider.to_string(), region.to_string());
        for (map, by_provider, hl) in [
            (
                &mut self.local.delivery,
                &mut self.local.delivery_provider,
                s.half_life_ms,
            ),
            (
                &mut self.local.history,
                &mut self.local.history_provider,
                s.ingest_half_life_ms,
            ),
        ] {
            add(touch(map, &key, now_ms, hl));
            add(touch(by_provider, provider, now_ms, hl));
        }
    }

    fn add_ingest(
        &mut self,
        provider: &str,
        anchor: &str,
        healthy: bool,
        seen: Seen,
        now_ms: i64,
        s: &ScoringSettings,
    ) {
        let hl = s.ingest_half_life_ms;
        let weight = match seen {
            Seen::ByViewer => s.ingest_viewer_weight,
            Seen::AtIngest => 1.0,
        };
        let x = f64::from(u8::from(!healthy));
        touch(
            &mut self.local.ingest,
            &(provider.to_string(), anchor.to_string()),
            now_ms,
            hl,
        )
        .unhealthy
        .add(x, weight);
        if let Some(region) = self.anchor_region.get(anchor).cloned() {
            let key = (provider.to_string(), region);
            touch(&mut self.local.ingest_region, &key, now_ms, hl)
                .unhealthy
                .add(x, weight);
            // Lately, only what the ingest itself shows: a viewer's bad session may be the
            // edge's doing (a crowd past an edge's capacity stalls every stream on it), and is
            // no outage of the uploads.
            if seen == Seen::AtIngest {
                touch(
                    &mut self.local.ingest_region_recent,
                    &key,
                    now_ms,
                    s.half_life_ms,
                )
                .unhealthy
                .add(x, weight);
            }
        }
        touch(&mut self.local.ingest_provider, provider, now_ms, hl)
            .unhealthy
            .add(x, weight);
    }

    /// This replica's own windows, decayed to `now_ms`, for saving: (kind, provider, key,
    /// window). Windows with nothing left in them are skipped.
    pub fn export(
        &self,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> Vec<(WindowKind, String, String, Window)> {
        let mut out = Vec::new();
        for (kind, map) in [
            (WindowKind::Delivery, &self.local.delivery),
            (WindowKind::DeliveryHistory, &self.local.history),
            (WindowKind::Ingest, &self.local.ingest),
            (WindowKind::IngestRegion, &self.local.ingest_region),
            (
                WindowKind::IngestRegionRecent,
                &self.local.ingest_region_recent,
            ),
        ] {
            let hl = kind.half_life_ms(s);
            for ((provider, key), w) in map {
                let w = w.at(now_ms, hl);
                if !w.is_empty() {
                    out.push((kind, provider.clone(), key.clone(), w));
                }
            }
        }
        out
    }

    /// Replaces what the other replicas know (their latest saved windows) and rebuilds the
    /// group windows from it. Counted beside this replica's own windows, never into them, so a
    /// window is never counted twice.
    pub fn set_remote(
        &mut self,
        windows: Vec<(WindowKind, String, String, Window)>,
        now_ms: i64,
        s: &ScoringSettings,
    ) {
        let mut r = Windows::default();
        for (kind, provider, key, w) in windows {
            let hl = kind.half_life_ms(s);
            let w = w.at(now_ms, hl);
            let (by_key, by_provider) = match kind {
                WindowKind::Delivery => (&mut r.delivery, Some(&mut r.delivery_provider)),
                WindowKind::DeliveryHistory => (&mut r.history, Some(&mut r.history_provider)),
                WindowKind::Ingest => (&mut r.ingest, Some(&mut r.ingest_provider)),
                WindowKind::IngestRegion => (&mut r.ingest_region, None),
                WindowKind::IngestRegionRecent => (&mut r.ingest_region_recent, None),
            };
            if let Some(m) = by_provider {
                m.entry(provider.clone()).or_default().merge(&w, now_ms, hl);
            }
            by_key
                .entry((provider, key))
                .or_default()
                .merge(&w, now_ms, hl);
        }
        self.remote = r;
    }

    /// Drains (or undrains) a provider at run time.
    pub fn set_drained(&mut self, provider: &str, drained: bool) {
        if drained {
            self.drained.insert(provider.to_string());
        } else {
            self.drained.remove(provider);
        }
    }

    /// Providers drained at run time.
    pub fn drained(&self) -> &BTreeSet<String> {
        &self.drained
    }

    fn is_drained(&self, s: &ScoringSettings, provider: &str) -> bool {
        self.drained.contains(provider) || s.drained.iter().any(|d| d == provider)
    }

    /// Delivery score of `provider` in `region`, shrunk toward the provider's score everywhere,
    /// which is shrunk toward everyone's, which is shrunk toward the policy's prior.
    pub fn delivery_score(
        &self,
        provider: &str,
        region: &str,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> Score {
        self.delivery_score_over(WindowKind::Delivery, provider, region, now_ms, s)
    }

    /// As [`Engine::delivery_score`] over the longer past (the ingest half-life): what a push,
    /// which commits for a whole broadcast, is decided on. The recent window knows the
    /// incumbent well and every other provider from a handful of reports; an hour knows them
    /// all.
    pub fn history_score(
        &self,
        provider: &str,
        region: &str,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> Score {
        self.delivery_score_over(WindowKind::DeliveryHistory, provider, region, now_ms, s)
    }

    fn delivery_score_over(
        &self,
        kind: WindowKind,
        provider: &str,
        region: &str,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> Score {
        let hl = kind.half_life_ms(s);
        let pw = s.prior_weight;
        let key = (provider.to_string(), region.to_string());
        let (local, local_provider, remote, remote_provider) = match kind {
            WindowKind::DeliveryHistory => (
                &self.local.history,
                &self.local.history_provider,
                &self.remote.history,
                &self.remote.history_provider,
            ),
            _ => (
                &self.local.delivery,
                &self.local.delivery_provider,
                &self.remote.delivery,
                &self.remote.delivery_provider,
            ),
        };
        let prov = layered(
            local_provider.get(provider),
            remote_provider.get(provider),
            now_ms,
            hl,
        );
        let own = layered(local.get(&key), remote.get(&key), now_ms, hl);
        let p = &s.prior;
        // Each level borrows only from data it does not hold itself: the same provider in its
        // other regions, then the policy's prior. (Borrowing from a group that holds one's own
        // data counts it twice. Borrowing from the other providers is biased: their data comes
        // mostly from the incumbent, the best of them, so every little-known provider would
        // look as good as the best.)
        let chain = |f: fn(&Window) -> &Moments, prior: f64| -> f64 {
            let elsewhere = f(&prov).minus(f(&own));
            let mid = elsewhere.shrunk_mean(prior, pw);
            f(&own).shrunk_mean(mid, pw)
        };
        let rebuffer = chain(|w| &w.rebuffer, p.rebuffer_ratio);
        let startup = chain(|w| &w.startup, p.startup_seconds);
        let error = chain(|w| &w.error, p.error_rate);
        let per_report = chain(|w| &w.bad, p.bad_rate);
        let stint_bad_rate = chain(|w| &w.stints, p.bad_rate);
        let stint_sigma =
            (stint_bad_rate * (1.0 - stint_bad_rate) / (own.stints.w + pw).max(1e-9)).sqrt();
        // Over the longer past (push decisions, and the drift alarm's reference), the worse of
        // the two; over the recent window, [`Engine::refresh`] decides (see `stint_rates`).
        let (bad_rate, bad_evidence) = match kind {
            WindowKind::DeliveryHistory if stint_bad_rate > per_report => {
                (stint_bad_rate, &own.stints)
            }
            _ => (per_report, &own.bad),
        };
        let w = &s.weights;
        let cost_per_gb = 0.0;
        let cost = w.rebuffer_ratio * rebuffer
            + w.startup_seconds * startup
            + w.error_rate * error
            + w.bad_rate * bad_rate
            + w.cost_per_gb * cost_per_gb;
        // Posterior spread of each component over the evidence held (prior included). Rates
        // take the Bernoulli variance of their shrunk estimate, never the sample variance: a
        // thin window that happens to hold no bad session would otherwise claim certainty.
        // Continuous quantities take the larger of the sample variance and a floor from the
        // estimate (a coefficient of variation of one for the rebuffer ratio, a fifth for
        // startup).
        let spread = |m: &Moments, var: f64| -> f64 { var / (m.w + pw).max(1e-9) };
        let cont = |m: &Moments, floor: f64| m.variance().unwrap_or(0.0).max(floor);
        let var = w.rebuffer_ratio.powi(2)
            * spread(
                &own.rebuffer,
                cont(&own.rebuffer, rebuffer * rebuffer + 1e-8),
            )
            + w.startup_seconds.powi(2)
                * spread(&own.startup, cont(&own.startup, (startup * 0.2).powi(2)))
            + w.error_rate.powi(2) * spread(&own.error, error * (1.0 - error))
            + w.bad_rate.powi(2) * spread(bad_evidence, bad_rate * (1.0 - bad_rate));
        Score {
            provider: provider.to_string(),
            cost,
            sigma: var.sqrt(),
            samples: own.samples(),
            rebuffer_ratio: rebuffer,
            startup_seconds: startup,
            error_rate: error,
            bad_rate,
            ingest_unhealthy: 0.0,
            share: self.share(region, provider),
            admit: 1.0,
            priced: 0.0,
            stint_bad_rate,
            stint_sigma,
            full: false,
            steady: false,
        }
    }

    /// The rate at which `anchor`'s stream is seen not flowing on `provider`, shrunk toward the
    /// region's anchors on that provider, then the provider, then the prior, and raised by any
    /// outage the region's uploads to the provider show lately; and the region's anchors' rate
    /// over the longer past, which an anchor's play ranking is penalized beyond.
    pub fn ingest_unhealthy(
        &self,
        provider: &str,
        anchor: &str,
        region: &str,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> (f64, f64) {
        let (own, group, _) = self.ingest_estimate(provider, anchor, region, now_ms, s);
        (own, group)
    }

    /// (anchor's estimate, its group's, evidence held for the anchor).
    fn ingest_estimate(
        &self,
        provider: &str,
        anchor: &str,
        region: &str,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> (f64, f64, f64) {
        let hl = s.ingest_half_life_ms;
        let pw = s.prior_weight;
        let r = &self.remote;
        let reg_key = (provider.to_string(), region.to_string());
        let own_key = (provider.to_string(), anchor.to_string());
        let prov = layered(
            self.local.ingest_provider.get(provider),
            r.ingest_provider.get(provider),
            now_ms,
            hl,
        )
        .unhealthy;
        let reg = layered(
            self.local.ingest_region.get(&reg_key),
            r.ingest_region.get(&reg_key),
            now_ms,
            hl,
        )
        .unhealthy;
        let own = layered(
            self.local.ingest.get(&own_key),
            r.ingest.get(&own_key),
            now_ms,
            hl,
        )
        .unhealthy;
        // As for delivery: each level borrows from the data it does not hold itself.
        let other_regions = prov.minus(&reg).shrunk_mean(s.prior.ingest_unhealthy, pw);
        let group = reg.minus(&own).shrunk_mean(other_regions, pw);
        // The region's uploads to the provider lately, against their longer past: an ingest
        // outage there (every anchor of the region at once) is as much worse for each of its
        // anchors, however long its own record. Less one standard deviation, so that the
        // noise of a few seconds' evidence is no outage.
        let recent = layered(
            self.local.ingest_region_recent.get(&reg_key),
            r.ingest_region_recent.get(&reg_key),
            now_ms,
            s.half_life_ms,
        )
        .unhealthy;
        let lately = recent.shrunk_mean(group, pw);
        let doubt = (lately * (1.0 - lately) / (recent.w + pw)).sqrt();
        let outage = (lately - doubt - group).max(0.0);
        ((own.shrunk_mean(group, pw) + outage).min(1.0), group, own.w)
    }

    fn share(&self, region: &str, provider: &str) -> f64 {
        let total: f64 = self
            .shares
            .iter()
            .filter(|((r, _), _)| r == region)
            .map(|(_, m)| m.w)
            .sum();
        let count = self
            .shares
            .get(&(region.to_string(), provider.to_string()))
            .map_or(0.0, |m| m.w);
        super::share::of_firsts(count, total)
    }

    /// Ranks the push candidates (already filtered to providers that cover the region and take
    /// ingest, in the policy's order) for an anchor going live in `region`, remembering the
    /// choice so that the anchor's primary stays put unless a challenger is clearly better.
    ///
    /// A candidate's cost is how well it would serve this anchor's audience: its delivery cost
    /// in each region the anchor's viewers watched from lately (the anchor's own region counts
    /// as `prior_weight` viewers, so a new anchor is placed for its home), plus how poorly this
    /// anchor's upload reaches it. The primary is the cheapest; each backup after it is the one
    /// that adds most, every viewer region being served by the best of the chosen, so that a
    /// provider that is poor at home but best for the viewers abroad still carries the stream.
    ///
    /// Backups are chosen on costs drawn from their posteriors (Thompson sampling) unless
    /// exploration is off, the way play decisions explore: viewers can only be sent to, and so
    /// only learn about, the providers a stream is pushed to, and a provider never pushed to
    /// would stay unknown.
    pub fn ingest_rank<R: Rng + ?Sized>(
        &mut self,
        anchor: &str,
        region: &str,
        candidates: &[String],
        now_ms: i64,
        s: &ScoringSettings,
        rng: &mut R,
    ) -> Vec<Score> {
        self.anchor_region
            .insert(anchor.to_string(), region.to_string());
        let plan = self.push_costs(anchor, region, candidates, now_ms, s);
        let mut scored = plan.scored;
        // A stream's primary is a commitment: rank by the pessimistic cost (one standard
        // deviation worse), so a provider known from a handful of reports does not win on luck.
        // Stable: ties keep the policy's order.
        scored.sort_by(|a, b| (a.0.cost + a.0.sigma).total_cmp(&(b.0.cost + b.0.sigma)));
        if let Some(prev) = self.anchor_primary.get(anchor)
            && let Some(pos) = scored.iter().position(|sc| &sc.0.provider == prev)
            && pos > 0
            && scored[0].0.cost + scored[0].0.sigma >= scored[pos].0.cost * (1.0 - s.ingest_margin)
        {
            let keep = scored.remove(pos);
            scored.insert(0, keep);
        }
        if let Some(first) = scored.first() {
            self.anchor_primary
                .insert(anchor.to_string(), first.0.provider.clone());
        }
        // The backups, one at a time: the one that lowers the audience's best cost most; among
        // those that add nothing (the chosen serve every region best), the cheapest, which is
        // where viewers go when the primary stalls. In `push_exploration_rate` of the pushes
        // (all by default), both on costs drawn from their posteriors, the upload's uncertainty
        // included, so that every provider carries some streams and what viewers and uploads
        // do on it is learned; in the rest on the expected costs, so that those streams carry
        // the providers that serve their audience best (drawn every time, backups spread over
        // every provider about as good on paper, and a region's best second choice carries
        // fewer streams; drawn less often, the best pair carries most streams and has no room
        // left when a crowd fills it). With exploration off (`exploration_rate: 0`) the
        // backups are always the expected best.
        let share = s.push_exploration_rate;
        if s.exploration_rate > 0.0 && (share >= 1.0 || rng.random::<f64>() < share) {
            for (sc, per_region) in scored.iter_mut().skip(1) {
                let d = sc.sigma * normal(rng);
                per_region.iter_mut().for_each(|c| *c += d);
            }
        }
        plan.audience.order_backups(&mut scored);
        scored.into_iter().map(|(sc, ..)| sc).collect()
    }

    /// Whether a live stream of `anchor` pushed to `current` should move, asked again during
    /// its broadcast: the push set [`Engine::ingest_rank`] would choose now on expected costs
    /// (no draws), when it serves the anchor's audience better than `current` does by the
    /// ingest margin, with a standard deviation of doubt on the delivery of every provider it
    /// adds. `None` keeps the stream where it is. A first push made before anything was known
    /// (a new anchor, a cold start) or one whose upload has since failed is corrected this
    /// way, and a stream is not moved for noise: a move costs the anchor a reconnect.
    pub fn ingest_recheck(
        &mut self,
        anchor: &str,
        region: &str,
        current: &[String],
        candidates: &[String],
        now_ms: i64,
        s: &ScoringSettings,
    ) -> Option<Vec<Score>> {
        self.anchor_region
            .insert(anchor.to_string(), region.to_string());
        let plan = self.push_costs(anchor, region, candidates, now_ms, s);
        let mut scored = plan.scored;
        let a = &plan.audience;
        let held: Vec<&[f64]> = scored
            .iter()
            .filter(|(sc, _)| current.contains(&sc.provider))
            .map(|(_, c)| c.as_slice())
            .collect();
        let now_cost = a.cost_of(&held);
        scored.sort_by(|a, b| (a.0.cost + a.0.sigma).total_cmp(&(b.0.cost + b.0.sigma)));
        a.order_backups(&mut scored);
        scored.truncate(current.len().max(1));
        if scored.iter().all(|(sc, _)| current.contains(&sc.provider)) {
            return None;
        }
        // The doubt is on delivery: an upload nobody has seen is as unknown on every provider.
        let doubted: Vec<Vec<f64>> = scored
            .iter()
            .map(|(sc, c)| {
                let d = if current.contains(&sc.provider) {
                    0.0
                } else {
                    self.history_score(&sc.provider, region, now_ms, s).sigma
                };
                c.iter().map(|c| c + d).collect()
            })
            .collect();
        let new_cost = a.cost_of(&doubted.iter().map(Vec::as_slice).collect::<Vec<_>>());
        if new_cost >= now_cost * (1.0 - s.ingest_margin) || new_cost.is_nan() {
            return None;
        }
        if let Some(first) = scored.first() {
            self.anchor_primary
                .insert(anchor.to_string(), first.0.provider.clone());
        }
        Some(scored.into_iter().map(|(sc, ..)| sc).collect())
    }

    /// Where `anchor`'s viewers watch from lately, and each candidate's cost for it: its score
    /// at home (for the admin view and the reason) with `cost` over the audience, and its cost
    /// in each audience region, the upload penalty added, in the audience's order.
    fn push_costs(
        &self,
        anchor: &str,
        region: &str,
        candidates: &[String],
        now_ms: i64,
        s: &ScoringSettings,
    ) -> PushCosts {
        let mut audience = self
            .audience
            .get(anchor)
            .map(|a| a.at(now_ms, s.ingest_half_life_ms))
            .unwrap_or_default();
        // The prior, `prior_weight` viewers: spread as the region's anchors' viewers are, or at
        // home while the region has none.
        let prior = self
            .region_audience
            .get(region)
            .map(|a| a.at(now_ms, s.ingest_half_life_ms))
            .unwrap_or_default();
        let total: f64 = prior.iter().map(|(_, w)| w).sum();
        let prior = if total >= 1.0 {
            prior
                .into_iter()
                .map(|(r, w)| (r, s.prior_weight * w / total))
                .collect()
        } else {
            vec![(region.to_string(), s.prior_weight)]
        };
        for (r, p) in prior {
            match audience.iter_mut().find(|(x, _)| *x == r) {
                Some((_, w)) => *w += p,
                None => audience.push((r, p)),
            }
        }
        // A fixed order, so that sums (and ties) replay exactly.
        audience.sort_by(|a, b| a.0.cmp(&b.0));
        let weights = Weights(audience.iter().map(|(_, w)| *w).collect());
        // Each candidate's score at home, its cost in each audience region (the upload
        // penalty added), and how well its delivery there is known (for the price preference).
        let (mut scored, doubts): (Vec<_>, Vec<Vec<f64>>) = candidates
            .iter()
            .filter(|p| !self.is_drained(s, p))
            .map(|p| {
                let mut sc = self.history_score(p, region, now_ms, s);
                let (unhealthy, _, evidence) = self.ingest_estimate(p, anchor, region, now_ms, s);
                let w = s.weights.ingest_unhealthy;
                let upload = w * unhealthy;
                let (per_region, doubt): (Vec<f64>, Vec<f64>) = audience
                    .iter()
                    .map(|(r, _)| {
                        let (c, d) = if r == region {
                            (sc.cost, sc.sigma)
                        } else {
                            let h = self.history_score(p, r, now_ms, s);
                            (h.cost, h.sigma)
                        };
                        (c + upload, d)
                    })
                    .unzip();
                sc.ingest_unhealthy = unhealthy;
                sc.cost = weights.over(&per_region);
                let var = w * w * (unhealthy * (1.0 - unhealthy)).max(1e-4)
                    / (evidence + s.prior_weight).max(1e-9);
                sc.sigma = (sc.sigma * sc.sigma + var).sqrt();
                ((sc, per_region), doubt)
            })
            .unzip();
        // Price: per audience region, among the candidates known to be within the tolerance
        // of the best there, the cheaper.
        if s.price_tolerance > 0.0 && !self.prices.is_empty() {
            let prices: Vec<f64> = scored
                .iter()
                .map(|(sc, _)| self.prices.get(&sc.provider).copied().unwrap_or(0.0))
                .collect();
            for r in 0..weights.0.len() {
                let costs: Vec<f64> = scored.iter().map(|(_, c)| c[r]).collect();
                let sigmas: Vec<f64> = doubts.iter().map(|d| d[r]).collect();
                let extra = price_preference(&costs, &sigmas, &prices, s);
                for ((sc, c), e) in scored.iter_mut().zip(extra) {
                    c[r] += e;
                    sc.priced += e * weights.0[r];
                }
            }
            let total: f64 = weights.0.iter().sum::<f64>().max(1e-9);
            for (sc, c) in scored.iter_mut() {
                sc.cost = weights.over(c);
                sc.priced /= total;
            }
        }
        PushCosts {
            audience: weights,
            scored,
        }
    }

    /// Builds the snapshot the hot path ranks with, moving incumbents where a challenger has
    /// been better by the margin for the hold time.
    pub fn refresh(&mut self, now_ms: i64, catalog: &Catalog) -> Arc<Snapshot> {
        let s = &catalog.policy.scoring;
        self.prices = catalog
            .registry
            .iter()
            .map(|p| (p.id().to_string(), price(catalog, p.id())))
            .collect();
        self.harvest(now_ms, s);
        if now_ms - self.last_prune_ms > 60_000 {
            self.prune(now_ms, s);
        }
        let mut regions = foldhash::HashMap::default();
        for region in &catalog.policy.regions {
            let control = s.regions.get(&region.id);
            let eligible: Vec<&str> = catalog
                .registry
                .iter()
                .map(|p| p.id())
                .filter(|id| {
                    catalog
                        .registry
                        .get(id)
                        .is_some_and(|p| p.info().covers(&region.id))
                        && !self.is_drained(s, id)
                        && !control.is_some_and(|c| c.exclude.iter().any(|e| e == id))
                })
                .collect();
            let mut scores: Vec<Score> = eligible
                .iter()
                .map(|p| {
                    let mut sc = self.delivery_score(p, &region.id, now_ms, s);
                    sc.cost += s.weights.cost_per_gb * price(catalog, p);
                    sc
                })
                .collect();
            let for_price = price_preference(
                &scores.iter().map(|sc| sc.cost).collect::<Vec<_>>(),
                &scores.iter().map(|sc| sc.sigma).collect::<Vec<_>>(),
                &eligible
                    .iter()
                    .map(|p| price(catalog, p))
                    .collect::<Vec<_>>(),
                s,
            );
            for (sc, extra) in scores.iter_mut().zip(&for_price) {
                sc.cost += extra;
                sc.priced = *extra;
            }
            // By cost; ties keep the policy's preference order.
            let pref = |p: &str| {
                region
                    .providers
                    .iter()
                    .position(|x| x == p)
                    .unwrap_or(usize::MAX)
            };
            let by_cost = |scores: &mut Vec<Score>| {
                scores.sort_by(|a, b| {
                    a.cost
                        .total_cmp(&b.cost)
                        .then(pref(&a.provider).cmp(&pref(&b.provider)))
                })
            };
            by_cost(&mut scores);
            if s.overflow_seconds > 0.0 {
                self.overflow(&region.id, &mut scores, now_ms, s);
            }
            if stint_rates(&mut scores, s) {
                by_cost(&mut scores);
            }
            // The incumbent's recent cost against its longer past, for the drift alarm.
            let past = self
                .incumbents
                .get(&region.id)
                .and_then(|inc| inc.provider.as_deref())
                .and_then(|p| {
                    let at = scores.iter().position(|sc| sc.provider == p)?;
                    let now = &scores[at];
                    // Against its past with the same price preference: price is no drift.
                    let extra = eligible
                        .iter()
                        .position(|e| *e == p)
                        .map_or(0.0, |i| for_price[i]);
                    let past = self.history_score(p, &region.id, now_ms, s).cost + extra;
                    Some((now.cost - now.sigma, past))
                });
            let inc = self.incumbents.entry(region.id.clone()).or_default();
            if let Some((doubted, past)) = past {
                inc.drift.update(
                    doubted,
                    past,
                    now_ms,
                    s.hysteresis_margin,
                    s.drift_alarm_seconds,
                );
            }
            let before = inc.provider.clone();
            hysteresis(inc, &mut scores, now_ms, s);
            if inc.provider != before {
                inc.drift = Drift::default();
            }
            if let Some(pin) = control.and_then(|c| c.pin.as_deref())
                && let Some(pos) = scores.iter().position(|sc| sc.provider == pin)
            {
                let p = scores.remove(pos);
                scores.insert(0, p);
            }
            regions.insert(
                region.id.clone(),
                RegionRank::new(
                    region.id.clone(),
                    scores,
                    inc.clone(),
                    control.cloned().unwrap_or_default(),
                ),
            );
        }
        let anchor_ingest = self.anchor_penalties(now_ms, s);
        let snap = Arc::new(Snapshot::new(
            now_ms,
            regions,
            anchor_ingest,
            s.exploration_rate,
            s.hysteresis_margin,
            s.challenger_share,
        ));
        self.last = Some(snap.clone());
        snap
    }

    /// Updates each provider's admission in `region` from the throughput its players measured
    /// lately against what they got over the longer past (the push decisions' window), and
    /// writes it into the scores. An edge past its capacity gives every player less: the
    /// provider sheds new sessions to the next in order with headroom (see
    /// [`super::snapshot::Snapshot::rank`]) and steering moves some of its players, until its
    /// players' throughput comes back within the margin, so that the overflow goes to the best
    /// provider with room and the full one stays about as good as it was. A provider that
    /// fares worse than over its longer past while it carries more players than it served well
    /// lately, by at most a quarter, is full (see [`Served`]) and sheds the same way; as the
    /// incumbent it keeps first place (see [`hysteresis`]).
    fn overflow(&mut self, region: &str, scores: &mut [Score], now_ms: i64, s: &ScoringSettings) {
        // Each provider's players' throughput, lately and over the longer past.
        type Maps<'a> = (
            &'a HashMap<(String, String), Window>,
            &'a HashMap<(String, String), Window>,
        );
        let throughput = |maps: Maps, key: &(String, String), hl: f64| {
            layered(maps.0.get(key), maps.1.get(key), now_ms, hl).throughput
        };
        let windows: Vec<(Moments, Moments)> = scores
            .iter()
            .map(|sc| {
                let key = (sc.provider.clone(), region.to_string());
                let recent = (&self.local.delivery, &self.remote.delivery);
                let past = (&self.local.history, &self.remote.history);
                (
                    throughput(recent, &key, s.half_life_ms),
                    throughput(past, &key, s.ingest_half_life_ms),
                )
            })
            .collect();
        // The region's reloads over each: a provider's share of them is the part of the
        // region's players it carries, whatever the windows' ages.
        let lately: f64 = windows.iter().map(|w| w.0.w).sum();
        let before: f64 = windows.iter().map(|w| w.1.w).sum();
        for (sc, (recent, past)) in scores.iter_mut().zip(windows) {
            let key = (sc.provider.clone(), region.to_string());
            let load = (recent.w / lately.max(1e-12)) / (past.w / before.max(1e-12)).max(1e-12);
            let loaded = load >= ADMIT_LOAD;
            let (worse, full) = if recent.w >= ADMIT_EVIDENCE {
                // Its quality lately, on the worse of its per-report and per-stint bad rates
                // (as it is ranked while it does not shed), plainly worse than over the longer
                // past.
                let history = self.history_score(&sc.provider, region, now_ms, s);
                let price = self.prices.get(&sc.provider).copied().unwrap_or(0.0);
                let (cost, sigma) = on_stints(sc, s);
                let quality = cost - sc.priced - s.weights.cost_per_gb * price;
                let worse = quality - s.challenger_sigmas * sigma
                    > history.cost * (1.0 + s.hysteresis_margin);
                let served = self.served.entry(key.clone()).or_default();
                let full = served.full(recent.w, worse, now_ms, s.ingest_half_life_ms) && loaded;
                (worse, full)
            } else {
                (false, false)
            };
            sc.steady = recent.w >= ADMIT_EVIDENCE && !worse;
            let known = self.admit.get(&key).copied();
            if past.w < ADMIT_EVIDENCE && known.is_none() {
                continue;
            }
            let past = match known {
                Some(a) if past.w < ADMIT_EVIDENCE => a.base,
                _ => past.sum / past.w,
            };
            let mut a = known.unwrap_or(Admission::new(past, now_ms));
            let over = a.update(
                &recent,
                past,
                loaded,
                full,
                s.hysteresis_margin,
                now_ms,
                s.overflow_seconds,
                s.ingest_half_life_ms,
            );
            sc.admit = a.share;
            sc.full = full;
            if a.share < 1.0 || over || known.is_some() {
                self.admit.insert(key, a);
            }
        }
    }

    /// Folds the last snapshot's decision counters into the decayed shares.
    fn harvest(&mut self, now_ms: i64, s: &ScoringSettings) {
        let f = if self.shares_last_ms > 0 && now_ms > self.shares_last_ms {
            0.5f64.powf((now_ms - self.shares_last_ms) as f64 / s.half_life_ms)
        } else {
            1.0
        };
        self.shares_last_ms = now_ms;
        for m in self.shares.values_mut() {
            m.w *= f;
        }
        if let Some(last) = &self.last {
            for (region, rank) in &last.regions {
                for (provider, n) in rank.firsts() {
                    let n = n.swap(0, Ordering::Relaxed);
                    if n > 0 {
                        self.shares
                            .entry((region.clone(), provider.clone()))
                            .or_default()
                            .w += n as f64;
                    }
                }
            }
        }
    }

    /// Per anchor, how much worse than its group the anchor's upload reaches each provider: the
    /// extra cost the play ranking adds for that anchor's streams.
    fn anchor_penalties(
        &self,
        now_ms: i64,
        s: &ScoringSettings,
    ) -> foldhash::HashMap<String, Vec<(String, f64)>> {
        let mut out: foldhash::HashMap<String, Vec<(String, f64)>> = Default::default();
        let keys: BTreeSet<&(String, String)> = self
            .local
            .ingest
            .keys()
            .chain(self.remote.ingest.keys())
            .collect();
        for (provider, anchor) in keys {
            let region = self
                .anchor_region
                .get(anchor)
                .map(String::as_str)
                .unwrap_or("");
            let (own, group) = self.ingest_unhealthy(provider, anchor, region, now_ms, s);
            let extra = s.weights.ingest_unhealthy * (own - group);
            if extra > 0.01 {
                out.entry(anchor.clone())
                    .or_default()
                    .push((provider.clone(), extra));
            }
        }
        out
    }

    /// Forgets windows whose evidence has decayed away.
    fn prune(&mut self, now_ms: i64, s: &ScoringSettings) {
        let hl = s.ingest_half_life_ms;
        self.local.ingest.retain(|_, w| {
            w.decay_to(now_ms, hl);
            w.unhealthy.w >= FORGET_BELOW
        });
        let live: BTreeSet<&String> = self.local.ingest.keys().map(|(_, a)| a).collect();
        self.anchor_region.retain(|a, _| live.contains(a));
        self.anchor_primary.retain(|a, _| live.contains(a));
        self.audience.retain(|a, _| live.contains(a));
        self.shares.retain(|_, m| m.w >= FORGET_BELOW);
        self.stints
            .retain(|_, st| now_ms - st.last_ms < STINT_IDLE_MS);
        self.last_prune_ms = now_ms;
    }

    /// The region's incumbency, for the admin view.
    pub fn incumbency(&self, region: &str) -> Option<&Incumbency> {
        self.incumbents.get(region)
    }

    /// Windows held: (delivery, ingest).
    pub fn sizes(&self) -> (usize, usize) {
        (self.local.delivery.len(), self.local.ingest.len())
    }
}

/// A push decision's inputs: the audience's weights per region and each candidate's costs.
struct PushCosts {
    audience: Weights,
    scored: Vec<(Score, Vec<f64>)>,
}

/// How many of an anchor's viewers watch from each region (its own region counted as
/// `prior_weight` viewers), in a fixed order.
struct Weights(Vec<f64>);

impl Weights {
    /// A cost per region averaged over the audience.
    fn over(&self, c: &[f64]) -> f64 {
        let total: f64 = self.0.iter().sum::<f64>().max(1e-9);
        self.0.iter().zip(c).map(|(w, c)| w * c).sum::<f64>() / total
    }

    /// What a push set costs the audience: each region served by the best of the set.
    fn cost_of(&self, set: &[&[f64]]) -> f64 {
        let best: Vec<f64> = (0..self.0.len())
            .map(|r| set.iter().map(|c| c[r]).fold(f64::INFINITY, f64::min))
            .collect();
        self.over(&best)
    }

    /// Orders `scored[1..]` (the primary first) one at a time: the one that lowers the
    /// audience's best cost most; among those that add nothing, the cheapest over the audience.
    fn order_backups(&self, scored: &mut Vec<(Score, Vec<f64>)>) {
        let mut best: Vec<f64> = scored.first().map(|f| f.1.clone()).unwrap_or_default();
        for k in 1..scored.len() {
            let gain = |c: &[f64]| -> f64 {
                self.0
                    .iter()
                    .zip(c.iter().zip(&best))
                    .map(|(aw, (c, b))| aw * (b - c).max(0.0))
                    .sum()
            };
            let pick = (k..scored.len())
                .min_by(|&a, &b| {
                    gain(&scored[b].1)
                        .total_cmp(&gain(&scored[a].1))
                        .then(self.over(&scored[a].1).total_cmp(&self.over(&scored[b].1)))
                })
                .unwrap_or(k);
            let chosen = scored.remove(pick);
            for (b, c) in best.iter_mut().zip(&chosen.1) {
                *b = b.min(*c);
            }
            scored.insert(k, chosen);
        }
    }
}

/// What the price preference adds to each cost: up to `price_tolerance` of the best (lowest)
/// cost, in proportion to the provider's price against the dearest's, so that among providers
/// within the tolerance of the best the cheaper ranks first, and one worse by more never passes
/// a better one on price. A provider not known at the margin's scale of the best (its standard
/// deviation, `sigmas`, wider than the hysteresis margin's share of the best cost) gets the
/// dearest's share: it is not known to be within the tolerance, and at a cold start, every
/// provider at the prior, price would otherwise place the cheapest first and push streams to
/// it on no evidence at all. Nothing when the tolerance is 0 or every price is 0.
fn price_preference(
    costs: &[f64],
    sigmas: &[f64],
    prices: &[f64],
    s: &ScoringSettings,
) -> Vec<f64> {
    let tolerance = s.price_tolerance;
    let dearest = prices.iter().copied().fold(0.0, f64::max);
    let best = costs.iter().copied().fold(f64::INFINITY, f64::min);
    if tolerance <= 0.0 || dearest <= 0.0 || !best.is_finite() {
        return vec![0.0; costs.len()];
    }
    let full = tolerance * best.max(0.0);
    prices
        .iter()
        .zip(sigmas)
        .map(|(p, sigma)| {
            if *sigma > s.hysteresis_margin * best {
                full
            } else {
                full * p / dearest
            }
        })
        .collect()
}

/// Ranks each provider on the worse of its per-report and per-stint bad rates (see
/// [`Window::stints`]), but while it sheds new sessions; true if any cost rose. Per report, the
/// bad rate flatters whoever holds first place: most of its evidence is the players who
/// stayed, reporting on and on, while those who stalled have left. A provider drifting worse
/// shows in its new sessions' stints long before it does there. A full edge (shedding, see
/// [`Engine::overflow`]) stalls every new session at once: on its stints it would lose first
/// place to the next, which fills in turn, so the admission share deals with it alone.
fn stint_rates(scores: &mut [Score], s: &ScoringSettings) -> bool {
    let mut rose = false;
    for sc in scores.iter_mut() {
        if sc.admit >= 1.0 && sc.stint_bad_rate > sc.bad_rate {
            (sc.cost, sc.sigma) = on_stints(sc, s);
            sc.bad_rate = sc.stint_bad_rate;
            rose = true;
        }
    }
    rose
}

/// A score's cost and spread on the worse of its per-report and per-stint bad rates: the cost
/// raised by the stints' excess, if any, and the spread by the stints' own.
fn on_stints(sc: &Score, s: &ScoringSettings) -> (f64, f64) {
    (
        sc.cost + s.weights.bad_rate * (sc.stint_bad_rate - sc.bad_rate).max(0.0),
        sc.sigma.max(s.weights.bad_rate * sc.stint_sigma),
    )
}

/// A provider's price per GB (0 when the provider file gives none).
fn price(catalog: &Catalog, provider: &str) -> f64 {
    catalog
        .registry
        .get(provider)
        .and_then(|p| p.info().cost_per_gb)
        .unwrap_or(0.0)
}

/// Reorders `scores` (sorted by cost) so that the incumbent stays first unless the best
/// challenger has been cheaper by the margin for the hold time.
pub(super) fn hysteresis(
    inc: &mut Incumbency,
    scores: &mut Vec<Score>,
    now_ms: i64,
    s: &ScoringSettings,
) {
    let Some(best) = scores.first().map(|b| b.provider.clone()) else {
        inc.provider = None;
        inc.challenger = None;
        return;
    };
    let pos = inc
        .provider
        .as_ref()
        .and_then(|p| scores.iter().position(|sc| &sc.provider == p));
    let Some(pos) = pos else {
        // No incumbent yet, or it is no longer eligible: the best takes over at once.
        inc.guess = scores[0].samples < s.prior_weight;
        inc.provider = Some(best);
        inc.challenger = None;
        inc.displaced = None;
        inc.settle = Settle::default();
        return;
    };
    settle(inc, scores, pos, now_ms, s);
    if pos == 0 {
        // Its own evidence puts it first: no longer a guess.
        if scores[0].samples >= s.prior_weight {
            inc.guess = false;
        }
        inc.challenger = None;
        return;
    }
    // Two tests. On its estimate alone the challenger is better by the margin: it becomes the
    // challenger and gets a canary share of new sessions, so that evidence comes in fast.
    // Better by the margin with `challenger_sigmas` standard deviations of doubt on both sides
    // (the challenger that much worse, the incumbent that much better), for the hold time: it
    // takes first place. A provider known from a handful of lucky reports regresses under the
    // canary traffic and never gets there; a new incumbent still known from its canary share
    // cannot be unseated on its own noise. Confidently better by twice the margin, it takes
    // first place at once: an incumbent failing that plainly is not noise, and every second of
    // the hold sends viewers into it.
    let challenger = &scores[0];
    let incumbent = &scores[pos];
    let factor = 1.0 - s.hysteresis_margin;
    // Both judged on quality: the price preference orders near-equals and places the first
    // where there is none, but price alone never moves first place (nor adds up to it in the
    // summed evidence, see `settle`).
    let (challenger_cost, incumbent_cost) = (quality(challenger), quality(incumbent));
    // A challenger shedding new sessions (its admission share below whole: its players'
    // throughput fell as a full edge's does) does not take first place: between two providers
    // that fill up in turn, first place would flip, and each flip sends every new session to
    // the other until it is full too. The incumbent stays first and overflows to it instead.
    // The provider an incident displaced, coming back, is the exception: its share fell with
    // its quality and grows back as it serves again.
    let returning = inc.displaced.as_ref() == Some(&best);
    let shedding = challenger.admit < 1.0 && !returning;
    // A full incumbent (see `Score::full`) keeps first place and sheds the excess: the fault
    // is its load, and first place would take the load along to the next.
    let full = incumbent.full && !returning;
    // It comes back on its estimate alone once that is known at the margin's scale: a few lucky
    // exploration reports, long after its incident, are no return. Its canary share as the
    // challenger brings the evidence within seconds.
    let known = known_at_margin(challenger, incumbent, s);
    let settled = !shedding
        && !full
        && inc.settle.sums.get(&best).copied().unwrap_or(0.0) >= 2.0 * s.challenger_sigmas.powi(2);
    if challenger_cost < incumbent_cost * factor && !shedding && !full {
        let z = s.challenger_sigmas;
        let doubted = (
            challenger_cost + z * challenger.sigma,
            incumbent_cost - z * incumbent.sigma,
        );
        // An incumbent drifting away from its own past needs no doubt on the challenger's side,
        // nor does the one it displaced in an incident coming back, once known: an estimate
        // better by the margin is enough, for the hold time. Nor does a guess: an incumbent not
        // known at the margin's scale, or one that took first place on the prior (a cold start:
        // first in the policy's order on no evidence) and that its own evidence has not put
        // first since, however many reports its first place has brought it. It is passed once
        // it is worse by the margin with its own doubt, by a challenger with reports of its own
        // (`prior_weight` of them: not the prior alone). The doubt on the challenger keeps a
        // choice made on evidence from being unseated by a lucky few reports; a guess has
        // nothing to keep. While its doubt stands, two thin estimates do not trade places, and
        // a blip on a guess does not hand first place to another guess.
        let guessed = (inc.guess || !known_at_margin(incumbent, incumbent, s))
            && challenger.samples >= s.prior_weight
            && challenger_cost < doubted.1 * factor;
        let confident = doubted.0 < doubted.1 * factor
            || inc.drift.alarm
            || (returning && known)
            || settled
            || guessed;
        let decisive = doubted.0 < doubted.1 * (1.0 - 2.0 * s.hysteresis_margin);
        let since = match &inc.challenger {
            Some((c, since)) if *c == best && *since > 0 => *since,
            _ if confident => now_ms,
            _ => 0,
        };
        let since = if confident { since } else { 0 };
        if confident && (decisive || now_ms - since >= s.hysteresis_hold_ms) {
            inc.guess = challenger.samples < s.prior_weight;
            let before = inc.provider.replace(best);
            // The provider an incident displaced stays displaced while first place moves
            // among the others, until it comes back. So does a guess passed on the
            // challenger's estimate alone (not also with the challenger's doubt): it was given
            // no protection on the way out, and it comes back on the same terms, its own
            // estimate, once that is known.
            let passed_guess = guessed && doubted.0 >= doubted.1 * factor;
            inc.displaced = if returning {
                None
            } else if decisive || passed_guess {
                before
            } else {
                inc.displaced.take()
            };
            inc.challenger = None;
            inc.settle = Settle::default();
            return;
        }
        inc.challenger = Some((best, since));
    } else {
        inc.challenger = None;
    }
    let keep = scores.remove(pos);
    scores.insert(0, keep);
}

/// Whether `sc` is known well enough to be judged against `incumbent` at the margin's scale:
/// its standard deviation within the margin's share of the incumbent's cost. One known from a
/// few exploration reports, its estimate shrunk toward the prior, is too thin to say anything
/// at that scale, either way.
fn known_at_margin(sc: &Score, incumbent: &Score, s: &ScoringSettings) -> bool {
    sc.sigma <= s.hysteresis_margin * quality(incumbent)
}

/// What first place is judged on: the cost less the price preference's part of it
/// (`Score::priced`), which only orders near-equals.
fn quality(sc: &Score) -> f64 {
    sc.cost - sc.priced
}

/// How many standard deviations one window's gap counts for at most, either way.
const SETTLE_Z_CAP: f64 = 4.0;

/// Adds the time since the last call's evidence to `inc.settle` (see [`Settle`]): for each
/// provider but the incumbent (at `pos`), the standardized gap between the incumbent's cost
/// less the margin and its own, one unit per span of the recent window (its half-life over
/// ln 2), summed and floored at zero. A provider plainly better crosses twice the square of
/// `challenger_sigmas` within a few windows; one better by a fraction of a window's doubt, in
/// minutes; between equals, the margin keeps the sums near zero. Only an incumbent steady at
/// its own level is judged so: one that fares worse than over its longer past (a drift, an
/// incident, a load it cannot carry: see the drift alarm and the admission) or sheds restarts
/// the sums, and so does a challenger that sheds.
fn settle(inc: &mut Incumbency, scores: &[Score], pos: usize, now_ms: i64, s: &ScoringSettings) {
    let st = &mut inc.settle;
    let incumbent = &scores[pos];
    let span_ms = s.half_life_ms / std::f64::consts::LN_2;
    let dt = ((now_ms - st.at_ms) as f64).min(span_ms);
    let fresh = st.at_ms == 0;
    st.at_ms = now_ms;
    if !incumbent.steady || incumbent.full || incumbent.admit < 1.0 || fresh || dt < 0.0 {
        st.sums.clear();
        return;
    }
    let factor = 1.0 - s.hysteresis_margin;
    st.sums
        .retain(|p, _| scores.iter().any(|sc| &sc.provider == p));
    for (i, sc) in scores.iter().enumerate() {
        if i == pos {
            continue;
        }
        if sc.admit < 1.0 {
            st.sums.remove(&sc.provider);
            continue;
        }
        if !known_at_margin(sc, incumbent, s) {
            continue;
        }
        let spread = (sc.sigma.powi(2) + (factor * incumbent.sigma).powi(2)).sqrt();
        let z = ((quality(incumbent) * factor - quality(sc)) / spread.max(1e-9))
            .clamp(-SETTLE_Z_CAP, SETTLE_Z_CAP);
        let sum = st.sums.entry(sc.provider.clone()).or_default();
        *sum = (*sum + z * dt / span_ms).max(0.0);
    }
    st.sums.retain(|_, v| *v > 0.0);
}
