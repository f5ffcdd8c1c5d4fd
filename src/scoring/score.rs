//! What the engine says of a provider (`Score`) and of a region's first place (`Incumbency`,
//! with its `Drift` detector): the vocabulary the engine builds and the snapshot carries.

use serde::{Deserialize, Serialize};

/// How a provider scores in one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub provider: String,
    /// The ranking cost: lower is better.
    pub cost: f64,
    /// Standard deviation of the cost estimate (what exploration samples with).
    pub sigma: f64,
    /// Reports held in the group's own window (decayed).
    pub samples: f64,
    pub rebuffer_ratio: f64,
    pub startup_seconds: f64,
    pub error_rate: f64,
    pub bad_rate: f64,
    /// Ingest: rate of "not flowing" observations.
    pub ingest_unhealthy: f64,
    /// Share of first places in the group lately.
    pub share: f64,
    /// Share of the new sessions it would get first place for that it takes (1 but while it
    /// overflows, see [`super::engine::Engine::refresh`]); the rest go to the next in order.
    pub admit: f64,
    /// The price preference's part of `cost` (`scoring.price_tolerance`; 0 when off): `cost`
    /// less this is the provider's quality.
    pub priced: f64,
    /// The bad rate per stint (see [`super::window::Window::stints`]) and its standard
    /// deviation. `bad_rate` is the worse of this and the per-report rate, but while the
    /// provider sheds new sessions.
    pub stint_bad_rate: f64,
    pub stint_sigma: f64,
    /// Full: its players fare worse than over its longer past while it carries more of them
    /// than it ever served well lately (see [`super::engine::Engine::refresh`]). It sheds new
    /// sessions and keeps first place: the fault is the load, which shedding takes off.
    pub full: bool,
    /// It carries its players (the evidence for the overflow test) and fares lately within the
    /// margin of its longer past (see [`super::engine::Engine::refresh`]). Only a steady
    /// incumbent is judged on the evidence summed over windows (see [`Settle`]); one whose
    /// quality moves, or that few players report on, on its recent windows alone.
    pub steady: bool,
}

/// The incumbent of a region, and a challenger that looks better: (provider, since when it has
/// been confidently better, 0 while only its estimate is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Incumbency {
    pub provider: Option<String>,
    pub challenger: Option<(String, i64)>,
    /// The incumbent's drift: a one-sided CUSUM of how far its recent cost has stood above
    /// its cost over the longer past (cost × seconds, see [`Drift`]).
    #[serde(default)]
    pub drift: Drift,
    /// The incumbent that lost first place plainly failing (an incident), or as a guess passed
    /// on the challenger's estimate alone (see `guess`), kept while first place moves among the
    /// others: it takes first place back on its estimate alone, without doubt, once that is
    /// better by the margin for the hold time and known at the margin's scale (its deviation
    /// within the margin's share of the incumbent's cost).
    #[serde(default)]
    pub displaced: Option<String>,
    /// The evidence, summed over time, that each other provider is better than the incumbent
    /// by the margin (see [`Settle`]).
    #[serde(default)]
    pub settle: Settle,
    /// The incumbent took first place on the prior, with fewer than `prior_weight` reports of
    /// its own (a cold start), and its own evidence has not yet put it first on its estimate.
    #[serde(default)]
    pub guess: bool,
}

/// A sequential test of each other provider against the incumbent: a one-sided CUSUM of the
/// standardized gap between the incumbent's cost less the margin and the provider's, one unit
/// per span of the recent window. A single window's doubt cannot tell a difference of a few
/// hundredths of cost; windows summed over minutes can. Noise between equals sums to nothing
/// (the margin weighs against the challenger), and the sums restart with each new incumbent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settle {
    /// Per provider, the sum (standard deviations × windows).
    pub sums: std::collections::BTreeMap<String, f64>,
    /// When they were last updated.
    pub at_ms: i64,
}

/// Change-point detection on an incumbent's decayed cost: a one-sided CUSUM of its recent
/// cost (the half-life window, less one standard deviation of doubt) over its cost over the
/// longer past (the ingest half-life) raised by a slack of half the hysteresis margin. Noise
/// around a steady level sums to nothing; a provider degrading step by step stays above its
/// own past, and the sum crosses the alarm level long before its estimate is confidently worse
/// than a challenger known from a handful of reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The sum (cost × seconds).
    pub sum: f64,
    /// When it was last updated.
    pub at_ms: i64,
    /// Whether the sum has crossed the alarm level: a challenger better by the margin on its
    /// estimate then takes first place after the hold, without the doubt.
    pub alarm: bool,
}

impl Drift {
    /// Adds the incumbent's excess from the last update until `now_ms`: its recent cost less
    /// one standard deviation (`doubted`) over its longer past's (`past`). The alarm is raised
    /// at `alarm_seconds` of the slack's worth of excess (never when 0).
    pub fn update(
        &mut self,
        doubted: f64,
        past: f64,
        now_ms: i64,
        margin: f64,
        alarm_seconds: f64,
    ) {
        let dt = if self.at_ms > 0 {
            ((now_ms - self.at_ms) as f64 / 1000.0).clamp(0.0, 10.0)
        } else {
            0.0
        };
        self.at_ms = now_ms;
        let slack = past * (1.0 + margin / 2.0);
        self.sum = (self.sum + dt * (doubted - slack)).max(0.0);
        self.alarm = alarm_seconds > 0.0 && self.sum >= past * (margin / 2.0) * alarm_seconds;
    }
}
