//! Steering reloads, pooled where they are answered.
//!
//! Every attributed steering reload is delivery evidence (a [`Signal::Reload`]), and reloads
//! are the most frequent request livesteer answers: a region's whole audience sends one per
//! steering TTL. Sending each through the signal bus would cost a bus slot, three strings and
//! an engine update per request. Instead the request thread adds the reload's observation to
//! the running sums of its (provider, region) here, and the signal consumer folds each pool
//! into the engine's windows once per drain. Within one drain (milliseconds) the sums are the
//! ones the engine would have built report by report: the windows are sums, and their decay
//! over the drain interval is negligible against a half-life of seconds.
//!
//! [`Signal::Reload`]: crate::signals::Signal::Reload

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::window::Moments;
use crate::policy::scoring::ScoringSettings;

/// What the reloads of one (provider, region) added up to since the last drain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pooled {
    /// Reloads pooled (for the signal counters).
    pub reloads: u64,
    /// Weighted rebuffer ratios, as [`super::window::Window::rebuffer`] sums them.
    pub rebuffer: Moments,
    /// Weighted bad sessions (0 or 1).
    pub bad: Moments,
    /// Weighted log throughputs, as [`super::window::Window::throughput`] sums them.
    pub throughput: Moments,
}

/// One attributed reload as a delivery observation: (rebuffer ratio, bad, weight), or `None`
/// when it covers no playback. Throughput under what the stream needs means stalls for at
/// least `1 - throughput/needed` of the time; one session counts as one report per
/// [`super::engine::RELOAD_REPORT_MS`] it covers, however often its player reloads, so that a
/// short steering TTL does not outweigh the viewers who report their QoS.
pub fn reload_observation(
    s: &ScoringSettings,
    covered_ms: u64,
    throughput_bps: u64,
    needed_bps: u64,
) -> Option<(f64, bool, f64)> {
    let ratio = if needed_bps > 0 && throughput_bps < needed_bps {
        1.0 - throughput_bps as f64 / needed_bps as f64
    } else {
        0.0
    };
    let weight = (covered_ms as f64 / super::engine::RELOAD_REPORT_MS).clamp(0.0, 1.0);
    (weight > 0.0).then(|| (ratio, super::engine::is_bad(s, ratio, None, false), weight))
}

/// Request threads add to the shard of their own thread, so that they do not contend.
const SHARDS: usize = 8;

/// provider → region → what its reloads added up to.
type Pools = HashMap<String, HashMap<String, Pooled>>;

/// The pools of every (provider, region), sharded by request thread.
#[derive(Debug, Default)]
pub struct ReloadTally {
    shards: [Mutex<Pools>; SHARDS],
}

fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl ReloadTally {
    /// Pools one attributed reload of a player on `provider` in `region`.
    pub fn add(
        &self,
        s: &ScoringSettings,
        provider: &str,
        region: &str,
        covered_ms: u64,
        throughput_bps: u64,
        needed_bps: u64,
    ) {
        let obs = reload_observation(s, covered_ms, throughput_bps, needed_bps);
        let mut pools = self.shards[shard_of_this_thread()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Keys are copied only the first time a (provider, region) reloads: they stay.
        if !pools.contains_key(provider) {
            pools.insert(provider.to_string(), HashMap::new());
        }
        let regions = pools
            .get_mut(provider)
            .expect("inserted above when missing");
        if !regions.contains_key(region) {
            regions.insert(region.to_string(), Pooled::default());
        }
        let pool = regions
            .get_mut(region)
            .expect("inserted above when missing");
        pool.reloads += 1;
        if let Some((ratio, bad, weight)) = obs {
            pool.rebuffer.add(ratio, weight);
            pool.bad.add(f64::from(u8::from(bad)), weight);
            if throughput_bps > 0 {
                pool.throughput.add((throughput_bps as f64).ln(), weight);
            }
        }
    }

    /// Takes what every (provider, region) pooled since the last call, emptying the pools.
    pub fn drain(&self) -> Vec<(String, String, Pooled)> {
        let mut out: Vec<(String, String, Pooled)> = Vec::new();
        for shard in &self.shards {
            let mut pools = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (provider, regions) in pools.iter_mut() {
                for (region, pool) in regions.iter_mut() {
                    if pool.reloads == 0 {
                        continue;
                    }
                    let pool = std::mem::take(pool);
                    match out
                        .iter_mut()
                        .find(|(p, r, _)| p == provider && r == region)
                    {
                        Some((_, _, sum)) => {
                            sum.reloads += pool.reloads;
                            sum.rebuffer.merge(&pool.rebuffer);
                            sum.bad.merge(&pool.bad);
                            sum.throughput.merge(&pool.throughput);
                        }
                        None => out.push((provider.clone(), region.clone(), pool)),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_sum_what_the_reloads_would_add_one_by_one() {
        let s = ScoringSettings::default();
        let tally = ReloadTally::default();
        let reloads = [
            ("a", "tw", 30_000, 500_000, 2_000_000),
            ("a", "tw", 15_000, 2_500_000, 2_000_000),
            ("a", "hk", 2_000, 100_000, 2_000_000),
            ("b", "tw", 0, 100_000, 2_000_000),
        ];
        std::thread::scope(|scope| {
            for r in reloads {
                let tally = &tally;
                let s = &s;
                scope.spawn(move || tally.add(s, r.0, r.1, r.2, r.3, r.4));
            }
        });
        let mut pools = tally.drain();
        pools.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        let keys: Vec<(&str, &str, u64)> = pools
            .iter()
            .map(|(p, r, pool)| (p.as_str(), r.as_str(), pool.reloads))
            .collect();
        assert_eq!(keys, [("a", "hk", 1), ("a", "tw", 2), ("b", "tw", 1)]);
        let tw = &pools[1].2;
        // 500 kb/s of 2 Mb/s over a whole report, then enough over half of one.
        assert!((tw.rebuffer.w - 1.5).abs() < 1e-9, "{tw:?}");
        assert!((tw.rebuffer.sum - 0.75).abs() < 1e-9, "{tw:?}");
        assert!((tw.bad.sum - 1.0).abs() < 1e-9, "{tw:?}");
        let logs = 500_000f64.ln() + 0.5 * 2_500_000f64.ln();
        assert!((tw.throughput.sum - logs).abs() < 1e-9, "{tw:?}");
        // A reload that covers nothing counts as a reload and weighs nothing.
        assert_eq!(pools[2].2.rebuffer.w, 0.0);
        assert!(
            tally.drain().is_empty(),
            "drained pools start again from nothing"
        );
    }

    #[test]
    fn a_pool_folds_into_the_windows_as_its_reloads_would_one_by_one() {
        use crate::scoring::Engine;
        use crate::signals::Signal;
        let s = ScoringSettings::default();
        let now = 1_800_000_000_000;
        let (mut one_by_one, mut pooled) = (Engine::new(), Engine::new());
        let tally = ReloadTally::default();
        for (i, tp) in [300_000u64, 900_000, 2_400_000, 1_100_000]
            .into_iter()
            .enumerate()
        {
            let covered_ms = 10_000 * (i as u64 + 1);
            let reload = Signal::Reload {
                provider: "a".into(),
                region: "tw".into(),
                anchor_id: Some("anchor".into()),
                covered_ms,
                throughput_bps: tp,
                needed_bps: 2_000_000,
            };
            one_by_one.apply(&reload, now, &s);
            tally.add(&s, "a", "tw", covered_ms, tp, 2_000_000);
        }
        for (provider, region, pool) in tally.drain() {
            pooled.apply_pooled_reloads(&provider, &region, &pool, now, &s);
        }
        let windows = |e: &Engine| {
            let mut w = e.export(now, &s);
            w.sort_by(|x, y| (x.0.as_str(), &x.1, &x.2).cmp(&(y.0.as_str(), &y.1, &y.2)));
            w
        };
        let (a, b) = (windows(&one_by_one), windows(&pooled));
        assert_eq!(a.len(), 2, "delivery and its longer past: {a:?}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.0, &x.1, &x.2), (y.0, &y.1, &y.2));
            for (m, n) in [
                (&x.3.rebuffer, &y.3.rebuffer),
                (&x.3.bad, &y.3.bad),
                (&x.3.throughput, &y.3.throughput),
            ] {
                assert!(
                    (m.w - n.w).abs() < 1e-9 && (m.sum - n.sum).abs() < 1e-9,
                    "{x:?} {y:?}"
                );
                assert!((m.sum_sq - n.sum_sq).abs() < 1e-9, "{x:?} {y:?}");
            }
        }
        assert_eq!(a.len(), b.len());
    }
}
