//! CMCD (CTA-5004 and CTA-5004-B) reports from stock players: hls.js, dash.js and Shaka send
//! them to `POST /v1/cmcd` as event-mode lines, or on their segment requests (request mode).
//!
//! - [`parse`] reads one report into typed keys.
//! - [`Collector`] attributes reports and turns them into the same [`Signal::Delivery`] signals
//!   as `/v1/qos`:
//!   - **provider:** the `url` (or `nor`) host and path matched against the provider files'
//!     play endpoints ([`HostIndex`], built once per catalog); a report without `url` takes its
//!     session's (`sid`) last known provider, from a bounded map whose entries expire when a
//!     session goes quiet; a session's reports from before its first request (hls.js: `t`,
//!     `ps` with `sta=d` and `sta=s`) are held in it for the provider that request names;
//!   - **stream:** `cid` when it is a livesteer stream id, else the stream the URL's path
//!     names;
//!   - **meaning:** per session, not per line. A segment line is a fraction of a session, so a
//!     session's reports are accumulated (played time while playing, or while an `sta`-less
//!     player keeps fetching; rebuffering from `sta=r` to the next state, `bsd`, `bs`, once the
//!     player has played: before, waiting is startup; startup from `sta=s` to `p`, or over the
//!     `su` requests; errors from `rr` with `rc` ≥ 400 or `rc=0`, and `sta=f`) and a delivery
//!     is emitted per stretch: once it covers [`STRETCH_MS`] of playback, and at once on an
//!     error, at the end of a stall a viewer notices (a second or more in the stretch) and at
//!     the end of the session. Throughput (`mtp`, or the `br` × `d` of an `rr` over its `ttlb`)
//!     against the bitrate played (`br`) goes in as a [`Signal::Reload`] covering the stretch.
//!   - **order:** reports arrive out of order (players send in parallel); a body's lines are
//!     applied in `ts`, then `sn`, order, and a line older than what its session already
//!     accounted for adds no time and changes no state.

pub mod parse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use parse::{Event, LineError, Report, parse_line, parse_request};

use crate::catalog::Catalog;
use crate::signals::Signal;
use crate::streams::Stream;
use crate::vocab::Protocol;

/// Playback a stretch covers before it is reported.
pub const STRETCH_MS: u64 = 30_000;
/// Stalls in a stretch that a viewer notices: a stretch holding this much is reported when the
/// stall ends; shorter blips (dash.js's `bsd` of 100 ms as it starts) stay in the stretch, so
/// that a few milliseconds of play around them are not taken for a session that mostly stalled.
const NOTICED_STALL_MS: u64 = 1_000;
/// Longest gap between two reports of a session counted as time in its state: a player that
/// goes quiet (a hidden tab, a closed page) is not playing or stalling all that while.
const MAX_GAP_MS: i64 = 30_000;
/// Longest startup believed.
const MAX_STARTUP_MS: i64 = 120_000;
/// Sessions remembered.
const MAX_SESSIONS: u64 = 200_000;
/// A session forgotten after this long without a report.
const SESSION_IDLE: Duration = Duration::from_secs(300);
/// Throughput samples kept per stretch.
const MAX_SAMPLES: usize = 64;

/// Provider play endpoints by host: `(host, port)` → `(path prefix, provider id)`, longest
/// prefix first.
#[derive(Debug, Default)]
pub struct HostIndex {
    hosts: HashMap<(String, u16), Vec<(String, String)>>,
}

impl HostIndex {
    /// Every enabled provider's HLS, DASH, HTTP-FLV and RTMP play bases, in every region.
    pub fn build(catalog: &Catalog) -> HostIndex {
        let mut hosts: HashMap<(String, u16), Vec<(String, String)>> = HashMap::new();
        for p in catalog.registry.iter() {
            for e in p.info().endpoints.values() {
                for base in [&e.hls, &e.dash, &e.flv, &e.rtmp].into_iter().flatten() {
                    let Ok(u) = url::Url::parse(base) else {
                        continue;
                    };
                    let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) else {
                        continue;
                    };
                    let prefix = u.path().trim_end_matches('/').to_string();
                    let list = hosts.entry((host.to_ascii_lowercase(), port)).or_default();
                    if !list.iter().any(|(pre, id)| *pre == prefix && id == p.id()) {
                        list.push((prefix, p.id().to_string()));
                    }
                }
            }
        }
        for list in hosts.values_mut() {
            list.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        }
        HostIndex { hosts }
    }

    /// The provider serving `url`, and the URL's path below that provider's base. `None` for a
    /// host no provider plays from, or one that two providers share at the same path.
    pub fn lookup<'a>(&'a self, u: &url::Url) -> Option<(&'a str, String)> {
        let host = u.host_str()?.to_ascii_lowercase();
        let list = self.hosts.get(&(host, u.port_or_known_default()?))?;
        let path = u.path();
        let under = |pre: &str| {
            pre.is_empty()
                || (path.starts_with(pre) && path.as_bytes().get(pre.len()) == Some(&b'/'))
        };
        let mut hits = list.iter().filter(|(pre, _)| under(pre));
        let (pre, id) = hits.next()?;
        if hits.any(|(p, other)| p.len() == pre.len() && other != id) {
            return None;
        }
        Some((
            id.as_str(),
            path[pre.len()..].trim_start_matches('/').to_string(),
        ))
    }
}

/// What became of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Taken into its session.
    Accepted,
    /// Not a CMCD report.
    Malformed,
    /// No provider could be known for it: counted and dropped.
    Unattributed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Malformed => "malformed",
            Outcome::Unattributed => "unattributed",
        }
    }
}

/// What one call of [`Collector::take`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Taken {
    pub accepted: usize,
    pub unattributed: usize,
    /// Signals emitted, and of them dropped by a full bus.
    pub signals: usize,
    pub dropped_signals: usize,
}

/// Where the reports of one request come from.
pub struct Context<'a> {
    pub catalog: &'a Arc<Catalog>,
    /// The client's region, placed as `/v1/qos` places it.
    pub region: &'a str,
    /// The receiving clock, for reports without `ts`.
    pub now_ms: i64,
    /// A livesteer stream by id.
    pub stream: &'a dyn Fn(&str) -> Option<Arc<Stream>>,
}

/// One player session's accounting.
#[derive(Debug, Default)]
struct Session {
    /// The session id's key ([`crate::signals::session_key`]); `None` for a line without one.
    key: Option<u64>,
    provider: Option<String>,
    anchor_id: Option<String>,
    protocol: Option<Protocol>,
    region: String,
    /// Time accounted up to (the session's own clock).
    mark: Option<i64>,
    state: Option<char>,
    seen_state: bool,
    /// The player has said `sta=p` once: before that, waiting for data is startup.
    played_once: bool,
    startup_from: Option<i64>,
    su_from: Option<i64>,
    startup_ms: Option<u64>,
    startup_sent: bool,
    // The stretch not yet reported.
    played_ms: u64,
    rebuffer_ms: u64,
    rebuffer_count: u32,
    error: bool,
    kbps: Vec<u64>,
    br: Option<u64>,
}

/// Why a stretch is reported now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    No,
    Now,
}

impl Session {
    /// Takes one report (already attributed) into the stretch.
    fn apply(&mut self, r: &Report, now_ms: i64) -> Flush {
        let ts = r.ts.unwrap_or(now_ms);
        let rr = r.e == Some(Event::ResponseReceived);
        let mut flush = Flush::No;
        // A stall timed by the play state is not counted again from `bsd` or `bs`.
        let stalled_before = self.state == Some('r');
        let fresh = self.mark.is_none_or(|m| ts > m);
        if let Some(m) = self.mark.filter(|_| fresh) {
            let gap = (ts - m).min(MAX_GAP_MS) as u64;
            match self.state {
                Some('p') => self.played_ms += gap,
                // A player that never says its state (Shaka) is playing while it fetches.
                None if !self.seen_state && (rr || r.e == Some(Event::Interval)) => {
                    self.played_ms += gap
                }
                Some('r') => self.rebuffer_ms += gap,
                _ => {}
            }
        }
        if fresh {
            self.mark = Some(ts);
        }
        // dash.js says `sta=r` (and `bsd`) while it fills its first buffer: startup, not a
        // rebuffer, until the player has played.
        let sta = r.sta.map(|s| {
            if s == 'r' && !self.played_once {
                's'
            } else {
                s
            }
        });
        if let (Some(sta), true) = (sta, fresh) {
            self.seen_state = true;
            self.played_once |= sta == 'p';
            let was = self.state.replace(sta);
            if was != Some(sta) {
                match sta {
                    's' => {
                        self.startup_from.get_or_insert(ts);
                    }
                    'p' => {
                        if let (Some(from), None) = (self.startup_from, self.startup_ms) {
                            self.startup_ms = ((0..=MAX_STARTUP_MS).contains(&(ts - from)))
                                .then_some((ts - from) as u64);
                        }
                    }
                    'r' => self.rebuffer_count += 1,
                    'f' => {
                        self.error = true;
                        flush = Flush::Now;
                    }
                    'e' | 'q' => flush = Flush::Now,
                    _ => {}
                }
                if was == Some('r') && self.rebuffer_ms >= NOTICED_STALL_MS {
                    flush = Flush::Now;
                }
            }
        }
        // `su` marks the startup requests of a player that says no state.
        if !self.seen_state && self.startup_ms.is_none() {
            if r.su {
                self.su_from.get_or_insert(ts - r.ttlb.unwrap_or(0) as i64);
            } else if let (Some(from), true) = (self.su_from, rr) {
                self.startup_ms =
                    ((0..=MAX_STARTUP_MS).contains(&(ts - from))).then_some((ts - from) as u64);
            }
        }
        // A player that says its state stalls only once it has played.
        let can_stall = self.played_once || !self.seen_state;
        if can_stall && !stalled_before && self.state != Some('r') {
            if let Some(bsd) = r.bsd.filter(|&b| b > 0) {
                self.rebuffer_ms += bsd;
                self.rebuffer_count += 1;
                if self.rebuffer_ms >= NOTICED_STALL_MS {
                    flush = Flush::Now;
                }
            } else if r.bs {
                self.rebuffer_count += 1;
            }
        }
        if rr && r.rc.is_some_and(|rc| rc == 0 || rc >= 400) {
            self.error = true;
            flush = Flush::Now;
        }
        let derived = || {
            let (br, d, ttlb) = (r.br?, r.d?, r.ttlb?);
            (rr && br > 0 && ttlb > 0).then(|| br * d / ttlb)
        };
        if let Some(k) = r.mtp.filter(|&k| k > 0).or_else(derived)
            && self.kbps.len() < MAX_SAMPLES
        {
            self.kbps.push(k);
        }
        if let Some(br) = r.br.filter(|&b| b > 0) {
            self.br = Some(br);
        }
        if self.played_ms + self.rebuffer_ms >= STRETCH_MS {
            flush = Flush::Now;
        }
        flush
    }

    /// The stretch's signals, and a fresh stretch.
    fn take(&mut self, provider: &str) -> Vec<Signal> {
        let startup_ms = self.startup_ms.filter(|_| !self.startup_sent);
        let mut out = Vec::new();
        let covered = self.played_ms + self.rebuffer_ms;
        if covered > 0 || startup_ms.is_some() || self.error || self.rebuffer_count > 0 {
            self.startup_sent |= startup_ms.is_some();
            out.push(Signal::Delivery {
                provider: provider.to_string(),
                region: self.region.clone(),
                protocol: self.protocol.unwrap_or(Protocol::Hls),
                anchor_id: self.anchor_id.clone(),
                played_ms: self.played_ms,
                rebuffer_ms: self.rebuffer_ms,
                rebuffer_count: self.rebuffer_count,
                startup_ms,
                error: self.error,
                session: self.key,
            });
        }
        if let (Some(br), false, true) = (self.br, self.kbps.is_empty(), covered > 0) {
            self.kbps.sort_unstable();
            let median = self.kbps[self.kbps.len() / 2];
            out.push(Signal::Reload {
                provider: provider.to_string(),
                region: self.region.clone(),
                anchor_id: self.anchor_id.clone(),
                covered_ms: covered,
                throughput_bps: median.saturating_mul(1000),
                needed_bps: br.saturating_mul(1000),
            });
        }
        self.played_ms = 0;
        self.rebuffer_ms = 0;
        self.rebuffer_count = 0;
        self.error = false;
        self.kbps.clear();
        out
    }
}

/// Sessions and the host index: one per process, in `AppState`.
pub struct Collector {
    sessions: moka::sync::Cache<String, Arc<Mutex<Session>>>,
    index: Mutex<Option<(Weak<Catalog>, Arc<HostIndex>)>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("sessions", &self.sessions.entry_count())
            .finish_non_exhaustive()
    }
}

impl Default for Collector {
    fn default() -> Self {
        // Start the line counters at 0, so that a graph of them shows "none", not "no data".
        for o in [Outcome::Accepted, Outcome::Malformed, Outcome::Unattributed] {
            metrics::counter!(crate::metrics::CMCD_LINES.name, "outcome" => o.as_str())
                .increment(0);
        }
        Collector {
            sessions: moka::sync::Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .time_to_idle(SESSION_IDLE)
                .build(),
            index: Mutex::new(None),
        }
    }
}

impl Collector {
    /// The host index of `catalog`, built the first time that catalog is seen.
    pub fn index(&self, catalog: &Arc<Catalog>) -> Arc<HostIndex> {
        let mut slot = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, idx)) = slot.as_ref()
            && std::ptr::eq(c.as_ptr(), Arc::as_ptr(catalog))
        {
            return idx.clone();
        }
        let idx = Arc::new(HostIndex::build(catalog));
        *slot = Some((Arc::downgrade(catalog), idx.clone()));
        idx
    }

    /// Takes a body's reports: attributes each, applies them to their sessions in `ts`/`sn`
    /// order and hands the signals of every stretch that is due to `emit` (false: dropped).
    pub fn take(
        &self,
        mut reports: Vec<Report>,
        cx: &Context<'_>,
        mut emit: impl FnMut(Signal) -> bool,
    ) -> Taken {
        let index = self.index(cx.catalog);
        reports.sort_by(|a, b| (a.sid.as_deref(), a.ts, a.sn).cmp(&(b.sid.as_deref(), b.ts, b.sn)));
        let mut taken = Taken::default();
        let mut send = |signals: Vec<Signal>, taken: &mut Taken| {
            for s in signals {
                taken.signals += 1;
                if !emit(s) {
                    taken.dropped_signals += 1;
                }
            }
        };
        for r in &reports {
            let located = request_url(r)
                .and_then(|u| index.lookup(&u).map(|(p, path)| (p.to_string(), path)));
            let session = match &r.sid {
                Some(sid) => Some(self.sessions.get_with_by_ref(sid.as_str(), || {
                    Arc::new(Mutex::new(Session {
                        key: Some(crate::signals::session_key(sid)),
                        ..Session::default()
                    }))
                })),
                None => None,
            };
            let mut own = Session::default();
            let mut guard = session
                .as_ref()
                .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()));
            let s: &mut Session = match guard.as_deref_mut() {
                Some(s) => s,
                None => &mut own,
            };
            let provider = located
                .as_ref()
                .map(|(p, _)| p.clone())
                .or_else(|| s.provider.clone());
            let Some(provider) = provider else {
                if session.is_none() || located.is_some() || request_url(r).is_some() {
                    taken.unattributed += 1;
                    continue;
                }
                // A session's first reports (hls.js: `t`, then `ps` with `sta=d` and `sta=s`)
                // come before any request names its provider: they are held in the session,
                // startup's start among them, and go to the provider its first request names.
                s.region = cx.region.to_string();
                taken.accepted += 1;
                s.apply(r, cx.now_ms);
                continue;
            };
            if s.provider.as_deref() != Some(provider.as_str()) {
                // A new provider (a switch): what was gathered belongs to the old one.
                if let Some(old) = s.provider.take() {
                    let signals = s.take(&old);
                    send(signals, &mut taken);
                }
                s.provider = Some(provider.clone());
            }
            s.region = cx.region.to_string();
            match r.sf {
                Some('h') => s.protocol = Some(Protocol::Hls),
                Some('d') => s.protocol = Some(Protocol::Dash),
                _ => {}
            }
            let stream = r.cid.as_deref().and_then(|c| (cx.stream)(c)).or_else(|| {
                located
                    .as_ref()
                    .and_then(|(_, path)| stream_in_path(path, cx))
            });
            if let Some(st) = stream {
                s.anchor_id = Some(st.anchor_id.clone());
            }
            taken.accepted += 1;
            if s.apply(r, cx.now_ms) == Flush::Now {
                let signals = s.take(&provider);
                send(signals, &mut taken);
            }
        }
        taken
    }
}

/// The URL a report is about: `url`, else `nor` (URL-encoded, absolute or relative to `url`).
fn request_url(r: &Report) -> Option<url::Url> {
    let base = r.url.as_deref().and_then(|u| url::Url::parse(u).ok());
    if base.is_some() {
        return base;
    }
    let nor = percent_encoding::percent_decode_str(r.nor.as_deref()?)
        .decode_utf8()
        .ok()?;
    url::Url::parse(&nor).ok()
}

/// The livesteer stream a play URL's path (below the provider's base) names: nginx-rtmp and
/// SRS write `<stream>.m3u8`, `<stream>-<n>.ts`, `<stream>_<variant>/index.m3u8`,
/// `<stream>/index.mpd`, `<stream>-init.m4v`.
fn stream_in_path(path: &str, cx: &Context<'_>) -> Option<Arc<Stream>> {
    let first = path.split('/').find(|s| !s.is_empty())?;
    let mut name = first.split('.').next()?;
    for _ in 0..4 {
        if let Some(st) = (cx.stream)(name) {
            return Some(st);
        }
        name = &name[..name.rfind(['-', '_'])?];
    }
    None
}

#[cfg(test)]
mod tests;
