//! The `rooms:` and `probes:` sections: how the room state machine treats its inputs, and how
//! active probes behave.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Diagnostic;
use super::raw::unspanned;

/// `rooms:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsSpec {
    /// A room is live only while the anchor's chat room is connected, too.
    #[serde(default = "d_true")]
    pub chat_required: bool,
    /// A starting room (publish accepted, no flow seen yet) goes live after this long with its
    /// ingest up, or at once on evidence of flow (a healthy probe, an `on_update`).
    #[serde(default = "d_confirm")]
    pub confirm_ms: Spanned<u64>,
    /// A live room whose ingest (or chat) went down stays live this long before it is stalled,
    /// so a reconnect within it does not drop the room from the lists.
    #[serde(default = "d_stall_grace")]
    pub stall_grace_ms: Spanned<u64>,
    /// A stalled room goes offline after this long without recovering.
    #[serde(default = "d_offline_grace")]
    pub offline_grace_ms: Spanned<u64>,
    /// Chat presence reported by a chat node's heartbeat lasts this long unless repeated.
    #[serde(default = "d_chat_ttl")]
    pub chat_ttl_ms: Spanned<u64>,
    /// Ingest evidence (callback or healthy probe) must be repeated within this long or the
    /// provider counts as down; 0 turns the check off (publish holds until unpublish).
    #[serde(default = "d_zero")]
    pub evidence_ttl_ms: Spanned<u64>,
    /// After a restart, a restored room's ingest must be confirmed within this long.
    #[serde(default = "d_restore")]
    pub restore_confirm_ms: Spanned<u64>,
    /// Consecutive unhealthy probes after which a provider's ingest counts as down.
    #[serde(default = "d_failures")]
    pub probe_failures_to_down: Spanned<u32>,
    /// Ingest below this bitrate is not flowing.
    #[serde(default = "d_min_kbps")]
    pub min_bitrate_kbps: Spanned<f64>,
    /// Offline rooms are dropped from memory this long after going offline (they stay stored).
    #[serde(default = "d_forget")]
    pub forget_offline_ms: Spanned<u64>,
    /// Rooms per page of `GET /v1/rooms` when the request names no `limit`.
    #[serde(default = "d_page")]
    pub page_size: Spanned<usize>,
    /// Largest `limit` a page may ask for.
    #[serde(default = "d_max_page")]
    pub max_page_size: Spanned<usize>,
    /// Most anchor ids in one follow-list query.
    #[serde(default = "d_follow")]
    pub follow_max_ids: Spanned<usize>,
    /// Generic JSON callbacks: provider id → environment variable holding its HMAC secret.
    #[serde(default)]
    pub callback_secret_env: BTreeMap<String, Spanned<String>>,
    /// Generic JSON callbacks: largest difference between the signed timestamp and now.
    #[serde(default = "d_skew")]
    pub callback_max_skew_seconds: Spanned<u64>,
}

impl Default for RoomsSpec {
    fn default() -> Self {
        Self {
            chat_required: true,
            confirm_ms: d_confirm(),
            stall_grace_ms: d_stall_grace(),
            offline_grace_ms: d_offline_grace(),
            chat_ttl_ms: d_chat_ttl(),
            evidence_ttl_ms: d_zero(),
            restore_confirm_ms: d_restore(),
            probe_failures_to_down: d_failures(),
            min_bitrate_kbps: d_min_kbps(),
            forget_offline_ms: d_forget(),
            page_size: d_page(),
            max_page_size: d_max_page(),
            follow_max_ids: d_follow(),
            callback_secret_env: BTreeMap::new(),
            callback_max_skew_seconds: d_skew(),
        }
    }
}

/// What a stats probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsKind {
    /// SRS `GET /api/v1/streams` (JSON).
    SrsApi,
    /// nginx-rtmp `rtmp_stat` page (XML).
    NginxStat,
}

impl StatsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatsKind::SrsApi => "srs_api",
            StatsKind::NginxStat => "nginx_stat",
        }
    }
}

/// One provider's statistics endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSpec {
    /// Provider id.
    pub provider: Spanned<String>,
    /// `srs_api` or `nginx_stat`.
    pub kind: StatsKind,
    /// Full URL: `http://origin:1985/api/v1/streams`, `http://origin:8080/stat`.
    pub url: Spanned<String>,
}

/// A probe method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Pull the HTTP-FLV stream: time to first byte, throughput over a short read.
    Flv,
    /// Fetch the HLS playlist and its newest segment.
    Hls,
    /// The provider's statistics API (`probes.stats`).
    Stats,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Flv => "flv",
            ProbeKind::Hls => "hls",
            ProbeKind::Stats => "stats",
        }
    }
}

/// `probes:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesSpec {
    /// Which probes run for each live stream on each provider carrying it.
    #[serde(default = "d_kinds")]
    pub kinds: Spanned<Vec<ProbeKind>>,
    /// Whole-probe time limit.
    #[serde(default = "d_timeout")]
    pub timeout_ms: Spanned<u64>,
    /// TCP connect time limit.
    #[serde(default = "d_connect")]
    pub connect_timeout_ms: Spanned<u64>,
    /// Probes in flight at once, over all providers.
    #[serde(default = "d_concurrency")]
    pub concurrency: Spanned<usize>,
    /// Probes in flight at once against one provider.
    #[serde(default = "d_per_provider")]
    pub per_provider_concurrency: Spanned<usize>,
    /// Most probes started by one run (the rest wait for the next run).
    #[serde(default = "d_max_per_run")]
    pub max_per_run: Spanned<usize>,
    /// FLV: stop reading after this many bytes ...
    #[serde(default = "d_flv_bytes")]
    pub flv_read_bytes: Spanned<usize>,
    /// ... or after this long.
    #[serde(default = "d_flv_ms")]
    pub flv_read_ms: Spanned<u64>,
    /// HLS: largest segment downloaded (a longer one is cut there).
    #[serde(default = "d_segment_bytes")]
    pub hls_segment_max_bytes: Spanned<usize>,
    /// HLS: the playlist is stale when it has not advanced for this many target durations.
    #[serde(default = "d_age_factor")]
    pub max_segment_age_factor: Spanned<f64>,
    /// HLS: the newest segment must arrive within this many times its own duration. An edge
    /// slower than that cannot keep a live player fed: a delivery failure, found in about one
    /// segment's time instead of `timeout_ms`. 0 turns the limit off.
    #[serde(default = "d_realtime_factor")]
    pub segment_realtime_factor: Spanned<f64>,
    /// Largest playlist or stats answer read.
    #[serde(default = "d_doc_bytes")]
    pub max_document_bytes: Spanned<usize>,
    /// After this many consecutive transport failures (timeout, refused) a provider is not
    /// probed ...
    #[serde(default = "d_breaker")]
    pub breaker_failures: Spanned<u32>,
    /// ... for this long.
    #[serde(default = "d_cooldown")]
    pub breaker_cooldown_ms: Spanned<u64>,
    /// Providers' statistics endpoints.
    #[serde(default)]
    pub stats: Vec<StatsSpec>,
}

impl Default for ProbesSpec {
    fn default() -> Self {
        Self {
            kinds: d_kinds(),
            timeout_ms: d_timeout(),
            connect_timeout_ms: d_connect(),
            concurrency: d_concurrency(),
            per_provider_concurrency: d_per_provider(),
            max_per_run: d_max_per_run(),
            flv_read_bytes: d_flv_bytes(),
            flv_read_ms: d_flv_ms(),
            hls_segment_max_bytes: d_segment_bytes(),
            max_segment_age_factor: d_age_factor(),
            segment_realtime_factor: d_realtime_factor(),
            max_document_bytes: d_doc_bytes(),
            breaker_failures: d_breaker(),
            breaker_cooldown_ms: d_cooldown(),
            stats: Vec::new(),
        }
    }
}

fn d_true() -> bool {
    true
}
fn d_zero() -> Spanned<u64> {
    unspanned(0)
}
fn d_confirm() -> Spanned<u64> {
    unspanned(2_000)
}
fn d_stall_grace() -> Spanned<u64> {
    unspanned(5_000)
}
fn d_offline_grace() -> Spanned<u64> {
    unspanned(30_000)
}
fn d_chat_ttl() -> Spanned<u64> {
    unspanned(90_000)
}
fn d_restore() -> Spanned<u64> {
    unspanned(60_000)
}
fn d_failures() -> Spanned<u32> {
    unspanned(3)
}
fn d_min_kbps() -> Spanned<f64> {
    unspanned(1.0)
}
fn d_forget() -> Spanned<u64> {
    unspanned(3_600_000)
}
fn d_page() -> Spanned<usize> {
    unspanned(50)
}
fn d_max_page() -> Spanned<usize> {
    unspanned(500)
}
fn d_follow() -> Spanned<usize> {
    unspanned(1_000)
}
fn d_skew() -> Spanned<u64> {
    unspanned(300)
}
fn d_kinds() -> Spanned<Vec<ProbeKind>> {
    unspanned(vec![ProbeKind::Flv, ProbeKind::Hls, ProbeKind::Stats])
}
fn d_timeout() -> Spanned<u64> {
    unspanned(5_000)
}
fn d_connect() -> Spanned<u64> {
    unspanned(1_000)
}
fn d_concurrency() -> Spanned<usize> {
    unspanned(16)
}
fn d_per_provider() -> Spanned<usize> {
    unspanned(4)
}
fn d_max_per_run() -> Spanned<usize> {
    unspanned(2_000)
}
fn d_flv_bytes() -> Spanned<usize> {
    unspanned(256 * 1024)
}
fn d_flv_ms() -> Spanned<u64> {
    unspanned(2_000)
}
fn d_segment_bytes() -> Spanned<usize> {
    unspanned(8 << 20)
}
fn d_age_factor() -> Spanned<f64> {
    unspanned(3.0)
}
fn d_realtime_factor() -> Spanned<f64> {
    unspanned(1.5)
}
fn d_doc_bytes() -> Spanned<usize> {
    unspanned(1 << 20)
}
fn d_breaker() -> Spanned<u32> {
    unspanned(3)
}
fn d_cooldown() -> Spanned<u64> {
    unspanned(30_000)
}

/// `rooms:` validated.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSettings {
    pub chat_required: bool,
    pub confirm_ms: i64,
    pub stall_grace_ms: i64,
    pub offline_grace_ms: i64,
    pub chat_ttl_ms: i64,
    /// 0 = off.
    pub evidence_ttl_ms: i64,
    pub restore_confirm_ms: i64,
    pub probe_failures_to_down: u32,
    pub min_bitrate_kbps: f64,
    pub forget_offline_ms: i64,
    pub page_size: usize,
    pub max_page_size: usize,
    pub follow_max_ids: usize,
    /// Provider id → name of the variable holding its generic-callback secret.
    pub callback_secret_env: BTreeMap<String, String>,
    pub callback_max_skew_seconds: i64,
}

impl Default for RoomSettings {
    fn default() -> Self {
        let mut errs = Vec::new();
        Self::from_spec(
            Path::new("(defaults)"),
            &RoomsSpec::default(),
            &BTreeSet::new(),
            &mut errs,
        )
    }
}

/// One statistics endpoint, validated.
#[derive(Debug, Clone, Serialize)]
pub struct StatsEndpoint {
    pub provider: String,
    pub kind: StatsKind,
    pub url: String,
}

/// `probes:` validated.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeSettings {
    pub kinds: Vec<ProbeKind>,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub concurrency: usize,
    pub per_provider_concurrency: usize,
    pub max_per_run: usize,
    pub flv_read_bytes: usize,
    pub flv_read_ms: u64,
    pub hls_segment_max_bytes: usize,
    pub max_segment_age_factor: f64,
    pub segment_realtime_factor: f64,
    pub max_document_bytes: usize,
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: i64,
    pub stats: Vec<StatsEndpoint>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        let mut errs = Vec::new();
        Self::from_spec(
            Path::new("(defaults)"),
            &ProbesSpec::default(),
            &BTreeSet::new(),
            &mut errs,
        )
    }
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    path: &Path,
    v: &Spanned<T>,
    min: T,
    max: T,
    name: &str,
    errs: &mut Vec<Diagnostic>,
) -> T {
    if !(v.value >= min && v.value <= max) {
        errs.push(Diagnostic::spanned(
            path,
            v,
            format!("{name} is {}, must be from {min} to {max}", v.value),
        ));
    }
    v.value
}

const DAY_MS: u64 = 86_400_000;

impl RoomSettings {
    /// Validates `rooms:`; problems go to `errs`.
    pub fn from_spec(
        path: &Path,
        s: &RoomsSpec,
        provider_ids: &BTreeSet<String>,
        errs: &mut Vec<Diagnostic>,
    ) -> RoomSettings {
        let ms = |v: &Spanned<u64>, min: u64, max: u64, name: &str, errs: &mut Vec<_>| {
            range(path, v, min, max, name, errs) as i64
        };
        let stall_grace_ms = ms(&s.stall_grace_ms, 0, DAY_MS, "rooms.stall_grace_ms", errs);
        let offline_grace_ms = ms(
            &s.offline_grace_ms,
            0,
            DAY_MS,
            "rooms.offline_grace_ms",
            errs,
        );
        let page_size = range(path, &s.page_size, 1, 1_000, "rooms.page_size", errs);
        let max_page_size = range(
            path,
            &s.max_page_size,
            1,
            1_000,
            "rooms.max_page_size",
            errs,
        );
        if page_size > max_page_size {
            errs.push(Diagnostic::spanned(
                path,
                &s.page_size,
                format!(
                    "rooms.page_size {page_size} is more than rooms.max_page_size {max_page_size}"
                ),
            ));
        }
        let mut callback_secret_env = BTreeMap::new();
        for (provider, env) in &s.callback_secret_env {
            if !provider_ids.contains(provider) {
                errs.push(Diagnostic::spanned(
                    path,
                    env,
                    format!("rooms.callback_secret_env: unknown provider id {provider:?}"),
                ));
            }
            let name = env.value.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                errs.push(Diagnostic::spanned(
                    path,
                    env,
                    format!(
                        "rooms.callback_secret_env.{provider}: {name:?} is not an environment variable name"
                    ),
                ));
            }
            callback_secret_env.insert(provider.clone(), name.to_string());
        }
        let min_bitrate_kbps = s.min_bitrate_kbps.value;
        if !(min_bitrate_kbps.is_finite() && (0.0..=100_000.0).contains(&min_bitrate_kbps)) {
            errs.push(Diagnostic::spanned(
                path,
                &s.min_bitrate_kbps,
                format!("rooms.min_bitrate_kbps is {min_bitrate_kbps}, must be from 0 to 100000"),
            ));
        }
        RoomSettings {
            chat_required: s.chat_required,
            confirm_ms: ms(&s.confirm_ms, 0, 600_000, "rooms.confirm_ms", errs),
            stall_grace_ms,
            offline_grace_ms,
            chat_ttl_ms: ms(&s.chat_ttl_ms, 1_000, DAY_MS, "rooms.chat_ttl_ms", errs),
            evidence_ttl_ms: ms(&s.evidence_ttl_ms, 0, DAY_MS, "rooms.evidence_ttl_ms", errs),
            restore_confirm_ms: ms(
                &s.restore_confirm_ms,
                0,
                DAY_MS,
                "rooms.restore_confirm_ms",
                errs,
            ),
            probe_failures_to_down: range(
                path,
                &s.probe_failures_to_down,
                1,
                100,
                "rooms.probe_failures_to_down",
                errs,
            ),
            min_bitrate_kbps,
            forget_offline_ms: ms(
                &s.forget_offline_ms,
                0,
                30 * DAY_MS,
                "rooms.forget_offline_ms",
                errs,
            ),
            page_size,
            max_page_size,
            follow_max_ids: range(
                path,
                &s.follow_max_ids,
                1,
                1_000,
                "rooms.follow_max_ids",
                errs,
            ),
            callback_secret_env,
            callback_max_skew_seconds: range(
                path,
                &s.callback_max_skew_seconds,
                1,
                86_400,
                "rooms.callback_max_skew_seconds",
                errs,
            ) as i64,
        }
    }
}

impl ProbeSettings {
    /// Validates `probes:`; problems go to `errs`.
    pub fn from_spec(
        path: &Path,
        s: &ProbesSpec,
        provider_ids: &BTreeSet<String>,
        errs: &mut Vec<Diagnostic>,
    ) -> ProbeSettings {
        let mut kinds = Vec::new();
        for k in &s.kinds.value {
            if kinds.contains(k) {
                errs.push(Diagnostic::spanned(
                    path,
                    &s.kinds,
                    format!("probes.kinds lists {} twice", k.as_str()),
                ));
            } else {
                kinds.push(*k);
            }
        }
        let concurrency = range(path, &s.concurrency, 1, 1_024, "probes.concurrency", errs);
        let per_provider = range(
            path,
            &s.per_provider_concurrency,
            1,
            1_024,
            "probes.per_provider_concurrency",
            errs,
        );
        let timeout_ms = range(path, &s.timeout_ms, 100, 60_000, "probes.timeout_ms", errs);
        let connect_timeout_ms = range(
            path,
            &s.connect_timeout_ms,
            50,
            60_000,
            "probes.connect_timeout_ms",
            errs,
        );
        if connect_timeout_ms > timeout_ms {
            errs.push(Diagnostic::spanned(
                path,
                &s.connect_timeout_ms,
                format!(
                    "probes.connect_timeout_ms {connect_timeout_ms} is more than probes.timeout_ms {timeout_ms}"
                ),
            ));
        }
        let flv_read_ms = range(
            path,
            &s.flv_read_ms,
            100,
            60_000,
            "probes.flv_read_ms",
            errs,
        );
        if flv_read_ms > timeout_ms {
            errs.push(Diagnostic::spanned(
                path,
                &s.flv_read_ms,
                format!(
                    "probes.flv_read_ms {flv_read_ms} is more than probes.timeout_ms {timeout_ms}"
                ),
            ));
        }
        let factor = s.max_segment_age_factor.value;
        if !(factor.is_finite() && (1.0..=100.0).contains(&factor)) {
            errs.push(Diagnostic::spanned(
                path,
                &s.max_segment_age_factor,
                format!("probes.max_segment_age_factor is {factor}, must be from 1 to 100"),
            ));
        }
        let realtime = s.segment_realtime_factor.value;
        if !(realtime.is_finite() && (realtime == 0.0 || (1.0..=100.0).contains(&realtime))) {
            errs.push(Diagnostic::spanned(
                path,
                &s.segment_realtime_factor,
                format!(
                    "probes.segment_realtime_factor is {realtime}, must be 0 (off) or from 1 to 100"
                ),
            ));
        }
        let mut stats = Vec::new();
        let mut seen = BTreeSet::new();
        for st in &s.stats {
            let provider = st.provider.value.clone();
            if !provider_ids.contains(&provider) {
                errs.push(Diagnostic::spanned(
                    path,
                    &st.provider,
                    format!("probes.stats: unknown provider id {provider:?}"),
                ));
            }
            if !seen.insert(provider.clone()) {
                errs.push(Diagnostic::spanned(
                    path,
                    &st.provider,
                    format!("probes.stats: provider {provider:?} is listed twice"),
                ));
            }
            match url::Url::parse(st.url.value.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => stats
                    .push(StatsEndpoint {
                        provider,
                        kind: st.kind,
                        url: u.to_string(),
                    }),
                Ok(_) => errs.push(Diagnostic::spanned(
                    path,
                    &st.url,
                    format!(
                        "probes.stats: {:?} is not an http(s) URL with a host",
                        st.url.value
                    ),
                )),
                Err(e) => errs.push(Diagnostic::spanned(
                    path,
                    &st.url,
                    format!("probes.stats: bad URL {:?}: {e}", st.url.value),
                )),
            }
        }
        ProbeSettings {
            kinds,
            timeout_ms,
            connect_timeout_ms,
            concurrency,
            per_provider_concurrency: per_provider,
            max_per_run: range(
                path,
                &s.max_per_run,
                1,
                1_000_000,
                "probes.max_per_run",
                errs,
            ),
            flv_read_bytes: range(
                path,
                &s.flv_read_bytes,
                1_024,
                64 << 20,
                "probes.flv_read_bytes",
                errs,
            ),
            flv_read_ms,
            hls_segment_max_bytes: range(
                path,
                &s.hls_segment_max_bytes,
                1_024,
                256 << 20,
                "probes.hls_segment_max_bytes",
                errs,
            ),
            max_segment_age_factor: factor,
            segment_realtime_factor: realtime,
            max_document_bytes: range(
                path,
                &s.max_document_bytes,
                1_024,
                64 << 20,
                "probes.max_document_bytes",
                errs,
            ),
            breaker_failures: range(
                path,
                &s.breaker_failures,
                1,
                1_000,
                "probes.breaker_failures",
                errs,
            ),
            breaker_cooldown_ms: range(
                path,
                &s.breaker_cooldown_ms,
                0,
                DAY_MS,
                "probes.breaker_cooldown_ms",
                errs,
            ) as i64,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use std::collections::BTreeSet;
    use std::path::Path;

    const BASE: &str = "\
regions:
  - id: tw
    providers: [a]
default_region: tw
";

    fn errors(extra: &str) -> Vec<String> {
        let ids: BTreeSet<String> = ["a".to_string()].into();
        Policy::parse(Path::new("p.yaml"), &format!("{BASE}{extra}"), &ids)
            .map(|_| Vec::new())
            .unwrap_or_else(|e| e.0.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn defaults_are_valid() {
        assert!(errors("").is_empty());
        let ids: BTreeSet<String> = ["a".to_string()].into();
        let p = Policy::parse(Path::new("p.yaml"), BASE, &ids).unwrap();
        assert!(p.rooms.chat_required);
        assert_eq!(p.rooms.stall_grace_ms, 5_000);
        assert_eq!(p.probes.concurrency, 16);
        assert!(p.jobs.contains_key("probe_streams"));
        assert!(p.jobs.contains_key("sweep_rooms"));
    }

    #[test]
    fn bad_values_name_the_line() {
        let errs = errors(
            "rooms:\n  stall_grace_ms: 99999999999\n  page_size: 0\nprobes:\n  concurrency: 0\n  stats:\n    - provider: zz\n      kind: srs_api\n      url: ftp://x/\n",
        );
        let lines: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
        assert_eq!(
            lines,
            ["p.yaml:6", "p.yaml:7", "p.yaml:9", "p.yaml:11", "p.yaml:13"],
            "{errs:#?}"
        );
        assert!(errs[3].contains("unknown provider id \"zz\""), "{errs:?}");
    }

    #[test]
    fn unknown_keys_and_kinds_are_errors() {
        let errs = errors("rooms:\n  chat_requird: false\n");
        assert!(errs[0].starts_with("p.yaml:6:"), "{errs:?}");
        let errs = errors("probes:\n  kinds: [flv, dash]\n");
        assert!(errs[0].starts_with("p.yaml:6:"), "{errs:?}");
        let errs = errors("rooms:\n  callback_secret_env:\n    a: \"BAD NAME\"\n");
        assert!(
            errs[0].contains("not an environment variable name"),
            "{errs:?}"
        );
    }
}
