//! The policy file as written: every key documented, unknown keys rejected, values spanned so
//! that validation can name the line.

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::IngestStrategy;
use crate::vocab::Protocol;

/// A default value, which has no line of its own.
pub(crate) fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// `policies/<name>.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Regions in the order ops think of them; each client lands in exactly one.
    pub regions: Vec<RegionSpec>,
    /// Region for clients that nothing places anywhere else.
    pub default_region: Spanned<String>,
    /// How a request is placed in a region.
    #[serde(default)]
    pub geo: GeoSpec,
    /// How push targets are chosen.
    #[serde(default)]
    pub ingest: IngestSpec,
    /// How play answers are built.
    #[serde(default)]
    pub delivery: DeliverySpec,
    /// How reports become a ranking: weights, decay, exploration, hysteresis, manual controls.
    #[serde(default)]
    pub scoring: super::scoring::ScoringSpec,
    /// HLS and DASH Content Steering.
    #[serde(default)]
    pub steering: super::scoring::SteeringSpec,
    /// Room state machine: grace periods, hysteresis, chat, thresholds.
    #[serde(default)]
    pub rooms: super::rooms::RoomsSpec,
    /// Active probes: timeouts, concurrency, read sizes, statistics endpoints.
    #[serde(default)]
    pub probes: super::rooms::ProbesSpec,
    /// Service directory: nodes, channel profiles, fallback regions, HTTPDNS hosts, the
    /// secrets' variable names, payment centres.
    #[serde(default)]
    pub services: super::services::ServicesSpec,
    /// Background job schedules (cron, with seconds); a blank schedule disables the job.
    #[serde(default)]
    pub jobs: JobsSpec,
}

/// Cron schedules, six or seven fields: `sec min hour day-of-month month day-of-week [year]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSpec {
    /// Drop streams that ended over an hour ago from memory (every replica runs it).
    #[serde(default = "default_sweep_streams")]
    pub sweep_streams: Spanned<String>,
    /// Reload provider and policy files when they change (every replica).
    #[serde(default = "default_reload_policy")]
    pub reload_policy: Spanned<String>,
    /// Save this replica's scoring windows and load the other replicas' (every replica).
    #[serde(default = "default_persist_scores")]
    pub persist_scores: Spanned<String>,
    /// Health-check the static service nodes and refresh the healthy-node gauges (every
    /// replica).
    #[serde(default = "default_check_nodes")]
    pub check_nodes: Spanned<String>,
    /// Load service nodes other replicas heard heartbeats from (every replica).
    #[serde(default = "default_sync_nodes")]
    pub sync_nodes: Spanned<String>,
    /// Probe every live stream on every provider carrying it (one replica runs it).
    #[serde(default = "default_probe_streams")]
    pub probe_streams: Spanned<String>,
    /// Apply the room state machine's timers: grace periods, chat expiry (every replica).
    #[serde(default = "default_sweep_rooms")]
    pub sweep_rooms: Spanned<String>,
}

impl Default for JobsSpec {
    fn default() -> Self {
        Self {
            sweep_streams: default_sweep_streams(),
            reload_policy: default_reload_policy(),
            persist_scores: default_persist_scores(),
            check_nodes: default_check_nodes(),
            sync_nodes: default_sync_nodes(),
            probe_streams: default_probe_streams(),
            sweep_rooms: default_sweep_rooms(),
        }
    }
}

fn default_persist_scores() -> Spanned<String> {
    unspanned("*/5 * * * * *".to_string())
}

fn default_reload_policy() -> Spanned<String> {
    unspanned("*/2 * * * * *".to_string())
}

fn default_probe_streams() -> Spanned<String> {
    unspanned("*/10 * * * * *".to_string())
}

fn default_sweep_rooms() -> Spanned<String> {
    unspanned("* * * * * *".to_string())
}

fn default_check_nodes() -> Spanned<String> {
    unspanned("*/10 * * * * *".to_string())
}

fn default_sync_nodes() -> Spanned<String> {
    unspanned("*/2 * * * * *".to_string())
}

fn default_sweep_streams() -> Spanned<String> {
    unspanned("0 */5 * * * *".to_string())
}

/// One region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Short id used in APIs and metrics labels (`tw`, `hk`, `gulf`).
    pub id: Spanned<String>,
    /// Human name for dashboards.
    #[serde(default)]
    pub name: Option<String>,
    /// ISO 3166-1 alpha-2 country codes in this region.
    #[serde(default)]
    pub countries: Vec<Spanned<String>>,
    /// Networks in this region (`203.69.0.0/16`, `2001:b000::/20`); checked before countries
    /// resolved from a database.
    #[serde(default)]
    pub cidrs: Vec<Spanned<String>>,
    /// Provider ids in order of preference here.
    #[serde(default)]
    pub providers: Vec<Spanned<String>>,
}

/// Region lookup settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoSpec {
    /// Header a trusted edge sets to the viewer's country, e.g. `CloudFront-Viewer-Country`
    /// or `CF-IPCountry`. Only set it when every request comes through that edge.
    #[serde(default)]
    pub trusted_header: Option<Spanned<String>>,
    /// Use the first `X-Forwarded-For` address as the client address.
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// MaxMind country database (`.mmdb`), relative to the policy file.
    #[serde(default)]
    pub mmdb_path: Option<Spanned<String>>,
}

/// Ingest settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSpec {
    /// `static`: the region's preference order.
    #[serde(default = "default_strategy")]
    pub strategy: IngestStrategy,
    /// Backup push targets in addition to the primary.
    #[serde(default = "default_backups")]
    pub backups: Spanned<usize>,
    /// Lifetime of a signed push URL.
    #[serde(default = "default_push_ttl")]
    pub url_ttl_seconds: Spanned<u64>,
    /// How long after a push answer the app asks again (0: never).
    #[serde(default = "default_ask_again")]
    pub ask_again_seconds: Spanned<u64>,
}

impl Default for IngestSpec {
    fn default() -> Self {
        Self {
            strategy: default_strategy(),
            backups: default_backups(),
            url_ttl_seconds: default_push_ttl(),
            ask_again_seconds: default_ask_again(),
        }
    }
}

/// Delivery settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// Protocols offered to players.
    #[serde(default = "default_protocols")]
    pub protocols: Spanned<Vec<Protocol>>,
    /// Protocol when the request names none.
    #[serde(default = "default_protocol")]
    pub default_protocol: Spanned<Protocol>,
    /// Most candidates in one play answer.
    #[serde(default = "default_max_candidates")]
    pub max_candidates: Spanned<usize>,
    /// Lifetime of a signed play URL.
    #[serde(default = "default_play_ttl")]
    pub url_ttl_seconds: Spanned<u64>,
    /// How long a player may keep a play answer before asking again.
    #[serde(default = "default_answer_ttl")]
    pub answer_ttl_seconds: Spanned<u64>,
    /// The origin's own playlist (the ladder `master.m3u8` replicates) is fetched at most once
    /// per stream this often.
    #[serde(default = "default_origin_refresh")]
    pub origin_refresh_seconds: Spanned<u64>,
    /// How long one fetch of the origin's playlist may take.
    #[serde(default = "default_origin_timeout")]
    pub origin_timeout_ms: Spanned<u64>,
    /// How long a failed fetch is remembered before a request tries the origin again.
    #[serde(default = "default_origin_retry")]
    pub origin_retry_seconds: Spanned<u64>,
}

impl Default for DeliverySpec {
    fn default() -> Self {
        Self {
            protocols: default_protocols(),
            default_protocol: default_protocol(),
            max_candidates: default_max_candidates(),
            url_ttl_seconds: default_play_ttl(),
            answer_ttl_seconds: default_answer_ttl(),
            origin_refresh_seconds: default_origin_refresh(),
            origin_timeout_ms: default_origin_timeout(),
            origin_retry_seconds: default_origin_retry(),
        }
    }
}

fn default_strategy() -> IngestStrategy {
    IngestStrategy::Static
}
fn default_backups() -> Spanned<usize> {
    unspanned(1)
}
fn default_push_ttl() -> Spanned<u64> {
    unspanned(86_400)
}
fn default_ask_again() -> Spanned<u64> {
    unspanned(0)
}
fn default_protocols() -> Spanned<Vec<Protocol>> {
    unspanned(vec![
        Protocol::Flv,
        Protocol::Hls,
        Protocol::Rtmp,
        Protocol::Dash,
    ])
}
fn default_protocol() -> Spanned<Protocol> {
    unspanned(Protocol::Flv)
}
fn default_max_candidates() -> Spanned<usize> {
    unspanned(4)
}
fn default_play_ttl() -> Spanned<u64> {
    unspanned(3_600)
}
fn default_answer_ttl() -> Spanned<u64> {
    unspanned(30)
}
fn default_origin_refresh() -> Spanned<u64> {
    unspanned(30)
}
fn default_origin_timeout() -> Spanned<u64> {
    unspanned(2_000)
}
fn default_origin_retry() -> Spanned<u64> {
    unspanned(5)
}
