//! Active probes of every live stream on every provider carrying it, through reqwest.
//!
//! - **HTTP-FLV** ([`ProbeKind::Flv`]): time to first byte, then throughput over a short read
//!   (`probes.flv_read_bytes` or `probes.flv_read_ms`, whichever comes first); healthy when the
//!   answer is a FLV stream at `rooms.min_bitrate_kbps` or more.
//! - **HLS** ([`ProbeKind::Hls`]): the playlist (the first variant of a master playlist), whether
//!   its media sequence advanced since the last probe, how long it has not (segment age) against
//!   `probes.max_segment_age_factor` × the target duration, and the newest segment's download
//!   throughput and bitrate (its size over its duration). A segment not delivered within
//!   `probes.segment_realtime_factor` × its duration is a transport failure: an edge slower
//!   than real time starves live players.
//! - **Statistics** ([`ProbeKind::Stats`]): one request per provider listed in `probes.stats`,
//!   SRS `/api/v1/streams` (`publish.active`, `kbps.recv_30s`, `video`) or nginx-rtmp's stat page
//!   (`bw_in`, `bw_video`, `meta/video/frame_rate`, `publishing`, `active`), read for every
//!   stream the provider carries.
//!
//! Probes run in the `probe_streams` job. At most `probes.concurrency` are in flight, at most
//! `probes.per_provider_concurrency` against one provider, each within `probes.timeout_ms`, and
//! at most `probes.max_per_run` start per run (runs never overlap). After
//! `probes.breaker_failures` consecutive transport failures a provider is not probed for
//! `probes.breaker_cooldown_ms`, so a slow or dead provider costs a few timeouts, not a storm.
//!
//! A healthy or unhealthy verdict becomes ingest evidence for the room (`rooms`) and an ingest
//! signal for scoring; every probe is timed in `livesteer_probe_duration_seconds`. An answer
//! that cannot be read (transport failure, malformed playlist or stats) is an `error`
//! outcome: logged with its reason, counted, and no room change.
//!
//! **Dead edges.** An FLV or HLS probe that cannot connect, times out or gets a 5xx is a
//! transport failure, and failure evidence for delivery in its scope, the (provider, region)
//! the probed URL serves: once per run per scope, a [`Signal::ProbeFailure`] with the share of
//! that scope's probes that failed (counted in `livesteer_signals_total{kind="probe_failure"}`).
//! While the breaker holds a provider off, each scope whose last probes failed repeats its
//! share every run without a request, so a dead provider's rank does not recover by decay;
//! the half-open trial after the cooldown probes afresh. A 403/404/410 ("no such stream here")
//! keeps its meaning: the stream is not flowing there, ingest evidence, not a dead edge. A
//! probe that got its answer is no positive delivery evidence (a probe is not a viewer), and
//! a statistics API failing says nothing about delivery (viewers do not play from it).

pub mod hls;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::catalog::SharedCatalog;
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::metrics as m;
use crate::policy::rooms::{ProbeKind, ProbeSettings, StatsEndpoint, StatsKind};
use crate::providers::Provider;
use crate::rooms::{Evidence, IngestEvent, Rooms};
use crate::signals::{IngestSource, Signal, SignalBus};
use crate::streams::{Stream, StreamTable};
use crate::vocab::Protocol;

/// A probe's verdict.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Healthy {
        bitrate_kbps: Option<f64>,
    },
    Unhealthy {
        bitrate_kbps: Option<f64>,
        why: String,
    },
    Error(String),
}

/// One probe's outcome, for logs, tests and the job summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeReport {
    pub provider: String,
    pub stream_id: String,
    /// `flv`, `hls`, `srs_api`, `nginx_stat`.
    pub kind: &'static str,
    /// `healthy`, `unhealthy`, `error`, `skipped`.
    pub outcome: &'static str,
    pub bitrate_kbps: Option<f64>,
    /// FLV and HLS: time to the answer's headers.
    pub ttfb_ms: Option<f64>,
    pub detail: String,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until_ms: i64,
}

#[derive(Debug)]
struct HlsMemory {
    media_sequence: u64,
    changed_at_ms: i64,
}

/// The scope of a delivery probe's evidence: (provider, region). The probed URL is the
/// provider's play URL for the stream's region (its endpoints there, else its default ones),
/// and the evidence counts in that region only: a CDN's host name resolves to different edges
/// for viewers elsewhere. Other regions learn of it as they learn of failing sessions, through
/// the provider's estimate everywhere.
type Scope = (String, String);

/// What one FLV or HLS probe learned about its scope's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The edge answered (whatever the answer said about the stream).
    Answered,
    /// A transport failure (refused, timeout, 5xx).
    Failed,
    /// Not probed: the provider's circuit breaker is open.
    HeldOff,
}

/// One run's delivery probes in one scope.
#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    failed: usize,
    held_off: usize,
}

/// A scope whose last probes failed: the share that did, and when.
#[derive(Debug)]
struct Failing {
    share: f64,
    at_ms: i64,
}

/// The probes' HTTP client and memory (circuit breakers, last HLS media sequences, scopes
/// whose last probes failed).
pub struct Prober {
    client: reqwest::Client,
    breakers: Mutex<HashMap<String, Breaker>>,
    hls: Mutex<HashMap<(String, String), HlsMemory>>,
    failing: Mutex<HashMap<Scope, Failing>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Prober {
    /// A prober whose connections give up after `connect_timeout_ms`.
    pub fn new(connect_timeout_ms: u64) -> Prober {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(connect_timeout_ms))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("livesteer-probe/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Prober {
            client,
            breakers: Mutex::new(HashMap::new()),
            hls: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashMap::new()),
        }
    }

    /// Folds one run's FLV and HLS probes into the memory of failing scopes and returns the
    /// scopes that count as failing for this run, with the share of their probes that failed.
    ///
    /// A scope probed this run counts by what its probes found; one whose probes were all
    /// held off by the breaker repeats its last share, so that a provider still dead keeps
    /// losing rather than recovering by decay while it is not probed. That memory lasts a
    /// breaker cooldown: the breaker opened after those probes, so every run it holds off
    /// finds it, and the half-open trial probes afresh.
    fn failing_scopes(
        &self,
        tallies: BTreeMap<Scope, Tally>,
        s: &ProbeSettings,
        now_ms: i64,
    ) -> Vec<(Scope, f64)> {
        let mut mem = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        mem.retain(|_, f| now_ms - f.at_ms <= s.breaker_cooldown_ms);
        let mut out = Vec::new();
        for (scope, t) in tallies {
            let made = t.answered + t.failed;
            if made > 0 {
                if t.failed == 0 {
                    mem.remove(&scope);
                    continue;
                }
                let share = t.failed as f64 / made as f64;
                mem.insert(
                    scope.clone(),
                    Failing {
                        share,
                        at_ms: now_ms,
                    },
                );
                out.push((scope, share));
            } else if t.held_off > 0
                && let Some(f) = mem.get(&scope)
            {
                out.push((scope, f.share));
            }
        }
        out
    }

    fn breaker_open(&self, provider: &str, now_ms: i64) -> bool {
        let b = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        b.get(provider).is_some_and(|b| b.open_until_ms > now_ms)
    }

    fn record_transport(&self, provider: &str, ok: bool, s: &ProbeSettings, now_ms: i64) {
        let mut map = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let b = map.entry(provider.to_string()).or_default();
        if ok {
            b.failures = 0;
            return;
        }
        b.failures += 1;
        if b.failures >= s.breaker_failures {
            b.failures = 0;
            b.open_until_ms = now_ms + s.breaker_cooldown_ms;
            tracing::warn!(
                provider,
                cooldown_ms = s.breaker_cooldown_ms,
                "provider keeps failing probes; not probing it for a while"
            );
        }
    }
}

/// Reads at most `limit` bytes of a body; more is an unreadable answer, a connection lost on
/// the way a transport failure.
async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut resp = resp;
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?
    {
        if out.len() + chunk.len() > limit {
            return Err(Failure::Answer(format!(
                "answer is larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A transport failure, or an unreadable answer.
///
/// Transport: the provider could not deliver at all (connection refused or lost, timeout, and
/// for FLV and HLS an HTTP 5xx). It feeds the circuit breaker and, for FLV and HLS, counts as
/// failure evidence for delivery in the probe's region ([`Signal::ProbeFailure`]). A 403, 404
/// or 410 is a valid answer ("no such stream here"), never a transport failure.
enum Failure {
    Transport(String),
    Answer(String),
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(reqwest::Response, f64), Failure> {
    let start = Instant::now();
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| Failure::Transport(format!("GET {}: {e}", strip_query(url))))?;
    Ok((resp, start.elapsed().as_secs_f64() * 1000.0))
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

struct Probed {
    verdict: Verdict,
    ttfb_ms: Option<f64>,
    transport_ok: bool,
}

impl From<Failure> for Probed {
    fn from(f: Failure) -> Probed {
        match f {
            Failure::Transport(e) => Probed {
                verdict: Verdict::Error(e),
                ttfb_ms: None,
                transport_ok: false,
            },
            Failure::Answer(e) => Probed {
                verdict: Verdict::Error(e),
                ttfb_ms: None,
                transport_ok: true,
            },
        }
    }
}

/// A status that means "no such stream here" (a valid answer: not flowing).
fn not_there(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 403 | 404 | 410)
}

async fn probe_flv(
    client: &reqwest::Client,
    url: &str,
    s: &ProbeSettings,
    min_kbps: f64,
) -> Probed {
    let (mut resp, ttfb) = match get(client, url).await {
        Ok(r) => r,
        Err(f) => return f.into(),
    };
    let status = resp.status();
    if not_there(status) {
        return Probed {
            verdict: Verdict::Unhealthy {
                bitrate_kbps: Some(0.0),
                why: format!("FLV answered {status}"),
            },
            ttfb_ms: Some(ttfb),
            transport_ok: true,
        };
    }
    if status.is_server_error() {
        return Failure::Transport(format!("FLV answered {status}")).into();
    }
    if !status.is_success() {
        return Failure::Answer(format!("FLV answered {status}")).into();
    }
    let start = Instant::now();
    let budget = Duration::from_millis(s.flv_read_ms);
    let mut head = Vec::new();
    let mut total = 0usize;
    while total < s.flv_read_bytes {
        let left = budget.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, resp.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(chunk))) => {
                if head.len() < 3 {
                    head.extend_from_slice(&chunk[..chunk.len().min(3 - head.len())]);
                }
                total += chunk.len();
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                if total == 0 {
                    return Failure::Transport(format!("FLV read: {e}")).into();
                }
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64().max(0.001);
    let kbps = total as f64 * 8.0 / 1000.0 / secs;
    let verdict = if total >= 3 && head != b"FLV" {
        Verdict::Error("answer is not an FLV stream (no FLV signature)".into())
    } else if total < 3 || kbps < min_kbps {
        Verdict::Unhealthy {
            bitrate_kbps: Some(kbps),
            why: format!("FLV read {total} bytes in {:.0} ms", secs * 1000.0),
        }
    } else {
        Verdict::Healthy {
            bitrate_kbps: Some(kbps),
        }
    };
    Probed {
        verdict,
        ttfb_ms: Some(ttfb),
        transport_ok: true,
    }
}

async fn fetch_text(
    client: &reqwest::Client,
    url: &str,
    limit: usize,
) -> Result<(Option<String>, f64), Failure> {
    let (resp, ttfb) = get(client, url).await?;
    let status = resp.status();
    if not_there(status) {
        return Ok((None, ttfb));
    }
    if !status.is_success() {
        let e = format!("{} answered {status}", strip_query(url));
        return Err(if status.is_server_error() {
            Failure::Transport(e)
        } else {
            Failure::Answer(e)
        });
    }
    let body = read_limited(resp, limit).await?;
    String::from_utf8(body)
        .map(|t| (Some(t), ttfb))
        .map_err(|_| Failure::Answer(format!("{} is not UTF-8 text", strip_query(url))))
}

async fn probe_hls(
    prober: &Prober,
    url: &str,
    key: (String, String),
    s: &ProbeSettings,
    min_kbps: f64,
    now_ms: i64,
) -> Probed {
    let client = &prober.client;
    let (text, ttfb) = match fetch_text(client, url, s.max_document_bytes).await {
        Ok(r) => r,
        Err(f) => return f.into(),
    };
    let unhealthy = |why: String, ttfb| Probed {
        verdict: Verdict::Unhealthy {
            bitrate_kbps: Some(0.0),
            why,
        },
        ttfb_ms: Some(ttfb),
        transport_ok: true,
    };
    let Some(text) = text else {
        return unhealthy("playlist not found".into(), ttfb);
    };
    let mut base = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Failure::Answer(format!("bad playlist URL: {e}")).into(),
    };
    let media = match hls::parse(&text) {
        Ok(hls::Playlist::Media(m)) => m,
        Ok(hls::Playlist::Master { first_variant }) => {
            let Ok(v) = base.join(&first_variant) else {
                return Failure::Answer(format!("bad variant URI {first_variant:?}")).into();
            };
            base = v;
            match fetch_text(client, base.as_str(), s.max_document_bytes).await {
                Ok((Some(t), _)) => match hls::parse(&t) {
                    Ok(hls::Playlist::Media(m)) => m,
                    Ok(hls::Playlist::Master { .. }) => {
                        return Failure::Answer("variant is another master playlist".into()).into();
                    }
                    Err(e) => return Failure::Answer(format!("variant playlist: {e}")).into(),
                },
                Ok((None, _)) => return unhealthy("variant playlist not found".into(), ttfb),
                Err(f) => return f.into(),
            }
        }
        Err(e) => return Failure::Answer(format!("playlist: {e}")).into(),
    };
    if media.ended {
        return unhealthy("playlist has EXT-X-ENDLIST".into(), ttfb);
    }
    let Some((seg_duration, seg_uri)) = media.segments.last().cloned() else {
        return unhealthy("playlist lists no segment".into(), ttfb);
    };
    let newest = media.media_sequence + media.segments.len() as u64;
    let age_ms = {
        let mut mem = prober.hls.lock().unwrap_or_else(|e| e.into_inner());
        let e = mem.entry(key).or_insert(HlsMemory {
            media_sequence: newest,
            changed_at_ms: now_ms,
        });
        if newest != e.media_sequence {
            e.media_sequence = newest;
            e.changed_at_ms = now_ms;
        }
        now_ms - e.changed_at_ms
    };
    let max_age_ms = (s.max_segment_age_factor * media.target_duration_s * 1000.0) as i64;
    if age_ms > max_age_ms {
        return unhealthy(
            format!("playlist has not advanced for {age_ms} ms (limit {max_age_ms} ms)"),
            ttfb,
        );
    }
    let Ok(seg_url) = base.join(&seg_uri) else {
        return Failure::Answer(format!("bad segment URI {seg_uri:?}")).into();
    };
    let start = Instant::now();
    let fetch = async {
        let (resp, _) = get(client, seg_url.as_str()).await?;
        if resp.status().is_server_error() {
            return Err(Failure::Transport(format!(
                "newest segment answered {}",
                resp.status()
            )));
        }
        if !resp.status().is_success() {
            return Ok(Err(resp.status()));
        }
        match read_limited(resp, s.hls_segment_max_bytes).await {
            Ok(b) => Ok(Ok(b.len())),
            Err(Failure::Transport(e)) => Err(Failure::Transport(format!("segment: {e}"))),
            Err(Failure::Answer(e)) => Err(Failure::Answer(format!("segment: {e}"))),
        }
    };
    // A segment that takes much longer to arrive than it plays cannot keep a live player fed:
    // the edge is failing its viewers, found within about a segment's time.
    let realtime = (s.segment_realtime_factor > 0.0 && seg_duration > 0.0)
        .then(|| Duration::from_secs_f64(seg_duration * s.segment_realtime_factor));
    let fetched = match realtime {
        Some(limit) => match tokio::time::timeout(limit, fetch).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Transport(format!(
                "newest segment ({seg_duration} s) not delivered within {limit:?}, slower than \
                 real time"
            ))),
        },
        None => fetch.await,
    };
    let bytes = match fetched {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(status)) => return unhealthy(format!("newest segment answered {status}"), ttfb),
        Err(f) => return f.into(),
    };
    let secs = start.elapsed().as_secs_f64().max(0.001);
    let throughput_kbps = bytes as f64 * 8.0 / 1000.0 / secs;
    let bitrate = if seg_duration > 0.0 {
        bytes as f64 * 8.0 / 1000.0 / seg_duration
    } else {
        0.0
    };
    tracing::debug!(url = %strip_query(url), age_ms, throughput_kbps, bitrate, "HLS probe");
    let verdict = if bitrate < min_kbps {
        Verdict::Unhealthy {
            bitrate_kbps: Some(bitrate),
            why: format!("newest segment is {bytes} bytes for {seg_duration} s"),
        }
    } else {
        Verdict::Healthy {
            bitrate_kbps: Some(bitrate),
        }
    };
    Probed {
        verdict,
        ttfb_ms: Some(ttfb),
        transport_ok: true,
    }
}

/// One statistics request; (app, stream) → stat.
async fn fetch_stats(
    client: &reqwest::Client,
    ep: &StatsEndpoint,
    s: &ProbeSettings,
) -> Result<HashMap<(String, String), stats::StreamStat>, Failure> {
    let (resp, _) = get(client, &ep.url).await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Failure::Answer(format!("{} answered {status}", ep.url)));
    }
    let body = read_limited(resp, s.max_document_bytes).await?;
    match ep.kind {
        StatsKind::SrsApi => stats::parse_srs(&body).map_err(Failure::Answer),
        StatsKind::NginxStat => std::str::from_utf8(&body)
            .map_err(|_| Failure::Answer("nginx-rtmp stat answer is not UTF-8".into()))
            .and_then(|t| stats::parse_nginx_stat(t).map_err(Failure::Answer)),
    }
}

fn stat_verdict(stat: Option<&stats::StreamStat>, min_kbps: f64) -> Verdict {
    match stat {
        None => Verdict::Unhealthy {
            bitrate_kbps: Some(0.0),
            why: "not in the provider's stream list".into(),
        },
        Some(st) if st.publishing && st.active && st.recv_kbps >= min_kbps => Verdict::Healthy {
            bitrate_kbps: Some(st.recv_kbps),
        },
        Some(st) => Verdict::Unhealthy {
            bitrate_kbps: Some(st.recv_kbps),
            why: format!(
                "publishing {}, active {}, {:.1} kbps",
                st.publishing, st.active, st.recv_kbps
            ),
        },
    }
}

struct Job {
    stream: Arc<Stream>,
    provider: Arc<dyn Provider>,
    kind: ProbeKind,
}

/// What a probe run reads and changes: narrow handles on the catalog, the streams, this
/// replica's share, the prober's memory, the rooms and the signal bus.
#[derive(Clone)]
pub struct Probing {
    pub catalog: SharedCatalog,
    pub streams: Arc<StreamTable>,
    pub cluster: Arc<Cluster>,
    pub prober: Arc<Prober>,
    pub rooms: Arc<Rooms>,
    pub signals: Arc<SignalBus>,
    pub clock: Arc<dyn Clock>,
}

/// Providers carrying a stream: those it is pushed to, and enabled CDNs pulling from them.
fn carriers(state: &Probing, stream: &Stream) -> Vec<Arc<dyn Provider>> {
    let catalog = state.catalog.load();
    catalog
        .registry
        .iter()
        .filter(|p| crate::vocab::carries(p.id(), p.info().origin.as_deref(), &stream.providers))
        .cloned()
        .collect()
}

/// Probes every live stream once and applies the verdicts; returns one report per probe.
pub async fn run_once(state: &Probing) -> Vec<ProbeReport> {
    run(state).await.0
}

/// As [`run_once`], also returning the scopes counted as failing delivery, with their share.
async fn run(state: &Probing) -> (Vec<ProbeReport>, Vec<(Scope, f64)>) {
    let catalog = state.catalog.load_full();
    let s = catalog.policy.probes.clone();
    let min_kbps = catalog.policy.rooms.min_bitrate_kbps;
    // This replica's share: each live stream is probed by one of the live replicas.
    let streams: Vec<Arc<Stream>> = state
        .streams
        .live()
        .into_iter()
        .filter(|stream| state.cluster.owns(&stream.id))
        .collect();
    let shared = Arc::new(state.clone());
    let global = Arc::new(Semaphore::new(s.concurrency));
    let mut per_provider: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut jobs = Vec::new();
    let mut stats_streams: BTreeMap<String, Vec<Arc<Stream>>> = BTreeMap::new();
    for stream in &streams {
        for provider in carriers(state, stream) {
            for kind in &s.kinds {
                match kind {
                    ProbeKind::Flv | ProbeKind::Hls => {
                        let proto = if *kind == ProbeKind::Flv {
                            Protocol::Flv
                        } else {
                            Protocol::Hls
                        };
                        if provider.info().play_base(&stream.region, proto).is_some() {
                            jobs.push(Job {
                                stream: stream.clone(),
                                provider: provider.clone(),
                                kind: *kind,
                            });
                        }
                    }
                    ProbeKind::Stats => {
                        if s.stats.iter().any(|e| e.provider == provider.id()) {
                            stats_streams
                                .entry(provider.id().to_string())
                                .or_default()
                                .push(stream.clone());
                        }
                    }
                }
            }
        }
    }
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0usize;
    let timeout = Duration::from_millis(s.timeout_ms);
    for (provider_id, list) in stats_streams {
        let Some(ep) = s.stats.iter().find(|e| e.provider == provider_id).cloned() else {
            continue;
        };
        if started >= s.max_per_run {
            break;
        }
        started += 1;
        let sem = per_provider
            .entry(provider_id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(s.per_provider_concurrency)))
            .clone();
        let (global, state, s) = (global.clone(), shared.clone(), s.clone());
        set.spawn(async move {
            let _g = global.acquire_owned().await;
            let _p = sem.acquire_owned().await;
            let now = state.clock.now_ms();
            let kind = ep.kind.as_str();
            if state.prober.breaker_open(&provider_id, now) {
                record(&provider_id, kind, "skipped", 0.0);
                return list
                    .iter()
                    .map(|st| (skipped(&provider_id, &st.id, kind), None))
                    .collect::<Vec<_>>();
            }
            let start = Instant::now();
            let res = tokio::time::timeout(timeout, fetch_stats(&state.prober.client, &ep, &s))
                .await
                .unwrap_or_else(|_| Err(Failure::Transport(format!("timed out after {timeout:?}"))));
            let took = start.elapsed().as_secs_f64();
            let now = state.clock.now_ms();
            match res {
                Ok(map) => {
                    state.prober.record_transport(&provider_id, true, &s, now);
                    record(&provider_id, kind, "ok", took);
                    list.iter()
                        .map(|st| {
                            let app = state
                                .catalog
                                .load()
                                .registry
                                .get(&provider_id)
                                .and_then(|p| p.as_origin().map(|o| o.app(&st.region).to_string()))
                                .unwrap_or_else(|| "live".into());
                            let v = stat_verdict(map.get(&(app, st.id.clone())), min_kbps);
                            let r =
                                apply(&state, &provider_id, st, kind, IngestSource::Stats, v, None);
                            (r, None)
                        })
                        .collect()
                }
                Err(f) => {
                    let transport = matches!(f, Failure::Transport(_));
                    state.prober.record_transport(&provider_id, !transport, &s, now);
                    record(&provider_id, kind, "error", took);
                    let why = match f {
                        Failure::Transport(e) | Failure::Answer(e) => e,
                    };
                    tracing::warn!(provider = %provider_id, kind, error = %why, "stats probe failed");
                    // A statistics API is not where viewers play from: no delivery evidence.
                    list.iter()
                        .map(|st| {
                            let r = report(&provider_id, &st.id, kind, "error", None, None, why.clone());
                            (r, None)
                        })
                        .collect()
                }
            }
        });
    }
    for job in jobs {
        if started >= s.max_per_run {
            tracing::warn!(
                max = s.max_per_run,
                "probe run hit probes.max_per_run; the rest wait"
            );
            break;
        }
        started += 1;
        let sem = per_provider
            .entry(job.provider.id().to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(s.per_provider_concurrency)))
            .clone();
        let (global, state, s) = (global.clone(), shared.clone(), s.clone());
        set.spawn(async move {
            let _g = global.acquire_owned().await;
            let _p = sem.acquire_owned().await;
            let (report, reach) = probe_one(&state, &job, &s, min_kbps, timeout).await;
            let scope = (job.provider.id().to_string(), job.stream.region.clone());
            vec![(report, reach.map(|r| (scope, r)))]
        });
    }
    let mut out = Vec::new();
    let mut tallies: BTreeMap<Scope, Tally> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => {
                for (report, reach) in v {
                    if let Some((scope, reach)) = reach {
                        let t = tallies.entry(scope).or_default();
                        match reach {
                            Reach::Answered => t.answered += 1,
                            Reach::Failed => t.failed += 1,
                            Reach::HeldOff => t.held_off += 1,
                        }
                    }
                    out.push(report);
                }
            }
            Err(e) => tracing::error!(error = %e, "probe task failed"),
        }
    }
    // Once per run per scope, so that a provider counts the same while its breaker is open as
    // while it is probed, however many streams it carries there.
    let failing = state
        .prober
        .failing_scopes(tallies, &s, state.clock.now_ms());
    for ((provider, region), share) in &failing {
        tracing::debug!(provider, region, share, "probes count delivery as failing");
        state.signals.emit(Signal::ProbeFailure {
            provider: provider.clone(),
            region: region.clone(),
            share: *share,
        });
    }
    (out, failing)
}

/// One FLV or HLS probe: its report, and what it learned about its scope's edge (nothing when
/// no URL could be made).
async fn probe_one(
    state: &Probing,
    job: &Job,
    s: &ProbeSettings,
    min_kbps: f64,
    timeout: Duration,
) -> (ProbeReport, Option<Reach>) {
    let provider = job.provider.id().to_string();
    let kind = job.kind.as_str();
    let now = state.clock.now_ms();
    if state.prober.breaker_open(&provider, now) {
        record(&provider, kind, "skipped", 0.0);
        return (
            skipped(&provider, &job.stream.id, kind),
            Some(Reach::HeldOff),
        );
    }
    let proto = if job.kind == ProbeKind::Flv {
        Protocol::Flv
    } else {
        Protocol::Hls
    };
    let url = match job.provider.play_url(
        &job.stream.id,
        &job.stream.region,
        proto,
        now.div_euclid(1000) + 600,
    ) {
        Ok(u) => u,
        Err(e) => {
            record(&provider, kind, "error", 0.0);
            let r = report(
                &provider,
                &job.stream.id,
                kind,
                "error",
                None,
                None,
                e.to_string(),
            );
            return (r, None);
        }
    };
    let start = Instant::now();
    let fut = async {
        match job.kind {
            ProbeKind::Flv => probe_flv(&state.prober.client, &url, s, min_kbps).await,
            _ => {
                let key = (job.stream.id.clone(), provider.clone());
                probe_hls(&state.prober, &url, key, s, min_kbps, now).await
            }
        }
    };
    let probed = tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Probed {
            verdict: Verdict::Error(format!("timed out after {timeout:?}")),
            ttfb_ms: None,
            transport_ok: false,
        });
    let took = start.elapsed().as_secs_f64();
    state
        .prober
        .record_transport(&provider, probed.transport_ok, s, state.clock.now_ms());
    let outcome = match probed.verdict {
        Verdict::Healthy { .. } => "healthy",
        Verdict::Unhealthy { .. } => "unhealthy",
        Verdict::Error(_) => "error",
    };
    record(&provider, kind, outcome, took);
    if let Verdict::Error(e) = &probed.verdict {
        tracing::warn!(provider = %provider, stream = %job.stream.id, kind, error = %e, "probe failed");
    }
    let reach = if probed.transport_ok {
        Reach::Answered
    } else {
        Reach::Failed
    };
    let r = apply(
        state,
        &provider,
        &job.stream,
        kind,
        IngestSource::Probe,
        probed.verdict,
        probed.ttfb_ms,
    );
    (r, Some(reach))
}

fn record(provider: &str, kind: &'static str, outcome: &'static str, secs: f64) {
    metrics::histogram!(m::PROBE_DURATION.name, "provider" => provider.to_string(),
        "kind" => kind, "outcome" => outcome)
    .record(secs);
}

fn skipped(provider: &str, stream: &str, kind: &'static str) -> ProbeReport {
    report(
        provider,
        stream,
        kind,
        "skipped",
        None,
        None,
        "circuit breaker open".into(),
    )
}

fn report(
    provider: &str,
    stream: &str,
    kind: &'static str,
    outcome: &'static str,
    bitrate_kbps: Option<f64>,
    ttfb_ms: Option<f64>,
    detail: String,
) -> ProbeReport {
    ProbeReport {
        provider: provider.to_string(),
        stream_id: stream.to_string(),
        kind,
        outcome,
        bitrate_kbps,
        ttfb_ms,
        detail,
    }
}

/// Turns a verdict into room evidence and an ingest signal (errors change nothing here; the run
/// counts transport failures per scope).
fn apply(
    state: &Probing,
    provider: &str,
    stream: &Stream,
    kind: &'static str,
    source: IngestSource,
    verdict: Verdict,
    ttfb_ms: Option<f64>,
) -> ProbeReport {
    let (evidence, outcome, bitrate, detail) = match verdict {
        Verdict::Healthy { bitrate_kbps } => (
            Evidence::Flowing { bitrate_kbps },
            "healthy",
            bitrate_kbps,
            String::new(),
        ),
        Verdict::Unhealthy { bitrate_kbps, why } => (
            Evidence::NotFlowing { bitrate_kbps },
            "unhealthy",
            bitrate_kbps,
            why,
        ),
        Verdict::Error(e) => return report(provider, &stream.id, kind, "error", None, ttfb_ms, e),
    };
    let catalog = state.catalog.load();
    state.rooms.ingest(
        &catalog.policy.rooms,
        &IngestEvent {
            anchor_id: &stream.anchor_id,
            region: &stream.region,
            stream_id: &stream.id,
            provider,
            source,
            evidence,
        },
        state.clock.now_ms(),
    );
    state.signals.emit(Signal::Ingest {
        provider: provider.to_string(),
        anchor_id: stream.anchor_id.clone(),
        source,
        healthy: outcome == "healthy",
        bitrate_kbps: bitrate,
    });
    report(
        provider, &stream.id, kind, outcome, bitrate, ttfb_ms, detail,
    )
}

/// The `probe_streams` job.
pub async fn probe_streams(state: &Probing) -> anyhow::Result<String> {
    let (reports, failing) = run(state).await;
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &reports {
        *by.entry(r.outcome).or_default() += 1;
    }
    let mut summary = format!("{} probe(s): {by:?}", reports.len());
    if !failing.is_empty() {
        let scopes: Vec<String> = failing
            .iter()
            .map(|((p, r), share)| format!("{p}/{r} {:.0}%", share * 100.0))
            .collect();
        summary.push_str(&format!("; delivery failing: {}", scopes.join(", ")));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(provider: &str) -> Scope {
        (provider.to_string(), "tw".to_string())
    }

    fn tally(answered: usize, failed: usize, held_off: usize) -> Tally {
        Tally {
            answered,
            failed,
            held_off,
        }
    }

    /// A run's tallies for edge-a and edge-b.
    fn run(prober: &Prober, a: Tally, b: Tally, now_ms: i64) -> Vec<(Scope, f64)> {
        let s = ProbeSettings::default();
        prober.failing_scopes(
            [(scope("edge-a"), a), (scope("edge-b"), b)]
                .into_iter()
                .collect(),
            &s,
            now_ms,
        )
    }

    #[test]
    fn failing_scopes_count_once_per_run_and_repeat_while_held_off() {
        let prober = Prober::new(100);
        let cooldown = ProbeSettings::default().breaker_cooldown_ms;
        let t0 = 1_800_000_000_000;
        // Three streams fail on edge-a; one of edge-b's four fails.
        let got = run(&prober, tally(0, 3, 0), tally(3, 1, 0), t0);
        assert_eq!(got, vec![(scope("edge-a"), 1.0), (scope("edge-b"), 0.25)]);
        // The breaker holds both off: each repeats its last share, without a request.
        let got = run(&prober, tally(0, 0, 3), tally(0, 0, 4), t0 + 10_000);
        assert_eq!(got, vec![(scope("edge-a"), 1.0), (scope("edge-b"), 0.25)]);
        // edge-b answers again: it stops counting at once, held off or not.
        let got = run(&prober, tally(0, 0, 3), tally(4, 0, 0), t0 + 20_000);
        assert_eq!(got, vec![(scope("edge-a"), 1.0)]);
        assert!(run(&prober, tally(0, 0, 0), tally(0, 0, 4), t0 + 20_000).is_empty());
        // A memory older than a cooldown is not trusted (the half-open trial probes afresh).
        assert!(run(&prober, tally(0, 0, 3), tally(0, 0, 0), t0 + cooldown + 1).is_empty());
        // A scope never seen failing is not counted when held off.
        let fresh = Prober::new(100);
        assert!(run(&fresh, tally(0, 0, 1), tally(0, 0, 1), t0).is_empty());
    }
}
