//! The viewers: sessions in play and the calendar of what happens to them (steering reloads,
//! reports and beacons, switches, ends), and the tally of what they came to.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::catalog::Catalog;
use crate::scoring::snapshot::normal;
use crate::signals::Signal;
use crate::steering::SteeringSession;
use crate::streams::Stream;
use crate::vocab::Protocol;

use super::report::{Timeline, timeline_bucket};
use super::scenario::SessionSpec;
use super::strategies::{Runner, Strategy};
use super::world::{Anchor, Ix, Live, NONE, World};
use super::{STEP_MS, secs};

/// What happens to a session at a time.
#[derive(Debug, Clone, Copy)]
enum Ev {
    /// A steering reload, or the session's end.
    Boundary,
    /// The player's report on a stint (by number), if it has not reported it yet.
    Report(u32),
}

/// A player's report on its pathway: `played_ms` played, stalling (and at what rebuffer ratio)
/// or not.
pub(super) fn delivery(
    world: &World,
    s: &Session,
    played_ms: u64,
    (stalled, ratio): (bool, f64),
    startup_ms: Option<f64>,
    error: bool,
) -> Signal {
    Signal::Delivery {
        provider: world.providers[s.on].clone(),
        region: world.regions[s.region].clone(),
        protocol: Protocol::Flv,
        anchor_id: Some(s.stream.anchor_id.clone()),
        played_ms,
        rebuffer_ms: rebuffer_ms(played_ms, (stalled, ratio)),
        rebuffer_count: u32::from(stalled),
        startup_ms: startup_ms.map(|ms| ms as u64),
        error,
        session: Some(s.id),
    }
}

/// The rebuffering a report of `played_ms` tells, stalling at `ratio` or not.
pub(super) fn rebuffer_ms(played_ms: u64, (stalled, ratio): (bool, f64)) -> u64 {
    let r = ratio.min(0.99);
    if stalled {
        (played_ms as f64 * r / (1.0 - r)) as u64
    } else {
        0
    }
}

/// A session event: (time, sequence, slot, session id, event).
type Timed = (i64, u64, usize, u64, Ev);

/// A viewer session in play.
pub(super) struct Session {
    id: u64,
    slot: usize,
    pub(super) region: Ix,
    pub(super) anchor: usize,
    stream: Arc<Stream>,
    /// The providers carrying it, in the policy's order for the region.
    carriers: Vec<Ix>,
    start_ms: i64,
    end_ms: i64,
    /// The session's own draws, the same sequence for every strategy.
    rng: SmallRng,
    /// Joined after the warm-up.
    counted: bool,
    /// The pathway it plays on (`NONE` before its first).
    pub(super) on: Ix,
    stint: Stint,
    /// The current segment (from one reload to the next): since when, whether it stalls, its
    /// rebuffer ratio and the throughput the player measures.
    seg_ms: i64,
    seg_stalled: bool,
    seg_ratio: f64,
    seg_throughput: f64,
    rebuffer_ms: f64,
    startup_ms: f64,
    failed: bool,
    switches: u32,
    /// Pathways the player keeps off, until (ms).
    avoid: Vec<(Ix, i64)>,
    steering: SteeringSession,
}

/// A stretch of a session on one pathway.
#[derive(Debug, Default)]
struct Stint {
    no: u32,
    from_ms: i64,
    /// Its luck: the session stalls on this pathway while `stall` is below the pathway's
    /// stall chance; it leaves on a stall or an error if `switch` is below the player's
    /// switch chance.
    stall: f64,
    switch: f64,
    error: bool,
    /// Whether its first segment stalled, and how much (what its report tells).
    first: Option<(bool, f64)>,
    startup_ms: Option<f64>,
    reported: bool,
}

/// What one strategy's counted sessions came to.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) sessions: u64,
    pub(super) bad: u64,
    pub(super) ratio_sum: f64,
    pub(super) startup_sum: f64,
    pub(super) switches: u64,
    /// Per region: sessions, bad sessions, and first places per provider.
    pub(super) regions: Vec<(u64, u64, Vec<u64>)>,
    /// What delivering the counted sessions cost (the providers' prices per GB).
    pub(super) cost: f64,
    /// The time the counted sessions spent on a pathway, playing or stalled (s): what
    /// `cost` pays for.
    pub(super) watch_s: f64,
    pub(super) timeline: Timeline,
}

/// The sessions in play and what happens to them: players start on their first candidate
/// that plays, report once per pathway, reload steering every TTL and follow its answer, and
/// leave a pathway they stall or fail on (keeping off it for a while, as hls.js does).
pub(super) struct Viewers<'s> {
    ss: &'s SessionSpec,
    ttl_ms: i64,
    bandwidth_bps: f64,
    /// Boxed: a session moves in and out of its slot at every event.
    slots: Vec<Option<Box<Session>>>,
    free: Vec<usize>,
    /// Per simulation step (a calendar queue: cheaper than one heap of every event), what is
    /// due in it: (time, sequence, slot, session id, event).
    events: BTreeMap<i64, Vec<Timed>>,
    seq: u64,
    next_id: u64,
    pub(super) tally: Tally,
}

impl<'s> Viewers<'s> {
    pub(super) fn new(ss: &'s SessionSpec, catalog: &Catalog, world: &World) -> Self {
        let st = &catalog.policy.steering;
        let (np, nr) = (world.providers.len(), world.regions.len());
        let duration = world.scenario.duration_seconds.value as f64;
        let bucket_seconds = timeline_bucket(duration);
        let buckets = (duration / bucket_seconds).ceil() as usize + 1;
        Viewers {
            ss,
            ttl_ms: (st.ttl_seconds.max(1) * 1000) as i64,
            bandwidth_bps: st.bandwidth_bps as f64,
            slots: Vec::new(),
            free: Vec::new(),
            events: BTreeMap::new(),
            seq: 0,
            next_id: 0,
            tally: Tally {
                sessions: 0,
                bad: 0,
                ratio_sum: 0.0,
                startup_sum: 0.0,
                switches: 0,
                regions: vec![(0, 0, vec![0; np]); nr],
                cost: 0.0,
                watch_s: 0.0,
                timeline: Timeline {
                    bucket_seconds,
                    sessions: vec![(0, 0); buckets],
                    firsts: vec![vec![vec![0; np]; nr]; buckets],
                },
            },
        }
    }

    fn schedule(&mut self, at: i64, s: &Session, ev: Ev) {
        self.seq += 1;
        let step = (at + STEP_MS - 1).div_euclid(STEP_MS);
        self.events
            .entry(step)
            .or_default()
            .push((at, self.seq, s.slot, s.id, ev));
    }

    /// A new viewer of `live` in `region`: asks for candidates and starts on the first that
    /// plays. Returns the first candidate.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        runner: &mut Runner,
        anchors: &[Anchor],
        region: Ix,
        ai: usize,
        live: &Live,
        seed: u64,
        length_s: f64,
        counted: bool,
        now: i64,
    ) -> Option<Ix> {
        let carriers = live.carriers[region].clone();
        let order = runner.play(region, &live.stream, &carriers, &anchors[ai], now);
        let first = *order.first()?;
        self.next_id += 1;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut s = Box::new(Session {
            id: self.next_id,
            slot,
            region,
            anchor: ai,
            stream: Arc::clone(&live.stream),
            carriers,
            start_ms: now,
            end_ms: now + ((length_s * 1000.0) as i64).max(1),
            rng: SmallRng::seed_from_u64(seed),
            counted,
            on: NONE,
            stint: Stint::default(),
            seg_ms: now,
            seg_stalled: false,
            seg_ratio: 0.0,
            seg_throughput: 0.0,
            rebuffer_ms: 0.0,
            startup_ms: 0.0,
            failed: false,
            switches: 0,
            avoid: Vec::new(),
            // As the multivariant playlist starts it: on livesteer's first pathway.
            steering: SteeringSession::start(
                &runner.world.regions[region],
                &runner.world.providers[first],
                now / 1000,
                0,
            ),
        });
        if counted {
            self.tally.regions[region].2[first] += 1;
        }
        let b = self.tally.timeline.bucket(now);
        self.tally.timeline.firsts[b][region][first] += 1;
        self.settle(runner, anchors, &mut s, &order, now);
        self.next(runner, s, now);
        Some(first)
    }

    /// Puts the session back in play until its next reload, or ends it.
    fn next(&mut self, runner: &mut Runner, mut s: Box<Session>, now: i64) {
        if s.failed {
            // The viewer gives up.
            s.end_ms = now;
        }
        if now >= s.end_ms {
            self.finish(runner, s, now);
            return;
        }
        self.schedule((now + self.ttl_ms).min(s.end_ms), &s, Ev::Boundary);
        let slot = s.slot;
        self.slots[slot] = Some(s);
    }

    /// Moves the player along `candidates` to the first it does not keep off (staying where
    /// it is if that is where it plays). A pathway that fails is left for the next with the
    /// player's switch chance; otherwise the session has failed. Starts the next segment.
    fn settle(
        &mut self,
        runner: &mut Runner,
        anchors: &[Anchor],
        s: &mut Session,
        candidates: &[Ix],
        now: i64,
    ) {
        let kept_off = |s: &Session, p: Ix| s.avoid.iter().any(|&(a, _)| a == p);
        let mut next = candidates.iter().copied().find(|&p| !kept_off(s, p));
        while let Some(p) = next {
            if p == s.on {
                break;
            }
            if s.on == NONE {
                runner.carry(s.region, NONE, p);
            } else {
                self.report(runner, s, now);
                self.pay(runner, s, now);
                runner.carry(s.region, s.on, p);
                s.switches += 1;
            }
            s.on = p;
            let joining = s.stint.no == 0 || s.stint.startup_ms.is_some() && s.stint.error;
            self.begin_stint(runner, s, joining, now);
            if !s.stint.error {
                break;
            }
            if s.stint.switch >= self.ss.switch_on_stall {
                s.failed = true;
                return;
            }
            self.leave(runner, s, now);
            next = candidates.iter().copied().find(|&p| !kept_off(s, p));
            if next.is_none() {
                s.failed = true;
                return;
            }
        }
        self.segment(runner, anchors, s, now);
    }

    /// The player leaves its pathway on a stall or an error: says so (the switch call) and
    /// keeps off it for a while.
    fn leave(&mut self, runner: &mut Runner, s: &mut Session, now: i64) {
        if runner.strategy == Strategy::Engine {
            runner.observe(
                &Signal::Switch {
                    provider: runner.world.providers[s.on].clone(),
                    region: runner.world.regions[s.region].clone(),
                    anchor_id: Some(s.stream.anchor_id.clone()),
                },
                now,
            );
        }
        let until = now + (self.ss.pathway_penalty_seconds * 1000.0) as i64;
        s.avoid.push((s.on, until));
    }

    /// A new stint on `s.on`: its luck, whether it fails, and (while the session is starting)
    /// the time to its first frame.
    fn begin_stint(&mut self, runner: &Runner, s: &mut Session, joining: bool, now: i64) {
        let q = runner.quality(s.on, s.region, secs(now));
        let (stall, switch, error) = (
            s.rng.random::<f64>(),
            s.rng.random::<f64>(),
            s.rng.random::<f64>(),
        );
        let z = normal(&mut s.rng);
        let startup = joining.then(|| q.startup_ms * (self.ss.noise * z).exp());
        if let Some(ms) = startup {
            s.startup_ms += ms;
        }
        s.stint = Stint {
            no: s.stint.no + 1,
            from_ms: now,
            stall,
            switch,
            error: error < q.error,
            first: None,
            startup_ms: startup,
            reported: false,
        };
        let report_at = now + (self.ss.report_after_seconds * 1000.0) as i64;
        if report_at < s.end_ms {
            let no = s.stint.no;
            self.schedule(report_at, s, Ev::Report(no));
        }
    }

    /// The segment from `now` to the next reload: whether the session stalls on its pathway,
    /// by the truth now.
    fn segment(&mut self, runner: &Runner, anchors: &[Anchor], s: &mut Session, now: i64) {
        let t = secs(now);
        let q = runner.quality(s.on, s.region, t);
        let u = runner.world.uplink(&anchors[s.anchor], s.on, t);
        let stalled = s.stint.stall < 1.0 - (1.0 - q.stall) * (1.0 - u);
        s.seg_ms = now;
        s.seg_stalled = stalled;
        s.seg_ratio = if stalled { q.stall_ratio } else { 0.0 };
        // A stalled player cannot sustain the bitrate.
        let tp = if stalled {
            q.throughput_bps
                .min(self.bandwidth_bps * (1.0 - q.stall_ratio))
        } else {
            q.throughput_bps
        };
        s.seg_throughput = tp * (self.ss.noise * normal(&mut s.rng)).exp();
        s.stint.first.get_or_insert((stalled, s.seg_ratio));
    }

    /// The player's report on its current stint, once.
    fn report(&mut self, runner: &mut Runner, s: &mut Session, now: i64) {
        if s.stint.reported || s.stint.no == 0 {
            return;
        }
        s.stint.reported = true;
        if !runner.listens() {
            return;
        }
        let played_s = ((now - s.stint.from_ms) as f64 / 1000.0)
            .min(self.ss.report_after_seconds)
            .max(1.0);
        let played = (played_s * 1000.0) as u64;
        let first = s.stint.first.unwrap_or((false, 0.0));
        runner.hear(s, played, first, s.stint.startup_ms, s.stint.error, now);
    }

    /// The truth changed for the sessions `hit` picks (an incident began, ended or is
    /// recovering on their pathway): each starts a new segment now.
    pub(super) fn resegment(
        &mut self,
        runner: &Runner,
        anchors: &[Anchor],
        hit: impl Fn(&Session) -> bool,
        now: i64,
    ) {
        for slot in 0..self.slots.len() {
            let Some(s) = &self.slots[slot] else {
                continue;
            };
            if hit(s) {
                let mut s = self.slots[slot].take().expect("checked");
                s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
                self.segment(runner, anchors, &mut s, now);
                self.slots[slot] = Some(s);
            }
        }
    }

    /// A broadcast moved to other push targets mid-stream (its app asked again): its players
    /// take the new stream and carriers; one on a provider no longer carrying it moves at its
    /// next reload (the app keeps pushing to the old targets until the new ones take it).
    pub(super) fn restream(&mut self, anchor: usize, live: &Live) {
        for s in self.slots.iter_mut().flatten() {
            if s.anchor == anchor && s.stream.id == live.stream.id {
                s.stream = Arc::clone(&live.stream);
                s.carriers = live.carriers[s.region].clone();
            }
        }
    }

    /// The player's beacon at a reload, once its stint has reported: how the segment since
    /// (what the stint's first report did not cover) played.
    fn beacon(&mut self, runner: &mut Runner, s: &Session, now: i64) {
        if !s.stint.reported || !runner.listens() {
            return;
        }
        let covered = s.stint.from_ms + (self.ss.report_after_seconds * 1000.0) as i64;
        let played = now - s.seg_ms.max(covered);
        if played < 1000 {
            return;
        }
        runner.hear(
            s,
            played as u64,
            (s.seg_stalled, s.seg_ratio),
            None,
            false,
            now,
        );
    }

    /// Whatever is due by `now`.
    pub(super) fn advance(&mut self, runner: &mut Runner, anchors: &[Anchor], now: i64) {
        while let Some(entry) = self.events.first_entry()
            && *entry.key() <= now.div_euclid(STEP_MS)
        {
            let mut due = entry.remove();
            due.sort_unstable_by_key(|e| (e.0, e.1));
            // The sessions due are scattered in memory: touch them all first, in a loop of
            // independent loads the processor overlaps, rather than miss the cache on each
            // in turn below.
            let mut touched = 0u64;
            for &(_, _, slot, _, _) in &due {
                if let Some(s) = &self.slots[slot] {
                    touched = touched.wrapping_add(s.id ^ s.stint.from_ms as u64);
                    touched = touched.wrapping_add(s.carriers.first().map_or(0, |&p| p as u64));
                }
            }
            std::hint::black_box(touched);
            for (at, _, slot, id, ev) in due {
                if self.slots[slot].as_ref().is_none_or(|s| s.id != id) {
                    continue;
                }
                match ev {
                    Ev::Report(no) => {
                        if let Some(mut s) = self.slots[slot].take() {
                            if s.stint.no == no {
                                self.report(runner, &mut s, at);
                            }
                            self.slots[slot] = Some(s);
                        }
                    }
                    Ev::Boundary => {
                        if let Some(s) = self.slots[slot].take() {
                            self.reload(runner, anchors, s, at);
                        }
                    }
                }
            }
        }
    }

    /// A segment ends: the session ends, or the player reloads steering and follows it.
    fn reload(&mut self, runner: &mut Runner, anchors: &[Anchor], mut s: Box<Session>, now: i64) {
        s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
        if now >= s.end_ms {
            self.finish(runner, s, now);
            return;
        }
        self.beacon(runner, &s, now);
        s.avoid.retain(|(_, until)| *until > now);
        if s.seg_stalled && s.stint.switch < self.ss.switch_on_stall {
            self.leave(runner, &mut s, now);
        }
        let (priority, session) = runner.steer(
            s.region,
            &s.stream,
            &s.carriers,
            &anchors[s.anchor],
            s.on,
            s.seg_throughput as u64,
            std::mem::take(&mut s.steering),
            now,
        );
        s.steering = session;
        self.settle(runner, anchors, &mut s, &priority, now);
        self.next(runner, s, now);
    }

    /// The session ends: its last report, its load off, and its count.
    fn finish(&mut self, runner: &mut Runner, mut s: Box<Session>, now: i64) {
        self.report(runner, &mut s, now);
        if s.on != NONE {
            self.pay(runner, &s, now);
            runner.carry(s.region, s.on, NONE);
        }
        self.free.push(s.slot);
        let length = (now - s.start_ms).max(1) as f64;
        let ratio = s.rebuffer_ms / length;
        let bad = &runner.catalog.policy.scoring.bad_session;
        let is_bad = bad.is_bad(ratio, Some(s.startup_ms), s.failed);
        let t = &mut self.tally;
        let b = t.timeline.bucket(s.start_ms);
        t.timeline.sessions[b].0 += 1;
        t.timeline.sessions[b].1 += u64::from(is_bad);
        if !s.counted {
            return;
        }
        t.sessions += 1;
        t.ratio_sum += ratio;
        t.startup_sum += s.startup_ms;
        t.switches += u64::from(s.switches);
        t.bad += u64::from(is_bad);
        let r = &mut t.regions[s.region];
        r.0 += 1;
        r.1 += u64::from(is_bad);
    }

    /// What the stint on `s.on` that ends now cost to deliver, if the session counts: its
    /// playing time at the policy's bitrate, at the provider's price.
    fn pay(&mut self, runner: &Runner, s: &Session, now: i64) {
        if s.counted {
            let watched = (now - s.stint.from_ms) as f64 / 1000.0;
            self.tally.cost += watched * self.bandwidth_bps / 8e9 * runner.world.price[s.on];
            self.tally.watch_s += watched;
        }
    }

    /// Ends every session still playing (the end of the simulated time).
    pub(super) fn finish_all(&mut self, runner: &mut Runner, now: i64) {
        for slot in 0..self.slots.len() {
            if let Some(mut s) = self.slots[slot].take() {
                s.rebuffer_ms += s.seg_ratio * (now - s.seg_ms) as f64;
                self.finish(runner, s, now);
            }
        }
    }
}
