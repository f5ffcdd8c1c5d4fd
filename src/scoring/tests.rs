//! Engine tests in virtual time: a seeded world reports on whichever provider the engine puts
//! first, as players would.

use std::collections::HashMap;
use std::path::Path;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::catalog::Catalog;
use crate::policy::scoring::ScoringSettings;
use crate::signals::{IngestSource, Signal};
use crate::vocab::Protocol;
use crate::vocab::SecretMode;

/// Every vendor (test keys) under the shipped policy.
pub(crate) fn catalog() -> Catalog {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let secrets: HashMap<String, String> = [
        ("TENCENT_CSS_PUSH_KEY", "k1"),
        ("TENCENT_CSS_PLAY_KEY", "k2"),
        ("ALIBABA_LIVE_PUSH_KEY", "k3"),
        ("ALIBABA_LIVE_PLAY_KEY", "k4"),
        ("AKAMAI_EDGEAUTH_KEY", "0a0b0c0d"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Catalog::load(
        &root.join("tests/data/providers-all"),
        &root.join("policies/default.yaml"),
        &secrets,
        SecretMode::Require,
    )
    .unwrap()
}

/// Ground truth per provider: chance a session is bad, and its startup.
#[derive(Clone, Copy)]
struct Truth {
    bad: f64,
    startup_ms: u64,
}

/// The world's seed; `SCORING_SEED` replays another one.
fn seed() -> u64 {
    std::env::var("SCORING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

const TW: &str = "tw";
/// A busy region: 30 new sessions a second (about 100,000 an hour).
const SESSIONS_PER_SECOND: u64 = 30;
const CARRIERS: [&str; 4] = ["tencent", "alibaba", "local-srs", "local-nginx"];

struct World {
    engine: Engine,
    catalog: Catalog,
    rng: SmallRng,
    now_ms: i64,
    truth: HashMap<&'static str, Truth>,
    /// When set, each session's player also reloads steering once, measuring this throughput
    /// (bits per second) on its provider.
    throughput: Option<HashMap<&'static str, u64>>,
    snapshot: std::sync::Arc<Snapshot>,
    /// New sessions per second, against `SESSIONS_PER_SECOND`.
    scale: f64,
    /// Sessions per second a provider serves well: past it, the excess share of its sessions
    /// stall, and its players' throughput falls in proportion (an edge past its capacity).
    capacity: HashMap<&'static str, f64>,
    /// Per provider, its sessions of the last moments (decayed with `LOAD_HALF_LIFE_S`).
    load: HashMap<&'static str, f64>,
}

/// How fast a provider's load (`World::load`) forgets.
const LOAD_HALF_LIFE_S: f64 = 5.0;

impl World {
    fn new(truth: [(&'static str, f64, u64); 4]) -> Self {
        let catalog = catalog();
        let mut engine = Engine::new();
        let now_ms = 1_800_000_000_000;
        let snapshot = engine.refresh(now_ms, &catalog);
        World {
            engine,
            catalog,
            rng: SmallRng::seed_from_u64(seed()),
            now_ms,
            truth: truth
                .into_iter()
                .map(|(p, bad, startup_ms)| (p, Truth { bad, startup_ms }))
                .collect(),
            throughput: None,
            snapshot,
            scale: 1.0,
            capacity: HashMap::new(),
            load: HashMap::new(),
        }
    }

    /// How far past its capacity `p` is now (1 within it).
    fn util(&self, p: &str) -> f64 {
        let Some(cap) = self.capacity.get(p) else {
            return 1.0;
        };
        let rate =
            self.load.get(p).copied().unwrap_or(0.0) * std::f64::consts::LN_2 / LOAD_HALF_LIFE_S;
        (rate / cap).max(1.0)
    }

    fn first(&self) -> String {
        self.snapshot.region(TW).unwrap().order[0].provider.clone()
    }

    /// Runs `secs` of virtual time: `SESSIONS_PER_SECOND` (times `scale`) sessions start on the
    /// provider ranked first for them, each reporting once; the snapshot is rebuilt every
    /// 500 ms. Returns the first place after every rebuild.
    fn run(&mut self, secs: u64) -> Vec<String> {
        let mut firsts = Vec::new();
        let per_tick = SESSIONS_PER_SECOND as f64 / 10.0 * self.scale;
        let decay = 0.5f64.powf(0.1 / LOAD_HALF_LIFE_S);
        let mut owed = 0.0;
        for tick in 0..secs * 10 {
            self.now_ms += 100;
            self.load.values_mut().for_each(|l| *l *= decay);
            owed += per_tick;
            while owed >= 1.0 {
                owed -= 1.0;
                self.session();
            }
            if tick % 5 == 4 {
                self.snapshot = self.engine.refresh(self.now_ms, &self.catalog);
                firsts.push(self.first());
            }
        }
        firsts
    }

    fn session(&mut self) {
        {
            let (order, _) = self.snapshot.rank(TW, None, &CARRIERS, &mut self.rng);
            let p = order[0];
            let t = self.truth[p];
            *self.load.entry(p).or_default() += 1.0;
            let util = self.util(p);
            let bad = if util > 1.0 {
                1.0 - (1.0 - t.bad) / util
            } else {
                t.bad
            };
            let is_bad = self.rng.random::<f64>() < bad;
            let jitter = self.rng.random_range(0..400);
            let signal = Signal::Delivery {
                provider: p.to_string(),
                region: TW.to_string(),
                protocol: Protocol::Flv,
                anchor_id: None,
                played_ms: 30_000,
                rebuffer_ms: if is_bad { 1_500 } else { 0 },
                rebuffer_count: u32::from(is_bad),
                startup_ms: Some(t.startup_ms + jitter),
                error: false,
                session: None,
            };
            self.engine
                .apply(&signal, self.now_ms, &self.catalog.policy.scoring);
            // A stalled player of a provider with a capacity cannot sustain the bitrate.
            let stalled = is_bad && self.capacity.contains_key(p);
            let measured = |t: &HashMap<&str, u64>| {
                if stalled {
                    2_000_000
                } else {
                    (t[p] as f64 / util) as u64
                }
            };
            if let Some(tp) = self.throughput.as_ref().map(measured) {
                let reload = Signal::Reload {
                    provider: p.to_string(),
                    region: TW.to_string(),
                    anchor_id: None,
                    covered_ms: 30_000,
                    throughput_bps: tp,
                    needed_bps: 2_500_000,
                };
                self.engine
                    .apply(&reload, self.now_ms, &self.catalog.policy.scoring);
            }
        }
    }

    fn set(&mut self, provider: &'static str, bad: f64) {
        self.truth.get_mut(provider).unwrap().bad = bad;
    }
}

fn steady() -> World {
    World::new([
        ("tencent", 0.02, 700),
        ("alibaba", 0.06, 900),
        ("local-srs", 0.08, 900),
        ("local-nginx", 0.10, 1000),
    ])
}

#[test]
fn the_best_provider_takes_first_place() {
    let mut w = steady();
    w.run(120);
    assert_eq!(w.first(), "tencent");
}

#[test]
fn a_degrading_provider_loses_first_place_within_the_hold_and_regains_it_after_recovery() {
    let mut w = steady();
    w.run(120);
    assert_eq!(w.first(), "tencent");
    // Tencent degrades in Taiwan: half the sessions rebuffer.
    w.set("tencent", 0.5);
    let firsts = w.run(30);
    let lost_after = firsts
        .iter()
        .position(|p| p != "tencent")
        .expect("tencent kept first place") as f64
        * 0.5;
    // Bound from the configuration: two half-lives for the evidence to turn, plus the hold.
    // (Measured over seeds 1 to 16 with the shipped policy: 5 to 16 s.)
    let s = w.catalog.policy.scoring.clone();
    let bound = (2.0 * s.half_life_ms + s.hysteresis_hold_ms as f64) / 1000.0;
    assert!(
        lost_after <= bound,
        "lost first place after {lost_after}s, bound {bound}s"
    );
    assert_ne!(w.first(), "tencent");
    // It recovers; exploration notices, the canary confirms, and it takes first place back
    // once the degraded period's reports have decayed. Bound: 20 half-lives (measured over
    // seeds 1 to 16 with the shipped policy: 69.5 to 276.5 s).
    w.set("tencent", 0.02);
    let firsts = w.run(300);
    let back = firsts
        .iter()
        .rposition(|p| p != "tencent")
        .map_or(0.0, |i| (i + 1) as f64 * 0.5);
    assert_eq!(w.first(), "tencent", "did not regain first place");
    let bound = 20.0 * s.half_life_ms / 1000.0;
    assert!(
        back <= bound,
        "regained first place only after {back}s, bound {bound}s"
    );
}

#[test]
fn noise_alone_does_not_flap() {
    // Four providers of the same quality: who is first does not matter, that it does not
    // bounce does. A change only affects new sessions (steering keeps a playing viewer on a
    // pathway about as good as the best), so the harm is oscillation: never two changes within
    // a minute, and few in a quarter of an hour.
    let mut w = World::new([
        ("tencent", 0.05, 800),
        ("alibaba", 0.05, 800),
        ("local-srs", 0.05, 800),
        ("local-nginx", 0.05, 800),
    ]);
    let firsts = w.run(900);
    let at: Vec<usize> = (1..firsts.len())
        .filter(|&i| firsts[i] != firsts[i - 1])
        .collect();
    assert!(
        at.len() <= 6,
        "first place changed {} times in 15 minutes",
        at.len()
    );
    for pair in at.windows(2) {
        let gap = (pair[1] - pair[0]) as f64 * 0.5;
        assert!(gap >= 60.0, "first place changed twice within {gap}s");
    }
}

#[test]
fn exploration_takes_a_small_share_and_the_incumbent_keeps_the_rest() {
    let mut w = steady();
    w.run(60);
    let mut explored = 0u32;
    let mut incumbent_first = 0u32;
    for _ in 0..10_000 {
        let (order, pick) = w.snapshot.rank(TW, None, &CARRIERS, &mut w.rng);
        explored += u32::from(pick == Pick::Explore);
        incumbent_first += u32::from(order[0] == "tencent");
    }
    let s = &w.catalog.policy.scoring;
    let most = 10_000.0 * s.exploration_rate * 1.3;
    assert!(
        f64::from(explored) <= most,
        "{explored} explorations, at most about {most}"
    );
    let floor = 10_000.0 * (1.0 - s.exploration_rate - s.challenger_share);
    assert!(
        f64::from(incumbent_first) >= floor,
        "{incumbent_first} first places for the incumbent"
    );
}

/// Runs a steady world for two minutes, then degrades Tencent (the incumbent, 2% bad) linearly
/// to 30% bad over 25 minutes; returns the seconds into the drift at which it lost first place
/// (`None`: it kept it for the whole ramp).
fn drift_lost_after(w: &mut World) -> Option<f64> {
    w.run(120);
    assert_eq!(w.first(), "tencent");
    for second in 0..1500u32 {
        w.set("tencent", 0.02 + 0.28 * f64::from(second) / 1500.0);
        if w.run(1).iter().any(|p| p != "tencent") {
            return Some(f64::from(second));
        }
    }
    None
}

#[test]
fn a_slowly_degrading_incumbent_is_caught_early() {
    // Alibaba is 6% bad: Tencent reaches twice that (12%) 536 s into the drift. The drift
    // alarm lets a challenger better by the margin on its estimate take first place without
    // waiting until it is confidently better: measured over seeds 1 to 16 with the shipped
    // policy, first place is lost 204 to 468 s into the drift (without the alarm, 410 to
    // 810 s: after twice the best's in 12 seeds of 16), and first place moves among equal
    // providers exactly as often as without it (0 to 2 times in 15 minutes).
    let mut w = steady();
    let lost = drift_lost_after(&mut w).expect("tencent kept first place through the drift");
    let twice = (2.0 * 0.06 - 0.02) / 0.28 * 1500.0;
    assert!(
        lost <= twice,
        "lost first place {lost} s into the drift, after its bad rate was twice the best's ({twice:.0} s)"
    );
    assert_ne!(w.first(), "tencent");
}

#[test]
fn an_incumbent_steadily_worse_by_the_margin_loses_first_place_within_minutes() {
    // Tencent stalls 4.5% of sessions and Alibaba 2%, at the same startup, from the start:
    // Alibaba's cost is a quarter lower, past the margin. Alibaba is known from its canary
    // share and exploration, and on one window's doubt the two are often not told apart; the
    // evidence summed over windows is. Measured over seeds 1 to 16 with the shipped policy,
    // Alibaba is first for good from 23 to 843 s on; without the sum, in four seeds of 16 it
    // was not first at the end of the half hour (seed 7 among them), and one took 1,172 s.
    let mut w = World::new([
        ("tencent", 0.045, 850),
        ("alibaba", 0.02, 850),
        ("local-srs", 0.08, 900),
        ("local-nginx", 0.10, 1000),
    ]);
    with_overflow(&mut w, 60.0);
    w.throughput = Some(CARRIERS.iter().map(|p| (*p, 6_000_000)).collect());
    let firsts = w.run(1800);
    let settled = firsts
        .iter()
        .rposition(|p| p != "alibaba")
        .map_or(0.0, |i| (i + 1) as f64 * 0.5);
    assert!(
        settled <= 1200.0,
        "alibaba first for good only from {settled} s on"
    );
}

fn score(provider: &str, cost: f64, sigma: f64) -> Score {
    Score {
        provider: provider.to_string(),
        cost,
        sigma,
        samples: 0.0,
        rebuffer_ratio: 0.0,
        startup_seconds: 0.0,
        error_rate: 0.0,
        bad_rate: 0.0,
        ingest_unhealthy: 0.0,
        admit: 1.0,
        priced: 0.0,
        stint_bad_rate: 0.0,
        stint_sigma: 0.0,
        full: false,
        steady: false,
        share: 0.0,
    }
}

/// A challenger confidently better by the margin waits out the hold; one confidently better by
/// twice the margin (an incumbent failing plainly) takes first place at once.
#[test]
fn a_plainly_failing_incumbent_is_replaced_without_the_hold() {
    let s = catalog().policy.scoring.clone();
    assert!(s.hysteresis_hold_ms > 0);
    let now = 1_800_000_000_000;
    let run = |challenger_cost: f64| {
        let mut inc = Incumbency {
            provider: Some("tencent".into()),
            challenger: None,
            ..Default::default()
        };
        let mut scores = vec![
            score("alibaba", challenger_cost, 0.005),
            score("tencent", 0.30, 0.005),
        ];
        engine::hysteresis(&mut inc, &mut scores, now, &s);
        (inc.provider.unwrap(), scores[0].provider.clone())
    };
    // 0.23 is 23% cheaper: past the margin (15%), short of twice it (30%).
    assert_eq!(run(0.23), ("tencent".into(), "tencent".into()));
    // 0.15 is half the cost.
    assert_eq!(run(0.15), ("alibaba".into(), "alibaba".into()));
}

/// An incumbent that lost first place plainly failing (an incident) takes it back on its
/// estimate alone once that is better by the margin, for the hold time, and known at the
/// margin's scale; a challenger as thinly known that displaced nothing still needs the margin
/// with doubt.
#[test]
fn a_provider_displaced_by_an_incident_returns_on_its_estimate() {
    let s = catalog().policy.scoring.clone();
    let mut now = 1_800_000_000_000;
    let mut inc = Incumbency {
        provider: Some("tencent".into()),
        ..Default::default()
    };
    // Tencent fails plainly: Alibaba takes first place at once.
    let mut scores = vec![score("alibaba", 0.12, 0.002), score("tencent", 0.5, 0.01)];
    engine::hysteresis(&mut inc, &mut scores, now, &s);
    assert_eq!(inc.provider.as_deref(), Some("alibaba"));
    assert_eq!(inc.displaced.as_deref(), Some("tencent"));
    // The same incumbency had Alibaba won first place by being better.
    let mut other = Incumbency {
        displaced: None,
        ..inc.clone()
    };
    // First place moving among the others meanwhile (Alibaba to local-srs, and back, each
    // better by the margin with doubt for the hold time) leaves Tencent displaced.
    for (challenger, incumbent) in [("local-srs", "alibaba"), ("alibaba", "local-srs")] {
        for _ in 0..=s.hysteresis_hold_ms / 1000 + 1 {
            now += 1_000;
            let mut scores = vec![
                score(challenger, 0.09, 0.001),
                score(incumbent, 0.12, 0.001),
                score("tencent", 0.5, 0.01),
            ];
            engine::hysteresis(&mut inc, &mut scores, now, &s);
        }
        assert_eq!(inc.provider.as_deref(), Some(challenger));
        assert_eq!(inc.displaced.as_deref(), Some("tencent"));
    }
    // Known from a few exploration reports, its estimate as good is no return: its deviation
    // (0.05) is wider than the margin's share of Alibaba's cost (0.018).
    for _ in 0..=s.hysteresis_hold_ms / 1000 + 1 {
        now += 1_000;
        let mut scores = vec![score("tencent", 0.10, 0.05), score("alibaba", 0.12, 0.002)];
        engine::hysteresis(&mut inc, &mut scores, now, &s);
    }
    assert_eq!(inc.provider.as_deref(), Some("alibaba"));
    assert_eq!(inc.displaced.as_deref(), Some("tencent"));
    // Tencent recovers: 0.10 is better than 0.12 by the margin (15%) on its estimate, not with
    // two standard deviations of doubt on both sides.
    for _ in 0..=s.hysteresis_hold_ms / 1000 + 1 {
        now += 1_000;
        for inc in [&mut inc, &mut other] {
            let mut scores = vec![score("tencent", 0.10, 0.01), score("alibaba", 0.12, 0.002)];
            engine::hysteresis(inc, &mut scores, now, &s);
        }
    }
    assert_eq!(inc.provider.as_deref(), Some("tencent"));
    assert_eq!(inc.displaced, None);
    assert_eq!(other.provider.as_deref(), Some("alibaba"));
}

/// An incumbent that is itself a guess (first in the policy's order at a cold start, known
/// from a few reports) is passed on the challenger's estimate alone, after the hold, once it is
/// worse by the margin with its own doubt and the challenger has reports of its own. A known
/// incumbent is not, two thin estimates within the incumbent's doubt do not trade places, and
/// a challenger known from the prior alone does not pass.
#[test]
fn a_guessed_incumbent_is_passed_on_the_challengers_estimate() {
    let s = catalog().policy.scoring.clone();
    let run = |incumbent: Score, challenger: Score| {
        let mut inc = Incumbency {
            provider: Some(incumbent.provider.clone()),
            ..Default::default()
        };
        let mut now = 1_800_000_000_000;
        for _ in 0..=s.hysteresis_hold_ms / 1000 + 1 {
            now += 1_000;
            let mut scores = vec![challenger.clone(), incumbent.clone()];
            engine::hysteresis(&mut inc, &mut scores, now, &s);
        }
        inc.provider.unwrap()
    };
    // Tencent at 0.30 ± 0.06 is not known at the margin's scale (0.045); Alibaba, at 0.13 from
    // a few reports, is better than Tencent less its doubt by the margin ((0.30 - 0.12) × 0.85
    // = 0.153), though not with its own doubt too (0.13 + 0.12 = 0.25).
    let thin_tencent = score("tencent", 0.30, 0.06);
    let alibaba = |cost: f64, samples: f64| Score {
        samples,
        ..score("alibaba", cost, 0.06)
    };
    assert_eq!(run(thin_tencent.clone(), alibaba(0.13, 10.0)), "alibaba");
    // Against a known Tencent (0.30 ± 0.04), Alibaba's own doubt keeps it second.
    assert_eq!(
        run(score("tencent", 0.30, 0.04), alibaba(0.13, 10.0)),
        "tencent"
    );
    // Better by the margin on its estimate only (0.24 against 0.30), within Tencent's doubt.
    assert_eq!(run(thin_tencent.clone(), alibaba(0.24, 10.0)), "tencent");
    // An Alibaba known from the prior alone (fewer reports of its own than `prior_weight`).
    assert_eq!(
        run(thin_tencent, alibaba(0.13, s.prior_weight - 1.0)),
        "tencent"
    );
}

/// An incumbent that took first place on the prior stays a guess, however many reports first
/// place brings it, until its own evidence puts it first: a known Tencent that was the policy's
/// first at a cold start is passed on the challenger's estimate like a thin one, and comes back
/// on its own estimate. Once its reports have put it first, it is a choice, and the
/// challenger's doubt protects it.
#[test]
fn a_first_place_taken_on_the_prior_stays_a_guess_until_evidence_puts_it_first() {
    let s = catalog().policy.scoring.clone();
    let mut now = 1_800_000_000_000;
    let mut step = |inc: &mut Incumbency, scores: Vec<Score>| {
        now += 1_000;
        let mut scores = scores;
        engine::hysteresis(inc, &mut scores, now, &s);
        inc.provider.clone().unwrap()
    };
    let hold = s.hysteresis_hold_ms / 1000 + 1;
    let reports = |sc: Score, samples: f64| Score { samples, ..sc };
    // The cold start: every provider on the prior, Tencent first in the policy's order.
    let prior = || vec![score("tencent", 0.21, 0.14), score("alibaba", 0.21, 0.14)];
    let mut cold = Incumbency::default();
    assert_eq!(step(&mut cold, prior()), "tencent");
    assert!(cold.guess);
    // First place brings Tencent 80 reports (0.30 ± 0.04, known at the margin's scale) and
    // Alibaba 10 (0.13 ± 0.06): better by the margin against Tencent less its doubt
    // ((0.30 - 0.08) × 0.85 = 0.187), not with its own doubt too (0.13 + 0.12 = 0.25).
    let tencent = reports(score("tencent", 0.30, 0.04), 80.0);
    let alibaba = reports(score("alibaba", 0.13, 0.06), 10.0);
    let mut passed = cold.clone();
    for _ in 0..=hold {
        step(&mut passed, vec![alibaba.clone(), tencent.clone()]);
    }
    assert_eq!(passed.provider.as_deref(), Some("alibaba"));
    assert!(!passed.guess, "taken on reports of its own");
    // Passed on Alibaba's estimate alone, Tencent comes back on its own once known and better
    // by the margin (0.10 ± 0.01 against 0.13 ± 0.01), without the doubt a choice would face
    // ((0.10 + 0.02) against (0.13 - 0.02) × 0.85).
    assert_eq!(passed.displaced.as_deref(), Some("tencent"));
    let back = reports(score("tencent", 0.10, 0.01), 400.0);
    let known_alibaba = reports(score("alibaba", 0.13, 0.01), 400.0);
    let mut chosen = passed.clone();
    chosen.displaced = None;
    for _ in 0..=hold {
        step(&mut passed, vec![back.clone(), known_alibaba.clone()]);
        step(&mut chosen, vec![back.clone(), known_alibaba.clone()]);
    }
    assert_eq!(passed.provider.as_deref(), Some("tencent"));
    assert_eq!(chosen.provider.as_deref(), Some("alibaba"));
    // Tencent's own reports put it first for a while (0.12 ± 0.02 against Alibaba's prior):
    // a choice now, kept against the same challenger.
    let mut earned = cold;
    let good = reports(score("tencent", 0.12, 0.02), 80.0);
    step(&mut earned, vec![good, score("alibaba", 0.21, 0.14)]);
    assert!(!earned.guess);
    for _ in 0..=hold {
        step(&mut earned, vec![alibaba.clone(), tencent.clone()]);
    }
    assert_eq!(earned.provider.as_deref(), Some("tencent"));
}

/// Two providers that fill up in turn: a challenger shedding new sessions itself (its
/// admission share below whole) does not take first place from a full incumbent, however much
/// better its estimate; the incumbent overflows to it instead. With room again it takes first
/// place as before, and a provider an incident displaced comes back with its share still
/// growing.
#[test]
fn a_challenger_shedding_sessions_does_not_take_first_place() {
    let s = catalog().policy.scoring.clone();
    let now = 1_800_000_000_000;
    let run = |inc: &mut Incumbency, admit: f64| {
        let mut tencent = score("tencent", 0.12, 0.002);
        tencent.admit = admit;
        let mut scores = vec![tencent, score("alibaba", 0.5, 0.01)];
        engine::hysteresis(inc, &mut scores, now, &s);
        (inc.provider.clone().unwrap(), scores[0].provider.clone())
    };
    let full = || Incumbency {
        provider: Some("alibaba".into()),
        ..Default::default()
    };
    let alibaba = ("alibaba".to_string(), "alibaba".to_string());
    let tencent = ("tencent".to_string(), "tencent".to_string());
    assert_eq!(run(&mut full(), 0.5), alibaba, "shedding: stays second");
    assert_eq!(run(&mut full(), 0.05), alibaba);
    assert_eq!(run(&mut full(), 1.0), tencent, "with room: first at once");
    let mut back = Incumbency {
        displaced: Some("tencent".into()),
        ..full()
    };
    assert_eq!(run(&mut back, 0.5), tencent, "displaced, coming back");
}

fn probe_failure(provider: &str, share: f64) -> Signal {
    Signal::ProbeFailure {
        provider: provider.into(),
        region: TW.into(),
        share,
    }
}

/// With no viewer reporting, probes failing on the incumbent every run (10 s apart) put it
/// behind within two runs; one failed run alone (a blip) does not, its evidence decaying
/// before the hold is out. A share counts in proportion; nothing else learns from it.
#[test]
fn probe_failures_put_a_dead_incumbent_behind_within_two_runs() {
    let catalog = catalog();
    let s = &catalog.policy.scoring;
    let t0 = 1_800_000_000_000;
    let first = |snap: &Snapshot| snap.region(TW).unwrap().order[0].provider.clone();

    let mut engine = Engine::new();
    assert_eq!(first(&engine.refresh(t0, &catalog)), "tencent");
    engine.apply(&probe_failure("tencent", 1.0), t0, s);
    let snap = engine.refresh(t0, &catalog);
    assert_eq!(first(&snap), "tencent", "one failed run is not decisive");
    assert!(snap.cost(TW, "tencent").unwrap() > 3.0 * snap.cost(TW, "alibaba").unwrap());
    // A blip: nothing more comes; refreshes every second through the hold and beyond.
    let mut blip = Engine::new();
    blip.refresh(t0, &catalog);
    blip.apply(&probe_failure("tencent", 1.0), t0, s);
    for i in 0..=20 {
        assert_eq!(
            first(&blip.refresh(t0 + i * 1000, &catalog)),
            "tencent",
            "at {i} s"
        );
    }

    // A dead edge: the next run fails too.
    engine.apply(&probe_failure("tencent", 1.0), t0 + 10_000, s);
    let snap = engine.refresh(t0 + 10_000, &catalog);
    assert_eq!(first(&snap), "alibaba");
    let sc = &snap.region(TW).unwrap().order;
    let tencent = sc.iter().find(|x| x.provider == "tencent").unwrap();
    assert!(
        tencent.error_rate > 0.5 && tencent.bad_rate > 0.5,
        "{tencent:?}"
    );
    assert_eq!(tencent.rebuffer_ratio, s.prior.rebuffer_ratio);
    assert_eq!(tencent.startup_seconds, s.prior.startup_seconds);

    // A tenth of the probes failing weighs a tenth; a zero or unreadable share nothing; no
    // anchor's ingest is touched.
    let mut e = Engine::new();
    e.apply(&probe_failure("tencent", 0.1), t0, s);
    let tenth = e.delivery_score("tencent", TW, t0, s);
    assert!(
        (tenth.samples - 0.1 * s.probe_failure_weight).abs() < 1e-9,
        "{tenth:?}"
    );
    for share in [0.0, -1.0, f64::NAN] {
        e.apply(&probe_failure("alibaba", share), t0, s);
    }
    assert_eq!(e.delivery_score("alibaba", TW, t0, s).samples, 0.0);
    assert_eq!(e.sizes(), (1, 0));
}

fn report(provider: &str, region: &str, anchor: Option<&str>, bad: bool) -> Signal {
    Signal::Delivery {
        provider: provider.into(),
        region: region.into(),
        protocol: Protocol::Flv,
        anchor_id: anchor.map(String::from),
        played_ms: 30_000,
        rebuffer_ms: if bad { 1_500 } else { 0 },
        rebuffer_count: u32::from(bad),
        startup_ms: Some(800),
        error: false,
        session: None,
    }
}

/// An hour in which Tencent serves Taiwan best and Hong Kong poorly, and local-srs the reverse.
fn two_regions() -> (Engine, ScoringSettings, i64) {
    let s = catalog().policy.scoring.clone();
    let mut e = Engine::new();
    let mut now = 1_800_000_000_000;
    for i in 0..3600u32 {
        now += 1_000;
        for (provider, region, one_in) in [
            ("tencent", TW, 50),
            ("alibaba", TW, 20),
            ("local-srs", TW, 5),
            ("tencent", "hk", 3),
            ("alibaba", "hk", 4),
            ("local-srs", "hk", 50),
        ] {
            e.apply(&report(provider, region, None, i % one_in == 0), now, &s);
        }
    }
    (e, s, now)
}

/// A push is decided for the anchor's audience over the longer past: an anchor of Taiwan is
/// placed for Taiwan until its viewers are seen, and one watched mostly from Hong Kong is pushed
/// first to the CDN that serves Hong Kong, with one that serves Taiwan as its backup.
#[test]
fn a_push_serves_the_anchors_audience() {
    let (mut e, s, mut now) = two_regions();
    let mut rng = SmallRng::seed_from_u64(seed());
    let candidates: Vec<String> = ["tencent", "alibaba", "local-srs"]
        .map(String::from)
        .to_vec();
    for i in 0..50 {
        now += 100;
        let region = if i % 5 == 0 { TW } else { "hk" };
        e.apply(
            &report("tencent", region, Some("anchor-abroad"), false),
            now,
            &s,
        );
    }
    for _ in 0..100 {
        let home = e.ingest_rank("anchor-home", TW, &candidates, now, &s, &mut rng);
        assert_eq!(home[0].provider, "tencent", "{home:#?}");
        let abroad = e.ingest_rank("anchor-abroad", TW, &candidates, now, &s, &mut rng);
        assert_eq!(abroad[0].provider, "local-srs", "{abroad:#?}");
        assert_ne!(abroad[1].provider, "local-srs");
    }
}

/// A new anchor, none of whose viewers is known yet, is expected to draw the audience its
/// region's anchors draw: in a region whose anchors are watched mostly from Hong Kong, it is
/// pushed first to the CDN that serves Hong Kong, with one that serves Taiwan as its backup;
/// where nothing is known of the region's audience, it is placed for home.
#[test]
fn a_new_anchor_is_pushed_for_its_regions_audience() {
    let candidates: Vec<String> = ["tencent", "alibaba", "local-srs"]
        .map(String::from)
        .to_vec();
    let (mut e, s, mut now) = two_regions();
    let mut rng = SmallRng::seed_from_u64(seed());
    let first = e.ingest_rank("anchor-new", TW, &candidates, now, &s, &mut rng);
    assert_eq!(first[0].provider, "tencent", "{first:#?}");
    // The region's anchors go live and are watched, four viewers in five from Hong Kong.
    for a in ["anchor-1", "anchor-2", "anchor-3"] {
        e.ingest_rank(a, TW, &candidates, now, &s, &mut rng);
    }
    for i in 0..60 {
        now += 100;
        let region = if i % 5 == 0 { TW } else { "hk" };
        let anchor = ["anchor-1", "anchor-2", "anchor-3"][i % 3];
        e.apply(&report("tencent", region, Some(anchor), false), now, &s);
    }
    for _ in 0..100 {
        let new = e.ingest_rank("anchor-newer", TW, &candidates, now, &s, &mut rng);
        assert_eq!(new[0].provider, "local-srs", "{new:#?}");
        assert_ne!(new[1].provider, "local-srs");
    }
    // An anchor of a region with no audience known is still placed for home.
    let elsewhere = e.ingest_rank("anchor-hk", "hk", &candidates, now, &s, &mut rng);
    assert_ne!(elsewhere[0].provider, "tencent", "{elsewhere:#?}");
}

/// Backups are drawn: a provider nobody has pushed to is tried as a backup now and then, so its
/// quality becomes known; the primary stays the best known. With `push_exploration_rate` below
/// 1, only that share of the pushes draws, and the others get the expected best backup.
#[test]
fn backups_explore_providers_never_pushed_to() {
    let (mut e, mut s, now) = two_regions();
    let mut rng = SmallRng::seed_from_u64(seed());
    let candidates: Vec<String> = ["tencent", "alibaba", "local-srs", "local-nginx"]
        .map(String::from)
        .to_vec();
    for rate in [1.0, 0.25] {
        s.push_exploration_rate = rate;
        let mut backups: HashMap<String, u32> = HashMap::new();
        for _ in 0..400 {
            let r = e.ingest_rank("anchor-home", TW, &candidates, now, &s, &mut rng);
            assert_eq!(r[0].provider, "tencent");
            *backups.entry(r[1].provider.clone()).or_default() += 1;
        }
        let n = |p: &str| backups.get(p).copied().unwrap_or(0);
        // The unknown one is tried; the second best is the backup most often (of every push
        // not drawn, and of some drawn); the one known to be poor in Taiwan less often.
        assert!(
            f64::from(n("local-nginx")) >= 20.0 * rate,
            "{rate}: {backups:?}"
        );
        let undrawn = 400.0 * (1.0 - rate);
        assert!(
            f64::from(n("alibaba")) >= 0.9 * undrawn,
            "{rate}: {backups:?}"
        );
        assert!(n("alibaba") > n("local-nginx"), "{rate}: {backups:?}");
        assert!(n("local-srs") < n("alibaba"), "{rate}: {backups:?}");
    }
}

/// Exploration is a Thompson draw that includes the incumbent: a provider known to be far worse
/// is left alone; one whose estimate is uncertain gets most of the exploration share.
#[test]
fn exploration_goes_where_the_estimate_is_uncertain() {
    let rank = RegionRank::new(
        TW.to_string(),
        vec![
            score("tencent", 0.10, 0.01),
            score("alibaba", 0.50, 0.01),
            score("local-srs", 0.12, 0.20),
        ],
        Incumbency::default(),
        Default::default(),
    );
    let snap = Snapshot::new(
        0,
        [(TW.to_string(), rank)].into_iter().collect(),
        Default::default(),
        0.1,
        0.15,
        0.0,
    );
    let mut rng = SmallRng::seed_from_u64(seed());
    let mut first: HashMap<&str, u32> = HashMap::new();
    for _ in 0..20_000 {
        let (order, _) = snap.rank(TW, None, &["tencent", "alibaba", "local-srs"], &mut rng);
        *first.entry(order[0]).or_default() += 1;
    }
    let n = |p: &str| f64::from(first.get(p).copied().unwrap_or(0)) / 20_000.0;
    assert!(n("alibaba") < 0.001, "far worse, explored {}", n("alibaba"));
    // The uncertain one wins a little under half of the draws (its mean is a little worse).
    assert!(
        (0.025..0.05).contains(&n("local-srs")),
        "uncertain, explored {}",
        n("local-srs")
    );
    assert!(n("tencent") > 0.95);
}

fn ingest(provider: &str, anchor: &str, healthy: bool) -> Signal {
    Signal::Ingest {
        provider: provider.into(),
        anchor_id: anchor.into(),
        source: IngestSource::Probe,
        healthy,
        bitrate_kbps: None,
    }
}

#[test]
fn an_anchor_uploading_poorly_to_one_cdn_is_moved_off_it() {
    let mut w = steady();
    w.run(60);
    let candidates: Vec<String> = ["tencent", "alibaba", "local-srs"]
        .map(String::from)
        .to_vec();
    let s = w.catalog.policy.scoring.clone();
    // Both anchors start on the region's best provider.
    for anchor in ["anchor-bad-uplink", "anchor-fine"] {
        let r = w.engine.ingest_rank(
            anchor,
            TW,
            &candidates,
            w.now_ms,
            &s,
            &mut SmallRng::seed_from_u64(seed()),
        );
        assert_eq!(r[0].provider, "tencent", "{anchor}");
    }
    // Probes see one anchor's stream stall on Tencent only, over two minutes.
    for _ in 0..120 {
        w.now_ms += 1_000;
        for p in ["tencent", "alibaba", "local-srs"] {
            w.engine.apply(
                &ingest(p, "anchor-bad-uplink", p != "tencent"),
                w.now_ms,
                &s,
            );
            w.engine
                .apply(&ingest(p, "anchor-fine", true), w.now_ms, &s);
        }
    }
    let bad = w.engine.ingest_rank(
        "anchor-bad-uplink",
        TW,
        &candidates,
        w.now_ms,
        &s,
        &mut SmallRng::seed_from_u64(seed()),
    );
    assert_ne!(bad[0].provider, "tencent", "{bad:#?}");
    assert_eq!(bad.last().unwrap().provider, "tencent");
    let fine = w.engine.ingest_rank(
        "anchor-fine",
        TW,
        &candidates,
        w.now_ms,
        &s,
        &mut SmallRng::seed_from_u64(seed()),
    );
    assert_eq!(fine[0].provider, "tencent");
    // Viewers of that anchor's stream are steered off Tencent too; others are not.
    w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
    let mut rng = SmallRng::seed_from_u64(1);
    let carriers = ["tencent", "alibaba"];
    // Exploration aside (a draw may put anything first), the anchor's own ranking decides.
    let mut firsts: HashMap<&str, u32> = HashMap::new();
    for _ in 0..200 {
        let (order, _) = w
            .snapshot
            .rank(TW, Some("anchor-bad-uplink"), &carriers, &mut rng);
        *firsts.entry(order[0]).or_default() += 1;
    }
    assert!(
        firsts.get("alibaba").copied().unwrap_or(0) > 180,
        "{firsts:?}"
    );
    let (_, pick) = (0..50)
        .map(|_| {
            w.snapshot
                .rank(TW, Some("anchor-bad-uplink"), &carriers, &mut rng)
        })
        .find(|(_, pick)| *pick != Pick::Explore)
        .unwrap();
    assert_eq!(pick, Pick::Anchor);
    let mut fine_firsts = 0;
    for _ in 0..200 {
        let (order, _) = w
            .snapshot
            .rank(TW, Some("anchor-fine"), &carriers, &mut rng);
        fine_firsts += u32::from(order[0] == "tencent");
    }
    assert!(fine_firsts > 180, "{fine_firsts}");
}

/// How often Tencent comes first in 200 play rankings of `anchor`'s stream in Taiwan, carried
/// by Tencent and Alibaba.
fn tencent_firsts(e: &mut Engine, catalog: &Catalog, anchor: &str, now_ms: i64) -> u32 {
    let snapshot = e.refresh(now_ms, catalog);
    let mut rng = SmallRng::seed_from_u64(seed());
    (0..200)
        .map(|_| snapshot.rank(TW, Some(anchor), &["tencent", "alibaba"], &mut rng))
        .filter(|(order, _)| order[0] == "tencent")
        .count() as u32
}

/// An outage of one CDN's ingest for one region's anchors (all of them at once: no anchor is
/// worse than its peers) is as much worse for each of them, however long its healthy record:
/// within a minute their viewers and new pushes go elsewhere, while the anchors of other
/// regions stay, and they come back once the outage ends.
#[test]
fn an_ingest_outage_for_a_regions_anchors_moves_each_of_them_off_that_cdn() {
    let catalog = catalog();
    let s = catalog.policy.scoring.clone();
    let mut e = Engine::new();
    let mut now = 1_800_000_000_000;
    let candidates: Vec<String> = ["tencent", "alibaba"].map(String::from).to_vec();
    let anchors = [
        ("hk-1", "hk"),
        ("hk-2", "hk"),
        ("hk-3", "hk"),
        ("tw-1", TW),
        ("tw-2", TW),
    ];
    let mut rng = SmallRng::seed_from_u64(seed());
    for (a, r) in anchors {
        e.ingest_rank(a, r, &candidates, now, &s, &mut rng);
    }
    // Probes every 10 s; Tencent serves Taiwan's viewers better than Alibaba does.
    let run = |e: &mut Engine, now: &mut i64, secs: u32, hk_tencent_ok: bool| {
        for i in 0..secs / 10 {
            *now += 10_000;
            for (a, r) in anchors {
                for p in ["tencent", "alibaba"] {
                    let ok = hk_tencent_ok || r != "hk" || p != "tencent";
                    e.apply(&ingest(p, a, ok), *now, &s);
                }
            }
            for (p, one_in) in [("tencent", 50), ("alibaba", 10)] {
                for k in 0..10 {
                    e.apply(&report(p, TW, None, (i * 10 + k) % one_in == 0), *now, &s);
                }
            }
        }
    };
    run(&mut e, &mut now, 3600, true);
    for a in ["hk-1", "tw-1"] {
        assert!(tencent_firsts(&mut e, &catalog, a, now) > 180, "{a}");
    }
    // Tencent's ingest fails for Hong Kong's anchors.
    run(&mut e, &mut now, 60, false);
    let hk = tencent_firsts(&mut e, &catalog, "hk-1", now);
    assert!(hk < 20, "{hk}");
    let tw = tencent_firsts(&mut e, &catalog, "tw-1", now);
    assert!(tw > 180, "{tw}");
    let new_hk = e.ingest_rank("hk-new", "hk", &candidates, now, &s, &mut rng);
    assert_eq!(new_hk[0].provider, "alibaba", "{new_hk:#?}");
    let new_tw = e.ingest_rank("tw-new", TW, &candidates, now, &s, &mut rng);
    assert_eq!(new_tw[0].provider, "tencent", "{new_tw:#?}");
    // It ends.
    run(&mut e, &mut now, 120, true);
    let hk = tencent_firsts(&mut e, &catalog, "hk-1", now);
    assert!(hk > 180, "{hk}");
}

#[test]
fn drains_pins_and_exclusions() {
    let mut w = steady();
    w.run(60);
    assert_eq!(w.first(), "tencent");
    w.engine.set_drained("tencent", true);
    w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
    let order: Vec<&str> = w
        .snapshot
        .region(TW)
        .unwrap()
        .order
        .iter()
        .map(|s| s.provider.as_str())
        .collect();
    assert!(!order.contains(&"tencent"), "{order:?}");
    // A stream only Tencent carries is still played from it, last.
    let mut rng = SmallRng::seed_from_u64(1);
    let (order, _) = w.snapshot.rank(TW, None, &["tencent", "alibaba"], &mut rng);
    assert_eq!(order.last(), Some(&"tencent"));
    // Back in rotation, it is not first at once: it must beat the interim incumbent, as a
    // recovered provider does, with the margin and its doubt for the hold time or on the
    // evidence summed over windows. Bound as for a recovery: 20 half-lives (measured over
    // seeds 1 to 16 with the shipped policy: 1 to 19 s, and 87 s on seed 12, where the interim
    // incumbent, known from its exploration reports, is worse by little more than the margin
    // and both doubts, so that the confident test passes only on a lucky window).
    w.engine.set_drained("tencent", false);
    w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
    assert_ne!(w.first(), "tencent");
    let s = w.catalog.policy.scoring.clone();
    let bound = 20.0 * s.half_life_ms / 1000.0;
    let firsts = w.run(bound as u64);
    assert!(
        firsts.iter().any(|p| p == "tencent"),
        "not first again within {bound}s"
    );
    assert_eq!(w.first(), "tencent");
}

/// Tuning harness: `cargo test --lib scoring::tests::tune -- --ignored --nocapture` prints, per
/// seed, how long a degraded incumbent keeps first place, how long a recovered one takes to get
/// it back, how first place moves among equals, and how far into a slow drift the incumbent
/// loses first place.
#[test]
#[ignore]
fn tune() {
    let mut det = Vec::new();
    let mut rec = Vec::new();
    let mut flips = Vec::new();
    let mut gaps = Vec::new();
    let mut drift = Vec::new();
    let mut flips_off = Vec::new();
    let mut drift_off = Vec::new();
    for seed in 1..=16u64 {
        unsafe { std::env::set_var("SCORING_SEED", seed.to_string()) };
        let mut w = steady();
        w.run(120);
        w.set("tencent", 0.5);
        let f = w.run(60);
        let d = f
            .iter()
            .position(|p| p != "tencent")
            .map_or(99.0, |i| i as f64 * 0.5);
        w.set("tencent", 0.02);
        let f = w.run(600);
        let r = f
            .iter()
            .rposition(|p| p != "tencent")
            .map_or(0.0, |i| (i + 1) as f64 * 0.5);
        let mut n = World::new([
            ("tencent", 0.05, 800),
            ("alibaba", 0.05, 800),
            ("local-srs", 0.05, 800),
            ("local-nginx", 0.05, 800),
        ]);
        let f = n.run(900);
        let at: Vec<usize> = (1..f.len()).filter(|&i| f[i] != f[i - 1]).collect();
        let gap = at
            .windows(2)
            .map(|p| (p[1] - p[0]) as f64 * 0.5)
            .fold(999.0, f64::min);
        let mut w = steady();
        let lost = drift_lost_after(&mut w).unwrap_or(9999.0);
        let mut w = steady();
        without_drift_alarm(&mut w);
        let lost_off = drift_lost_after(&mut w).unwrap_or(9999.0);
        let mut n = World::new([
            ("tencent", 0.05, 800),
            ("alibaba", 0.05, 800),
            ("local-srs", 0.05, 800),
            ("local-nginx", 0.05, 800),
        ]);
        without_drift_alarm(&mut n);
        let f = n.run(900);
        flips_off.push((1..f.len()).filter(|&i| f[i] != f[i - 1]).count());
        drift_off.push(lost_off);
        det.push(d);
        rec.push(r);
        flips.push(at.len());
        gaps.push(gap);
        drift.push(lost);
    }
    println!(
        "detect {det:?}\nrecover {rec:?}\nflips {flips:?}\nmin gap {gaps:?}\ndrift lost after {drift:?}\nwithout the drift alarm: flips {flips_off:?}, drift lost after {drift_off:?}"
    );
}

#[test]
fn every_report_counts() {
    let catalog = catalog();
    let s = &catalog.policy.scoring;
    let mut e = Engine::new();
    let now = 1_800_000_000_000;
    for _ in 0..300 {
        let signal = Signal::Delivery {
            provider: "tencent".into(),
            region: TW.into(),
            protocol: Protocol::Hls,
            anchor_id: Some("a".into()),
            played_ms: 30_000,
            rebuffer_ms: 3_000,
            rebuffer_count: 1,
            startup_ms: Some(900),
            error: false,
            session: None,
        };
        e.apply(&signal, now, s);
    }
    let score = e.delivery_score("tencent", TW, now, s);
    assert!((score.samples - 300.0).abs() < 1e-6, "{score:?}");
    assert!(score.bad_rate > 0.95, "{score:?}");
}

fn session_report(provider: &str, session: Option<u64>, bad: bool) -> Signal {
    Signal::Delivery {
        provider: provider.into(),
        region: TW.into(),
        protocol: Protocol::Hls,
        anchor_id: None,
        played_ms: 30_000,
        rebuffer_ms: if bad { 3_000 } else { 0 },
        rebuffer_count: u32::from(bad),
        startup_ms: None,
        error: false,
        session,
    }
}

/// A session's reports on one provider are one stint, counted when it first reports and again
/// when it first tells a stall; a report on another provider starts the next stint. The
/// per-report windows still take every report.
#[test]
fn a_session_counts_once_per_stint() {
    let catalog = catalog();
    let s = &catalog.policy.scoring;
    let mut e = Engine::new();
    let now = 1_800_000_000_000;
    let one = Some(42);
    for bad in [false; 10].into_iter().chain([true, true, false]) {
        e.apply(&session_report("tencent", one, bad), now, s);
    }
    e.apply(&session_report("alibaba", one, false), now, s);
    e.apply(&session_report("tencent", one, false), now, s);
    // Each provider's own stints, shrunk toward the prior (nothing elsewhere to borrow from).
    let shrunk = |stints: f64, bad: f64| {
        (bad + s.prior_weight * s.prior.bad_rate) / (stints + s.prior_weight)
    };
    let t = e.delivery_score("tencent", TW, now, s);
    assert!((t.samples - 14.0).abs() < 1e-9, "{t:?}");
    assert!((t.stint_bad_rate - shrunk(3.0, 1.0)).abs() < 1e-9, "{t:?}");
    let a = e.delivery_score("alibaba", TW, now, s);
    assert!((a.stint_bad_rate - shrunk(1.0, 0.0)).abs() < 1e-9, "{a:?}");
    // Reports without a session are a stint each.
    for _ in 0..4 {
        e.apply(&session_report("alibaba", None, true), now, s);
    }
    let a = e.delivery_score("alibaba", TW, now, s);
    assert!((a.stint_bad_rate - shrunk(5.0, 4.0)).abs() < 1e-9, "{a:?}");
}

/// Tencent holds first place when its new sessions begin to stall one in five, while the
/// 300 players who stayed on it report well every 10 s, and Alibaba's new sessions stall one in
/// 25. The incumbent: Alibaba within a minute when the reports carry their sessions (per
/// stint, Tencent is five times worse); Tencent still, per report, when they do not.
#[test]
fn an_incumbent_whose_new_sessions_stall_loses_first_place() {
    let catalog = catalog();
    let s = &catalog.policy.scoring;
    let run = |with_sessions: bool| {
        let mut e = Engine::new();
        let mut now = 1_800_000_000_000;
        let mut next = 1_000u64;
        let mut new_session = |provider: &str, bad: bool| {
            next += 1;
            session_report(provider, with_sessions.then_some(next), bad)
        };
        let mut first_after_warmup = None;
        for sec in 0..180u64 {
            now += 1_000;
            let degraded = sec >= 60;
            for i in 0..10 {
                let bad = if degraded {
                    i % 5 == 4
                } else {
                    sec % 5 == 4 && i == 9
                };
                e.apply(&new_session("tencent", bad), now, s);
            }
            for i in 0..5 {
                let bad = (sec * 5 + i) % 25 == 24;
                e.apply(&new_session("alibaba", bad), now, s);
            }
            if degraded {
                for k in 0..30 {
                    let stayer = (sec * 30 + k) % 300;
                    let session = with_sessions.then_some(stayer);
                    e.apply(&session_report("tencent", session, false), now, s);
                }
            }
            e.refresh(now, &catalog);
            if sec == 59 {
                first_after_warmup = e.incumbency(TW).and_then(|i| i.provider.clone());
            }
        }
        let last = e.incumbency(TW).and_then(|i| i.provider.clone());
        (first_after_warmup, last)
    };
    let tencent = Some("tencent".to_string());
    let alibaba = Some("alibaba".to_string());
    assert_eq!(run(true), (tencent.clone(), alibaba));
    assert_eq!(run(false), (tencent.clone(), tencent));
}

fn without_drift_alarm(w: &mut World) {
    let mut policy = (*w.catalog.policy).clone();
    policy.scoring.drift_alarm_seconds = 0.0;
    w.catalog.policy = std::sync::Arc::new(policy);
}

fn with_control(w: &mut World, control: crate::policy::scoring::RegionControl) {
    let mut policy = (*w.catalog.policy).clone();
    policy.scoring.regions.insert(TW.to_string(), control);
    w.catalog.policy = std::sync::Arc::new(policy);
}

/// Share of the next `n` decisions that put `provider` first.
fn share_of(w: &mut World, provider: &str, secs: u64) -> f64 {
    let mut firsts = 0u32;
    let mut total = 0u32;
    for _ in 0..secs * 2 {
        for _ in 0..SESSIONS_PER_SECOND / 2 {
            let (order, _) = w.snapshot.rank(TW, None, &CARRIERS, &mut w.rng);
            firsts += u32::from(order[0] == provider);
            total += 1;
        }
        w.now_ms += 500;
        w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
    }
    f64::from(firsts) / f64::from(total)
}

#[test]
fn max_share_caps_a_provider_and_commit_share_feeds_one() {
    let mut w = steady();
    w.run(60);
    assert!(share_of(&mut w, "tencent", 30) > 0.7);
    with_control(
        &mut w,
        crate::policy::scoring::RegionControl {
            max_share: [("tencent".to_string(), 0.5)].into(),
            ..Default::default()
        },
    );
    let capped = share_of(&mut w, "tencent", 120);
    assert!(
        (0.35..=0.6).contains(&capped),
        "tencent took {capped:.2} under a 0.5 cap"
    );

    let mut w = steady();
    w.run(60);
    with_control(
        &mut w,
        crate::policy::scoring::RegionControl {
            commit_share: [("local-srs".to_string(), 0.3)].into(),
            commit_tolerance: 2.0,
            ..Default::default()
        },
    );
    let fed = share_of(&mut w, "local-srs", 120);
    assert!(
        (0.2..=0.45).contains(&fed),
        "local-srs took {fed:.2} toward a 0.3 commitment"
    );
}

#[test]
fn pins_and_exclusions_override_the_ranking() {
    let mut w = steady();
    w.run(60);
    with_control(
        &mut w,
        crate::policy::scoring::RegionControl {
            pin: Some("local-nginx".into()),
            exclude: vec!["alibaba".into()],
            ..Default::default()
        },
    );
    w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
    let order: Vec<&str> = w
        .snapshot
        .region(TW)
        .unwrap()
        .order
        .iter()
        .map(|s| s.provider.as_str())
        .collect();
    assert_eq!(order[0], "local-nginx");
    assert!(!order.contains(&"alibaba"), "{order:?}");
}

#[test]
fn an_anchors_poor_uplink_is_remembered_at_its_next_broadcast() {
    let mut w = steady();
    w.run(60);
    let candidates: Vec<String> = ["tencent", "alibaba", "local-srs"]
        .map(String::from)
        .to_vec();
    let s = w.catalog.policy.scoring.clone();
    // One broadcast: probes see the stream stall on Tencent for five minutes.
    for _ in 0..30 {
        w.now_ms += 10_000;
        w.engine
            .apply(&ingest("tencent", "anchor-home-dsl", false), w.now_ms, &s);
        w.engine
            .apply(&ingest("alibaba", "anchor-home-dsl", true), w.now_ms, &s);
    }
    // Twenty minutes later, many delivery half-lives, the anchor goes live again.
    w.now_ms += 20 * 60_000;
    let r = w.engine.ingest_rank(
        "anchor-home-dsl",
        TW,
        &candidates,
        w.now_ms,
        &s,
        &mut SmallRng::seed_from_u64(seed()),
    );
    assert_ne!(r[0].provider, "tencent", "{r:#?}");
}

fn with_overflow(w: &mut World, seconds: f64) {
    let mut policy = (*w.catalog.policy).clone();
    policy.scoring.overflow_seconds = seconds;
    w.catalog.policy = std::sync::Arc::new(policy);
}

/// The incumbent's admission share now, and the share of the next `secs` of new sessions that
/// overflowed to another provider.
fn overflowed(w: &mut World, secs: u64) -> (f64, f64) {
    let admit = w.snapshot.region(TW).unwrap().order[0].admit;
    let mut over = 0u32;
    let mut total = 0u32;
    for _ in 0..secs * 2 {
        for _ in 0..SESSIONS_PER_SECOND / 2 {
            let (_, pick) = w.snapshot.rank(TW, None, &CARRIERS, &mut w.rng);
            over += u32::from(pick == Pick::Overflow);
            total += 1;
        }
        w.now_ms += 500;
        w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
    }
    (admit, f64::from(over) / f64::from(total))
}

#[test]
fn an_incumbent_past_its_capacity_sheds_new_sessions_and_takes_them_back_with_room() {
    for overflow in [20.0, 0.0] {
        let mut w = steady();
        with_overflow(&mut w, overflow);
        w.throughput = Some(CARRIERS.iter().map(|p| (*p, 6_000_000)).collect());
        w.run(600);
        assert_eq!(w.first(), "tencent");
        let (admit, over) = overflowed(&mut w, 10);
        assert_eq!(
            (admit, over),
            (1.0, 0.0),
            "room everywhere: nothing overflows"
        );
        // Tencent's edge is full: its players measure a third less throughput, still enough
        // for the bitrate (no stall shows in their reports yet).
        w.throughput.as_mut().unwrap().insert("tencent", 4_000_000);
        w.run(60);
        assert_eq!(w.first(), "tencent", "a full incumbent keeps first place");
        let (admit, over) = overflowed(&mut w, 30);
        if overflow > 0.0 {
            assert!(
                admit < 0.5,
                "admission {admit:.2} after a minute past capacity"
            );
            assert!(over > 0.4, "{over:.2} of new sessions overflowed");
        } else {
            assert_eq!((admit, over), (1.0, 0.0), "overflow off");
            continue;
        }
        // Room again: the share grows back (a tenth every `overflow_seconds`).
        w.throughput.as_mut().unwrap().insert("tencent", 6_000_000);
        w.run(300);
        let (admit, over) = overflowed(&mut w, 10);
        assert_eq!(admit, 1.0, "admission after five minutes with room");
        assert_eq!(over, 0.0);
    }
}

/// A provider's admission share in Taiwan in the last snapshot.
fn admit_of(w: &World, provider: &str) -> f64 {
    let region = w.snapshot.region(TW).unwrap();
    region
        .order
        .iter()
        .find(|sc| sc.provider == provider)
        .unwrap()
        .admit
}

/// An incident moves the incumbent's players off it, and their throughput there falls as a
/// full edge's does. With its players gone, what the few still there measure says nothing
/// about its capacity: it does not shed down to the floor, and once the incident is over it
/// takes its new sessions back within `overflow_seconds`, not a tenth at a time as a full
/// edge with its players still on it does.
#[test]
fn a_provider_its_players_left_in_an_incident_takes_its_sessions_back_at_once() {
    let mut w = steady();
    with_overflow(&mut w, 20.0);
    w.throughput = Some(CARRIERS.iter().map(|p| (*p, 6_000_000)).collect());
    w.run(600);
    assert_eq!(w.first(), "tencent");
    w.set("tencent", 0.5);
    w.throughput.as_mut().unwrap().insert("tencent", 1_000_000);
    w.run(300);
    assert_ne!(w.first(), "tencent", "the incident moved first place");
    let admit = admit_of(&w, "tencent");
    assert!(
        admit > 0.3,
        "admission {admit:.2} after five minutes with its players gone"
    );
    w.set("tencent", 0.02);
    w.throughput.as_mut().unwrap().insert("tencent", 6_000_000);
    let firsts = w.run(90);
    let back = firsts
        .iter()
        .position(|f| f == "tencent")
        .expect("tencent back first within 90 s");
    assert!(firsts[back..].iter().all(|f| f == "tencent"), "{firsts:?}");
    let (admit, over) = overflowed(&mut w, 10);
    assert!(admit > 0.7, "admission {admit:.2} back at first place");
    assert!(over < 0.3, "{over:.2} of new sessions overflowed");
}

/// Traffic doubles over five minutes, and the incumbent's edge serves well only a third more
/// than it carried before. Its players fare worse as its load passes what it ever served well:
/// it is full, not failing. It keeps first place and sheds the excess to the next, instead of
/// losing first place (and every new session) to the next, which would fill in turn. Over
/// eight worlds (a world's luck can still move first place for a while).
#[test]
fn a_full_incumbent_keeps_first_place_and_sheds_what_it_cannot_serve() {
    let worlds = 8;
    let mut away = 0;
    let mut snapshots = 0;
    for k in 0..worlds {
        let mut w = steady();
        w.rng = SmallRng::seed_from_u64(seed() + k);
        with_overflow(&mut w, 20.0);
        w.throughput = Some(CARRIERS.iter().map(|p| (*p, 6_000_000)).collect());
        w.run(600);
        assert_eq!(w.first(), "tencent");
        w.capacity
            .insert("tencent", SESSIONS_PER_SECOND as f64 * 4.0 / 3.0);
        let mut firsts = Vec::new();
        for step in 1..=30 {
            w.scale = 1.0 + f64::from(step) / 30.0;
            firsts.extend(w.run(10));
        }
        firsts.extend(w.run(120));
        away += firsts.iter().filter(|f| *f != "tencent").count();
        snapshots += firsts.len();
        let admit = admit_of(&w, "tencent");
        assert!(
            admit < 1.0,
            "world {k}: admission {admit:.2} at twice the traffic"
        );
    }
    // Measured, another provider first in this share of the snapshots over the eight worlds
    // from seeds 1, 7 and 9: 0.9%, 0.7% and 4.1%; before a full incumbent kept first place,
    // 19%, 14% and 8.3%.
    let share = away as f64 / snapshots as f64;
    assert!(
        share < 0.06,
        "another provider first in {share:.3} of the snapshots"
    );
}

/// Asked again during a broadcast, a stream pushed where its audience is served poorly moves
/// to the push set that serves it best, and one pushed well stays; a stream is not moved for
/// a difference within the ingest margin.
#[test]
fn asking_again_moves_a_poorly_pushed_stream_and_keeps_a_well_pushed_one() {
    let (mut e, s, now) = two_regions();
    let candidates: Vec<String> = ["tencent", "alibaba", "local-srs"]
        .map(String::from)
        .to_vec();
    let set = |a: &[&str]| a.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    // An anchor of Taiwan pushed to the two providers that serve Taiwan worst.
    let moved = e
        .ingest_recheck(
            "anchor-tw",
            TW,
            &set(&["local-srs", "alibaba"]),
            &candidates,
            now,
            &s,
        )
        .expect("moves");
    let to: Vec<&str> = moved.iter().map(|sc| sc.provider.as_str()).collect();
    assert_eq!(to, ["tencent", "alibaba"], "{moved:#?}");
    // On Taiwan's best and second best, it stays; on the best and the worst, too: its viewers
    // play the best, and the backup's difference is within the margin.
    for kept in [&["tencent", "alibaba"][..], &["tencent", "local-srs"][..]] {
        let r = e.ingest_recheck("anchor-tw-2", TW, &set(kept), &candidates, now, &s);
        assert!(r.is_none(), "{kept:?}: {r:#?}");
    }
    // A drained provider is no carrier to stay on.
    let mut drained = s.clone();
    drained.drained = vec!["tencent".into()];
    let r = e.ingest_recheck(
        "anchor-tw-3",
        TW,
        &set(&["tencent", "local-srs"]),
        &candidates,
        now,
        &drained,
    );
    let to: Vec<&str> = r.iter().flatten().map(|sc| sc.provider.as_str()).collect();
    assert_eq!(to, ["alibaba", "local-srs"]);
    // An anchor whose upload to Tencent fails is moved off it at its next question.
    let mut now = now;
    for _ in 0..120 {
        now += 1_000;
        for p in ["tencent", "alibaba", "local-srs"] {
            e.apply(&ingest(p, "anchor-tw-4", p != "tencent"), now, &s);
        }
    }
    let r = e
        .ingest_recheck(
            "anchor-tw-4",
            TW,
            &set(&["tencent", "local-srs"]),
            &candidates,
            now,
            &s,
        )
        .expect("moves off the failing upload");
    assert_eq!(r[0].provider, "alibaba", "{r:#?}");
    assert!(r.iter().all(|sc| sc.provider != "tencent"), "{r:#?}");
}

/// The world's policy with `tolerance` from now on, the engine keeping what it learned.
fn with_price_tolerance_kept(w: &mut World, tolerance: f64) {
    let mut policy = (*w.catalog.policy).clone();
    policy.scoring.price_tolerance = tolerance;
    w.catalog.policy = std::sync::Arc::new(policy);
}

/// The world's policy with `tolerance`, from the start (a fresh engine).
fn with_price_tolerance(w: &mut World, tolerance: f64) {
    with_price_tolerance_kept(w, tolerance);
    w.engine = Engine::new();
    w.snapshot = w.engine.refresh(w.now_ms, &w.catalog);
}

/// First place is judged on quality: a challenger better only with the price preference's
/// part of the costs (`Score::priced`) does not take it, on its estimate or summed over
/// windows; one better on quality by the margin takes it, however dear.
#[test]
fn price_alone_never_moves_first_place() {
    let s = catalog().policy.scoring.clone();
    let priced = |provider: &str, quality: f64, priced: f64| Score {
        priced,
        steady: true,
        samples: 1_000.0,
        ..score(provider, quality + priced, 0.0005)
    };
    let run = |incumbent: Score, challenger: Score| {
        let mut inc = Incumbency {
            provider: Some(incumbent.provider.clone()),
            ..Default::default()
        };
        let mut now = 1_800_000_000_000;
        // Ten minutes of refreshes, a second apart: time for the summed evidence too.
        for _ in 0..600 {
            now += 1_000;
            let mut scores = vec![challenger.clone(), incumbent.clone()];
            engine::hysteresis(&mut inc, &mut scores, now, &s);
        }
        inc.provider.unwrap()
    };
    // Tencent 0.120 on quality with 0.012 of price preference on top; free local-srs 0.109:
    // better by 17% with the price, by 9% without.
    assert_eq!(
        run(
            priced("tencent", 0.120, 0.012),
            priced("local-srs", 0.109, 0.0)
        ),
        "tencent"
    );
    // Better by the margin on quality, with the price preference against it, it takes first
    // place.
    assert_eq!(
        run(
            priced("local-srs", 0.120, 0.0),
            priced("tencent", 0.100, 0.012)
        ),
        "tencent"
    );
}

/// Among providers known to be as good as the best within the policy's tolerance, the cheaper
/// ranks first (in plays and pushes); price does not decide among providers known only from
/// the prior; a provider better by more than the hysteresis margin takes first place however
/// dear, and price alone never moves first place.
#[test]
fn among_equals_the_cheaper_goes_first_and_price_never_beats_quality() {
    // Tencent (0.034 per GB) and local-srs (free) alike; Alibaba and local-nginx poor.
    let alike = || {
        World::new([
            ("tencent", 0.03, 800),
            ("alibaba", 0.2, 900),
            ("local-srs", 0.03, 800),
            ("local-nginx", 0.2, 1000),
        ])
    };
    let candidates: Vec<String> = CARRIERS.map(String::from).to_vec();
    let mut w = alike();
    with_price_tolerance(&mut w, 0.1);
    let s = w.catalog.policy.scoring.clone();
    let mut rng = SmallRng::seed_from_u64(seed());
    // Nothing known yet: every provider stands at the prior, and the policy's order, not the
    // price, places the first and a new anchor's primary.
    assert_eq!(w.first(), "tencent");
    let push = w
        .engine
        .ingest_rank("anchor-early", TW, &candidates, w.now_ms, &s, &mut rng);
    assert_eq!(push[0].provider, "tencent", "{push:#?}");
    // Both known alike from ten minutes of viewers (half of them exploring, so that the
    // second is known as well as the first): the cheaper is the primary; Tencent keeps first
    // place in plays, which price alone never moves.
    let mut policy = (*w.catalog.policy).clone();
    policy.scoring.exploration_rate = 0.5;
    w.catalog.policy = std::sync::Arc::new(policy);
    let firsts = w.run(600);
    assert!(firsts.iter().all(|f| f == "tencent"), "{firsts:?}");
    let push = w
        .engine
        .ingest_rank("anchor-price", TW, &candidates, w.now_ms, &s, &mut rng);
    assert_eq!(push[0].provider, "local-srs", "{push:#?}");
    // Price alone never moves first place: turned on with Tencent first, it stays.
    let mut w = alike();
    with_price_tolerance(&mut w, 0.0);
    assert_eq!(w.run(5).last().unwrap(), "tencent");
    with_price_tolerance_kept(&mut w, 0.1);
    let firsts = w.run(300);
    assert!(firsts.iter().all(|f| f == "tencent"), "{firsts:?}");
    // Plainly better, Tencent is first and the primary whatever its price.
    let mut w = World::new([
        ("tencent", 0.01, 700),
        ("alibaba", 0.2, 900),
        ("local-srs", 0.06, 1500),
        ("local-nginx", 0.2, 1000),
    ]);
    with_price_tolerance(&mut w, 0.1);
    w.run(600);
    assert_eq!(w.first(), "tencent");
    let s = w.catalog.policy.scoring.clone();
    let push = w
        .engine
        .ingest_rank("anchor-dear", TW, &candidates, w.now_ms, &s, &mut rng);
    assert_eq!(push[0].provider, "tencent", "{push:#?}");
}
