//! The `services:` section: the service directory (chat, IM, API edges, upload, static, pay
//! nodes), the channel profiles clients are told to use, HTTPDNS host names, and the names of
//! the environment variables holding the heartbeat and payment-centre secrets.
//!
//! Secrets are never written here: a key names the variable (`secret_env`), and a
//! `demo_secret` may stand in while that variable is unset, for a laptop only (the server logs
//! a warning when it uses one).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::raw::unspanned;
use crate::vocab::Diagnostic;
use crate::vocab::ids::{is_valid_hostname, is_valid_id};

/// What a node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Chat-room long connections (channel 1).
    Chat,
    /// Instant-messaging long connections (channel 2).
    Im,
    /// API edges: the ELB or HAProxy front doors of the central API.
    Api,
    /// Image upload nodes.
    Upload,
    /// Static resource origins (the per-area CDN domain comes with them).
    Static,
    /// Payment centres.
    Pay,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 6] = [
        ServiceKind::Chat,
        ServiceKind::Im,
        ServiceKind::Api,
        ServiceKind::Upload,
        ServiceKind::Static,
        ServiceKind::Pay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Chat => "chat",
            ServiceKind::Im => "im",
            ServiceKind::Api => "api",
            ServiceKind::Upload => "upload",
            ServiceKind::Static => "static",
            ServiceKind::Pay => "pay",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ServiceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown service {:?} (known: chat, im, api, upload, static, pay)",
                    s.chars().take(32).collect::<String>()
                )
            })
    }
}

/// How long a long connection is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepAlive {
    /// Dropped when the user leaves the room.
    Room,
    /// Kept while the app runs.
    App,
}

/// What a channel promises about messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Messages may be dropped under load.
    BestEffort,
    /// No message is lost.
    Reliable,
}

/// A long-connection channel's profile, as clients are told in resolve answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelProfile {
    /// Channel number the client opens (chat room 1, IM 2).
    pub channel: u8,
    /// How often the client sends a heartbeat on the connection.
    pub heartbeat_seconds: u64,
    /// `room`: dropped when the user leaves the room; `app`: kept while the app runs.
    pub keep_alive: KeepAlive,
    /// `best_effort`: messages may be dropped under load; `reliable`: no message lost.
    pub delivery: Delivery,
}

// ---------------------------------------------------------------------------------------------
// As written.

/// `services:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesSpec {
    /// How long a client may keep a resolve (or HTTPDNS) answer.
    #[serde(default = "d_resolve_ttl")]
    pub resolve_ttl_seconds: Spanned<u64>,
    /// A registered node whose heartbeats stop is unhealthy after this long.
    #[serde(default = "d_heartbeat_timeout")]
    pub heartbeat_timeout_seconds: Spanned<u64>,
    /// Most nodes per service in one answer.
    #[serde(default = "d_max_nodes")]
    pub max_nodes: Spanned<usize>,
    /// Signed requests (heartbeats, payment batches) whose timestamp is further than this from
    /// livesteer's clock are refused.
    #[serde(default = "d_replay_window")]
    pub replay_window_seconds: Spanned<u64>,
    /// Longest an active health check (HTTP GET or TCP connect) may take.
    #[serde(default = "d_check_timeout")]
    pub health_check_timeout_ms: Spanned<u64>,
    /// Channel profiles of the two long-connection services.
    #[serde(default)]
    pub channels: ChannelsSpec,
    /// Region id → the regions to try, in order, when it has no healthy node of a service.
    #[serde(default)]
    pub fallback: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    /// Service kind → the secret its nodes sign heartbeats with. A kind without one cannot
    /// register nodes.
    #[serde(default)]
    pub heartbeat_secrets: BTreeMap<String, Spanned<SecretSpec>>,
    /// Payment centres allowed to sync payments, each with its signing secret.
    #[serde(default)]
    pub payment_centres: Vec<CentreSpec>,
    /// Nodes known without heartbeats, health-checked on the `check_nodes` schedule.
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Areas (mainland, overseas, …): each names its static CDN domain and upload nodes.
    #[serde(default)]
    pub areas: Vec<AreaSpec>,
    /// HTTPDNS compatibility: accounts and host names.
    #[serde(default)]
    pub httpdns: HttpdnsSpec,
}

impl Default for ServicesSpec {
    fn default() -> Self {
        Self {
            resolve_ttl_seconds: d_resolve_ttl(),
            heartbeat_timeout_seconds: d_heartbeat_timeout(),
            max_nodes: d_max_nodes(),
            replay_window_seconds: d_replay_window(),
            health_check_timeout_ms: d_check_timeout(),
            channels: ChannelsSpec::default(),
            fallback: BTreeMap::new(),
            heartbeat_secrets: BTreeMap::new(),
            payment_centres: Vec::new(),
            nodes: Vec::new(),
            areas: Vec::new(),
            httpdns: HttpdnsSpec::default(),
        }
    }
}

/// The chat-room and IM channel profiles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsSpec {
    /// Chat room: channel 1, short heartbeat, dropped on leaving the room, lossy under load.
    #[serde(default = "d_chat")]
    pub chat: Spanned<ChannelProfile>,
    /// IM: channel 2, long heartbeat, kept while the app runs, no message lost.
    #[serde(default = "d_im")]
    pub im: Spanned<ChannelProfile>,
}

impl Default for ChannelsSpec {
    fn default() -> Self {
        Self {
            chat: d_chat(),
            im: d_im(),
        }
    }
}

/// Where a secret comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// The environment variable holding the secret.
    pub secret_env: String,
    /// Used only while that variable is unset; public, for a laptop only.
    #[serde(default)]
    pub demo_secret: Option<String>,
}

/// A payment centre.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentreSpec {
    /// The centre id carried by its batches and records (`pay-tw`).
    pub id: Spanned<String>,
    /// The environment variable holding the centre's signing secret.
    pub secret_env: Spanned<String>,
    /// Used only while that variable is unset; public, for a laptop only.
    #[serde(default)]
    pub demo_secret: Option<Spanned<String>>,
}

/// A static node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique among all nodes: 1 to 64 of `[A-Za-z0-9_.:-]`.
    pub id: Spanned<String>,
    /// `chat`, `im`, `api`, `upload`, `static` or `pay`.
    pub kind: Spanned<String>,
    /// The region it serves from.
    pub region: Spanned<String>,
    /// URLs clients connect to (`wss://…`, `https://…`, `tcp://host:port`).
    pub endpoints: Vec<Spanned<String>>,
    /// Addresses given in HTTPDNS answers.
    #[serde(default)]
    pub ips: Vec<Spanned<String>>,
    /// Relative weight among equally loaded nodes.
    #[serde(default = "d_capacity")]
    pub capacity: Spanned<u64>,
    /// Health check: an HTTP(S) URL answered with 2xx or 3xx when healthy.
    #[serde(default)]
    pub health_url: Option<Spanned<String>>,
    /// Health check: `host:port` that accepts a TCP connection when healthy.
    #[serde(default)]
    pub health_tcp: Option<Spanned<String>>,
}

/// An area: the static CDN domain and upload nodes for a group of regions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaSpec {
    /// `mainland`, `overseas`, …
    pub id: Spanned<String>,
    /// Regions in this area (each in at most one area).
    pub regions: Vec<Spanned<String>>,
    /// The static CDN domain clients in this area load resources from.
    pub static_domain: Spanned<String>,
    /// Ids of the static upload nodes of this area (registered upload nodes count too when
    /// their region is in the area).
    #[serde(default)]
    pub upload_nodes: Vec<Spanned<String>>,
}

/// HTTPDNS compatibility settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpdnsSpec {
    /// Account ids accepted in the Alibaba-shaped path `/{account}/d`; empty accepts any.
    #[serde(default)]
    pub accounts: Vec<Spanned<String>>,
    /// Host name → the service whose nodes' addresses answer it.
    #[serde(default)]
    pub hosts: BTreeMap<String, Spanned<String>>,
}

fn d_resolve_ttl() -> Spanned<u64> {
    unspanned(60)
}
fn d_heartbeat_timeout() -> Spanned<u64> {
    unspanned(30)
}
fn d_max_nodes() -> Spanned<usize> {
    unspanned(3)
}
fn d_replay_window() -> Spanned<u64> {
    unspanned(300)
}
fn d_check_timeout() -> Spanned<u64> {
    unspanned(2_000)
}
fn d_capacity() -> Spanned<u64> {
    unspanned(1_000)
}
fn d_chat() -> Spanned<ChannelProfile> {
    unspanned(ChannelProfile {
        channel: 1,
        heartbeat_seconds: 15,
        keep_alive: KeepAlive::Room,
        delivery: Delivery::BestEffort,
    })
}
fn d_im() -> Spanned<ChannelProfile> {
    unspanned(ChannelProfile {
        channel: 2,
        heartbeat_seconds: 240,
        keep_alive: KeepAlive::App,
        delivery: Delivery::Reliable,
    })
}

// ---------------------------------------------------------------------------------------------
// Validated.

/// Where a secret comes from, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    pub env: String,
    #[serde(skip)]
    pub demo: Option<String>,
}

/// A static node, checked.
#[derive(Debug, Clone, Serialize)]
pub struct StaticNode {
    pub id: String,
    pub kind: ServiceKind,
    pub region: String,
    pub endpoints: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub capacity: u64,
    pub health: Option<HealthCheck>,
}

/// An active health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    /// GET this URL; 2xx or 3xx is healthy.
    Http(String),
    /// Connect to this `host:port`.
    Tcp(String),
}

/// An area, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Area {
    pub id: String,
    pub regions: Vec<String>,
    pub static_domain: String,
    pub upload_nodes: Vec<String>,
}

/// The service directory's settings.
#[derive(Debug, Clone, Serialize)]
pub struct ServicesPolicy {
    pub resolve_ttl_seconds: u64,
    pub heartbeat_timeout_ms: i64,
    pub max_nodes: usize,
    pub replay_window_seconds: u64,
    pub health_check_timeout_ms: u64,
    pub chat: ChannelProfile,
    pub im: ChannelProfile,
    /// Region → the regions to try after it, in order.
    pub fallback: HashMap<String, Vec<String>>,
    pub heartbeat_secrets: BTreeMap<ServiceKind, SecretRef>,
    /// Centre id → its signing secret.
    pub payment_centres: BTreeMap<String, SecretRef>,
    pub nodes: Vec<StaticNode>,
    pub areas: Vec<Area>,
    /// Accepted HTTPDNS account ids; empty accepts any.
    pub httpdns_accounts: BTreeSet<String>,
    /// Host name (lower case) → service.
    pub httpdns_hosts: BTreeMap<String, ServiceKind>,
    #[serde(skip)]
    area_of_region: HashMap<String, usize>,
}

impl Default for ServicesPolicy {
    fn default() -> Self {
        let mut errs = Vec::new();
        ServicesPolicy::from_spec(
            Path::new("(default)"),
            &ServicesSpec::default(),
            &BTreeSet::new(),
            &mut errs,
        )
    }
}

impl ServicesPolicy {
    /// The regions to search for `region`, in order: itself, then its fallbacks.
    pub fn search_order<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        std::iter::once(region).chain(
            self.fallback
                .get(region)
                .into_iter()
                .flatten()
                .map(String::as_str),
        )
    }

    /// The area a region belongs to.
    pub fn area_of(&self, region: &str) -> Option<&Area> {
        self.area_of_region.get(region).map(|&i| &self.areas[i])
    }

    /// The channel profile of a long-connection service.
    pub fn channel(&self, kind: ServiceKind) -> Option<&ChannelProfile> {
        match kind {
            ServiceKind::Chat => Some(&self.chat),
            ServiceKind::Im => Some(&self.im),
            _ => None,
        }
    }

    /// A static node by id.
    pub fn static_node(&self, id: &str) -> Option<&StaticNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Checks the section; problems go to `errs`.
    pub fn from_spec(
        path: &Path,
        spec: &ServicesSpec,
        region_ids: &BTreeSet<String>,
        errs: &mut Vec<Diagnostic>,
    ) -> ServicesPolicy {
        let mut err = |line: u64, msg: String| errs.push(Diagnostic::at(path, line, msg));
        let range =
            |v: &Spanned<u64>, min: u64, max: u64, name: &str, err: &mut dyn FnMut(u64, String)| {
                if v.value < min || v.value > max {
                    err(
                        s_line(v),
                        format!(
                            "services.{name} is {}, must be from {min} to {max}",
                            v.value
                        ),
                    );
                }
            };
        range(
            &spec.resolve_ttl_seconds,
            1,
            86_400,
            "resolve_ttl_seconds",
            &mut err,
        );
        range(
            &spec.heartbeat_timeout_seconds,
            2,
            3_600,
            "heartbeat_timeout_seconds",
            &mut err,
        );
        range(
            &spec.replay_window_seconds,
            5,
            3_600,
            "replay_window_seconds",
            &mut err,
        );
        range(
            &spec.health_check_timeout_ms,
            50,
            60_000,
            "health_check_timeout_ms",
            &mut err,
        );
        if !(1..=32).contains(&spec.max_nodes.value) {
            err(
                s_line(&spec.max_nodes),
                format!(
                    "services.max_nodes is {}, must be from 1 to 32",
                    spec.max_nodes.value
                ),
            );
        }

        let chat = spec.channels.chat.value;
        let im = spec.channels.im.value;
        for (name, p, s) in [
            ("chat", &chat, &spec.channels.chat),
            ("im", &im, &spec.channels.im),
        ] {
            if p.channel == 0 {
                err(
                    s_line(s),
                    format!("services.channels.{name}.channel must be 1 or more"),
                );
            }
            if !(1..=3_600).contains(&p.heartbeat_seconds) {
                err(
                    s_line(s),
                    format!(
                        "services.channels.{name}.heartbeat_seconds is {}, must be from 1 to 3600",
                        p.heartbeat_seconds
                    ),
                );
            }
        }
        if chat.channel == im.channel {
            err(
                s_line(&spec.channels.im),
                format!(
                    "services.channels: chat and im both use channel {}",
                    im.channel
                ),
            );
        }

        let known_region = |id: &str| region_ids.contains(id);
        let mut fallback = HashMap::new();
        for (region, list) in &spec.fallback {
            if !known_region(region) {
                err(
                    s_line(list),
                    format!("services.fallback: {region:?} is not one of the regions"),
                );
                continue;
            }
            let mut order: Vec<String> = Vec::new();
            for r in &list.value {
                if !known_region(&r.value) {
                    err(
                        s_line(r),
                        format!(
                            "services.fallback.{region}: {:?} is not one of the regions",
                            r.value
                        ),
                    );
                } else if r.value == *region || order.contains(&r.value) {
                    err(
                        s_line(r),
                        format!(
                            "services.fallback.{region}: {:?} is listed twice (or is the region itself)",
                            r.value
                        ),
                    );
                } else {
                    order.push(r.value.clone());
                }
            }
            fallback.insert(region.clone(), order);
        }

        let mut heartbeat_secrets = BTreeMap::new();
        for (kind, s) in &spec.heartbeat_secrets {
            let Ok(k) = kind.parse::<ServiceKind>() else {
                err(
                    s_line(s),
                    format!(
                        "services.heartbeat_secrets: {kind:?} is not a service (chat, im, api, upload, static, pay)"
                    ),
                );
                continue;
            };
            if let Some(r) = secret_ref(
                &s.value.secret_env,
                s.value.demo_secret.as_deref(),
                s_line(s),
                &format!("services.heartbeat_secrets.{kind}"),
                &mut err,
            ) {
                heartbeat_secrets.insert(k, r);
            }
        }

        let mut payment_centres = BTreeMap::new();
        for c in &spec.payment_centres {
            let id = c.id.value.trim();
            if !is_valid_id(id) {
                err(
                    s_line(&c.id),
                    format!(
                        "services.payment_centres: id {id:?} must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', ':' or '-'"
                    ),
                );
                continue;
            }
            if payment_centres.contains_key(id) {
                err(
                    s_line(&c.id),
                    format!("services.payment_centres: {id:?} is defined twice"),
                );
                continue;
            }
            if let Some(r) = secret_ref(
                &c.secret_env.value,
                c.demo_secret.as_ref().map(|d| d.value.as_str()),
                s_line(&c.secret_env),
                &format!("services.payment_centres.{id}"),
                &mut err,
            ) {
                payment_centres.insert(id.to_string(), r);
            }
        }

        let mut nodes: Vec<StaticNode> = Vec::new();
        for n in &spec.nodes {
            let id = n.id.value.trim().to_string();
            let at = s_line(&n.id);
            if !is_valid_id(&id) {
                err(
                    at,
                    format!(
                        "services.nodes: id {id:?} must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', ':' or '-'"
                    ),
                );
                continue;
            }
            if nodes.iter().any(|m| m.id == id) {
                err(at, format!("services.nodes: node {id:?} is defined twice"));
                continue;
            }
            let kind = match n.kind.value.parse::<ServiceKind>() {
                Ok(k) => k,
                Err(m) => {
                    err(s_line(&n.kind), format!("services.nodes.{id}.kind: {m}"));
                    continue;
                }
            };
            if !known_region(&n.region.value) {
                err(
                    s_line(&n.region),
                    format!(
                        "services.nodes.{id}.region: {:?} is not one of the regions",
                        n.region.value
                    ),
                );
            }
            if n.endpoints.is_empty() {
                err(
                    at,
                    format!("services.nodes.{id}: endpoints must not be empty"),
                );
            }
            let mut endpoints = Vec::new();
            for e in &n.endpoints {
                match check_endpoint(&e.value) {
                    Ok(()) => endpoints.push(e.value.trim().to_string()),
                    Err(m) => err(s_line(e), format!("services.nodes.{id}.endpoints: {m}")),
                }
            }
            let mut ips = Vec::new();
            for ip in &n.ips {
                match ip.value.trim().parse() {
                    Ok(a) => ips.push(a),
                    Err(_) => err(
                        s_line(ip),
                        format!(
                            "services.nodes.{id}.ips: {:?} is not an IP address",
                            ip.value
                        ),
                    ),
                }
            }
            if n.capacity.value == 0 {
                err(
                    s_line(&n.capacity),
                    format!("services.nodes.{id}.capacity must be 1 or more"),
                );
            }
            let health = match (&n.health_url, &n.health_tcp) {
                (Some(_), Some(t)) => {
                    err(
                        s_line(t),
                        format!("services.nodes.{id}: give health_url or health_tcp, not both"),
                    );
                    None
                }
                (Some(u), None) => match url::Url::parse(u.value.trim()) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                        Some(HealthCheck::Http(u.value.trim().to_string()))
                    }
                    _ => {
                        err(
                            s_line(u),
                            format!(
                                "services.nodes.{id}.health_url: {:?} is not an http or https URL",
                                u.value
                            ),
                        );
                        None
                    }
                },
                (None, Some(t)) => {
                    if is_host_port(t.value.trim()) {
                        Some(HealthCheck::Tcp(t.value.trim().to_string()))
                    } else {
                        err(
                            s_line(t),
                            format!(
                                "services.nodes.{id}.health_tcp: {:?} is not host:port",
                                t.value
                            ),
                        );
                        None
                    }
                }
                (None, None) => None,
            };
            nodes.push(StaticNode {
                id,
                kind,
                region: n.region.value.clone(),
                endpoints,
                ips,
                capacity: n.capacity.value.max(1),
                health,
            });
        }

        let mut areas: Vec<Area> = Vec::new();
        let mut area_of_region = HashMap::new();
        for a in &spec.areas {
            let id = a.id.value.trim().to_string();
            if !is_valid_id(&id) || areas.iter().any(|b| b.id == id) {
                err(
                    s_line(&a.id),
                    format!("services.areas: id {id:?} is invalid or defined twice"),
                );
                continue;
            }
            let mut regions = Vec::new();
            for r in &a.regions {
                if !known_region(&r.value) {
                    err(
                        s_line(r),
                        format!(
                            "services.areas.{id}.regions: {:?} is not one of the regions",
                            r.value
                        ),
                    );
                } else if area_of_region.contains_key(&r.value) {
                    err(
                        s_line(r),
                        format!(
                            "services.areas.{id}.regions: {:?} is already in another area",
                            r.value
                        ),
                    );
                } else {
                    area_of_region.insert(r.value.clone(), areas.len());
                    regions.push(r.value.clone());
                }
            }
            let domain = a.static_domain.value.trim().to_ascii_lowercase();
            if !is_valid_hostname(&domain) {
                err(
                    s_line(&a.static_domain),
                    format!(
                        "services.areas.{id}.static_domain: {:?} is not a host name",
                        a.static_domain.value
                    ),
                );
            }
            let mut upload_nodes = Vec::new();
            for u in &a.upload_nodes {
                match nodes.iter().find(|n| n.id == u.value) {
                    Some(n) if n.kind == ServiceKind::Upload => upload_nodes.push(u.value.clone()),
                    Some(n) => err(
                        s_line(u),
                        format!(
                            "services.areas.{id}.upload_nodes: node {:?} is a {} node, not upload",
                            u.value, n.kind
                        ),
                    ),
                    None => err(
                        s_line(u),
                        format!(
                            "services.areas.{id}.upload_nodes: no static node {:?} in services.nodes",
                            u.value
                        ),
                    ),
                }
            }
            areas.push(Area {
                id,
                regions,
                static_domain: domain,
                upload_nodes,
            });
        }

        let mut httpdns_accounts = BTreeSet::new();
        for a in &spec.httpdns.accounts {
            let v = a.value.trim();
            if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                err(
                    s_line(a),
                    format!("services.httpdns.accounts: {v:?} must be 1 to 64 letters or digits"),
                );
            } else {
                httpdns_accounts.insert(v.to_string());
            }
        }
        let mut httpdns_hosts = BTreeMap::new();
        for (host, service) in &spec.httpdns.hosts {
            let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
            if !is_valid_hostname(&h) {
                err(
                    s_line(service),
                    format!("services.httpdns.hosts: {host:?} is not a host name"),
                );
                continue;
            }
            match service.value.parse::<ServiceKind>() {
                Ok(k) => {
                    if httpdns_hosts.insert(h, k).is_some() {
                        err(
                            s_line(service),
                            format!("services.httpdns.hosts: {host:?} is listed twice"),
                        );
                    }
                }
                Err(m) => err(
                    s_line(service),
                    format!("services.httpdns.hosts.{host}: {m}"),
                ),
            }
        }

        ServicesPolicy {
            resolve_ttl_seconds: spec.resolve_ttl_seconds.value,
            heartbeat_timeout_ms: (spec.heartbeat_timeout_seconds.value.min(3_600) * 1000) as i64,
            max_nodes: spec.max_nodes.value.clamp(1, 32),
            replay_window_seconds: spec.replay_window_seconds.value,
            health_check_timeout_ms: spec.health_check_timeout_ms.value,
            chat,
            im,
            fallback,
            heartbeat_secrets,
            payment_centres,
            nodes,
            areas,
            httpdns_accounts,
            httpdns_hosts,
            area_of_region,
        }
    }
}

fn s_line<T>(s: &Spanned<T>) -> u64 {
    s.referenced.line()
}

fn secret_ref(
    env: &str,
    demo: Option<&str>,
    line: u64,
    what: &str,
    err: &mut dyn FnMut(u64, String),
) -> Option<SecretRef> {
    let env = env.trim();
    if !is_valid_env_name(env) {
        err(
            line,
            format!(
                "{what}.secret_env: {env:?} is not an environment variable name (A-Z, 0-9, '_')"
            ),
        );
        return None;
    }
    if let Some(d) = demo
        && d.len() < 16
    {
        err(
            line,
            format!("{what}.demo_secret must be at least 16 characters"),
        );
        return None;
    }
    Some(SecretRef {
        env: env.to_string(),
        demo: demo.map(str::to_string),
    })
}

fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// An endpoint clients connect to: an absolute URL with a host, 512 characters at most.
pub fn check_endpoint(e: &str) -> Result<(), String> {
    let e = e.trim();
    if e.len() > 512 {
        return Err("an endpoint is longer than 512 characters".into());
    }
    match url::Url::parse(e) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(format!(
            "{:?} is not a URL with a host (wss://host/path, tcp://host:port, …)",
            e.chars().take(64).collect::<String>()
        )),
    }
}

fn is_host_port(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => is_valid_hostname(host) && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::diag::parse_yaml;

    fn check(yaml: &str) -> (ServicesPolicy, Vec<String>) {
        let spec: ServicesSpec = parse_yaml(Path::new("p.yaml"), yaml).unwrap();
        let regions: BTreeSet<String> = ["tw", "hk", "cn"].iter().map(|s| s.to_string()).collect();
        let mut errs = Vec::new();
        let p = ServicesPolicy::from_spec(Path::new("p.yaml"), &spec, &regions, &mut errs);
        (p, errs.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn defaults_give_the_two_channel_profiles() {
        let (p, errs) = check("{}");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p.chat.channel, 1);
        assert_eq!(p.chat.keep_alive, KeepAlive::Room);
        assert_eq!(p.chat.delivery, Delivery::BestEffort);
        assert_eq!(p.im.channel, 2);
        assert_eq!(p.im.keep_alive, KeepAlive::App);
        assert_eq!(p.im.delivery, Delivery::Reliable);
        assert!(p.chat.heartbeat_seconds < p.im.heartbeat_seconds);
        assert_eq!(p.heartbeat_timeout_ms, 30_000);
    }

    #[test]
    fn a_full_section_is_read() {
        let (p, errs) = check(
            r#"
fallback:
  tw: [hk, cn]
heartbeat_secrets:
  chat: {secret_env: CHAT_SECRET}
payment_centres:
  - {id: pay-tw, secret_env: PAY_TW, demo_secret: demo-only-0123456789}
nodes:
  - id: up-cn-1
    kind: upload
    region: cn
    endpoints: [https://up-cn-1.example.cn]
    ips: [198.51.100.7]
    health_tcp: up-cn-1.example.cn:443
areas:
  - {id: mainland, regions: [cn], static_domain: static.example.cn, upload_nodes: [up-cn-1]}
httpdns:
  accounts: ["100000"]
  hosts: {Chat.Example.com.: chat}
"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p.search_order("tw").collect::<Vec<_>>(), ["tw", "hk", "cn"]);
        assert_eq!(p.search_order("hk").collect::<Vec<_>>(), ["hk"]);
        assert_eq!(p.area_of("cn").unwrap().static_domain, "static.example.cn");
        assert_eq!(p.httpdns_hosts["chat.example.com"], ServiceKind::Chat);
        assert_eq!(
            p.nodes[0].health,
            Some(HealthCheck::Tcp("up-cn-1.example.cn:443".into()))
        );
        assert_eq!(p.payment_centres["pay-tw"].env, "PAY_TW");
    }

    #[test]
    fn every_problem_names_its_line() {
        let (_, errs) = check(
            "fallback:\n  tw: [mars]\nheartbeat_secrets:\n  video: {secret_env: X}\nnodes:\n  - id: a\n    kind: chat\n    region: tw\n    endpoints: [not a url]\n    health_url: ftp://x\nareas:\n  - {id: m, regions: [cn], static_domain: 'bad domain'}\nchannels:\n  im: {channel: 1, heartbeat_seconds: 60, keep_alive: app, delivery: reliable}\n",
        );
        let want = [
            "p.yaml:2: services.fallback.tw: \"mars\" is not one of the regions",
            "p.yaml:4: services.heartbeat_secrets: \"video\" is not a service",
            "p.yaml:9: services.nodes.a.endpoints: \"not a url\" is not a URL",
            "p.yaml:10: services.nodes.a.health_url: \"ftp://x\" is not an http or https URL",
            "p.yaml:12: services.areas.m.static_domain: \"bad domain\" is not a host name",
            "p.yaml:14: services.channels: chat and im both use channel 1",
        ];
        for w in want {
            assert!(
                errs.iter().any(|e| e.starts_with(w)),
                "missing {w} in {errs:#?}"
            );
        }
    }
}
