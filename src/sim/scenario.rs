//! The scenario file: a synthetic world with a ground truth that changes over time.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::vocab::{Diagnostic, Diagnostics, diag};

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
    /// Price per GB delivered, per provider: overrides the provider file's `cost_per_gb`.
    #[serde(default)]
    pub prices: BTreeMap<String, Spanned<f64>>,
    /// Concurrent sessions a provider serves well over several regions together (one pool of
    /// edges), beside each region's own `capacity_sessions`.
    #[serde(default)]
    pub shared_capacity: Vec<Spanned<SharedCapacity>>,
    /// Uploads of a region's anchors to a provider failing for a while.
    #[serde(default)]
    pub ingest_incidents: Vec<Spanned<IngestIncident>>,
    /// Every incident's occurrences (repeats expanded), in scenario order; built by `load`.
    #[serde(skip)]
    pub occurrences: Vec<Occurrence>,
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
    /// Smooth changes of the traffic (an evening peak building over an hour).
    #[serde(default)]
    pub ramps: Vec<Spanned<Ramp>>,
    /// Share of the region's viewers who watch anchors of their own region; the others, and
    /// every viewer when absent, pick any anchor of the world.
    #[serde(default)]
    pub locality: Option<Spanned<f64>>,
}

/// A smooth change of traffic: from `start_seconds` to `end_seconds` the region's rate is
/// multiplied by a factor moving linearly from 1 to `factor`, which then holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub factor: f64,
}

/// One capacity over several of a provider's regions: past `sessions` concurrent sessions
/// in those regions together, every one of them degrades as past a region's own capacity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedCapacity {
    pub provider: String,
    pub regions: Vec<String>,
    pub sessions: f64,
}

/// A provider's ingest failing for a region's anchors for a while: their streams stall there
/// with the chance `stall` (on top of any poor uplink), for every viewer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestIncident {
    pub provider: String,
    /// The anchors' region.
    pub region: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub stall: f64,
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
            Some(cap) if load > cap => self.degraded(load / cap.max(1.0)),
            _ => self,
        }
    }

    /// The quality at `util` times the sessions it serves well (over 1): the excess share
    /// stalls, startup slows and throughput falls in proportion.
    pub fn degraded(self, util: f64) -> Quality {
        Quality {
            stall: 1.0 - (1.0 - self.stall) / util,
            startup_ms: self.startup_ms * util,
            throughput_bps: self.throughput_bps / util,
            ..self
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
    /// Time over which the quality moves linearly from normal to `quality` from
    /// `start_seconds` (a drift); 0 is a step.
    #[serde(default)]
    pub ramp_seconds: f64,
    /// The incident again every `every_seconds` after its start, `times` in all.
    #[serde(default)]
    pub repeat: Option<Repeat>,
}

/// How an incident repeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub every_seconds: f64,
    pub times: u32,
}

/// One occurrence of an incident: its quality path over time.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// The incident's position in `incidents`.
    pub incident: usize,
    pub provider: String,
    pub region: String,
    pub start_seconds: f64,
    /// When the quality reaches the incident's (the start for a step).
    pub ramped_seconds: f64,
    pub end_seconds: f64,
    pub recovery_seconds: f64,
    pub quality: Quality,
}

impl Occurrence {
    /// The quality at `t` over `base`, if the occurrence has begun and not fully recovered.
    pub fn at(&self, base: Quality, t: f64) -> Option<Quality> {
        if t < self.start_seconds {
            return None;
        }
        let mix = |f: f64| {
            let m = |a: f64, b: f64| b + (a - b) * f;
            Quality {
                stall: m(self.quality.stall, base.stall),
                stall_ratio: m(self.quality.stall_ratio, base.stall_ratio),
                startup_ms: m(self.quality.startup_ms, base.startup_ms),
                error: m(self.quality.error, base.error),
                throughput_bps: m(self.quality.throughput_bps, base.throughput_bps),
                capacity_sessions: match (self.quality.capacity_sessions, base.capacity_sessions) {
                    (Some(a), Some(b)) => Some(m(a, b)),
                    _ => base.capacity_sessions,
                },
            }
        };
        if t < self.ramped_seconds {
            return Some(mix(
                (t - self.start_seconds) / (self.ramped_seconds - self.start_seconds)
            ));
        }
        if t < self.end_seconds {
            return Some(Quality {
                capacity_sessions: self.quality.capacity_sessions.or(base.capacity_sessions),
                ..self.quality
            });
        }
        let into = t - self.end_seconds;
        if into < self.recovery_seconds {
            return Some(mix(1.0 - into / self.recovery_seconds));
        }
        None
    }

    /// When its truth changes: the start, every ten seconds of a ramp, the end, and every
    /// ten seconds of the recovery.
    pub fn changes(&self) -> Vec<f64> {
        let mut at = vec![self.start_seconds];
        let mut r = 10.0;
        while self.start_seconds + r < self.ramped_seconds {
            at.push(self.start_seconds + r);
            r += 10.0;
        }
        at.push(self.end_seconds);
        let mut r = 10.0;
        while r < self.recovery_seconds {
            at.push(self.end_seconds + r);
            r += 10.0;
        }
        at.push(self.end_seconds + self.recovery_seconds);
        at
    }
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
    /// Anchors who are there only for a while: `count` more anchors of `region`, new to
    /// everyone, live from `from_seconds` until `until_seconds` (the end when absent).
    #[serde(default)]
    pub arrivals: Vec<Spanned<AnchorArrival>>,
}

impl Default for AnchorsSpec {
    fn default() -> Self {
        Self {
            per_region: BTreeMap::new(),
            broadcast_seconds: d_broadcast(),
            poor_uplinks: Vec::new(),
            arrivals: Vec::new(),
        }
    }
}

/// Anchors arriving (and leaving) during the run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorArrival {
    pub region: String,
    pub count: u32,
    pub from_seconds: f64,
    #[serde(default)]
    pub until_seconds: Option<f64>,
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
        Self::parse(path, &text, regions, providers)
    }

    /// Parses and checks a scenario's text (`path` names it in errors).
    pub fn parse(
        path: &Path,
        text: &str,
        regions: &std::collections::BTreeSet<String>,
        providers: &std::collections::BTreeSet<String>,
    ) -> Result<Scenario, Diagnostics> {
        let mut s: Scenario = diag::parse_yaml(path, text)?;
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
        if s.anchors.per_region.values().sum::<u32>() == 0 && s.anchors.arrivals.is_empty() {
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
        s.check_additions(path, &mut errs);
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
            s.occurrences = s.expand();
            Ok(s)
        } else {
            Err(Diagnostics(errs))
        }
    }

    /// Checks drifts, repeats, ramps, locality, prices, shared capacities, ingest incidents
    /// and anchor arrivals.
    fn check_additions(&self, path: &Path, errs: &mut Vec<Diagnostic>) {
        let duration = self.duration_seconds.value as f64;
        for (id, r) in &self.regions {
            for ramp in &r.value.ramps {
                let v = &ramp.value;
                if !(v.start_seconds.is_finite()
                    && v.start_seconds >= 0.0
                    && v.end_seconds.is_finite()
                    && v.end_seconds > v.start_seconds)
                {
                    errs.push(Diagnostic::spanned(
                        path,
                        ramp,
                        format!("regions.{id}.ramps: needs 0 <= start_seconds < end_seconds"),
                    ));
                }
                if !(v.factor.is_finite() && v.factor >= 0.0 && v.factor <= 1000.0) {
                    errs.push(Diagnostic::spanned(
                        path,
                        ramp,
                        format!("regions.{id}.ramps: factor must be from 0 to 1000"),
                    ));
                }
            }
            if let Some(l) = &r.value.locality
                && !(l.value.is_finite() && (0.0..=1.0).contains(&l.value))
            {
                errs.push(Diagnostic::spanned(
                    path,
                    l,
                    format!("regions.{id}.locality is {}, must be from 0 to 1", l.value),
                ));
            }
        }
        for inc in &self.incidents {
            let i = &inc.value;
            let span = i.end_seconds - i.start_seconds;
            if !(i.ramp_seconds.is_finite() && i.ramp_seconds >= 0.0 && i.ramp_seconds <= span) {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    "incident ramp_seconds must be from 0 to end_seconds - start_seconds",
                ));
            }
            if let Some(rep) = &i.repeat
                && !(rep.every_seconds.is_finite()
                    && rep.every_seconds >= span + i.recovery_seconds
                    && (1..=10_000).contains(&rep.times))
            {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    "incident repeat: every_seconds must be at least the incident and its \
                     recovery, times from 1 to 10000",
                ));
            }
        }
        for (p, price) in &self.prices {
            if !self.providers.contains_key(p) {
                errs.push(Diagnostic::spanned(
                    path,
                    price,
                    format!("prices: {p:?} is not in providers"),
                ));
            }
            if !(price.value.is_finite() && (0.0..=1000.0).contains(&price.value)) {
                errs.push(Diagnostic::spanned(
                    path,
                    price,
                    format!("prices.{p} must be from 0 to 1000 (per GB)"),
                ));
            }
        }
        for pool in &self.shared_capacity {
            let v = &pool.value;
            if !self.providers.contains_key(&v.provider) {
                errs.push(Diagnostic::spanned(
                    path,
                    pool,
                    format!("shared_capacity: {:?} is not in providers", v.provider),
                ));
            }
            if v.regions.len() < 2 {
                errs.push(Diagnostic::spanned(
                    path,
                    pool,
                    "shared_capacity: regions must name at least two regions",
                ));
            }
            for r in &v.regions {
                if !self.regions.contains_key(r) {
                    errs.push(Diagnostic::spanned(
                        path,
                        pool,
                        format!("shared_capacity: {r:?} is not in regions"),
                    ));
                }
            }
            if !(v.sessions.is_finite() && v.sessions >= 1.0) {
                errs.push(Diagnostic::spanned(
                    path,
                    pool,
                    "shared_capacity: sessions must be at least 1",
                ));
            }
        }
        for inc in &self.ingest_incidents {
            let v = &inc.value;
            if !self.providers.contains_key(&v.provider) {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    format!("ingest_incidents: {:?} is not in providers", v.provider),
                ));
            }
            if !self.regions.contains_key(&v.region) {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    format!("ingest_incidents: {:?} is not in regions", v.region),
                ));
            }
            if !(v.start_seconds >= 0.0 && v.end_seconds > v.start_seconds) {
                errs.push(Diagnostic::spanned(
                    path,
                    inc,
                    "ingest_incidents: needs 0 <= start_seconds < end_seconds",
                ));
            }
            prob(
                path,
                inc.referenced.line(),
                "ingest_incidents.stall",
                v.stall,
                errs,
            );
        }
        for a in &self.anchors.arrivals {
            let v = &a.value;
            if !self.regions.contains_key(&v.region) {
                errs.push(Diagnostic::spanned(
                    path,
                    a,
                    format!("anchors.arrivals: {:?} is not in regions", v.region),
                ));
            }
            if !(1..=100_000).contains(&v.count) {
                errs.push(Diagnostic::spanned(
                    path,
                    a,
                    "anchors.arrivals: count must be from 1 to 100000",
                ));
            }
            let until = v.until_seconds.unwrap_or(duration);
            if !(v.from_seconds.is_finite() && v.from_seconds >= 0.0 && until > v.from_seconds) {
                errs.push(Diagnostic::spanned(
                    path,
                    a,
                    "anchors.arrivals: needs 0 <= from_seconds < until_seconds",
                ));
            }
        }
    }

    /// Every incident's occurrences, repeats expanded.
    fn expand(&self) -> Vec<Occurrence> {
        let mut out = Vec::new();
        for (k, inc) in self.incidents.iter().enumerate() {
            let i = &inc.value;
            let (every, times) = i
                .repeat
                .as_ref()
                .map_or((0.0, 1), |r| (r.every_seconds, r.times));
            for n in 0..times {
                let shift = every * f64::from(n);
                out.push(Occurrence {
                    incident: k,
                    provider: i.provider.clone(),
                    region: i.region.clone(),
                    start_seconds: i.start_seconds + shift,
                    ramped_seconds: i.start_seconds + shift + i.ramp_seconds,
                    end_seconds: i.end_seconds + shift,
                    recovery_seconds: i.recovery_seconds,
                    quality: i.quality,
                });
            }
        }
        out
    }

    /// The provider's quality in a region before incidents.
    pub fn base_quality(&self, provider: &str, region: &str) -> Quality {
        self.provider_regions
            .get(provider)
            .and_then(|m| m.get(region))
            .copied()
            .unwrap_or(self.providers[provider].value)
    }

    /// Extra stall chance of uploads from `region`'s anchors to `provider` at `t` (timed
    /// ingest incidents), at most 1.
    pub fn ingest_stall(&self, provider: &str, region: &str, t: f64) -> f64 {
        let mut ok = 1.0;
        for inc in &self.ingest_incidents {
            let v = &inc.value;
            if v.provider == provider
                && v.region == region
                && t >= v.start_seconds
                && t < v.end_seconds
            {
                ok *= 1.0 - v.stall;
            }
        }
        1.0 - ok
    }

    /// The truth for a provider in a region at `t` seconds: the first occurrence under way
    /// (or recovering), else the normal quality.
    pub fn quality(&self, provider: &str, region: &str, t: f64) -> Quality {
        let base = self.base_quality(provider, region);
        self.occurrences
            .iter()
            .filter(|o| o.provider == provider && o.region == region)
            .find_map(|o| o.at(base, t))
            .unwrap_or(base)
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
        for ramp in &r.ramps {
            let v = &ramp.value;
            if t >= v.start_seconds {
                let f = ((t - v.start_seconds) / (v.end_seconds - v.start_seconds)).min(1.0);
                rate *= 1.0 + (v.factor - 1.0) * f;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const BASE: &str = "\
duration_seconds: 3600
regions:
  tw: { sessions_per_second: 10 }
  hk: { sessions_per_second: 2 }
providers:
  tencent: { stall: 0.02 }
  alibaba: { stall: 0.04 }
anchors:
  per_region: { tw: 4 }
";

    fn parse(extra: &str) -> Result<Scenario, Diagnostics> {
        let regions: BTreeSet<String> = ["tw", "hk", "sea"].map(String::from).into();
        let providers: BTreeSet<String> =
            ["tencent", "alibaba", "local-srs"].map(String::from).into();
        Scenario::parse(
            Path::new("w.yaml"),
            &format!("{BASE}{extra}"),
            &regions,
            &providers,
        )
    }

    /// The one error, as `file:line: message`.
    fn error(extra: &str) -> String {
        let e = parse(extra).expect_err("must be refused");
        assert_eq!(e.0.len(), 1, "{e}");
        e.0[0].to_string()
    }

    #[test]
    fn a_drift_moves_linearly_holds_and_recovers() {
        let s = parse(
            "incidents:\n  - { provider: tencent, region: tw, start_seconds: 100, end_seconds: 400, ramp_seconds: 200, recovery_seconds: 100, quality: { stall: 0.22 } }\n",
        )
        .unwrap();
        let q = |t: f64| s.quality("tencent", "tw", t).stall;
        assert_eq!(q(99.0), 0.02);
        assert!((q(200.0) - 0.12).abs() < 1e-12, "{}", q(200.0));
        assert!((q(300.0) - 0.22).abs() < 1e-12);
        assert!((q(450.0) - 0.12).abs() < 1e-12);
        assert_eq!(q(500.0), 0.02);
        assert_eq!(s.quality("tencent", "hk", 300.0).stall, 0.02);
        let changes = s.occurrences[0].changes();
        assert_eq!(changes[..3], [100.0, 110.0, 120.0]);
        assert!(changes.contains(&400.0) && changes.contains(&500.0));
    }

    #[test]
    fn a_repeating_incident_occurs_every_period() {
        let s = parse(
            "incidents:\n  - { provider: alibaba, region: hk, start_seconds: 60, end_seconds: 120, repeat: { every_seconds: 600, times: 3 }, quality: { stall: 0.5 } }\n",
        )
        .unwrap();
        assert_eq!(s.occurrences.len(), 3);
        let q = |t: f64| s.quality("alibaba", "hk", t).stall;
        assert_eq!([q(90.0), q(690.0), q(1290.0)], [0.5, 0.5, 0.5]);
        assert_eq!([q(300.0), q(1890.0)], [0.04, 0.04]);
    }

    #[test]
    fn a_ramp_changes_traffic_smoothly_and_holds() {
        let s = parse("").unwrap();
        assert_eq!(s.arrival_rate("tw", 500.0), 10.0);
        let text = BASE.replace(
            "tw: { sessions_per_second: 10 }",
            "tw: { sessions_per_second: 10, ramps: [{ start_seconds: 600, end_seconds: 1200, factor: 2 }] }",
        );
        let regions: BTreeSet<String> = ["tw", "hk"].map(String::from).into();
        let providers: BTreeSet<String> = ["tencent", "alibaba"].map(String::from).into();
        let s = Scenario::parse(Path::new("w.yaml"), &text, &regions, &providers).unwrap();
        assert_eq!(s.arrival_rate("tw", 600.0), 10.0);
        assert!((s.arrival_rate("tw", 900.0) - 15.0).abs() < 1e-9);
        assert_eq!(s.arrival_rate("tw", 3000.0), 20.0);
        assert_eq!(s.arrival_rate("hk", 3000.0), 2.0);
    }

    #[test]
    fn ingest_incidents_add_stall_while_they_last() {
        let s = parse(
            "ingest_incidents:\n  - { provider: tencent, region: tw, start_seconds: 10, end_seconds: 20, stall: 0.5 }\n  - { provider: tencent, region: tw, start_seconds: 15, end_seconds: 30, stall: 0.5 }\n",
        )
        .unwrap();
        assert_eq!(s.ingest_stall("tencent", "tw", 5.0), 0.0);
        assert_eq!(s.ingest_stall("tencent", "tw", 12.0), 0.5);
        assert_eq!(s.ingest_stall("tencent", "tw", 16.0), 0.75);
        assert_eq!(s.ingest_stall("alibaba", "tw", 16.0), 0.0);
        assert_eq!(s.ingest_stall("tencent", "tw", 30.0), 0.0);
    }

    #[test]
    fn prices_locality_pools_and_arrivals_parse() {
        let s = parse(
            "prices: { tencent: 0.02 }\nshared_capacity:\n  - { provider: alibaba, regions: [tw, hk], sessions: 500 }\n",
        )
        .unwrap();
        assert_eq!(s.prices["tencent"].value, 0.02);
        assert_eq!(s.shared_capacity[0].value.regions, ["tw", "hk"]);
        let text = format!(
            "{}  arrivals:\n    - {{ region: hk, count: 3, from_seconds: 600, until_seconds: 1200 }}\n",
            BASE.replace(
                "tw: { sessions_per_second: 10 }",
                "tw: { sessions_per_second: 10, locality: 0.8 }"
            )
        );
        let regions: BTreeSet<String> = ["tw", "hk"].map(String::from).into();
        let providers: BTreeSet<String> = ["tencent", "alibaba"].map(String::from).into();
        let s = Scenario::parse(Path::new("w.yaml"), &text, &regions, &providers).unwrap();
        assert_eq!(s.regions["tw"].value.locality.as_ref().unwrap().value, 0.8);
        assert_eq!(s.anchors.arrivals[0].value.count, 3);
    }

    #[test]
    fn a_degraded_quality_stalls_the_excess() {
        let q = Quality {
            stall: 0.0,
            stall_ratio: 0.05,
            startup_ms: 1000.0,
            error: 0.0,
            throughput_bps: 6e6,
            capacity_sessions: Some(100.0),
        };
        assert_eq!(q.under_load(50.0).stall, 0.0);
        let d = q.under_load(200.0);
        assert_eq!(
            (d.stall, d.startup_ms, d.throughput_bps),
            (0.5, 2000.0, 3e6)
        );
        assert_eq!(q.degraded(2.0).stall, 0.5);
    }

    #[test]
    fn mistakes_in_the_additions_name_their_line() {
        let cases = [
            (
                "incidents:\n  - { provider: tencent, region: tw, start_seconds: 100, end_seconds: 200, ramp_seconds: 300, quality: { stall: 0.3 } }\n",
                "w.yaml:11: incident ramp_seconds must be from 0 to end_seconds - start_seconds",
            ),
            (
                "incidents:\n  - { provider: tencent, region: tw, start_seconds: 100, end_seconds: 200, repeat: { every_seconds: 50, times: 2 }, quality: { stall: 0.3 } }\n",
                "w.yaml:11: incident repeat: every_seconds must be at least the incident and its recovery, times from 1 to 10000",
            ),
            (
                "prices:\n  tencent: -1\n",
                "w.yaml:11: prices.tencent must be from 0 to 1000 (per GB)",
            ),
            (
                "prices:\n  local-srs: 0.1\n",
                "w.yaml:11: prices: \"local-srs\" is not in providers",
            ),
            (
                "shared_capacity:\n  - { provider: alibaba, regions: [tw], sessions: 10 }\n",
                "w.yaml:11: shared_capacity: regions must name at least two regions",
            ),
            (
                "shared_capacity:\n  - { provider: alibaba, regions: [tw, sea], sessions: 10 }\n",
                "w.yaml:11: shared_capacity: \"sea\" is not in regions",
            ),
            (
                "shared_capacity:\n  - { provider: alibaba, regions: [tw, hk], sessions: 0 }\n",
                "w.yaml:11: shared_capacity: sessions must be at least 1",
            ),
            (
                "ingest_incidents:\n  - { provider: tencent, region: tw, start_seconds: 10, end_seconds: 5, stall: 0.5 }\n",
                "w.yaml:11: ingest_incidents: needs 0 <= start_seconds < end_seconds",
            ),
            (
                "ingest_incidents:\n  - { provider: tencent, region: tw, start_seconds: 10, end_seconds: 50, stall: 1.5 }\n",
                "w.yaml:11: ingest_incidents.stall is 1.5, must be from 0 to 1",
            ),
            (
                "ingest_incidents:\n  - { provider: local-srs, region: tw, start_seconds: 10, end_seconds: 50, stall: 0.5 }\n",
                "w.yaml:11: ingest_incidents: \"local-srs\" is not in providers",
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(error(extra), want, "for {extra}");
        }
        let region_cases = [
            (
                "tw: { sessions_per_second: 10, ramps: [{ start_seconds: 600, end_seconds: 100, factor: 2 }] }",
                "w.yaml:3: regions.tw.ramps: needs 0 <= start_seconds < end_seconds",
            ),
            (
                "tw: { sessions_per_second: 10, ramps: [{ start_seconds: 0, end_seconds: 100, factor: -2 }] }",
                "w.yaml:3: regions.tw.ramps: factor must be from 0 to 1000",
            ),
            (
                "tw: { sessions_per_second: 10, locality: 1.2 }",
                "w.yaml:3: regions.tw.locality is 1.2, must be from 0 to 1",
            ),
        ];
        let regions: BTreeSet<String> = ["tw", "hk"].map(String::from).into();
        let providers: BTreeSet<String> = ["tencent", "alibaba"].map(String::from).into();
        for (line, want) in region_cases {
            let text = BASE.replace("tw: { sessions_per_second: 10 }", line);
            let e = Scenario::parse(Path::new("w.yaml"), &text, &regions, &providers)
                .expect_err("must be refused");
            assert_eq!(e.to_string(), want);
        }
        for (arrival, want) in [
            (
                "{ region: sea, count: 3, from_seconds: 600 }",
                "w.yaml:11: anchors.arrivals: \"sea\" is not in regions",
            ),
            (
                "{ region: hk, count: 0, from_seconds: 600 }",
                "w.yaml:11: anchors.arrivals: count must be from 1 to 100000",
            ),
            (
                "{ region: hk, count: 2, from_seconds: 600, until_seconds: 300 }",
                "w.yaml:11: anchors.arrivals: needs 0 <= from_seconds < until_seconds",
            ),
        ] {
            let e = parse(&format!("  arrivals:\n    - {arrival}\n")).expect_err("refused");
            assert_eq!(e.to_string(), want);
        }
    }
}
