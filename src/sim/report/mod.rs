//! What a run came to: each strategy's outcome per world and pooled over worlds, written as
//! JSON (the types here serialize), as Markdown tables, or as an HTML page ([`html()`]).

mod html;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::secs;
use super::strategies::Strategy;
use super::viewers::Tally;
use super::world::{Ix, NONE, World};

pub use html::html;

/// What a strategy achieved.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub strategy: Strategy,
    /// Sessions counted (joined after the warm-up).
    pub sessions: u64,
    /// Sessions played, the warm-up's included.
    pub simulated_sessions: u64,
    /// Sessions bad by the policy's `scoring.bad_session` (by default: rebuffer ratio over 1%,
    /// startup over 3 s, or an error).
    pub bad_session_rate: f64,
    pub mean_rebuffer_ratio: f64,
    pub mean_startup_ms: f64,
    pub switches_per_session: f64,
    /// What delivering a thousand sessions cost: their playing time at the policy's
    /// `steering.bandwidth_bps`, at each provider's price per GB.
    pub cost_per_1000_sessions: f64,
    /// The mean time a session spent on a pathway, playing or stalled (s): what the cost pays
    /// for. Viewers who give up (a failed session) watch less, and cost less.
    pub mean_watch_seconds: f64,
    /// What an hour of that time cost: the cost with the sessions' length taken out, for
    /// comparing strategies whose viewers stay for different times.
    pub cost_per_watch_hour: f64,
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
    /// Sessions over simulated time, for the HTML report and for `bench/targets.py --loss`.
    pub timeline: Timeline,
}

/// A strategy's sessions over simulated time, in buckets of `bucket_seconds` by when they
/// started (the warm-up included).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub bucket_seconds: f64,
    /// Per bucket: sessions, and bad sessions among them.
    pub sessions: Vec<(u64, u64)>,
    /// `[bucket][region][provider]`: new sessions that started on the provider (the world's
    /// regions and providers in name order).
    pub firsts: Vec<Vec<Vec<u64>>>,
}

impl Timeline {
    pub(super) fn bucket(&self, at_ms: i64) -> usize {
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
pub(super) fn timeline_bucket(duration_seconds: f64) -> f64 {
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

/// One strategy's outcomes over several worlds: sessions pooled, each incident's time to avoid
/// the worst of the worlds (`None` if any world never avoided it).
pub(super) fn pool<'a>(strategy: Strategy, outcomes: impl Iterator<Item = &'a Outcome>) -> Outcome {
    let outcomes: Vec<&Outcome> = outcomes.collect();
    // One world's figures as they are: weighing and dividing back would round them.
    if let [one] = outcomes[..] {
        return one.clone();
    }
    let mut out = Outcome {
        strategy,
        sessions: 0,
        simulated_sessions: 0,
        bad_session_rate: 0.0,
        mean_rebuffer_ratio: 0.0,
        mean_startup_ms: 0.0,
        switches_per_session: 0.0,
        cost_per_1000_sessions: 0.0,
        mean_watch_seconds: 0.0,
        cost_per_watch_hour: 0.0,
        time_to_avoid_seconds: Vec::new(),
        drift_time_to_avoid_seconds: BTreeMap::new(),
        regions: BTreeMap::new(),
        timeline: Timeline::default(),
    };
    for (k, o) in outcomes.into_iter().enumerate() {
        let n = o.sessions as f64;
        out.sessions += o.sessions;
        out.simulated_sessions += o.simulated_sessions;
        out.bad_session_rate += o.bad_session_rate * n;
        out.mean_rebuffer_ratio += o.mean_rebuffer_ratio * n;
        out.mean_startup_ms += o.mean_startup_ms * n;
        out.switches_per_session += o.switches_per_session * n;
        out.cost_per_1000_sessions += o.cost_per_1000_sessions * n;
        out.mean_watch_seconds += o.mean_watch_seconds * n;
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
    out.mean_watch_seconds /= n;
    out.cost_per_watch_hour = per_watch_hour(out.cost_per_1000_sessions, out.mean_watch_seconds);
    out
}

/// Cost per hour watched, from the cost per 1,000 sessions and their mean watch time.
fn per_watch_hour(cost_per_1000_sessions: f64, mean_watch_seconds: f64) -> f64 {
    if mean_watch_seconds > 0.0 {
        cost_per_1000_sessions / 1000.0 / (mean_watch_seconds / 3600.0)
    } else {
        0.0
    }
}

/// What `strategy` achieved in one world: its viewers' `tally`, the sessions that `arrived`,
/// and per incident occurrence (`occurrences`: its provider and region) the new sessions in
/// its region by second and those among them that started on its provider (`buckets`).
pub(super) fn outcome(
    strategy: Strategy,
    world: &World,
    tally: Tally,
    arrived: u64,
    buckets: &[BTreeMap<i64, (u32, u32)>],
    occurrences: &[(Ix, Ix)],
) -> Outcome {
    let scenario = world.scenario;
    let n = tally.sessions.max(1) as f64;
    // Per incident, the worst of its occurrences within the run.
    let duration_s = scenario.duration_seconds.value as f64;
    let mut time_to_avoid_seconds: Vec<Option<f64>> = Vec::new();
    for (k, o) in scenario.occurrences.iter().enumerate() {
        let tta = time_to_avoid(o.start_seconds, &buckets[k]);
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
        let (p, r) = occurrences[k];
        let tta = (p != NONE && r != NONE)
            .then(|| world.twice_the_best(p, r, o.start_seconds, o.end_seconds))
            .flatten()
            .and_then(|at| time_to_avoid(at, &buckets[k]));
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
        mean_watch_seconds: tally.watch_s / n,
        cost_per_watch_hour: per_watch_hour(tally.cost / n * 1000.0, tally.watch_s / n),
        time_to_avoid_seconds,
        drift_time_to_avoid_seconds,
        regions,
        timeline: tally.timeline,
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

/// The summary table's columns: one row per strategy, its cells from [`summary_cells`].
const SUMMARY_COLUMNS: [&str; 9] = [
    "strategy",
    "sessions",
    "bad sessions",
    "mean rebuffer ratio",
    "mean startup ms",
    "switches/session",
    "cost per 1000 sessions",
    "cost per watch hour",
    "time to avoid each incident",
];

/// A strategy's row of the summary table, as text: the Markdown table and the HTML page both
/// write these cells. Each incident's time to avoid, a drift's also from when it got twice as
/// bad as the best other provider.
fn summary_cells(o: &Outcome) -> [String; 9] {
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
    [
        o.strategy.as_str().to_string(),
        o.sessions.to_string(),
        format!("{:.2}%", o.bad_session_rate * 100.0),
        format!("{:.4}", o.mean_rebuffer_ratio),
        format!("{:.0}", o.mean_startup_ms),
        format!("{:.3}", o.switches_per_session),
        format!("{:.2}", o.cost_per_1000_sessions),
        format!("{:.4}", o.cost_per_watch_hour),
        if tta.is_empty() {
            "-".into()
        } else {
            tta.join(", ")
        },
    ]
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
            "scenario {}, {worlds}, {} s simulated, the first {} s not counted ({} sessions played per strategy)\n\n| {} |\n|{}\n",
            self.scenario,
            self.simulated_seconds,
            self.warmup_seconds,
            self.outcomes.first().map_or(0, |o| o.simulated_sessions),
            SUMMARY_COLUMNS.join(" | "),
            "---|".repeat(SUMMARY_COLUMNS.len())
        );
        for o in &self.outcomes {
            out.push_str(&format!("| {} |\n", summary_cells(o).join(" | ")));
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
