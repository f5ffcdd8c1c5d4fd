//! The `scoring:` section: how player reports, probes and switches become a ranking.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Diagnostic;
use super::raw::unspanned;

/// `scoring:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringSpec {
    /// Half-life of the decayed windows: a report this old counts half.
    #[serde(default = "d_half_life")]
    pub half_life_seconds: Spanned<f64>,
    /// Weights of the cost a provider is ranked by (lower is better).
    #[serde(default)]
    pub weights: WeightsSpec,
    /// What makes a session bad.
    #[serde(default)]
    pub bad_session: BadSessionSpec,
    /// What a provider is assumed to be before any report: the group prior at the top of the
    /// Pytheas-style hierarchy (provider × region → provider → everyone).
    #[serde(default)]
    pub prior: PriorSpec,
    /// How many reports the group estimate is worth when a (provider, region) window is thin.
    #[serde(default = "d_prior_weight")]
    pub prior_weight: Spanned<f64>,
    /// A switch away from a provider counts as this many bad reports.
    #[serde(default = "d_switch_weight")]
    pub switch_weight: Spanned<f64>,
    /// A probe run that could not get a live stream from a provider's edge for a region
    /// (refused, timed out, 5xx) counts as this many failed sessions there.
    #[serde(default = "d_probe_failure_weight")]
    pub probe_failure_weight: Spanned<f64>,
    /// Share of play decisions that explore (Thompson sampling) instead of taking the incumbent.
    #[serde(default = "d_exploration")]
    pub exploration_rate: Spanned<f64>,
    /// Share of push decisions whose backups are drawn by Thompson sampling, so that every
    /// provider carries some streams and is learned about; the others take the expected best
    /// for the anchor's audience.
    #[serde(default = "d_push_exploration")]
    pub push_exploration_rate: Spanned<f64>,
    /// A challenger must be cheaper than the incumbent by this fraction of the incumbent's cost.
    #[serde(default = "d_margin")]
    pub hysteresis_margin: Spanned<f64>,
    /// ... for this long, before it takes first place.
    #[serde(default = "d_hold")]
    pub hysteresis_hold_seconds: Spanned<f64>,
    /// ... even this many standard deviations worse than its estimate, so that a provider
    /// known from a handful of reports does not unseat one known from many.
    #[serde(default = "d_challenger_sigmas")]
    pub challenger_sigmas: Spanned<f64>,
    /// While a challenger looks better on its estimate alone, it gets this share of new
    /// sessions, to gather the evidence fast (a canary).
    #[serde(default = "d_challenger_share")]
    pub challenger_share: Spanned<f64>,
    /// Drift detection: an incumbent whose recent cost has stood above its cost over the
    /// longer past by more than half the margin, for about this many seconds' worth of that
    /// excess (a CUSUM), is drifting: a challenger better by the margin on its estimate then
    /// takes first place after the hold, without `challenger_sigmas` of doubt (0: off).
    #[serde(default = "d_drift_alarm")]
    pub drift_alarm_seconds: Spanned<f64>,
    /// Overflow: a provider whose players' throughput has fallen below what it gave with room
    /// by more than a third of the margin (an edge past its capacity) sheds new sessions to
    /// the next in order with headroom: its share of the new sessions it would get halves every
    /// this many seconds while it does, and grows back over ten times as long once it no longer
    /// does (0: off).
    #[serde(default = "d_overflow")]
    pub overflow_seconds: Spanned<f64>,
    /// Price: among providers within this share of the best's cost (quality alone), the cheaper
    /// (the provider files' `cost_per_gb`) ranks first, in plays and pushes; a provider worse by
    /// more never passes a better one on price, nor does one known from the prior alone (not
    /// known to be within the share). Price never moves a region's first place by itself: it
    /// decides who takes it when it moves (0: off).
    #[serde(default = "d_price_tolerance")]
    pub price_tolerance: Spanned<f64>,
    /// Ingest evidence forgets more slowly than delivery: an anchor's uplink to a CDN is a
    /// property of the anchor's network, and "how smoothly this anchor's uploads reached each
    /// CDN before" spans broadcasts. Push decisions rank delivery over this longer past too.
    #[serde(default = "d_ingest_half_life")]
    pub ingest_half_life_seconds: Spanned<f64>,
    /// Ingest: how much a viewer's report on an anchor's stream counts toward that anchor's
    /// upload smoothness to the provider (1 = as much as an ingest probe).
    #[serde(default = "d_viewer_weight")]
    pub ingest_viewer_weight: Spanned<f64>,
    /// Ingest: the anchor's current primary keeps its place unless a challenger is cheaper by
    /// this fraction.
    #[serde(default = "d_ingest_margin")]
    pub ingest_margin: Spanned<f64>,
    /// Providers taken out of new decisions everywhere (ops can also drain at run time).
    #[serde(default)]
    pub drained: Vec<Spanned<String>>,
    /// Per-region controls, by region id.
    #[serde(default)]
    pub regions: BTreeMap<String, Spanned<RegionControlSpec>>,
}

/// Cost weights.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsSpec {
    /// Per unit of rebuffer ratio (rebuffer time / (play + rebuffer time)).
    #[serde(default = "d_w_rebuffer")]
    pub rebuffer_ratio: f64,
    /// Per second of startup time.
    #[serde(default = "d_w_startup")]
    pub startup_seconds: f64,
    /// Per unit of error rate (sessions that failed).
    #[serde(default = "d_w_error")]
    pub error_rate: f64,
    /// Per unit of bad-session rate.
    #[serde(default = "d_w_bad")]
    pub bad_rate: f64,
    /// Per unit of price per GB (0 ranks on quality alone).
    #[serde(default)]
    pub cost_per_gb: f64,
    /// Ingest: per unit of unhealthy-observation rate (stream not flowing to the provider).
    #[serde(default = "d_w_ingest")]
    pub ingest_unhealthy: f64,
}

impl Default for WeightsSpec {
    fn default() -> Self {
        Self {
            rebuffer_ratio: d_w_rebuffer(),
            startup_seconds: d_w_startup(),
            error_rate: d_w_error(),
            bad_rate: d_w_bad(),
            cost_per_gb: 0.0,
            ingest_unhealthy: d_w_ingest(),
        }
    }
}

/// Thresholds of a bad session.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BadSessionSpec {
    /// Rebuffer ratio above this is bad.
    #[serde(default = "d_bad_rebuffer")]
    pub rebuffer_ratio: f64,
    /// Startup above this is bad.
    #[serde(default = "d_bad_startup")]
    pub startup_ms: u64,
}

impl BadSessionSpec {
    /// Whether a session (or a report on one) is bad: it failed, or rebuffered above the
    /// threshold ratio, or took longer than the threshold to start (`startup_ms`, if known).
    /// The engine scores reports by it and the simulator counts sessions by it.
    pub fn is_bad(&self, rebuffer_ratio: f64, startup_ms: Option<f64>, error: bool) -> bool {
        error
            || rebuffer_ratio > self.rebuffer_ratio
            || startup_ms.is_some_and(|ms| ms > self.startup_ms as f64)
    }
}

impl Default for BadSessionSpec {
    fn default() -> Self {
        Self {
            rebuffer_ratio: d_bad_rebuffer(),
            startup_ms: d_bad_startup(),
        }
    }
}

/// Prior means and spreads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSpec {
    #[serde(default = "d_p_rebuffer")]
    pub rebuffer_ratio: f64,
    #[serde(default = "d_p_startup")]
    pub startup_seconds: f64,
    #[serde(default = "d_p_error")]
    pub error_rate: f64,
    #[serde(default = "d_p_bad")]
    pub bad_rate: f64,
    #[serde(default = "d_p_ingest")]
    pub ingest_unhealthy: f64,
}

impl Default for PriorSpec {
    fn default() -> Self {
        Self {
            rebuffer_ratio: d_p_rebuffer(),
            startup_seconds: d_p_startup(),
            error_rate: d_p_error(),
            bad_rate: d_p_bad(),
            ingest_unhealthy: d_p_ingest(),
        }
    }
}

/// Manual controls for one region.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionControlSpec {
    /// Always first here while it can carry the stream.
    #[serde(default)]
    pub pin: Option<String>,
    /// Never chosen here.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Most share of first places a provider may take here (0 to 1).
    #[serde(default)]
    pub max_share: BTreeMap<String, f64>,
    /// Share a provider should get here when its cost is within `commit_tolerance` of the
    /// best (a committed volume).
    #[serde(default)]
    pub commit_share: BTreeMap<String, f64>,
    /// How much dearer (fraction of cost) a committed provider may be and still be promoted.
    #[serde(default)]
    pub commit_tolerance: Option<f64>,
}

impl Default for ScoringSpec {
    fn default() -> Self {
        Self {
            half_life_seconds: d_half_life(),
            weights: WeightsSpec::default(),
            bad_session: BadSessionSpec::default(),
            prior: PriorSpec::default(),
            prior_weight: d_prior_weight(),
            switch_weight: d_switch_weight(),
            probe_failure_weight: d_probe_failure_weight(),
            exploration_rate: d_exploration(),
            push_exploration_rate: d_push_exploration(),
            hysteresis_margin: d_margin(),
            hysteresis_hold_seconds: d_hold(),
            challenger_sigmas: d_challenger_sigmas(),
            challenger_share: d_challenger_share(),
            drift_alarm_seconds: d_drift_alarm(),
            overflow_seconds: d_overflow(),
            price_tolerance: d_price_tolerance(),
            ingest_half_life_seconds: d_ingest_half_life(),
            ingest_viewer_weight: d_viewer_weight(),
            ingest_margin: d_ingest_margin(),
            drained: Vec::new(),
            regions: BTreeMap::new(),
        }
    }
}

fn d_half_life() -> Spanned<f64> {
    unspanned(15.0)
}
fn d_prior_weight() -> Spanned<f64> {
    unspanned(3.0)
}
fn d_switch_weight() -> Spanned<f64> {
    unspanned(3.0)
}
fn d_probe_failure_weight() -> Spanned<f64> {
    unspanned(3.0)
}
fn d_exploration() -> Spanned<f64> {
    unspanned(0.03)
}
fn d_push_exploration() -> Spanned<f64> {
    unspanned(1.0)
}
fn d_margin() -> Spanned<f64> {
    unspanned(0.15)
}
fn d_hold() -> Spanned<f64> {
    unspanned(5.0)
}
fn d_challenger_sigmas() -> Spanned<f64> {
    unspanned(2.0)
}
fn d_challenger_share() -> Spanned<f64> {
    unspanned(0.2)
}
fn d_drift_alarm() -> Spanned<f64> {
    unspanned(30.0)
}
fn d_overflow() -> Spanned<f64> {
    unspanned(60.0)
}
fn d_price_tolerance() -> Spanned<f64> {
    unspanned(0.0)
}
fn d_ingest_half_life() -> Spanned<f64> {
    unspanned(3600.0)
}
fn d_viewer_weight() -> Spanned<f64> {
    unspanned(0.2)
}
fn d_ingest_margin() -> Spanned<f64> {
    unspanned(0.2)
}
fn d_w_rebuffer() -> f64 {
    10.0
}
fn d_w_startup() -> f64 {
    0.1
}
fn d_w_error() -> f64 {
    1.0
}
fn d_w_bad() -> f64 {
    1.0
}
fn d_w_ingest() -> f64 {
    1.0
}
fn d_bad_rebuffer() -> f64 {
    0.01
}
fn d_bad_startup() -> u64 {
    3000
}
fn d_p_rebuffer() -> f64 {
    0.005
}
fn d_p_startup() -> f64 {
    1.0
}
fn d_p_error() -> f64 {
    0.01
}
fn d_p_bad() -> f64 {
    0.05
}
fn d_p_ingest() -> f64 {
    0.05
}

/// Manual controls for one region, validated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegionControl {
    pub pin: Option<String>,
    pub exclude: Vec<String>,
    pub max_share: BTreeMap<String, f64>,
    pub commit_share: BTreeMap<String, f64>,
    pub commit_tolerance: f64,
}

/// `scoring:`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct ScoringSettings {
    pub half_life_ms: f64,
    pub ingest_half_life_ms: f64,
    pub weights: WeightsSpec,
    pub bad_session: BadSessionSpec,
    pub prior: PriorSpec,
    pub prior_weight: f64,
    pub switch_weight: f64,
    pub probe_failure_weight: f64,
    pub exploration_rate: f64,
    pub push_exploration_rate: f64,
    pub hysteresis_margin: f64,
    pub hysteresis_hold_ms: i64,
    pub challenger_sigmas: f64,
    pub challenger_share: f64,
    /// 0: drift detection off.
    pub drift_alarm_seconds: f64,
    /// 0: overflow off.
    pub overflow_seconds: f64,
    /// 0: price preference off.
    pub price_tolerance: f64,
    pub ingest_viewer_weight: f64,
    pub ingest_margin: f64,
    pub drained: Vec<String>,
    pub regions: BTreeMap<String, RegionControl>,
}

impl Default for ScoringSettings {
    fn default() -> Self {
        let mut errs = Vec::new();
        let ids = Default::default();
        ScoringSettings::from_spec(
            Path::new(""),
            &ScoringSpec::default(),
            &ids,
            &ids,
            &mut errs,
        )
    }
}

fn range(
    path: &Path,
    v: &Spanned<f64>,
    lo: f64,
    hi: f64,
    name: &str,
    errs: &mut Vec<Diagnostic>,
) -> f64 {
    if !(v.value.is_finite() && v.value >= lo && v.value <= hi) {
        errs.push(Diagnostic::spanned(
            path,
            v,
            format!("scoring.{name} is {}, must be from {lo} to {hi}", v.value),
        ));
    }
    v.value
}

impl ScoringSettings {
    /// Validates the section; `regions` and `providers` are the known ids.
    pub fn from_spec(
        path: &Path,
        s: &ScoringSpec,
        regions: &std::collections::BTreeSet<String>,
        providers: &std::collections::BTreeSet<String>,
        errs: &mut Vec<Diagnostic>,
    ) -> ScoringSettings {
        let half_life = range(
            path,
            &s.half_life_seconds,
            1.0,
            86_400.0,
            "half_life_seconds",
            errs,
        );
        let ingest_half_life = range(
            path,
            &s.ingest_half_life_seconds,
            1.0,
            30.0 * 86_400.0,
            "ingest_half_life_seconds",
            errs,
        );
        let prior_weight = range(path, &s.prior_weight, 0.0, 10_000.0, "prior_weight", errs);
        let switch_weight = range(path, &s.switch_weight, 0.0, 1_000.0, "switch_weight", errs);
        let probe_failure_weight = range(
            path,
            &s.probe_failure_weight,
            0.0,
            1_000.0,
            "probe_failure_weight",
            errs,
        );
        let exploration = range(
            path,
            &s.exploration_rate,
            0.0,
            0.5,
            "exploration_rate",
            errs,
        );
        let push_exploration = range(
            path,
            &s.push_exploration_rate,
            0.0,
            1.0,
            "push_exploration_rate",
            errs,
        );
        let margin = range(
            path,
            &s.hysteresis_margin,
            0.0,
            10.0,
            "hysteresis_margin",
            errs,
        );
        let hold = range(
            path,
            &s.hysteresis_hold_seconds,
            0.0,
            3_600.0,
            "hysteresis_hold_seconds",
            errs,
        );
        let sigmas = range(
            path,
            &s.challenger_sigmas,
            0.0,
            5.0,
            "challenger_sigmas",
            errs,
        );
        let canary = range(
            path,
            &s.challenger_share,
            0.0,
            0.5,
            "challenger_share",
            errs,
        );
        let viewer = range(
            path,
            &s.ingest_viewer_weight,
            0.0,
            10.0,
            "ingest_viewer_weight",
            errs,
        );
        let ingest_margin = range(path, &s.ingest_margin, 0.0, 10.0, "ingest_margin", errs);
        let drift_alarm = range(
            path,
            &s.drift_alarm_seconds,
            0.0,
            3_600.0,
            "drift_alarm_seconds",
            errs,
        );
        let overflow = range(
            path,
            &s.overflow_seconds,
            0.0,
            3_600.0,
            "overflow_seconds",
            errs,
        );
        let price_tolerance = range(path, &s.price_tolerance, 0.0, 1.0, "price_tolerance", errs);
        let w = &s.weights;
        for (name, v) in [
            ("weights.rebuffer_ratio", w.rebuffer_ratio),
            ("weights.startup_seconds", w.startup_seconds),
            ("weights.error_rate", w.error_rate),
            ("weights.bad_rate", w.bad_rate),
            ("weights.cost_per_gb", w.cost_per_gb),
            ("weights.ingest_unhealthy", w.ingest_unhealthy),
            ("prior.rebuffer_ratio", s.prior.rebuffer_ratio),
            ("prior.startup_seconds", s.prior.startup_seconds),
            ("prior.error_rate", s.prior.error_rate),
            ("prior.bad_rate", s.prior.bad_rate),
            ("prior.ingest_unhealthy", s.prior.ingest_unhealthy),
            ("bad_session.rebuffer_ratio", s.bad_session.rebuffer_ratio),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errs.push(Diagnostic::spanned(
                    path,
                    &s.half_life_seconds,
                    format!("scoring.{name} is {v}, must be a number >= 0"),
                ));
            }
        }
        for (name, v) in [
            ("prior.rebuffer_ratio", s.prior.rebuffer_ratio),
            ("prior.error_rate", s.prior.error_rate),
            ("prior.bad_rate", s.prior.bad_rate),
            ("prior.ingest_unhealthy", s.prior.ingest_unhealthy),
        ] {
            if v > 1.0 {
                errs.push(Diagnostic::at(
                    path,
                    0,
                    format!("scoring.{name} is {v}, must be at most 1"),
                ));
            }
        }
        let mut drained = Vec::new();
        for d in &s.drained {
            if providers.contains(&d.value) {
                drained.push(d.value.clone());
            } else {
                errs.push(Diagnostic::spanned(
                    path,
                    d,
                    format!("scoring.drained: unknown provider id {:?}", d.value),
                ));
            }
        }
        let mut out_regions = BTreeMap::new();
        for (region, spec) in &s.regions {
            let c = &spec.value;
            if !regions.contains(region) {
                errs.push(Diagnostic::spanned(
                    path,
                    spec,
                    format!("scoring.regions: unknown region {region:?}"),
                ));
            }
            let named = c
                .pin
                .iter()
                .map(|p| (p, "pin"))
                .chain(c.exclude.iter().map(|p| (p, "exclude")))
                .chain(c.max_share.keys().map(|p| (p, "max_share")))
                .chain(c.commit_share.keys().map(|p| (p, "commit_share")));
            for (p, what) in named {
                if !providers.contains(p) {
                    errs.push(Diagnostic::spanned(
                        path,
                        spec,
                        format!("scoring.regions.{region}.{what}: unknown provider id {p:?}"),
                    ));
                }
            }
            for (p, share) in c.max_share.iter().chain(c.commit_share.iter()) {
                if !(share.is_finite() && (0.0..=1.0).contains(share)) {
                    errs.push(Diagnostic::spanned(
                        path,
                        spec,
                        format!(
                            "scoring.regions.{region}: share {share} for {p} must be from 0 to 1"
                        ),
                    ));
                }
            }
            let tol = c.commit_tolerance.unwrap_or(0.1);
            if !(tol.is_finite() && (0.0..=10.0).contains(&tol)) {
                errs.push(Diagnostic::spanned(
                    path,
                    spec,
                    format!("scoring.regions.{region}.commit_tolerance {tol} must be from 0 to 10"),
                ));
            }
            out_regions.insert(
                region.clone(),
                RegionControl {
                    pin: c.pin.clone(),
                    exclude: c.exclude.clone(),
                    max_share: c.max_share.clone(),
                    commit_share: c.commit_share.clone(),
                    commit_tolerance: tol,
                },
            );
        }
        ScoringSettings {
            half_life_ms: half_life * 1000.0,
            ingest_half_life_ms: ingest_half_life * 1000.0,
            weights: w.clone(),
            bad_session: s.bad_session.clone(),
            prior: s.prior.clone(),
            prior_weight,
            switch_weight,
            probe_failure_weight,
            exploration_rate: exploration,
            push_exploration_rate: push_exploration,
            hysteresis_margin: margin,
            hysteresis_hold_ms: (hold * 1000.0) as i64,
            challenger_sigmas: sigmas,
            challenger_share: canary,
            drift_alarm_seconds: drift_alarm,
            overflow_seconds: overflow,
            price_tolerance,
            ingest_viewer_weight: viewer,
            ingest_margin,
            drained,
            regions: out_regions,
        }
    }
}

/// `steering:` as written: HLS and DASH Content Steering.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteeringSpec {
    /// How long a player keeps a steering manifest before reloading it (`TTL`).
    #[serde(default = "d_steering_ttl")]
    pub ttl_seconds: Spanned<u64>,
    /// `BANDWIDTH` of each pathway's variant in the multivariant playlist.
    #[serde(default = "d_bandwidth")]
    pub bandwidth_bps: Spanned<u64>,
    /// A player reporting less throughput than this on its pathway (it cannot sustain the
    /// bitrate) is steered off it for `penalty_seconds` (0 turns this off).
    #[serde(default = "d_bandwidth")]
    pub min_throughput_bps: Spanned<u64>,
    /// How long a pathway stays at the back of one player's list after it struggled there.
    #[serde(default = "d_penalty")]
    pub penalty_seconds: Spanned<u64>,
    /// Of the players doing well on a pathway that is no longer about as good as the best,
    /// the share moved at each reload; the rest stay until a later one. A crowd then moves over
    /// many reloads, while the scores see where the load went, instead of all at once onto one
    /// pathway. Players struggling (under `min_throughput_bps`) always move.
    #[serde(default = "d_move_share")]
    pub move_share: Spanned<f64>,
    /// How long a player must have been on a pathway before the throughput it reports counts
    /// for that pathway: a player's estimate (`_HLS_throughput`) covers its recent downloads
    /// over every pathway, and after a move it still carries what the old one measured
    /// (hls.js's slower average has a 9 s half-life on live streams).
    #[serde(default = "d_settle")]
    pub settle_seconds: Spanned<u64>,
    /// How long before a player's URLs expire its steering answer moves it to freshly signed
    /// ones (pathway clones with new query parameters); 0 turns this off.
    #[serde(default = "d_token_refresh")]
    pub token_refresh_seconds: Spanned<u64>,
    /// A pathway whose error rate (failed sessions, probe failures) reaches this moves its
    /// players at once, not `move_share` of them per reload: they are failing, there is no
    /// crowd to protect (an overloaded pathway stalls rather than fails, and moves gradually).
    #[serde(default = "d_failing_error_rate")]
    pub failing_error_rate: Spanned<f64>,
}

impl Default for SteeringSpec {
    fn default() -> Self {
        Self {
            ttl_seconds: d_steering_ttl(),
            bandwidth_bps: d_bandwidth(),
            min_throughput_bps: d_bandwidth(),
            penalty_seconds: d_penalty(),
            move_share: d_move_share(),
            settle_seconds: d_settle(),
            token_refresh_seconds: d_token_refresh(),
            failing_error_rate: d_failing_error_rate(),
        }
    }
}

fn d_move_share() -> Spanned<f64> {
    unspanned(0.05)
}

fn d_settle() -> Spanned<u64> {
    unspanned(8)
}

fn d_failing_error_rate() -> Spanned<f64> {
    unspanned(0.3)
}

fn d_token_refresh() -> Spanned<u64> {
    unspanned(120)
}

fn d_steering_ttl() -> Spanned<u64> {
    unspanned(30)
}
fn d_bandwidth() -> Spanned<u64> {
    unspanned(2_500_000)
}
fn d_penalty() -> Spanned<u64> {
    unspanned(120)
}

/// `steering:`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct SteeringSettings {
    pub ttl_seconds: u64,
    pub bandwidth_bps: u64,
    pub min_throughput_bps: u64,
    pub penalty_seconds: u64,
    pub move_share: f64,
    pub settle_seconds: u64,
    pub token_refresh_seconds: u64,
    pub failing_error_rate: f64,
}

impl SteeringSettings {
    pub fn from_spec(
        path: &Path,
        s: &SteeringSpec,
        errs: &mut Vec<Diagnostic>,
    ) -> SteeringSettings {
        for (name, v, lo, hi) in [
            ("ttl_seconds", &s.ttl_seconds, 1, 86_400),
            ("bandwidth_bps", &s.bandwidth_bps, 1, 1_000_000_000),
            (
                "min_throughput_bps",
                &s.min_throughput_bps,
                0,
                1_000_000_000,
            ),
            ("penalty_seconds", &s.penalty_seconds, 0, 86_400),
            ("settle_seconds", &s.settle_seconds, 0, 3_600),
            ("token_refresh_seconds", &s.token_refresh_seconds, 0, 86_400),
        ] {
            if !(lo..=hi).contains(&v.value) {
                errs.push(Diagnostic::spanned(
                    path,
                    v,
                    format!("steering.{name} is {}, must be from {lo} to {hi}", v.value),
                ));
            }
        }
        let share = s.move_share.value;
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            errs.push(Diagnostic::spanned(
                path,
                &s.move_share,
                format!("steering.move_share is {share}, must be over 0 and at most 1"),
            ));
        }
        let failing = s.failing_error_rate.value;
        if !(failing.is_finite() && failing > 0.0 && failing <= 1.0) {
            errs.push(Diagnostic::spanned(
                path,
                &s.failing_error_rate,
                format!("steering.failing_error_rate is {failing}, must be over 0 and at most 1"),
            ));
        }
        SteeringSettings {
            failing_error_rate: failing,
            ttl_seconds: s.ttl_seconds.value,
            move_share: share,
            bandwidth_bps: s.bandwidth_bps.value,
            min_throughput_bps: s.min_throughput_bps.value,
            penalty_seconds: s.penalty_seconds.value,
            settle_seconds: s.settle_seconds.value,
            token_refresh_seconds: s.token_refresh_seconds.value,
        }
    }
}
