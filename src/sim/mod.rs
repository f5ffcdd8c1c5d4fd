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
//! - [`scenario`]: the world as a file: regions, providers' truth, incidents, anchors.
//! - `world`: the catalog the simulation runs with (the policy, providers that sign nothing),
//!   the scenario's names interned as indexes and its truth in tables by them, anchors and
//!   their broadcasts.
//! - `strategies`: each strategy's push, play and steering decisions.
//! - `viewers`: the sessions in play and the calendar of their reloads, reports and ends.
//! - [`report`]: outcomes, pooled over worlds, as JSON, Markdown or an HTML page.
//! - here: [`run`], one world per seed and strategy in virtual time, on every core.
//!
//! **Architecture invariant:** no copy of the engine's logic lives here. Which providers carry
//! a stream (`steering::carriers`), the policy's order (`steering::ordered`), the maximum-share
//! rule (`scoring::share`) and what makes a session bad (the policy's `scoring.bad_session`)
//! are the server's own.

pub mod report;
pub mod scenario;
mod strategies;
mod viewers;
mod world;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::catalog::Catalog;
use crate::scoring::snapshot::normal;
use crate::signals::{IngestSource, Signal};
use crate::streams::Stream;

pub use report::{Outcome, RegionOutcome, Report, SeedRun, Timeline};
pub use scenario::{Quality, Scenario};
pub use strategies::Strategy;
pub use world::catalog;

use strategies::Runner;
use viewers::Viewers;
use world::{Ix, Live, NONE, World, anchors, new_stream};

const STEP_MS: i64 = 500;
const PROBE_EVERY_MS: i64 = 10_000;
/// Sim time starts here (a fixed instant, so runs replay).
const T0_MS: i64 = 1_800_000_000_000;

/// Simulated seconds since the start.
fn secs(ms: i64) -> f64 {
    (ms - T0_MS) as f64 / 1000.0
}

/// Arrivals in a step at rate `lambda`.
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
            report::pool(
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

/// One strategy in one world (`seed`): anchors go live and broadcast, viewers arrive and play,
/// the truth changes with incidents, probes report (to the engine), step by step in virtual
/// time; `progress` is told the share done.
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
        live.push(Some(Live::new(
            catalog,
            world,
            new_stream(&stream_id, a, world, providers),
            0.0,
            broadcasts.random::<f64>() * scenario.anchors.broadcast_seconds * 2.0,
        )));
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
                    live[i] = Some(Live::new(
                        catalog,
                        world,
                        new_stream(&stream_id, a, world, providers),
                        t,
                        t + len.max(60.0),
                    ));
                }
            }
        }
        // Apps ask again where to push their live broadcasts, as the push answer says.
        let ask_again = catalog.policy.ingest.ask_again_seconds as f64;
        if ask_again > 0.0 && strategy == Strategy::Engine {
            for (i, a) in anchors.iter().enumerate() {
                let Some(l) = &mut live[i] else { continue };
                if t - l.asked_s < ask_again {
                    continue;
                }
                l.asked_s = t;
                if let Some(providers) = runner.repush(a, &l.stream, now) {
                    let stream = Stream {
                        providers,
                        ..l.stream.as_ref().clone()
                    };
                    *l = Live::new(catalog, world, stream, t, l.until_s);
                    viewers.restream(i, l);
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
    report::outcome(
        strategy,
        world,
        viewers.tally,
        arrived,
        &incident_buckets,
        &occ_ix,
    )
}
