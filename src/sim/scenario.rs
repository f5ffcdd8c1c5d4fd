//! The scenario file: a synthetic world with a ground truth that changes over time.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::policy::{Diagnostic, Diagnostics, diag};

/// `scenarios/<name>.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw: the same seed gives the same run.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Simulated time.
    pub duration_seconds: Spanned<u64>,
    /// Time at the start during which every strategy plays and learns but nothing is counted:
    /// a deployed engine is not cold, and the comparison is of steady behaviour.
    #[serde(default)]
    pub warmup_seconds: f64,
    /// New viewer sessions per region (regions must be the policy's).
    pub regions: BTreeMap<String, Spanned<RegionSpec>>,
    /// Ground truth per provider (providers must be the policy's ids).
    pub providers: BTreeMap<String, Spanned<Quality>>,
    /// Per-region deviations: provider → region → quality.
    #[serde(default)]
    pub provider_regions: BTreeMap<String, BTreeMap<String, Quality>>,
    /// Degradations for a while.
    #[serde(default)]
    pub incidents: Vec<Spanned<Incident>>,
    /// Anchors going live.
    #[serde(default)]
    pub anchors: AnchorsSpec,
    /// Sessions.
    #[serde(default)]
    pub sessions: SessionSpec,
}

fn d_seed() -> u64 {
    7
}

/// A region's traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Mean new sessions per second.
    pub sessions_per_second: f64,
    /// Relative traffic by hour of the simulated day (24 values, any scale); flat when empty.
    #[serde(default)]
    pub daily_shape: Vec<f64>,
    /// Start of the simulated day, in hours (0 to 24).
    #[serde(default)]
    pub start_hour: f64,
    /// Extra sessions per second for a while (a flash crowd).
    #[serde(default)]
    pub surges: Vec<Surge>,
}

/// A burst of traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surge {
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub extra_per_second: f64,
}

/// How a provider behaves for a session: the truth players experience.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// Chance that a session stalls (rebuffers noticeably).
    pub stall: f64,
    /// Rebuffer ratio of a stalled session.
    #[serde(default = "d_stall_ratio")]
    pub stall_ratio: f64,
    /// Median time to first frame.
    #[serde(default = "d_startup")]
    pub startup_ms: f64,
    /// Chance that a session fails.
    #[serde(default)]
    pub error: f64,
    /// Throughput a player measures on the pathway (bits per second), what steering's
    /// `min_throughput_bps` is compared with.
    #[serde(default = "d_throughput")]
    pub throughput_bps: f64,
    /// Concurrent sessions the provider serves well in the region; past it the excess share
    /// of sessions cannot get their bitrate (they stall), startup slows and throughput falls in
    /// proportion.
    /// Unlimited when absent.
    #[serde(default)]
    pub capacity_sessions: Option<f64>,
}

impl Quality {
    /// The quality a new session meets while `load` sessions are already being served.
    pub fn under_load(self, load: f64) -> Quality {
        match self.capacity_sessions {
            Some(cap) if load > cap => {
                let util = load / cap.max(1.0);
                Quality {
                    stall: 1.0 - (1.0 - self.stall) / util,
                    startup_ms: self.startup_ms * util,
                    throughput_bps: self.throughput_bps / util,
                    ..self
                }
            }
            _ => self,
        }
    }
}

fn d_stall_ratio() -> f64 {
    0.05
}
fn d_startup() -> f64 {
    900.0
}
fn d_throughput() -> f64 {
    6_000_000.0
}

/// One provider degrading in one region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    pub provider: String,
    pub region: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    /// The quality during the incident.
    pub quality: Quality,
    /// Time to return linearly to normal after `end_seconds`.
    #[serde(default)]
    pub recovery_seconds: f64,
}

/// Anchors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorsSpec {
    /// Anchors per region id.
    #[serde(default)]
    pub per_region: BTreeMap<String, u32>,
    /// Mean length of a broadcast; an anchor goes live again right after.
    #[serde(default = "d_broadcast")]
    pub broadcast_seconds: f64,
    /// Anchors whose uploads reach one provider poorly (their streams stall there for every
    /// viewer) while that provider is fine for everyone else.
    #[serde(default)]
    pub poor_uplinks: Vec<PoorUplink>,
}

impl Default for AnchorsSpec {
    fn default() -> Self {
        Self {
            per_region: BTreeMap::new(),
            broadcast_seconds: d_broadcast(),
            poor_uplinks: Vec::new(),
        }
    }
}

fn d_broadcast() -> f64 {
    1800.0
}

/// Some anchors uploading poorly to a provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoorUplink {
    /// How many of the region's anchors.
    pub count: u32,
    pub region: String,
    pub provider: String,
    /// Chance that a session of such a stream stalls on that provider because of the upload.
    pub stall: f64,
}

/// Sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Mean session length.
    #[serde(default = "d_session")]
    pub mean_seconds: f64,
    /// When a player reports (seconds after it starts; once per session).
    #[serde(default = "d_report_after")]
    pub report_after_seconds: f64,
    /// Spread of measurement noise on reported startup (log-normal sigma).
    #[serde(default = "d_noise")]
    pub noise: f64,
    /// Chance that a stalled or failing player switches to its next candidate.
    #[serde(default = "d_switch")]
    pub switch_on_stall: f64,
    /// How long a player keeps off a pathway it left on a stall or an error (hls.js: 300 s).
    #[serde(default = "d_pathway_penalty")]
    pub pathway_penalty_seconds: f64,
}

impl Default for SessionSpec {
    fn default() -> Self {
        Self {
            mean_seconds: d_session(),
            report_after_seconds: d_report_after(),
            noise: d_noise(),
            switch_on_stall: d_switch(),
            pathway_penalty_seconds: d_pathway_penalty(),
        }
    }
}

fn d_session() -> f64 {
    300.0
}
fn d_report_after() -> f64 {
    10.0
}
fn d_noise() -> f64 {
    0.3
}
fn d_switch() -> f64 {
    0.7
}
fn d_pathway_penalty() -> f64 {
    300.0
}

fn prob(path: &Path, line: u64, name: &str, v: f64, errs: &mut Vec<Diagnostic>) {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        errs.push(Diagnostic::at(
            path,
            line,
            format!("{name} is {v}, must be from 0 to 1"),
        ));
    }
}

fn quality(path: &Path, line: u64, what: &str, q: &Quality, errs: &mut Vec<Diagnostic>) {
    prob(path, line, &format!("{what}.stall"), q.stall, errs);
    prob(
        path,
        line,
        &format!("{what}.stall_ratio"),
        q.stall_ratio,
        errs,
    );
    prob(path, line, &format!("{what}.error"), q.error, errs);
    if !(q.startup_ms.is_finite() && q.startup_ms > 0.0 && q.startup_ms < 600_000.0) {
        errs.push(Diagnostic::at(
            path,
            line,
            format!("{what}.startup_ms must be from 0 to 600000"),
        ));
    }
    if !(q.throughput_bps.is_finite() && q.throughput_bps > 0.0 && q.throughput_bps <= 1e11) {
        errs.push(Diagnostic::at(
            path,
            line,
            format!("{what}.throughput_bps must be from 0 to 100000000000"),
        ));
    }
    if q.capacity_sessions
        .is_some_and(|c| !(c.is_finite() && c >= 1.0))
    {
        errs.push(Diagnostic::at(
            path,
            line,
            format!("{what}.capacity_sessions must be at least 1"),
        ));
    }
}

impl Scenario {
    /// Reads and checks a scenario against the policy's regions and providers.
    pub fn load(
        path: &Path,
        regions: &std::collections::BTreeSet<String>,
        providers: &std::collections::BTreeSet<String>,
    ) -> Result<Scenario, Diagnostics> {
        let s: Scenario = diag::read_yaml(path)?;
        let mut errs = Vec::new();
        let duration = s.duration_seconds.value;
        if !(1..=30 * 86_400).contains(&duration) {
            errs.push(Diagnostic::spanned(
                path,
                &s.duration_seconds,
                "duration_seconds must be from 1 to 2592000",
            ));
        }
        if !(s.warmup_seconds >= 0.0 && s.warmup_seconds < duration as f64) {
            errs.push(Diagnostic::spanned(
                path,
                &s.duration_seconds,
                "warmup_seconds must be from 0 to less than duration_seconds",
            ));
        }
        if s.regions.is_empty() {
            errs.push(Diagnostic::file(
                path,
                "regions: at least one region is required",
            ));
        }
        for (id, r) in &s.regions {
            if !regions.contains(id) {
                errs.push(Diagnostic::spanned(
                    path,
                    r,
                    format!("region {id:?} is not a region of the policy"),
                ));
            }
            let v = &r.value;
            if !(v.sessions_per_second.is_finite()
                && (0.0..=100_000.0).contains(&v.sessions_per_second))
            {
                errs.push(Diagnostic::spanned(
                    path,
                    r,
                    "sessions_per_second must be from 0 to 100000",
                ));
            }
            if !(v.daily_shape.is_empty() || v.daily_shape.len() == 24)
                || v.daily_shape.iter().any(|x| !(x.is_finite() && *x >= 0.0))
            {
                errs.push(Diagnostic::spanned(
                    path,
                    r,
                    "daily_shape must be empty or 24 numbers >= 0",
                ));
            }
        }
        if s.providers.len() < 2 {
            errs.push(Diagnostic::file(
                path,
                "providers: at least two providers are required",
            ));
        }
        for (id, q) in &s.providers {
            if !providers.contains(id) {
                errs.push(Diagnostic::spanned(
                    path,
                    q,
                    format!("provider {id:?} is not a provider of the policy"),
                ));
            }
            quality(path, q.referenced.line(), id, &q.value, &mut errs);
        }
        for (p, by_region) in &s.provider_regions {
            if !s.providers.contains_key(p) {
                errs.push(Diagnostic::file(
                    path,
                    format!("provider_regions: {p:?} is not in providers"),
                ));
            }
            for (r, q) in by_region {
                if !s.regions.contains_key(r) {
                    errs.push(Diagnostic::file(
                        path,
                        format!("provider_regions.{p}: {r:?} is not in regions"),
                    ));
                }
                quality(path, 0, &format!("provider_regions.{p}.{r}"), q, &mut errs);
            }
        }
        for inc in &s.incidents {
            let i = &inc.value;
            if !s.providers.contains_key(&i.provider) || !s.regions.contains_key(&i.region) {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    "incident names a provider or region the scenario lacks",
                ));
            }
            if !(i.start_seconds >= 0.0
                && i.end_seconds > i.start_seconds
                && i.recovery_seconds >= 0.0)
            {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    "incident needs 0 <= start_seconds < end_seconds and recovery_seconds >= 0",
                ));
            }
            quality(
                path,
                inc.referenced.line(),
                "incident.quality",
                &i.quality,
                &mut errs,
            );
        }
        for (r, n) in &s.anchors.per_region {
            if !s.regions.contains_key(r) {
                errs.push(Diagnostic::file(
                    path,
                    format!("anchors.per_region: {r:?} is not in regions"),
                ));
            }
            if *n > 100_000 {
                errs.push(Diagnostic::file(
                    path,
                    "anchors.per_region: at most 100000 per region",
                ));
            }
        }
        if s.anchors.per_region.values().sum::<u32>() == 0 {
            errs.push(Diagnostic::file(
                path,
                "anchors.per_region: at least one anchor is required",
            ));
        }
        for p in &s.anchors.poor_uplinks {
            if !s.providers.contains_key(&p.provider)
                || !s.anchors.per_region.contains_key(&p.region)
            {
                errs.push(Diagnostic::file(
                    path,
                    "anchors.poor_uplinks names a provider or region the scenario lacks",
                ));
            }
            if p.count > s.anchors.per_region.get(&p.region).copied().unwrap_or(0) {
                errs.push(Diagnostic::file(
                    path,
                    "anchors.poor_uplinks: more anchors than the region has",
                ));
            }
            prob(path, 0, "anchors.poor_uplinks.stall", p.stall, &mut errs);
        }
        let ss = &s.sessions;
        if !(ss.mean_seconds > 0.0
            && ss.mean_seconds <= 86_400.0
            && (0.0..=86_400.0).contains(&ss.report_after_seconds)
            && (0.0..=86_400.0).contains(&ss.pathway_penalty_seconds)
            && ss.noise >= 0.0
            && ss.noise < 5.0)
        {
            errs.push(Diagnostic::file(
                path,
                "sessions: mean_seconds from 0 to 86400, report_after_seconds and \
                 pathway_penalty_seconds from 0 to 86400, noise from 0 to 5",
            ));
        }
        prob(
            path,
            0,
            "sessions.switch_on_stall",
            ss.switch_on_stall,
            &mut errs,
        );
        if errs.is_empty() {
            Ok(s)
        } else {
            Err(Diagnostics(errs))
        }
    }

    /// The truth for a provider in a region at `t` seconds.
    pub fn quality(&self, provider: &str, region: &str, t: f64) -> Quality {
        let base = self
            .provider_regions
            .get(provider)
            .and_then(|m| m.get(region))
            .copied()
            .unwrap_or(self.providers[provider].value);
        for inc in &self.incidents {
            let i = &inc.value;
            if i.provider != provider || i.region != region || t < i.start_seconds {
                continue;
            }
            if t < i.end_seconds {
                return Quality {
                    capacity_sessions: i.quality.capacity_sessions.or(base.capacity_sessions),
                    ..i.quality
                };
            }
            let into = t - i.end_seconds;
            if into < i.recovery_seconds {
                let f = 1.0 - into / i.recovery_seconds;
                let mix = |a: f64, b: f64| b + (a - b) * f;
                return Quality {
                    stall: mix(i.quality.stall, base.stall),
                    stall_ratio: mix(i.quality.stall_ratio, base.stall_ratio),
                    startup_ms: mix(i.quality.startup_ms, base.startup_ms),
                    error: mix(i.quality.error, base.error),
                    throughput_bps: mix(i.quality.throughput_bps, base.throughput_bps),
                    capacity_sessions: match (i.quality.capacity_sessions, base.capacity_sessions) {
                        (Some(a), Some(b)) => Some(mix(a, b)),
                        _ => base.capacity_sessions,
                    },
                };
            }
        }
        base
    }

    /// Mean new sessions per second in a region at `t` seconds.
    pub fn arrival_rate(&self, region: &str, t: f64) -> f64 {
        let r = &self.regions[region].value;
        let mut rate = r.sessions_per_second;
        if r.daily_shape.len() == 24 {
            let mean: f64 = r.daily_shape.iter().sum::<f64>() / 24.0;
            if mean > 0.0 {
                let hour = ((r.start_hour + t / 3600.0) % 24.0).floor() as usize;
                rate *= r.daily_shape[hour.min(23)] / mean;
            }
        }
        for s in &r.surges {
            if t >= s.start_seconds && t < s.end_seconds {
                rate += s.extra_per_second;
            }
        }
        rate
    }
}
